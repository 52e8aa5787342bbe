"""Every kernel against its plain-NumPy reference (tests/naive.py), in float32 and float64,
every VJP against central finite differences, and the optimizer kernels against numbers
worked out by hand (PyTorch semantics)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import naive
from pckernels.kernels import ACTIVATIONS, LOSSES
from pckernels.kernels.activations import (LEAKY_SLOPE, _activate, _grad_from_output,
                                           _mul_grad_from_output)
from pckernels.kernels.dense import (_affine, _backprop_through_activation, _dense_forward,
                                     _vjp_dense_input, _vjp_dense_params)
from pckernels.kernels.losses import NLL, MSE, _log_softmax, _loss_grad, _mse, _nll
from pckernels.kernels.network import _layer_cosines
from pckernels.kernels.optim import _adam_step, _sgd_step

DTYPES = [np.float32, np.float64]
ALL_ACTIVATIONS = sorted(ACTIVATIONS)
SMOOTH = ("tanh", "sigmoid", "identity")
FD_SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                       suppress_health_check=[HealthCheck.too_slow])


def tol(dtype):
    """(rtol, atol) for comparing a kernel in ``dtype`` with the float64 reference."""
    return (2e-5, 2e-6) if dtype == np.float32 else (1e-12, 1e-13)


def rel_err(a, b):
    """Norm-wise relative error with a floor so that two ~zero vectors compare as equal."""
    a, b = np.ravel(a), np.ravel(b)
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-8)


def test_naive_knows_every_registered_activation_and_loss():
    z = np.linspace(-2, 2, 5)
    for name in ACTIVATIONS:
        assert naive.act(name, z).shape == z.shape
    assert set(LOSSES) == {"nll", "mse"}
    assert LEAKY_SLOPE == naive.LEAKY_SLOPE


# ----------------------------------------------------------------------------- activations

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_activation_matches_naive(name, dtype):
    rng = np.random.default_rng(0)
    z = (3 * rng.standard_normal((7, 5))).astype(dtype)
    z[0, :3] = [0.0, -0.0, 1e-30]  # the kink and tiny values
    h = z.copy()
    _activate(h, ACTIVATIONS[name])
    assert h.dtype == dtype
    np.testing.assert_allclose(h, naive.act(name, z.astype(np.float64)), *tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_activation_derivative_from_output_matches_naive(name, dtype):
    rng = np.random.default_rng(1)
    z = (2 * rng.standard_normal((6, 4))).astype(dtype)
    z[0, 0] = 0.0
    h = z.copy()
    _activate(h, ACTIVATIONS[name])
    expected = naive.act_grad(name, z.astype(np.float64))

    gp = np.full_like(h, np.nan)
    _grad_from_output(h, gp, ACTIVATIONS[name])
    np.testing.assert_allclose(gp, expected, *tol(dtype))

    d = rng.standard_normal(z.shape).astype(dtype)
    d0 = d.astype(np.float64)
    _mul_grad_from_output(d, h, ACTIVATIONS[name])
    np.testing.assert_allclose(d, d0 * expected, *tol(dtype))

    d2 = d0.astype(dtype)
    _backprop_through_activation(d2, h, ACTIVATIONS[name])
    np.testing.assert_allclose(d2, d0 * expected, *tol(dtype))


def test_relu_and_leaky_relu_derivative_at_the_kink_is_the_left_one():
    z = np.array([[-1.0, 0.0, 2.0]])
    for name, left in (("relu", 0.0), ("leaky_relu", LEAKY_SLOPE)):
        h = z.copy()
        _activate(h, ACTIVATIONS[name])
        gp = np.empty_like(h)
        _grad_from_output(h, gp, ACTIVATIONS[name])
        np.testing.assert_array_equal(gp, [[left, left, 1.0]])
        np.testing.assert_array_equal(gp, naive.act_grad(name, z))


@FD_SETTINGS
@given(name=st.sampled_from(ALL_ACTIVATIONS), seed=st.integers(0, 2**31 - 1),
       scale=st.sampled_from([0.1, 1.0, 3.0]))
def test_activation_derivative_matches_finite_differences(name, seed, scale):
    z = scale * np.random.default_rng(seed).standard_normal((3, 4))
    assume(np.abs(z).min() > 1e-4)  # relu / leaky_relu: stay off the kink
    eps = 1e-6
    hp, hm = z + eps, z - eps
    _activate(hp, ACTIVATIONS[name])
    _activate(hm, ACTIVATIONS[name])
    fd = (hp - hm) / (2 * eps)
    h = z.copy()
    _activate(h, ACTIVATIONS[name])
    gp = np.empty_like(h)
    _grad_from_output(h, gp, ACTIVATIONS[name])
    assert rel_err(gp, fd) < 1e-6


# ----------------------------------------------------------------------------- losses

@pytest.mark.parametrize("dtype", DTYPES)
def test_nll_value_and_gradient_match_naive(dtype):
    rng = np.random.default_rng(2)
    logits = (4 * rng.standard_normal((6, 5))).astype(dtype)
    logits[0] += 80  # large logits: needs the max shift to stay finite
    labels = rng.integers(0, 5, 6).astype(np.int64)
    grad = np.full_like(logits, np.nan)
    total = _nll(logits, labels, grad)
    lvec, g = naive.loss_and_grad("nll", logits.astype(np.float64), labels)
    assert np.isclose(total, lvec.sum(), rtol=tol(dtype)[0] * 10)
    np.testing.assert_allclose(grad, g, *tol(dtype))
    assert grad.dtype == dtype
    grad2 = np.empty_like(logits)
    assert _loss_grad(logits, labels, np.zeros((0, 0), dtype), NLL, grad2) == total
    np.testing.assert_array_equal(grad2, grad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_value_and_gradient_match_naive(dtype):
    rng = np.random.default_rng(3)
    out = rng.standard_normal((4, 3)).astype(dtype)
    targets = rng.standard_normal((4, 3)).astype(dtype)
    grad = np.full_like(out, np.nan)
    total = _mse(out, targets, grad)
    lvec, g = naive.loss_and_grad("mse", out.astype(np.float64), targets.astype(np.float64))
    assert np.isclose(total, lvec.sum(), rtol=tol(dtype)[0] * 10)
    np.testing.assert_allclose(grad, g, *tol(dtype))
    grad2 = np.empty_like(out)
    assert _loss_grad(out, np.zeros(0, np.int64), targets, MSE, grad2) == total
    np.testing.assert_array_equal(grad2, grad)


def test_losses_by_hand():
    # nll of uniform logits over 4 classes is log 4; gradient 1/4 - onehot
    grad = np.empty((1, 4))
    assert np.isclose(_nll(np.zeros((1, 4)), np.array([2]), grad), np.log(4))
    np.testing.assert_allclose(grad, [[0.25, 0.25, -0.75, 0.25]])
    # mse: 1/2 (1^2 + 2^2) = 2.5, gradient out - target
    grad = np.empty((1, 2))
    assert _mse(np.array([[1.0, -1.0]]), np.array([[0.0, 1.0]]), grad) == 2.5
    np.testing.assert_array_equal(grad, [[1.0, -2.0]])


@FD_SETTINGS
@given(loss=st.sampled_from(["nll", "mse"]), batch=st.integers(1, 5), n_out=st.integers(1, 6),
       seed=st.integers(0, 2**31 - 1))
def test_loss_gradient_matches_finite_differences(loss, batch, n_out, seed):
    rng = np.random.default_rng(seed)
    out = 2 * rng.standard_normal((batch, n_out))
    labels = rng.integers(0, n_out, batch).astype(np.int64)
    targets = rng.standard_normal((batch, n_out)) if loss == "mse" else np.zeros((0, 0))
    code = LOSSES[loss]
    scratch = np.empty_like(out)
    grad = np.empty_like(out)
    _loss_grad(out, labels, targets, code, grad)
    fd = np.empty_like(out)
    eps = 1e-6
    for idx in np.ndindex(*out.shape):
        o = out.copy()
        o[idx] += eps
        fp = _loss_grad(o, labels, targets, code, scratch)
        o[idx] -= 2 * eps
        fm = _loss_grad(o, labels, targets, code, scratch)
        fd[idx] = (fp - fm) / (2 * eps)
    # the kernels return the batch *sum*, so fd is the per-sample gradient
    assert rel_err(grad, fd) < 1e-6


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_matches_naive(dtype):
    rng = np.random.default_rng(4)
    logits = (5 * rng.standard_normal((5, 7))).astype(dtype)
    logits[1] -= 200
    out = np.full_like(logits, np.nan)
    _log_softmax(logits, out)
    x = logits.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    expected = x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(out, expected, rtol=tol(dtype)[0],
                               atol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(np.exp(out.astype(np.float64)).sum(axis=1), 1.0,
                               rtol=1e-5 if dtype == np.float32 else 1e-12)


# ----------------------------------------------------------------------------- dense layer

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_dense_forward_matches_naive(name, dtype):
    rng = np.random.default_rng(5)
    h = rng.standard_normal((4, 3)).astype(dtype)
    W = rng.standard_normal((3, 5)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    z_ref = h.astype(np.float64) @ W.astype(np.float64) + b.astype(np.float64)
    z = np.full((4, 5), np.nan, dtype=dtype)
    _affine(h, W, b, z)
    np.testing.assert_allclose(z, z_ref, *tol(dtype))
    out = np.full((4, 5), np.nan, dtype=dtype)
    _dense_forward(h, W, b, ACTIVATIONS[name], out)
    np.testing.assert_allclose(out, naive.act(name, z_ref), *tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_vjps_match_naive(dtype):
    rng = np.random.default_rng(6)
    h = rng.standard_normal((4, 3)).astype(dtype)
    W = rng.standard_normal((3, 5)).astype(dtype)
    delta = rng.standard_normal((4, 5)).astype(dtype)
    h64, W64, d64 = (a.astype(np.float64) for a in (h, W, delta))
    d_in = np.full((4, 3), np.nan, dtype=dtype)
    _vjp_dense_input(delta, W, d_in)
    np.testing.assert_allclose(d_in, d64 @ W64.T, *tol(dtype))
    dW = np.full((3, 5), np.nan, dtype=dtype)
    db = np.full(5, np.nan, dtype=dtype)
    _vjp_dense_params(h, delta, dW, db)
    np.testing.assert_allclose(dW, h64.T @ d64, *tol(dtype))
    np.testing.assert_allclose(db, d64.sum(axis=0), *tol(dtype))
    assert dW.dtype == dtype and db.dtype == dtype


@FD_SETTINGS
@given(batch=st.integers(1, 5), n_in=st.integers(1, 6), n_out=st.integers(1, 6),
       seed=st.integers(0, 2**31 - 1))
def test_dense_vjps_match_finite_differences(batch, n_in, n_out, seed):
    """f(h, W, b) = <R, h W + b>: its gradients are exactly the two VJPs with delta = R."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((batch, n_in))
    W = rng.standard_normal((n_in, n_out))
    b = rng.standard_normal(n_out)
    R = rng.standard_normal((batch, n_out))
    z = np.empty((batch, n_out))

    def f(h, W, b):
        _affine(h, W, b, z)
        return float((R * z).sum())

    def fd(x, fun):
        g = np.empty_like(x)
        eps = 1e-6
        for idx in np.ndindex(*x.shape):
            old = x[idx]
            x[idx] = old + eps
            fp = fun()
            x[idx] = old - eps
            fm = fun()
            x[idx] = old
            g[idx] = (fp - fm) / (2 * eps)
        return g

    d_in = np.empty_like(h)
    _vjp_dense_input(R, W, d_in)
    dW = np.empty_like(W)
    db = np.empty_like(b)
    _vjp_dense_params(h, R, dW, db)
    assert rel_err(d_in, fd(h, lambda: f(h, W, b))) < 1e-6
    assert rel_err(dW, fd(W, lambda: f(h, W, b))) < 1e-6
    assert rel_err(db, fd(b, lambda: f(h, W, b))) < 1e-6


