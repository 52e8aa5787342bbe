"""Tests for pckernels.PCClassifier / PCRegressor: scikit-learn conformance, MLPClassifier's
parameters, and use in model selection."""
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.estimator_checks import parametrize_with_checks

import pckernels as pk
from pckernels import PCClassifier, PCRegressor

#: Small enough to keep the ~50 checks fast, large enough to pass check_classifiers_train.
#: No check is expected to fail; two are skipped by scikit-learn itself when pandas or
#: SCIPY_ARRAY_API is missing from the environment.
SMALL = dict(hidden_layer_sizes=(16,), max_iter=20, batch_size=32, activation="tanh",
             solver="sgd", learning_rate_init=0.05)

#: Batches of 32 rows run PC inference on the serial schedule (the batch-parallel one starts
#: above 32 rows), which spares compiling the parallel float32 kernels in this file; the
#: schedules themselves are tested in test_pc.py.
B32 = dict(batch_size=32)

#: The settings of the older tests: tanh, SGD with lr 0.05, a fixed number of epochs.
OLD = dict(activation="tanh", solver="sgd", learning_rate_init=0.05, batch_size=64, tol=0.0,
           n_iter_no_change=1000, random_state=0)

#: The tests that check the warning catch it themselves.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@parametrize_with_checks([PCClassifier(**SMALL), PCClassifier(**SMALL, algorithm="fpa"),
                          PCRegressor(**SMALL)],
                         expected_failed_checks=lambda est: {})
def test_sklearn_conformance(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.fixture(scope="module")
def digits():
    ds = pk.load_dataset("digits")
    return ds.X_train, ds.y_train, ds.X_test, ds.y_test


def test_fit_predict_digits(digits):
    X, y, X_test, y_test = digits
    clf = PCClassifier(hidden_layer_sizes=(32,), max_iter=5, **OLD).fit(X, y)
    assert clf.n_features_in_ == 64
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert clf.net_.sizes.tolist() == [64, 32, 10]
    assert clf.n_iter_ == 5 and len(clf.loss_curve_) == 5
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.score(X_test, y_test) > 0.85


def test_predict_proba_rows_sum_to_one(digits):
    X, y, X_test, _ = digits
    clf = PCClassifier(hidden_layer_sizes=(16, 16), algorithm="fpa", max_iter=2,
                       **dict(OLD, **B32)).fit(X, y)
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
    clf = PCClassifier(hidden_layer_sizes=(32,), max_iter=3, **OLD).fit(X, names[y])
    np.testing.assert_array_equal(clf.classes_, np.sort(names))
    pred = clf.predict(X_test)
    assert pred.dtype.kind == "U" and set(pred) <= set(names)
    by_index = PCClassifier(hidden_layer_sizes=(32,), max_iter=3, **OLD).fit(X, y)
    # the same problem up to a relabelling: the label order of classes_ does not matter
    # for accuracy, which must be as good as with integer labels
    assert clf.score(X_test, names[y_test]) > 0.8
    assert abs(clf.score(X_test, names[y_test]) - by_index.score(X_test, y_test)) < 0.1


def test_fpa_and_zil_estimators_match_backprop(digits):
    X, y, X_test, _ = digits
    kw = dict(OLD, hidden_layer_sizes=(16, 16), max_iter=2, dtype="float64", random_state=7)
    bp = PCClassifier(algorithm="bp", **kw).fit(X, y)
    for algo in ("fpa", "zil"):
        pc = PCClassifier(algorithm=algo, **kw).fit(X, y)
        np.testing.assert_allclose(pc.net_.params, bp.net_.params, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(pc.predict(X_test), bp.predict(X_test))


def test_pipeline_cross_val_and_grid_search(digits):
    X, y, _, _ = digits
    X, y = X[:600], y[:600]
    pipe = make_pipeline(StandardScaler(), PCClassifier(hidden_layer_sizes=(16,), max_iter=3,
                                                        **dict(OLD, **B32)))
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
    clf = PCClassifier(hidden_layer_sizes=(32,), algorithm="fpa", **dict(OLD, **B32))
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
    kw = dict(OLD, hidden_layer_sizes=(16,), algorithm=algorithm, dtype="float64",
              random_state=5)
    with pytest.warns(ConvergenceWarning):
        a = PCClassifier(max_iter=1, **kw).fit(X, y)
    b = PCClassifier(**kw).partial_fit(X, y, classes=np.arange(10))
    np.testing.assert_array_equal(a.net_.params, b.net_.params)
    assert a.loss_curve_ == pytest.approx(b.loss_curve_, rel=1e-12)


def test_pickle_round_trip_keeps_views(digits):
    X, y, X_test, _ = digits
    clf = PCClassifier(hidden_layer_sizes=(16,), max_iter=1, **OLD).fit(X, y)
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
    assert params["hidden_layer_sizes"] == (100,) and params["hidden"] is None
    clf.set_params(algorithm="scaled", precision_ratio=100.0)
    c = clone(clf)
    assert c.algorithm == "scaled" and c.precision_ratio == 100.0
    assert not hasattr(c, "classes_")
    with pytest.raises(NotFittedError):
        c.predict(np.zeros((1, 3)))


@pytest.mark.parametrize("params,match", [
    ({"algorithm": "rprop"}, "algorithm"),
    ({"hidden_layer_sizes": (16, 0)}, "hidden_layer_sizes"),
    ({"hidden_layer_sizes": "wide"}, "hidden_layer_sizes"),
    ({"max_iter": 0}, "max_iter"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"batch_size": "big"}, "batch_size"),
    ({"activation": "swish"}, "activation"),
    ({"solver": "lbfgs"}, "solver"),
    ({"dtype": "float16"}, "dtype"),
    ({"learning_rate_init": -1.0}, "learning_rate_init"),
    ({"alpha": -1.0}, "alpha"),
    ({"tol": float("nan")}, "tol"),
    ({"momentum": 1.0}, "momentum"),
    ({"n_iter_no_change": 0}, "n_iter_no_change"),
    ({"validation_fraction": 1.0, "early_stopping": True}, "validation_fraction"),
    ({"algorithm": "zil", "step_size": 0.5}, "zil"),
    ({"algorithm": "fpa", "steps": -1}, "steps"),
])
def test_bad_parameters(params, match):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match=match):
        PCClassifier(**{"hidden_layer_sizes": (4,), "max_iter": 1, **params}).fit(X, y)


