"""Failures that used to pass without a word: each is now detected or computed right."""
import warnings

import numpy as np
import pytest

import pckernels as pk
from pckernels.kernels.losses import _nll
from pckernels.kernels.network import _backprop_net
from pckernels.model import MLP
from pckernels.training import DivergenceError, PCSettings, TrainingWarning, train


# -- the NLL gradient keeps its precision for confident predictions ---------------------

def test_nll_true_class_gradient_has_no_cancellation():
    rng = np.random.default_rng(0)
    B, C = 200, 10
    logits = rng.standard_normal((B, C)).astype(np.float32)
    labels = rng.integers(0, C, B)
    logits[np.arange(B), labels] += 16  # p_y within ~1e-6 of 1
    grad = np.zeros_like(logits)
    loss = _nll(logits, labels, grad)
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(B)
    others = p.sum(axis=1) - p[rows, labels]
    want = -others  # p_y - 1, without forming it
    got = grad[rows, labels].astype(np.float64)
    assert np.all(got != 0)
    assert np.max(np.abs(got - want) / np.abs(want)) < 1e-5
    want_loss = np.log1p(others / p[rows, labels]).sum()
    assert loss == pytest.approx(want_loss, rel=1e-5)
    # the other classes are unchanged: p_j
    mask = np.ones_like(p, dtype=bool)
    mask[rows, labels] = False
    np.testing.assert_allclose(grad[mask], p[mask], rtol=1e-5)


# -- predict_log_proba is the log-softmax ------------------------------------------------

def test_predict_log_proba_is_finite_log_softmax():
    from pckernels.estimator import PCClassifier
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4))
    y = np.arange(30) % 3
    clf = PCClassifier(hidden_layer_sizes=(5,), max_iter=1).fit(X, y)
    clf.net_.params[:] *= 0
    W = clf.net_.weights[-1]
    W[:] = 0
    clf.net_.biases[-1][:] = [0.0, -1085.0, 3.0]  # class 1 underflows in exp
    lp = clf.predict_log_proba(X[:2])
    assert np.all(np.isfinite(lp))
    z = np.array([0.0, -1085.0, 3.0])
    want = z - (3.0 + np.log(np.exp(z - 3.0).sum()))
    np.testing.assert_allclose(lp, np.tile(want, (2, 1)), rtol=1e-6)
    np.testing.assert_allclose(np.exp(lp), clf.predict_proba(X[:2]))


# -- every entry point that updates parameters checks them -------------------------------

def test_partial_fit_with_exploding_inference_raises_and_keeps_finite_params():
    from pckernels.estimator import PCClassifier
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4))
    y = np.arange(40) % 2
    clf = PCClassifier(hidden_layer_sizes=(5,), algorithm="vpc", step_size=1e30, steps=5,
                       step_rule="fixed")
    with pytest.raises(DivergenceError, match="step_size=1e\\+30"):
        clf.partial_fit(X, y, classes=[0, 1])
    assert np.all(np.isfinite(clf.net_.params))


def test_single_batch_partial_fit_checks_the_parameters():
    from pckernels.estimator import PCClassifier
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 4))
    y = np.arange(10) % 2
    # lr overflows float32 in the update: one batch, and the parameters are not finite
    clf = PCClassifier(hidden_layer_sizes=(5,), solver="sgd", learning_rate_init=1e39,
                       momentum=0.0, batch_size=64)
    with pytest.raises(DivergenceError, match="non-finite"):
        clf.partial_fit(1e3 * X, y, classes=[0, 1])
    assert np.all(np.isfinite(clf.net_.params))


# -- vpc: an energy that rises during inference, a collapsing run ------------------------

def _digits_small(digits, n=600):
    return digits.X_train[:n], digits.y_train[:n]


def test_energy_rise_is_reported(digits):
    X, y = _digits_small(digits)
    net = MLP([64, 32, 32, 10], seed=0)
    with pytest.warns(TrainingWarning, match="raised the energy"):
        h = train(net, X, y, X_test=digits.X_test, y_test=digits.y_test, algo="vpc",
                  pc=PCSettings(step_size=3.0, step_rule="fixed"), epochs=2, lr=0.05)
    assert sum(m.energy_rises for m in h.epochs) > 0
    assert any("raised the energy" in w for w in h.warnings)