# ----------------------------------------------------------------------------- cosines

@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_cosines_match_naive(dtype):
    rng = np.random.default_rng(7)
    sizes = np.array([3, 4, 2], dtype=np.int64)
    n = 3 * 4 + 4 + 4 * 2 + 2
    a = rng.standard_normal(n).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    out = np.full(2, np.nan)
    total = _layer_cosines(a, b, sizes, out)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)

    def cos(x, y):
        return x @ y / np.linalg.norm(x) / np.linalg.norm(y)

    rtol = 1e-12
    np.testing.assert_allclose(out, [cos(a64[:16], b64[:16]), cos(a64[16:], b64[16:])],
                               rtol=rtol)
    assert np.isclose(total, cos(a64, b64), rtol=rtol)


def test_layer_cosines_float32_is_accurate_to_float64_rounding():
    rng = np.random.default_rng(7)
    a = rng.standard_normal(26).astype(np.float32)
    b = rng.standard_normal(26).astype(np.float32)
    out32, out64 = np.empty(2), np.empty(2)
    sizes = np.array([3, 4, 2], dtype=np.int64)
    t32 = _layer_cosines(a, b, sizes, out32)
    t64 = _layer_cosines(a.astype(np.float64), b.astype(np.float64), sizes, out64)
    np.testing.assert_allclose(out32, out64, rtol=1e-12)
    assert np.isclose(t32, t64, rtol=1e-12)


