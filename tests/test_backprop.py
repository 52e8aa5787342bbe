"""Whole-network backpropagation (pckernels.backprop) against tests/naive.py and central
finite differences; corner cases; float32 vs float64; input validation."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import naive
from pckernels import MLP, backprop
from pckernels.kernels import ACTIVATIONS

ALL_ACTIVATIONS = sorted(ACTIVATIONS)
KINKED = ("relu", "leaky_relu")


def rel_err(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-8)


def make_problem(sizes, activation, loss, target_kind, batch, dtype="float64", seed=0):
    """A net with random (non-default-scale) parameters and a batch of inputs and targets."""
    rng = np.random.default_rng(seed)
    net = MLP(sizes, activation=activation, loss=loss, dtype=dtype, seed=seed)
    net.params[:] = rng.uniform(-1.0, 1.0, net.n_params)  # larger than init: curvier
    X = rng.standard_normal((batch, sizes[0]))
    if target_kind == "float":
        y = rng.standard_normal((batch, sizes[-1]))
    else:
        y = rng.integers(0, sizes[-1], batch)
    return net, X, y


def naive_loss_of_flat(net, flat, X, y):
    Ws, bs = net.split(flat)
    return naive.mean_loss(Ws, bs, net.activation, net.loss, X, y)


def finite_difference_grad(net, X, y, eps=1e-6):
    flat = net.params.astype(np.float64)
    g = np.empty_like(flat)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = naive_loss_of_flat(net, flat, X, y)
        flat[i] = old - eps
        fm = naive_loss_of_flat(net, flat, X, y)
        flat[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def pre_activations(net, X):
    _, zs = naive.forward(*net.split(net.params.astype(np.float64)), net.activation, X)
    return np.concatenate([z.ravel() for z in zs[:-1]]) if len(zs) > 1 else np.ones(1)


@st.composite
def problems(draw):
    depth = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 6), min_size=depth + 1, max_size=depth + 1))
    loss = draw(st.sampled_from(["nll", "mse"]))
    target_kind = draw(st.sampled_from(["int", "float"])) if loss == "mse" else "int"
    return dict(sizes=sizes, activation=draw(st.sampled_from(ALL_ACTIVATIONS)), loss=loss,
                target_kind=target_kind, batch=draw(st.integers(1, 5)),
                seed=draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(p=problems())
def test_backprop_matches_finite_differences(p):
    net, X, y = make_problem(**p)
    if p["activation"] in KINKED:
        # an FD step must not cross the kink; eps * (|h| + 1) is far below 1e-4
        assume(np.abs(pre_activations(net, X)).min() > 1e-4)
    result = backprop(net, X, y)
    fd = finite_difference_grad(net, X, y)
    assert rel_err(result.grad, fd) < 1e-6
    assert np.isclose(result.loss, naive_loss_of_flat(net, net.params, X, y), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
@pytest.mark.parametrize("loss,target_kind", [("nll", "int"), ("mse", "int"), ("mse", "float")])
def test_backprop_matches_naive(activation, loss, target_kind, dtype):
    net, X, y = make_problem([5, 4, 3, 3], activation, loss, target_kind, 6, dtype=dtype, seed=3)
    result = backprop(net, X, y)
    Ws, bs = net.split(net.params.astype(np.float64))
    X64 = X.astype(dtype).astype(np.float64)
    y_ref = y.astype(dtype).astype(np.float64) if target_kind == "float" else y
    loss_ref, dWs, dbs, _ = naive.backprop(Ws, bs, activation, loss, X64, y_ref)
    rtol, atol = (1e-4, 1e-6) if dtype == "float32" else (1e-11, 1e-13)
    assert result.grad.dtype == np.dtype(dtype)
    assert np.isclose(result.loss, loss_ref, rtol=rtol)
    for l in range(net.n_layers):
        np.testing.assert_allclose(result.dW[l], dWs[l], rtol=rtol, atol=atol)
        np.testing.assert_allclose(result.db[l], dbs[l], rtol=rtol, atol=atol)


def test_relu_kink_uses_zero_derivative():
    """At z = 0 exactly, relu's derivative is 0 (naive.py's convention)."""
    net = MLP([2, 2, 1], activation="relu", loss="mse", dtype="float64")
    net.weights[0] = [[1.0, -1.0], [1.0, 1.0]]
    net.biases[0] = [0.0, 0.0]
    net.weights[1] = [[2.0], [3.0]]
    net.biases[1] = [0.5]
    X = np.array([[1.0, -1.0]])  # z = [0, -2]
    result = backprop(net, X, np.array([[0.0]]))
    # h1 = [0, 0], out = 0.5, d = 0.5; layer-0 deltas are all zero
    np.testing.assert_array_equal(result.dW[0], 0.0)
    np.testing.assert_array_equal(result.db[0], 0.0)
    np.testing.assert_array_equal(result.dW[1], [[0.0], [0.0]])
    np.testing.assert_array_equal(result.db[1], [0.5])
    assert result.loss == 0.125


@pytest.mark.parametrize("sizes,batch", [([4, 3], 5),       # one weight layer, no hidden
                                         ([1, 1], 1),       # smallest possible net
                                         ([3, 1, 1, 2], 4),  # width-1 hidden layers
                                         ([2, 5, 3], 1)])    # batch 1
@pytest.mark.parametrize("loss", ["nll", "mse"])
def test_corner_cases_match_finite_differences(sizes, batch, loss):
    net, X, y = make_problem(sizes, "tanh", loss, "int", batch, seed=11)
    result = backprop(net, X, y)
    assert rel_err(result.grad, finite_difference_grad(net, X, y)) < 1e-6
    Ws, bs = net.split(net.params)
    _, dWs, dbs, _ = naive.backprop(Ws, bs, "tanh", loss, X, y)
    np.testing.assert_allclose(np.concatenate([np.r_[w.ravel(), b] for w, b in zip(dWs, dbs)]),
                               result.grad, rtol=1e-12, atol=1e-14)


def test_one_output_nll_has_zero_gradient():
    """log_softmax of a single logit is 0: loss 0 and no gradient at all."""
    net, X, y = make_problem([3, 2, 1], "tanh", "nll", "int", 4)
    result = backprop(net, X, y)
    assert result.loss == 0.0
    np.testing.assert_array_equal(result.grad, 0.0)


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_float32_agrees_with_float64(activation):
    net32, X, y = make_problem([6, 5, 5, 4], activation, "nll", "int", 5, dtype="float32",
                               seed=7)
    net64 = MLP([6, 5, 5, 4], activation=activation, dtype="float64")
    net64.params[:] = net32.params  # the same float32 values, cast
    X = X.astype(np.float32)
    r32, r64 = backprop(net32, X, y), backprop(net64, X.astype(np.float64), y)
    assert rel_err(r32.grad, r64.grad) < 1e-5
    np.testing.assert_allclose(r32.grad, r64.grad, rtol=1e-4, atol=1e-6)
    assert np.isclose(r32.loss, r64.loss, rtol=1e-5)


def test_gradient_views_and_no_side_effects():
    net, X, y = make_problem([3, 4, 2], "sigmoid", "nll", "int", 3)
    before = net.params.copy()
    r1 = backprop(net, X, y)
    np.testing.assert_array_equal(net.params, before)
    for dW, W in zip(r1.dW, net.weights):
        assert dW.shape == W.shape and np.shares_memory(dW, r1.grad)
    for db, b in zip(r1.db, net.biases):
        assert db.shape == b.shape and np.shares_memory(db, r1.grad)
    r1.dW[0][0, 0] = 123.0
    assert r1.grad[0] == 123.0
    # a different batch size in between must not disturb the reused workspaces
    backprop(net, np.vstack([X, X]), np.r_[y, y])
    r2 = backprop(net, X, y)
    r1.dW[0][0, 0] = r2.dW[0][0, 0]
    np.testing.assert_array_equal(r1.grad, r2.grad)


def test_duplicated_batch_gives_the_same_mean_gradient():
    net, X, y = make_problem([3, 4, 2], "tanh", "mse", "float", 3)
    r1 = backprop(net, X, y)
    r2 = backprop(net, np.vstack([X, X]), np.vstack([y, y]))
    np.testing.assert_allclose(r2.grad, r1.grad, rtol=1e-12, atol=1e-15)
    assert np.isclose(r2.loss, r1.loss, rtol=1e-12)


def test_mse_int_labels_equal_onehot_targets():
    net, X, y = make_problem([3, 4, 3], "tanh", "mse", "int", 4)
    r_int = backprop(net, X, y)
    r_hot = backprop(net, X, np.eye(3)[y])
    np.testing.assert_array_equal(r_int.grad, r_hot.grad)
    assert r_int.loss == r_hot.loss


@pytest.mark.parametrize("loss,X,y,match", [
    ("nll", np.zeros((2, 4)), [0, 1], r"shape \(batch, 3\)"),
    ("nll", np.zeros((0, 3)), [], "empty"),
    ("nll", np.full((2, 3), np.nan), [0, 1], "NaN"),
    ("nll", np.zeros((2, 3)), [0, 2], r"\[0, 1\]"),
    ("nll", np.zeros((2, 3)), [0, -1], r"\[0, 1\]"),
    ("nll", np.zeros((2, 3)), [0.5, 1.0], "integers"),
    ("nll", np.zeros((2, 3)), [0, 1, 1], r"shape \(2,\)"),
    ("nll", np.zeros((2, 3)), ["a", "b"], "integers"),
    ("mse", np.zeros((2, 3)), np.zeros((2, 3)), r"targets must have shape \(2, 2\)"),
    ("mse", np.zeros((2, 3)), np.full((2, 2), np.inf), "NaN or infinite"),
])
def test_backprop_rejects_bad_input(loss, X, y, match):
    net = MLP([3, 2], loss=loss, dtype="float64")
    with pytest.raises(ValueError, match=match):
        backprop(net, X, np.asarray(y))
