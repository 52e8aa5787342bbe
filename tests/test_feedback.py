"""Separate feedback weights B_l (fa, kp): docs/algorithms.md, "Weight symmetry"."""
import json
import pickle

import numba
import numpy as np
import pytest

import pckernels as pk
from pckernels.checkpoint import load_checkpoint, save_checkpoint
from pckernels.feedback import (Feedback, draw_feedback, feedback_backprop, feedback_infer,
                                resolve_feedback)
from pckernels.training import BatchUpdate, Optimizer

from cli_checks import clean_error

SIZES = [7, 6, 5, 4, 3]
PC_CASES = [("fpa", 3, 1.0, "forward"), ("fpa", 5, 0.5, "forward"),
            ("vpc", 4, 0.3, "forward"), ("vpc", 3, 1.0, "zeros")]


def _batch(rng, n=11):
    return rng.standard_normal((n, SIZES[0])), rng.integers(0, SIZES[-1], n)


def _net(dtype="float64", seed=3):
    return pk.MLP(SIZES, dtype=dtype, seed=seed)


def test_bp_with_b_equal_w_is_backprop_bit_for_bit(rng):
    net = _net()
    X, y = _batch(rng)
    ref = pk.backprop(net, X, y)
    got = feedback_backprop(net, X, y, Feedback(net, "fa", net.params.copy()))
    np.testing.assert_array_equal(got.grad, ref.grad)
    assert got.loss == ref.loss


@pytest.mark.parametrize("variant, steps, gamma, init", PC_CASES)
def test_pc_with_b_equal_w_is_the_symmetric_kernel_bit_for_bit(rng, variant, steps, gamma,
                                                               init):
    net = _net()
    X, y = _batch(rng)
    fb = Feedback(net, "kp", net.params.copy())
    kw = {} if variant == "fpa" else {"init": init}
    for skip in (True, False):
        ref = pk.pc_infer(net, X, y, variant, steps, gamma, step_rule="fixed", skip=skip, **kw)
        got = feedback_infer(net, X, y, variant, steps, gamma, fb, **kw)
        np.testing.assert_array_equal(got.grad, ref.grad)
        assert got.loss == ref.loss
        for a, b in zip(got.errors, ref.errors):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("variant, steps, gamma, init", PC_CASES)
def test_batch_schedule_equals_serial(rng, variant, steps, gamma, init):
    net = _net()
    X, y = _batch(rng)
    fb = Feedback(net, "fa")
    kw = {} if variant == "fpa" else {"init": init}
    serial = feedback_infer(net, X, y, variant, steps, gamma, fb, **kw)
    for threads in (1, 2):
        previous = pk.set_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            batch = feedback_infer(net, X, y, variant, steps, gamma, fb, schedule="batch",
                                   chunk_rows=4, **kw)
        finally:
            pk.set_threads(previous)
        np.testing.assert_array_equal(batch.grad, serial.grad)
        assert batch.loss == pytest.approx(serial.loss, rel=1e-14)


def test_fpa_with_random_b_is_bp_with_that_b(rng):
    # the fixed point of fpa is backprop with the same feedback weights (gamma 1, T = L)
    net = _net()
    X, y = _batch(rng)
    fb = Feedback(net, "fa")
    ref = feedback_backprop(net, X, y, fb)
    got = feedback_infer(net, X, y, "fpa", net.n_layers - 1, 1.0, fb)
    np.testing.assert_array_equal(got.grad, ref.grad)
    assert pk.pc.cosine(ref.grad, pk.backprop(net, X, y).grad) < 0.99


@pytest.mark.parametrize("algo", ["bp", "fpa"])
def test_the_error_path_uses_b(rng, algo):
    # the updates are linear in the error carried down: with B = 2 W the update of weight
    # layer l is 2^(N-1-l) times backprop's (exactly, up to rounding)
    net = _net()
    X, y = _batch(rng)
    ref = pk.backprop(net, X, y)
    fb = Feedback(net, "fa", 2 * net.params)
    got = (feedback_backprop(net, X, y, fb) if algo == "bp"
           else feedback_infer(net, X, y, "fpa", net.n_layers - 1, 1.0, fb))
    for l in range(net.n_layers):
        factor = 2.0 ** (net.n_layers - 1 - l)
        np.testing.assert_allclose(got.dW[l], factor * ref.dW[l], rtol=1e-12, atol=1e-15)