def test_layer_cosines_identical_opposite_and_zero():
    sizes = np.array([2, 2, 1], dtype=np.int64)
    a = np.arange(1.0, 10.0)
    out = np.empty(2)
    assert np.isclose(_layer_cosines(a, a, sizes, out), 1.0)
    np.testing.assert_allclose(out, 1.0)
    assert np.isclose(_layer_cosines(a, -a, sizes, out), -1.0)
    np.testing.assert_allclose(out, -1.0)
    b = a.copy()
    b[6:] = 0  # second layer (W 2x1 + b 1) is zero: cosine 0 by convention
    _layer_cosines(a, b, sizes, out)
    np.testing.assert_allclose(out, [1.0, 0.0])
    assert _layer_cosines(a, np.zeros_like(a), sizes, out) == 0.0
    np.testing.assert_array_equal(out, 0.0)


# ----------------------------------------------------------------------------- optimizers

@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_momentum_weight_decay_by_hand(dtype):
    """lr 0.1, momentum 0.9, wd 0.1, p0 = 1, gradients 0.5, -1, 0.25 (PyTorch SGD):

    step 1: g = 0.5 + 0.1*1 = 0.6;           v = 0.6;                 p = 1 - 0.06 = 0.94
    step 2: g = -1 + 0.094 = -0.906;         v = 0.54 - 0.906 = -0.366; p = 0.94 + 0.0366 = 0.9766
    step 3: g = 0.25 + 0.09766 = 0.34766;    v = -0.3294 + 0.34766 = 0.01826; p = 0.974774
    The second entry (p0 = -2, gradient 0, no decay effect hidden) checks signs:
    step 1: g = -0.2, v = -0.2, p = -1.98; step 2: g = -0.198, v = -0.378, p = -1.9422;
    step 3: g = -0.19422, v = -0.53442, p = -1.888758.
    """
    params = np.array([1.0, -2.0], dtype=dtype)
    velocity = np.zeros(2, dtype=dtype)
    expected = [([0.6, -0.2], [0.94, -1.98]),
                ([-0.366, -0.378], [0.9766, -1.9422]),
                ([0.01826, -0.53442], [0.974774, -1.888758])]
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    for g, (v_exp, p_exp) in zip([0.5, -1.0, 0.25], expected):
        _sgd_step(params, np.array([g, 0.0], dtype=dtype), velocity, 0.1, 0.9, 0.1)
        np.testing.assert_allclose(velocity, v_exp, rtol=rtol)
        np.testing.assert_allclose(params, p_exp, rtol=rtol)
        assert params.dtype == dtype


