"""Tests for pckernels.PCClassifier: scikit-learn conformance and use in model selection."""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import pckernels as pk
from pckernels import PCClassifier

#: Small enough to keep the ~50 checks fast, large enough to pass check_classifiers_train.
#: No check is expected to fail; two are skipped by scikit-learn itself when pandas or
#: SCIPY_ARRAY_API is missing from the environment.
SMALL = dict(hidden=(16,), epochs=20, batch_size=32)

#: Batches of 32 rows run PC inference on the serial schedule (the batch-parallel one starts
#: above 32 rows), which spares compiling the parallel float32 kernels in this file; the
#: schedules themselves are tested in test_pc.py.
B32 = dict(batch_size=32)


@parametrize_with_checks([PCClassifier(**SMALL), PCClassifier(**SMALL, algorithm="fpa")],
                         expected_failed_checks=lambda est: {})
def test_sklearn_conformance(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    ds = pk.load_dataset("digits")
    return ds.X_train, ds.y_train, ds.X_test, ds.y_test


def test_fit_predict_digits(digits):
    X, y, X_test, y_test = digits
    clf = PCClassifier(hidden=(32,), epochs=5).fit(X, y)
    assert clf.n_features_in_ == 64
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert clf.net_.sizes.tolist() == [64, 32, 10]
    assert clf.n_iter_ == 5 and len(clf.loss_curve_) == 5
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.score(X_test, y_test) > 0.85


def test_predict_proba_rows_sum_to_one(digits):
    X, y, X_test, _ = digits
    clf = PCClassifier(hidden=(16, 16), algorithm="fpa", epochs=2, **B32).fit(X, y)
    p = clf.predict_proba(X_test)
    assert p.shape == (len(X_test), 10) and p.dtype == np.float64
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(clf.classes_[p.argmax(axis=1)], clf.predict(X_test))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X_test)), p, rtol=1e-12)


def test_string_labels(digits):
    X, y, X_test, y_test = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])
    clf = PCClassifier(hidden=(32,), epochs=3).fit(X, names[y])
    np.testing.assert_array_equal(clf.classes_, np.sort(names))
    pred = clf.predict(X_test)
    assert pred.dtype.kind == "U" and set(pred) <= set(names)
    by_index = PCClassifier(hidden=(32,), epochs=3).fit(X, y)
    # the same problem up to a relabelling: the label order of classes_ does not matter
    # for accuracy, which must be as good as with integer labels
    assert clf.score(X_test, names[y_test]) > 0.8
    assert abs(clf.score(X_test, names[y_test]) - by_index.score(X_test, y_test)) < 0.1


def test_fpa_and_zil_estimators_match_backprop(digits):
    X, y, X_test, _ = digits
    kw = dict(hidden=(16, 16), epochs=2, dtype="float64", random_state=7)
    bp = PCClassifier(algorithm="bp", **kw).fit(X, y)
    for algo in ("fpa", "zil"):
        pc = PCClassifier(algorithm=algo, **kw).fit(X, y)
        np.testing.assert_allclose(pc.net_.params, bp.net_.params, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(pc.predict(X_test), bp.predict(X_test))


def test_pipeline_cross_val_and_grid_search(digits):
    X, y, _, _ = digits
    X, y = X[:600], y[:600]
    pipe = make_pipeline(StandardScaler(), PCClassifier(hidden=(16,), epochs=3, **B32))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.7)
    search = GridSearchCV(pipe, {"pcclassifier__algorithm": ["bp", "fpa"]}, cv=3)
    search.fit(X, y)
    assert search.best_params_["pcclassifier__algorithm"] in ("bp", "fpa")
    # fpa with T = L and step size 1 is backprop: both candidates score alike
    means = search.cv_results_["mean_test_score"]
    assert abs(means[0] - means[1]) < 0.02
    assert search.best_estimator_[-1].algorithm == search.best_params_["pcclassifier__algorithm"]
    assert search.score(X, y) > 0.8