def test_random_b_is_drawn_with_the_init_scale_and_not_w():
    net = pk.MLP([64, 32, 16, 10], seed=5, dtype="float64")
    fb = Feedback(net, "fa")
    np.testing.assert_array_equal(fb.params, Feedback(net, "fa").params)  # from the seed
    for B, W in zip(fb.weights, net.weights):
        bound = 1 / np.sqrt(W.shape[0])
        assert np.abs(B).max() <= bound and np.abs(B).max() > 0.9 * bound
    assert np.all(np.abs(fb.alignment(net)) < 0.2)
    assert np.all(np.concatenate(net.split(fb.params)[1]) == 0)
    xavier = pk.MLP([64, 32, 10], seed=5, init="xavier", gain=1.0)
    B = xavier.split(draw_feedback(xavier))[0][0]
    assert np.abs(B).max() <= np.sqrt(6 / 96) and np.abs(B).max() > 0.9 * np.sqrt(6 / 96)


def test_fa_feedback_never_changes_and_is_kept_on_the_network(digits):
    net = pk.MLP([64, 16, 16, 10], seed=1)
    pk.train(net, digits.X_train, digits.y_train, algo="bp", feedback="fa", epochs=2,
             weight_decay=1e-3)
    B0 = draw_feedback(net)
    assert net.feedback.kind == "fa"
    np.testing.assert_array_equal(net.feedback.params, B0)
    pk.train(net, digits.X_train, digits.y_train, algo="vpc", epochs=1)  # net.feedback
    np.testing.assert_array_equal(net.feedback.params, B0)


def test_kp_feedback_tracks_w_and_b_minus_w_decays_exactly(rng):
    net = _net()
    update = BatchUpdate(net, "bp", optimizer="sgd", lr=0.1, momentum=0.0,
                         weight_decay=0.5, feedback="kp")
    fb = net.feedback
    diff0 = [B - W for B, W in zip(fb.weights, net.weights)]
    X, y = _batch(rng, 32)
    labels, targets = net.check_targets(y, 32)
    steps = 20
    for _ in range(steps):
        update(X, labels, targets, "test")
    # plain SGD: B - W shrinks by (1 - lr * wd) per step, whatever the gradients
    for B, W, d0 in zip(fb.weights, net.weights, diff0):
        np.testing.assert_allclose(B - W, 0.95 ** steps * d0, rtol=1e-9, atol=1e-12)
    assert np.all(fb.distance(net) < 0.5 * np.array([np.linalg.norm(d) for d in diff0]))