def test_sgd_plain_is_p_minus_lr_g():
    params = np.array([1.0, 2.0])
    velocity = np.zeros(2)
    _sgd_step(params, np.array([10.0, -4.0]), velocity, 0.01, 0.0, 0.0)
    np.testing.assert_allclose(params, [0.9, 2.04], rtol=1e-15)
    _sgd_step(params, np.array([10.0, -4.0]), velocity, 0.01, 0.0, 0.0)
    np.testing.assert_allclose(params, [0.8, 2.08], rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_by_hand(dtype):
    """PyTorch Adam: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).

    lr 0.1, betas (0.9, 0.999), eps 1e-8, p0 = 1, gradients 0.5 then -1:
    step 1: m = 0.05, v = 0.00025; m_hat = 0.5, v_hat = 0.25 -> p = 1 - 0.1 * 0.5/(0.5 + 1e-8)
    step 2: m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975;
            m_hat = -0.055/0.19, v_hat = 0.00124975/0.001999
    With weight decay 0.5 (second entry, p0 = 2, gradients 0): g = 0.5 * p.
    step 1: g = 1, m = 0.1, v = 0.001 -> m_hat = 1, v_hat = 1 -> p = 2 - 0.1/(1 + 1e-8)
    """
    params = np.array([1.0, 2.0], dtype=dtype)
    m = np.zeros(2, dtype=dtype)
    v = np.zeros(2, dtype=dtype)
    decay = np.array([0.0, 0.5], dtype=dtype)  # per-entry decay: run the entries separately
    rtol = 2e-6 if dtype == np.float32 else 1e-12

    p1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    p2 = p1 - 0.1 * (-0.055 / 0.19) / (np.sqrt(0.00124975 / 0.001999) + 1e-8)
    q1 = 2 - 0.1 / (1 + 1e-8)
    g2 = 0.5 * q1                                     # step 2 of the decayed entry
    mq = 0.9 * 0.1 + 0.1 * g2
    vq = 0.999 * 0.001 + 0.001 * g2 * g2
    q2 = q1 - 0.1 * (mq / 0.19) / (np.sqrt(vq / 0.001999) + 1e-8)

    for step, g, p_exp, q_exp, m_exp in ((1, 0.5, p1, q1, 0.05), (2, -1.0, p2, q2, -0.055)):
        a = params[:1]
        _adam_step(a, np.array([g], dtype=dtype), m[:1], v[:1], step, 0.1, 0.9, 0.999, 1e-8,
                   float(decay[0]))
        c = params[1:]
        _adam_step(c, np.zeros(1, dtype=dtype), m[1:], v[1:], step, 0.1, 0.9, 0.999, 1e-8,
                   float(decay[1]))
        np.testing.assert_allclose(params, [p_exp, q_exp], rtol=rtol)
        assert np.isclose(m[0], m_exp, rtol=rtol)
    # 1 - beta2 is formed in double, as PyTorch does, so float32 is off by rounding only
    assert np.isclose(v[0], 0.00124975, rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert np.isclose(p2, 0.936610, atol=1e-6)  # the hand value itself: 0.9 + 0.0366...



def test_float32_tanh_within_4_ulp_everywhere():
    """float32 tanh uses its own vectorised formula: check it densely against float64 libm."""
    from pckernels.kernels.activations import TANH, _activate
    xs = np.concatenate([np.linspace(-12, 12, 400_001), np.geomspace(1e-38, 1, 20_000),
                         -np.geomspace(1e-38, 1, 20_000)]).astype(np.float32)
    y = xs.copy().reshape(1, -1)
    _activate(y, TANH)
    ref = np.tanh(xs.astype(np.float64))
    ulp = np.abs(y.ravel().astype(np.float64) - ref) / np.spacing(
        np.abs(ref).astype(np.float32)).astype(np.float64)
    assert ulp.max() <= 4.0
    special = np.array([[0.0, -0.0, np.inf, -np.inf, np.nan, 9.5, -30.0]], dtype=np.float32)
    _activate(special, TANH)
    np.testing.assert_array_equal(special[0, :4], [0.0, -0.0, 1.0, -1.0])
    assert np.isnan(special[0, 4])
    np.testing.assert_array_equal(special[0, 5:], [1.0, -1.0])
