"""IL-prox and G-IL (Alonso et al. 2022) and FA-Z-IL (Salvatori et al. 2021): the defining
properties (implicit SGD, IL as a special case, the autonomous trigger) and training."""
import json

import numpy as np
import pytest

import pckernels as pk
from pckernels import MLP, backprop, pc_infer, train
from pckernels.il import ILRunner, il_update
from pckernels.kernels.network import _layer
from pckernels.training import ALGORITHMS


def implicit_step(A, T, theta0, lr):
    """argmin_theta 1/(2B) ||T - A theta||^2 + ||theta - theta0||^2 / (2 lr) (np.linalg.solve)."""
    B, k = A.shape
    return np.linalg.solve(A.T @ A / B + np.eye(k) / lr, A.T @ T / B + theta0 / lr)


def with_ones(x):
    return np.hstack([x, np.ones((x.shape[0], 1))])


def stacked(net, l):
    return np.vstack([net.weights[l], net.biases[l]])


@pytest.mark.parametrize("lr", [0.01, 1.0, 10.0, 1000.0])
def test_ilprox_on_one_linear_layer_is_implicit_sgd(lr):
    """One sample, mse: the update is argmin_W loss(W) + ||W - W_old||^2 / (2 lr)."""
    rng = np.random.default_rng(1)
    net = MLP([6, 4], loss="mse", dtype="float64", seed=2)
    x, y = rng.normal(size=(1, 6)), rng.normal(size=(1, 4))
    expected = implicit_step(with_ones(x), y, stacked(net, 0), lr)
    il_update(net, x, y, "ilprox", lr=lr, apply=True)
    np.testing.assert_allclose(stacked(net, 0), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("lr", [0.1, 10.0])
def test_ilprox_on_a_linear_network_takes_proximal_local_steps(lr):
    """Linear network, mse, one sample: after inference, the output layer takes the
    implicit SGD step on its local loss 1/2 ||y - x_2 W_2 - b_2||^2 (x_2 the inferred
    latent) and each hidden layer the minimal change that maps its inferred input onto its
    inferred target (the proximal step's limit lr -> inf, NLMS with step 1)."""
    rng = np.random.default_rng(3)
    net = MLP([5, 4, 3, 2], activation="identity", loss="mse", dtype="float64", seed=4)
    x, y = rng.normal(size=(1, 5)), rng.normal(size=(1, 2))
    before = [stacked(net, l) for l in range(3)]
    runner = ILRunner(net, "ilprox", 40, 1.0, lr=lr, energy_tol=0.0)
    grad = net.zeros_like_params()
    _, ws, _ = runner.run(x, np.zeros(0, np.int64), y, grad)
    states = [x] + [_layer(ws.state.x, net.sizes, 1, l).copy() for l in (1, 2)]
    net.params -= grad
    out = implicit_step(with_ones(states[2]), y, before[2], lr)
    np.testing.assert_allclose(stacked(net, 2), out, rtol=0, atol=1e-10)
    for l in (0, 1):
        A = with_ones(states[l])
        fitted = A @ stacked(net, l)
        np.testing.assert_allclose(fitted, states[l + 1], rtol=0, atol=1e-10)
        # the least-norm change that does it
        change = np.linalg.lstsq(A, states[l + 1] - A @ before[l], rcond=None)[0]
        np.testing.assert_allclose(stacked(net, l) - before[l], change, rtol=0, atol=1e-10)
    assert not np.allclose(states[1], with_ones(x) @ before[0])  # inference moved x_1


def test_gil_with_the_clamped_target_and_lms_is_ordinary_il():
    """G-IL with beta 1 and the LMS rule is vpc (IL) exactly; nlms divides each layer's
    block by ||x_l||^2 + 1 (batch mean)."""
    rng = np.random.default_rng(5)
    net = MLP([6, 5, 5, 3], dtype="float64", seed=6)
    X, y = rng.normal(size=(9, 6)), rng.integers(0, 3, 9)
    vpc = pc_infer(net, X, y, "vpc", 20, 1.0, step_rule="auto")
    lms = il_update(net, X, y, "gil", beta=1.0, rule="lms")
    np.testing.assert_array_equal(lms.grad, vpc.grad)
    nlms = il_update(net, X, y, "gil", beta=1.0, rule="nlms")
    inputs = [X] + vpc.states
    for l in range(3):
        n_l = np.mean(np.sum(inputs[l] ** 2, axis=1)) + 1
        np.testing.assert_allclose(nlms.dW[l] * n_l, vpc.dW[l], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(nlms.db[l] * n_l, vpc.db[l], rtol=1e-12, atol=1e-15)
    half = il_update(net, X, y, "gil", beta=0.5, rule="lms")
    assert not np.allclose(half.grad, lms.grad)


@pytest.mark.parametrize("batch", [1, 8, 64])
def test_ilprox_is_stable_at_large_learning_rates(batch):
    """A step of implicit SGD never overshoots: at lr 10 and 1000 the loss falls."""
    X, y = pk.load_dataset("digits").X_train[:256], pk.load_dataset("digits").y_train[:256]
    for lr in (10.0, 1000.0):
        net = MLP([64, 32, 10], dtype="float64", seed=0)
        before = backprop(net, X, y).loss
        train(net, X, y, algo="ilprox", lr=lr, epochs=1, batch_size=batch, seed=0,
              pc=pk.PCSettings(steps=8))
        after = backprop(net, X, y).loss
        assert np.all(np.isfinite(net.params))
        assert after < (0.8 if batch == 1 else 1.0) * before, (lr, before, after)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("hidden", [1, 2, 3, 5])
def test_fazil_equals_zil_and_backprop_and_fires_where_zil_learns(activation, hidden):
    rng = np.random.default_rng(hidden)
    net = MLP([7] + [6] * hidden + [4], activation=activation, dtype="float64",
              seed=10 + hidden)
    X, y = rng.normal(size=(11, 7)), rng.integers(0, 4, 11)
    zil = pc_infer(net, X, y, "zil", hidden, 1.0)
    fazil = pc_infer(net, X, y, "fazil", hidden, 1.0)
    np.testing.assert_array_equal(fazil.grad, zil.grad)
    np.testing.assert_allclose(fazil.grad, backprop(net, X, y).grad, rtol=0, atol=1e-12)
    # the trigger fired for weight layer l at step N-1-l: the output layer at once, the
    # first layer last, which is the step zil counts to
    np.testing.assert_array_equal(fazil.learn_steps, np.arange(hidden, -1, -1))
    np.testing.assert_array_equal(fazil.learn_steps, zil.learn_steps)
    # with fewer steps the layers the error has not reached never fire (zero update)
    if hidden > 1:
        short = pc_infer(net, X, y, "fazil", hidden - 1, 1.0)
        assert short.learn_steps[0] == -1 and not np.any(short.dW[0])
        np.testing.assert_array_equal(short.grad, pc_infer(net, X, y, "zil", hidden - 1,
                                                           1.0).grad)


def test_fazil_needs_zils_requirements():
    net = MLP([3, 3, 2], dtype="float64")
    with pytest.raises(ValueError, match="fazil requires step_size 1"):
        pc_infer(net, np.zeros((1, 3)), [0], "fazil", 1, 0.5)


def test_the_new_algorithms_are_registered():
    assert {"ilprox", "gil", "fazil"} <= set(ALGORITHMS)


@pytest.mark.parametrize("algo, threshold", [("ilprox", 0.85), ("gil", 0.85)])
def test_training_on_digits(digits, algo, threshold):
    """A few epochs of the defaults (ilprox: lr 10) on a small net, through train and the
    estimator; both reach well above chance (0.1)."""
    net = MLP([64, 32, 10], seed=0)
    history = train(net, digits.X_train, digits.y_train, X_test=digits.X_test,
                    y_test=digits.y_test, algo=algo, epochs=4, seed=0, cosine=True)
    assert history.final.test_accuracy >= threshold
    assert 0.3 < history.final.cosine < 1.0  # traced against backprop, not backprop
    clf = pk.PCClassifier(hidden_layer_sizes=(32,), activation="tanh", algorithm=algo,
                          max_iter=15, random_state=0)
    clf.fit(digits.X_train, digits.y_train)
    assert clf.score(digits.X_test, digits.y_test) >= threshold


def test_cli_trains_ilprox_with_cosine(run):
    result = run("train", "--algo", "ilprox", "--cosine", "--epochs", "2", "--hidden", "16")
    assert result.exit_code == 0, result.output
    assert "cosine" in result.output and "ilprox" in result.output


def test_cli_options_ilprox_ignores_warn_and_latent_options_apply_to_il(run):
    result = run("train", "--algo", "ilprox", "--weight-decay", "0.1", "--optimizer", "adam",
                 "--epochs", "1", "--hidden", "8")
    assert result.exit_code == 0, result.output
    for option in ("--weight-decay", "--optimizer"):
        assert f"warning: {option} does not apply to --algo ilprox" in result.output
    result = run("train", "--algo", "gil", "--energy-tol", "0.5", "--step-rule", "fixed",
                 "--latent-optimizer", "momentum", "--epochs", "1", "--hidden", "8")
    assert result.exit_code == 0, result.output
    assert "does not apply" not in result.output


def test_ilprox_defaults_to_batch_size_8(run, tmp_path, digits):
    """pck train and pk.train give ilprox batch size 8 unless one is named; others keep 64."""
    from pckernels.training import default_batch_size
    assert default_batch_size("ilprox") == 8 and default_batch_size("gil") == 64
    out = tmp_path / "run.json"
    result = run("train", "--algo", "ilprox", "--epochs", "1", "--hidden", "8",
                 "--json", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["config"]["batch_size"] == 8
    result = run("train", "--algo", "ilprox", "--epochs", "1", "--hidden", "8",
                 "--batch-size", "32", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["config"]["batch_size"] == 32
    result = run("train", "--algo", "gil", "--epochs", "1", "--hidden", "8", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["config"]["batch_size"] == 64
    n = len(digits.X_train)
    for kwargs, updates in (({}, -(-n // 8)), ({"batch_size": 64}, -(-n // 64))):
        net = MLP([64, 8, 10], seed=0)
        seen = []
        train(net, digits.X_train, digits.y_train, algo="ilprox", epochs=1,
              on_batch=lambda done: seen.append(done), **kwargs)
        assert len(seen) == updates


def test_estimator_auto_batch_size_follows_the_algorithm():
    for algorithm, n, expected in (("ilprox", 1000, 8), ("ilprox", 5, 5), ("gil", 1000, 200)):
        settings = {}
        pk.PCClassifier(algorithm=algorithm)._batching(settings, n)
        assert settings["batch_size"] == expected