def test_kp_is_akrouts_rule_for_plain_sgd(rng):
    net = _net()
    opt = Optimizer(net, "sgd", lr=0.1, momentum=0.0, weight_decay=0.3)
    fb = Feedback(net, "kp")
    B0, old = fb.params.copy(), net.params.copy()
    grad = rng.standard_normal(net.n_params)
    opt.step(grad)
    fb.track(net.params, old, 0.1, 0.3)
    expected = B0 - 0.1 * (grad + 0.3 * B0)  # B <- B - lr (dW + wd B)
    for B, E in zip(fb.weights, net.split(expected)[0]):
        np.testing.assert_allclose(B, E, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("algo", ["bp", "fpa", "vpc"])
@pytest.mark.parametrize("feedback", ["fa", "kp"])
def test_short_training_learns_digits(digits, algo, feedback):
    # measured: 0.92-0.95 after 5 epochs (every combination)
    net = pk.MLP([64, 64, 64, 10], seed=0)
    hist = pk.train(net, digits.X_train, digits.y_train, X_test=digits.X_test,
                    y_test=digits.y_test, algo=algo, feedback=feedback, epochs=5, seed=0)
    assert hist.final.test_accuracy >= 0.88
    assert net.feedback.kind == feedback


def test_cosine_is_measured_against_true_backprop(digits):
    net = pk.MLP([64, 32, 32, 10], seed=0)
    hist = pk.train(net, digits.X_train, digits.y_train, algo="bp", feedback="fa", epochs=2,
                    cosine=True)
    cos = np.array(hist.final.layer_cosine)
    assert cos[-1] == pytest.approx(1.0)  # the output layer's update is backprop's
    assert np.all(cos[:-1] < 0.99)        # the layers below get fa's error, not W^T's
    assert len(hist.final.feedback_alignment) == net.n_layers


def test_resolve_feedback_errors():
    net = _net()
    with pytest.raises(ValueError, match="unknown feedback"):
        resolve_feedback(net, "transpose", "bp")
    with pytest.raises(ValueError, match="applies to bp, fpa, vpc"):
        resolve_feedback(net, "fa", "zil")
    resolve_feedback(net, "kp", "bp")
    with pytest.raises(ValueError, match="carries kp"):
        resolve_feedback(net, "fa", "bp")
    assert resolve_feedback(net, "symmetric", "bp") is None
    with pytest.raises(ValueError, match="step_rule 'fixed'"):
        pk.train(net, np.zeros((4, 7)), np.zeros(4, int), algo="vpc", feedback="kp",
                 pc=pk.PCSettings(step_rule="auto"), epochs=1)


def test_checkpoint_and_pickle_keep_the_feedback(tmp_path, rng):
    net = _net("float32")
    net.feedback = Feedback(net, "kp", rng.standard_normal(net.n_params))
    opt = Optimizer(net)
    save_checkpoint(tmp_path / "c.npz", net, 1, np.random.default_rng(0), opt, {})
    back = load_checkpoint(tmp_path / "c.npz").net
    assert back.feedback.kind == "kp"
    np.testing.assert_array_equal(back.feedback.params, net.feedback.params)
    clone = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(clone.feedback.weights[1], net.feedback.weights[1])
    assert clone.feedback.weights[1].base is not None  # views into the flat buffer again
    net.feedback = None  # a checkpoint without feedback (as older ones) has none
    save_checkpoint(tmp_path / "d.npz", net, 1, np.random.default_rng(0), opt, {})
    assert load_checkpoint(tmp_path / "d.npz").net.feedback is None


FAST = ["--epochs", "1", "--hidden", "16x2", "--no-progress", "--seed", "2"]


def test_cli_feedback_trains_saves_and_resumes_exactly(run, tmp_path):
    full = run("train", "--algo", "vpc", "--feedback", "kp", *FAST[:1], "2", *FAST[2:],
               "--weight-decay", "0.01", "--json", "full.json", "--cosine")
    assert full.exit_code == 0, full.output
    assert "vpc feedback kp T=20 step=0.2 (fixed)" in full.output
    first = run("train", "--algo", "vpc", "--feedback", "kp", *FAST, "--weight-decay", "0.01",
                "--save", "net.npz")
    assert first.exit_code == 0, first.output
    assert load_checkpoint(tmp_path / "net.npz").net.feedback.kind == "kp"
    resumed = run("train", "--resume", "net.npz", "--epochs", "2", "--json", "resumed.json",
                  "--no-progress")
    assert resumed.exit_code == 0, resumed.output
    a = json.loads((tmp_path / "full.json").read_text())
    b = json.loads((tmp_path / "resumed.json").read_text())
    assert b["config"]["feedback"] == "kp"
    assert a["epochs"][1]["test_accuracy"] == b["epochs"][0]["test_accuracy"]
    assert a["epochs"][1]["train_loss"] == b["epochs"][0]["train_loss"]
    assert len(a["epochs"][1]["layer_cosine"]) == 3


def test_cli_feedback_usage(run):
    warned = run("train", "--algo", "zil", "--feedback", "fa", *FAST)
    assert warned.exit_code == 0, warned.output
    assert "warning: --feedback does not apply to --algo zil" in warned.output
    result = run("train", "--algo", "vpc", "--feedback", "fa", "--step-rule", "auto", *FAST)
    clean_error(result, 2, "step_rule 'fixed'")
    result = run("train", "--feedback", "transpose", *FAST)
    clean_error(result, 2, "--feedback")


def test_classifier_with_feedback(digits):
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    # measured 0.96 (fpa, fa) and 0.967 (vpc, kp)
    for algorithm, feedback in (("vpc", "kp"), ("fpa", "fa")):
        clf = pk.PCClassifier(hidden_layer_sizes=(32,), algorithm=algorithm,
                              feedback=feedback, learning_rate_init=0.01, max_iter=20,
                              random_state=0)
        with pytest.warns(ConvergenceWarning):
            clf.fit(digits.X_train, digits.y_train)
        assert clf.net_.feedback.kind == feedback
        assert clf.score(digits.X_test, digits.y_test) >= 0.92
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.net_.feedback.params, clf.net_.feedback.params)
    with pytest.raises(ValueError, match="applies to bp, fpa, vpc"):
        clone(clf).set_params(algorithm="zil").fit(digits.X_train[:50], digits.y_train[:50])


def test_kp_feedback_is_restored_with_the_weights_on_divergence(digits):
    net = pk.MLP([64, 16, 10], seed=0)
    with pytest.raises(pk.DivergenceError):
        pk.train(net, digits.X_train, digits.y_train, algo="bp", epochs=2, lr=1e3,
                 feedback="kp")
    assert np.all(np.isfinite(net.params))
    # B as drawn: the restore took kp's matrices back with the weights
    assert np.array_equal(net.feedback.params, Feedback(pk.MLP([64, 16, 10], seed=0), "kp").params)


def test_cli_feedback_schedule_without_a_kernel_is_a_usage_error(run):
    result = run("train", "--algo", "vpc", "--feedback", "fa", "--schedule", "layers",
                 "--epochs", "1")
    clean_error(result, 2, "schedules")


def test_cli_feedback_does_not_apply_to_gpc(run):
    result = run("train", "--algo", "gpc", "--feedback", "kp", "--epochs", "1",
                 "--hidden", "8")
    assert result.exit_code == 0, result.output
    assert "warning: --feedback does not apply to --algo gpc" in result.output