@pytest.mark.parametrize("text,tuple_text", [("64x2", "(64, 64)"), ("8x20", "(8,) * 20"),
                                             ("128,64", "(128, 64)"), ("5", "(5,)"),
                                             ("none", "()")])
def test_cli_spelling_of_hidden_layer_sizes_names_the_tuple(text, tuple_text):
    # refused like MLPClassifier refuses it, with the value to give instead
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), np.arange(20) % 2
    for Estimator in (PCClassifier, PCRegressor):
        with pytest.raises(ValueError) as info:
            Estimator(hidden_layer_sizes=text, max_iter=1).fit(X, y)
        assert str(info.value).endswith(f"give the widths as scikit-learn does: "
                                        f"hidden_layer_sizes={tuple_text}")
        assert f"({text!r}" not in str(info.value)


def test_one_class_is_an_error():
    with pytest.raises(ValueError, match="class"):
        PCClassifier(hidden_layer_sizes=(4,), max_iter=1).fit(np.ones((5, 2)), np.zeros(5))


@pytest.mark.parametrize("algorithm", ["vpc", "scaled", "zil"])
def test_other_algorithms_learn(digits, algorithm):
    X, y, X_test, y_test = digits
    kw = {"precision_ratio": 10.0, "steps": 20} if algorithm == "scaled" else {}
    clf = PCClassifier(hidden_layer_sizes=(16,), max_iter=3, algorithm=algorithm,
                       **dict(OLD, **B32), **kw).fit(X, y)
    assert clf.score(X_test, y_test) > 0.5


# -- scikit-learn's MLPClassifier parameters and attributes ------------------------------

#: MLPClassifier arguments that both estimators take with the same meaning.
MLP_ARGS = dict(hidden_layer_sizes=(32,), activation="relu", solver="adam", alpha=1e-4,
                batch_size=64, learning_rate_init=0.01, max_iter=40, early_stopping=True,
                validation_fraction=0.2, n_iter_no_change=3, tol=1e-3, random_state=0,
                shuffle=True)