def test_stable_step_raises_no_energy_warning(digits):
    X, y = _digits_small(digits, 256)
    net = MLP([64, 16, 10], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        h = train(net, X, y, algo="vpc", pc=PCSettings(step_size=0.05, steps=5), epochs=2,
                  lr=0.01)
    assert all(m.energy_rises == 0 for m in h.epochs) and not h.warnings


def test_energy_check_matches_the_trace(digits):
    """The runner's F_0 -> F_T is the trace's first and last energy."""
    X, y = digits.X_train[:32], digits.y_train[:32]
    net = MLP([64, 16, 16, 10], dtype="float64", seed=0)
    for gamma in (0.1, 3.0):
        r = pk.pc_infer(net, X, y, "vpc", 6, gamma, trace=True)
        from pckernels.pc import PCRunner
        runner = PCRunner(net, "vpc", 6, gamma)
        grad = net.zeros_like_params()
        labels, targets = net.check_targets(y, 32)
        runner.run(net.check_input(X), labels, targets, grad)
        f0, ft = runner.energy_change
        assert f0 == pytest.approx(r.trace.energy[0], rel=1e-12)
        assert ft == pytest.approx(r.trace.energy[-1], rel=1e-12)
        assert runner.energy_rose == (r.trace.energy[-1] > r.trace.energy[0])


def test_collapse_to_chance_is_reported(digits):
    """vpc with the fixed step size 1 (the former default) on digits: inference turns
    unstable as the weights grow and the run falls from ~0.9 to chance (the case the
    energy check explains; the default ``auto`` step rule avoids it)."""
    X, y = digits.X_train, digits.y_train
    net = MLP([64, 64, 64, 10], seed=0)
    seen = []
    h = train(net, X, y, X_val=digits.X_test, y_val=digits.y_test, algo="vpc", epochs=8,
              pc=PCSettings(step_rule="fixed"), on_warning=seen.append)
    accs = [m.val_accuracy for m in h.epochs]
    assert max(accs) > 0.8 and accs[-1] < 0.2, accs
    assert any("back at chance" in w for w in seen), seen
    assert any("far above its best" in w for w in seen), seen
    assert seen == h.warnings


def test_finite_divergence_is_an_error_not_completed(digits):
    X, y = _digits_small(digits)
    net = MLP([64, 32, 10], seed=0)
    with pytest.raises(DivergenceError, match="mean training loss of epoch 1.*lr=100"):
        train(net, X, y, epochs=3, lr=100.0)
    assert np.all(np.isfinite(net.params))


def test_pc_divergence_names_the_step_size(digits):
    X, y = _digits_small(digits)
    net = MLP([64, 32, 32, 10], seed=0)
    with pytest.raises(DivergenceError, match="step_size=1e\\+20"):
        train(net, X, y, algo="vpc", pc=PCSettings(step_size=1e20, steps=4, step_rule="fixed"),
              epochs=2)


# -- compilation is not training time ----------------------------------------------------

def test_kernels_compile_before_the_first_batch_is_timed():
    rng = np.random.default_rng(3)
    # float64 + relu + mse: a signature no other test compiles first
    X, Y = rng.standard_normal((20, 7)), rng.standard_normal((20, 3))
    net = MLP([7, 6, 3], activation="relu", loss="mse", dtype="float64")
    compiled_at_first_batch = []
    h = train(net, X, Y, epochs=1, batch_size=8,
              on_batch=lambda n: compiled_at_first_batch.append(len(_backprop_net.signatures)))
    assert compiled_at_first_batch[0] >= 1 and len(set(compiled_at_first_batch)) == 1
    assert h.compile_seconds > 0


def test_eval_sets_are_checked_before_training(digits):
    X, y = _digits_small(digits, 100)
    net = MLP([64, 8, 10], seed=0)
    epochs = []
    with pytest.raises(ValueError, match="shape"):
        train(net, X, y, X_val=X[:10], y_val=y[:9], on_epoch=epochs.append)
    assert epochs == []


def test_zero_precision_ratio_is_a_value_error():
    with pytest.raises(ValueError, match="precision_ratio"):
        PCSettings(precision_ratio=0).resolved("scaled", 2)


def test_empty_validation_set_is_allowed(digits):
    X, y = _digits_small(digits, 100)
    h = train(MLP([64, 8, 10], seed=0), X, y, X_val=X[:0], y_val=y[:0], epochs=1)
    assert np.isnan(h.final.val_accuracy)


def test_auto_step_rule_does_not_collapse(digits):
    """The run of test_collapse_to_chance_is_reported with the default (auto) rule: no
    energy rise, no collapse, no warning."""
    X, y = digits.X_train, digits.y_train
    net = MLP([64, 64, 64, 10], seed=0)
    seen = []
    h = train(net, X, y, X_val=digits.X_test, y_val=digits.y_test, algo="vpc", epochs=8,
              on_warning=seen.append)
    accs = [m.val_accuracy for m in h.epochs]
    assert min(accs[3:]) > 0.85 and accs[-1] >= max(accs) - 0.02, accs
    assert not seen and all(m.energy_rises == 0 for m in h.epochs)