def test_partial_fit(digits):
    X, y, X_test, y_test = digits
    clf = PCClassifier(hidden=(32,), algorithm="fpa", **B32)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X[:100], y[:100])
    clf.partial_fit(X[:100], y[:100], classes=np.arange(10))
    assert clf.n_iter_ == 1 and clf.n_features_in_ == 64
    before = clf.score(X_test, y_test)
    for _ in range(5):
        for start in range(0, len(X), 300):
            clf.partial_fit(X[start:start + 300], y[start:start + 300])
    assert clf.n_iter_ == 1 + 5 * len(range(0, len(X), 300))
    assert clf.score(X_test, y_test) > max(before, 0.8)
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:10, :-1], y[:10])
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X[:10], y[:10], classes=np.arange(11))
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X[:10], y[:10] + 100)


@pytest.mark.parametrize("algorithm", ["bp", "fpa"])
def test_first_partial_fit_equals_one_epoch_of_fit(digits, algorithm):
    X, y, _, _ = digits
    kw = dict(hidden=(16,), algorithm=algorithm, dtype="float64", random_state=5)
    a = PCClassifier(epochs=1, **kw).fit(X, y)
    b = PCClassifier(**kw).partial_fit(X, y, classes=np.arange(10))
    np.testing.assert_array_equal(a.net_.params, b.net_.params)
    assert a.loss_curve_ == pytest.approx(b.loss_curve_, rel=1e-12)


def test_pickle_round_trip_keeps_views(digits):
    X, y, X_test, _ = digits
    clf = PCClassifier(hidden=(16,), epochs=1).fit(X, y)
    clone_ = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone_.predict_proba(X_test), clf.predict_proba(X_test))
    net = clone_.net_
    for W in net.weights:
        assert np.shares_memory(W, net.params)
    assert net.params.flags.writeable
    clone_.partial_fit(X[:64], y[:64])          # continues training after unpickling
    assert hasattr(clf, "net_")                 # pickling left the original intact


def test_params_and_clone():
    clf = PCClassifier(algorithm="vpc", steps=4, step_size=0.2)
    params = clf.get_params()
    assert params["algorithm"] == "vpc" and params["steps"] == 4
    assert params["hidden"] == (64, 64)
    clf.set_params(algorithm="scaled", precision_ratio=100.0)
    c = clone(clf)
    assert c.algorithm == "scaled" and c.precision_ratio == 100.0
    assert not hasattr(c, "classes_")
    with pytest.raises(NotFittedError):
        c.predict(np.zeros((1, 3)))


@pytest.mark.parametrize("params,match", [
    ({"algorithm": "rprop"}, "algorithm"),
    ({"hidden": (16, 0)}, "hidden"),
    ({"hidden": "wide"}, "hidden"),
    ({"epochs": 0}, "epochs"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"activation": "swish"}, "activation"),
    ({"optimizer": "lbfgs"}, "optimizer"),
    ({"dtype": "float16"}, "dtype"),
    ({"lr": -1.0}, "lr"),
    ({"algorithm": "zil", "step_size": 0.5}, "zil"),
    ({"algorithm": "fpa", "steps": -1}, "steps"),
])
def test_bad_parameters(params, match):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match=match):
        PCClassifier(**{"hidden": (4,), "epochs": 1, **params}).fit(X, y)


def test_one_class_is_an_error():
    with pytest.raises(ValueError, match="class"):
        PCClassifier(hidden=(4,), epochs=1).fit(np.ones((5, 2)), np.zeros(5))


@pytest.mark.parametrize("algorithm", ["vpc", "scaled", "zil"])
def test_other_algorithms_learn(digits, algorithm):
    X, y, X_test, y_test = digits
    kw = {"precision_ratio": 10.0, "steps": 20} if algorithm == "scaled" else {}
    clf = PCClassifier(hidden=(16,), epochs=3, algorithm=algorithm, **B32, **kw).fit(X, y)
    assert clf.score(X_test, y_test) > 0.5