@pytest.mark.parametrize("Estimator", [MLPClassifier, PCClassifier])
def test_drop_in_for_mlpclassifier_in_pipeline_and_grid_search(digits, Estimator):
    """The same code, with MLPClassifier swapped for PCClassifier, gives a working model."""
    X, y, X_test, y_test = digits
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", Estimator(**MLP_ARGS))])
    search = GridSearchCV(pipe, {"mlp__alpha": [1e-4, 1e-2]}, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X[:800], y[:800])
    assert search.score(X_test, y_test) > 0.85
    mlp = search.best_estimator_.named_steps["mlp"]
    assert 1 <= mlp.n_iter_ <= 40 and len(mlp.loss_curve_) == mlp.n_iter_
    assert len(mlp.validation_scores_) == mlp.n_iter_ and mlp.best_loss_ is None
    assert mlp.best_validation_score_ == max(mlp.validation_scores_)
    assert [c.shape for c in mlp.coefs_] == [(64, 32), (32, 10)]
    assert [b.shape for b in mlp.intercepts_] == [(32,), (10,)]
    assert mlp.n_layers_ == 3 and mlp.n_outputs_ == 10 and mlp.out_activation_ == "softmax"


def test_coefs_are_views_of_the_network(digits):
    X, y, X_test, _ = digits
    clf = PCClassifier(hidden_layer_sizes=(8,), max_iter=2, **OLD).fit(X, y)
    before = clf.predict_proba(X_test)
    clf.coefs_[1][...] = 0
    clf.intercepts_[1][...] = 0
    np.testing.assert_allclose(clf.predict_proba(X_test), 0.1, rtol=1e-6)
    assert not np.allclose(before, 0.1)


def test_early_stopping_keeps_the_best_epoch(digits):
    X, y, _, _ = digits
    kw = dict(OLD, hidden_layer_sizes=(16,), max_iter=60, early_stopping=True,
              validation_fraction=0.2, n_iter_no_change=2, tol=1e-9, random_state=4)
    clf = PCClassifier(**kw).fit(X, y)
    scores = clf.validation_scores_
    assert clf.n_iter_ == len(scores) < 60                    # stopped early
    best = int(np.argmax(scores))       # the first best: later ties are no improvement
    assert clf.n_iter_ == best + 1 + kw["n_iter_no_change"] + 1
    assert scores[-1] < scores[best]    # the last epoch is worse, so keeping it would show
    # the validation split fit() made: the network's seed is drawn first, then the split
    rng = check_random_state(kw["random_state"])
    rng.randint(np.iinfo(np.int32).max)
    _, X_val, _, y_val = train_test_split(X, y, test_size=0.2, stratify=y, random_state=rng)
    assert clf.score(X_val, y_val) == pytest.approx(scores[best], abs=1e-12)


def test_training_loss_stopping_rule_and_convergence_warning(digits):
    X, y, _, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        # only the first epoch improves on the initial infinity by tol = 10: the rule
        # stops after n_iter_no_change + 1 more epochs (scikit-learn's count)
        clf = PCClassifier(hidden_layer_sizes=(8,), max_iter=50, **dict(OLD, tol=10.0,
                           n_iter_no_change=2)).fit(X, y)
    assert clf.n_iter_ == 4 and len(clf.loss_curve_) == 4
    assert clf.best_loss_ == min(clf.loss_curve_) and clf.validation_scores_ is None
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(2\\)"):
        clf = PCClassifier(hidden_layer_sizes=(8,), max_iter=2, **OLD).fit(X, y)
    assert clf.n_iter_ == 2


def test_warm_start_continues(digits):
    X, y, _, _ = digits
    clf = PCClassifier(hidden_layer_sizes=(8,), max_iter=2, warm_start=True, **OLD)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        first = clf.loss_curve_[:]
        params = clf.net_.params.copy()
        clf.fit(X, y)
    assert clf.n_iter_ == 2 and clf.loss_curve_[:2] == first and len(clf.loss_curve_) == 4
    assert clf.loss_curve_[2] < first[0]
    cold = clone(clf).set_params(warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cold.fit(X, y)
    np.testing.assert_array_equal(cold.net_.params, params)  # a cold fit starts afresh


def test_deprecated_names_still_work(digits):
    X, y, _, _ = digits
    new = dict(hidden_layer_sizes=(8,), max_iter=2, learning_rate_init=0.05, solver="sgd")
    old = dict(hidden=(8,), epochs=2, lr=0.05, optimizer="sgd")
    fixed = dict(activation="tanh", tol=0.0, random_state=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = PCClassifier(**new, **fixed).fit(X, y)
        with pytest.warns(FutureWarning) as record:
            b = PCClassifier(**old, **fixed).fit(X, y)
    assert {str(w.message).split("'")[1] for w in record
            if w.category is FutureWarning} == set(old)
    np.testing.assert_array_equal(a.net_.params, b.net_.params)
    assert b.get_params()["hidden"] == (8,)
    with pytest.raises(ValueError, match="not both"), pytest.warns(FutureWarning):
        PCClassifier(hidden=(8,), hidden_layer_sizes=(4,)).fit(X, y)


def test_logistic_is_sigmoid(digits):
    X, y, _, _ = digits
    clf = PCClassifier(hidden_layer_sizes=(8,), activation="logistic", max_iter=1,
                       **{k: v for k, v in OLD.items() if k != "activation"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.net_.activation == "sigmoid" and clf.activation == "logistic"


# -- PCRegressor ---------------------------------------------------------------------------

def _regression_data(n=400, outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 3))
    Y = np.stack([np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2], X[:, 0] - X[:, 1]][:outputs], 1)
    return X, Y


def test_regressor_learns_one_and_two_outputs():
    X, Y = _regression_data(outputs=2)
    kw = dict(hidden_layer_sizes=(32,), activation="tanh", learning_rate_init=0.01,
              max_iter=300, random_state=0, batch_size=32)
    reg = PCRegressor(**kw).fit(X, Y[:, 0])
    assert reg.predict(X).shape == (400,) and reg.n_outputs_ == 1
    assert reg.score(X, Y[:, 0]) > 0.9
    assert reg.out_activation_ == "identity" and reg.net_.loss == "mse"
    reg2 = PCRegressor(**kw).fit(X, Y)
    assert reg2.predict(X).shape == (400, 2) and reg2.score(X, Y) > 0.9
    n, k = reg2.n_iter_, len(reg2.loss_curve_)
    reg2.partial_fit(X, Y)                      # continues after fit, one more pass
    assert reg2.n_iter_ == n + 1 and len(reg2.loss_curve_) == k + 1


def test_regressor_early_stopping_uses_r2():
    X, Y = _regression_data()
    reg = PCRegressor(hidden_layer_sizes=(16,), activation="tanh", max_iter=200,
                      early_stopping=True, learning_rate_init=0.01, random_state=0,
                      batch_size=32).fit(X, Y[:, 0])
    assert reg.best_validation_score_ == max(reg.validation_scores_) > 0.8
    assert reg.n_iter_ < 200


def test_partial_fit_after_fit_continues_the_run(digits):
    """fit for 2 epochs then partial_fit once == fit for 3 epochs (the optimizer state and
    the shuffling stream carry over, as in scikit-learn)."""
    X, y, _, _ = digits
    kw = dict(OLD, hidden_layer_sizes=(8,), solver="adam", learning_rate_init=0.01)
    a = PCClassifier(max_iter=2, **kw).fit(X, y).partial_fit(X, y)
    b = PCClassifier(max_iter=3, **kw).fit(X, y)
    np.testing.assert_array_equal(a.net_.params, b.net_.params)
    assert a.loss_curve_ == b.loss_curve_


def test_warm_start_may_switch_early_stopping_on_and_off(digits):
    X, y, _, _ = digits
    clf = PCClassifier(hidden_layer_sizes=(8,), max_iter=2, warm_start=True, **OLD).fit(X, y)
    clf.set_params(early_stopping=True).fit(X, y)
    assert len(clf.validation_scores_) == 2 and clf.best_loss_ is None
    clf.set_params(early_stopping=False).fit(X, y)
    assert clf.validation_scores_ is None and clf.best_loss_ == min(clf.loss_curve_[-2:])
