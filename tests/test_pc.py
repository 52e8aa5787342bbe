"""Tests for predictive-coding inference (pckernels.pc_infer, docs/algorithms.md) against
tests/naive.py and the theory: Theorem 1, Corollary 1, fpa/zil == backprop, schedules."""
import numpy as np
import pytest

import pckernels as pk
from pckernels.pc import cosine

try:  # tests/ is a plain directory on sys.path, or a package if someone adds __init__.py
    import naive
except ImportError:
    from tests import naive

DEPTHS = (1, 2, 3, 4)
STEP_SIZES = (1.0, 0.5, 0.1)
N_IN, WIDTH, N_OUT = 5, 4, 3


def make_problem(L, activation="tanh", loss="nll", batch=6, dtype="float64", seed=0):
    """A net with L hidden layers of width 4 and a random batch (labels or mse targets)."""
    net = pk.MLP([N_IN] + [WIDTH] * L + [N_OUT], activation=activation, loss=loss,
                 dtype=dtype, seed=seed)
    rng = np.random.default_rng(1000 + 17 * L + seed)
    X = rng.normal(size=(batch, N_IN))
    if loss == "mse":
        y = rng.normal(size=(batch, N_OUT))
    else:
        y = rng.integers(0, N_OUT, size=batch)
    return net, X, y


def params64(net):
    return ([np.asarray(W, dtype=np.float64) for W in net.weights],
            [np.asarray(b, dtype=np.float64) for b in net.biases])


def flat(dWs, dbs):
    return np.concatenate([a.ravel() for pair in zip(dWs, dbs) for a in pair])


def rel_err(got, want):
    got, want = np.asarray(got, np.float64).ravel(), np.asarray(want, np.float64).ravel()
    return np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-300)


def assert_close(got_dW, got_db, want_dW, want_db, tol, what=""):
    err = rel_err(flat(got_dW, got_db), flat(want_dW, want_db))
    assert err < tol, f"{what}: relative error {err:.3g} >= {tol}"


def scaled_pis(L, k):
    return [1.0] + [k] * L + [1.0]


# ---------------------------------------------------------------------------------------
# Every variant against the naive reference
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["nll", "mse"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
@pytest.mark.parametrize("variant", ["vpc", "scaled", "fpa"])
def test_matches_naive_reference(variant, activation, loss):
    k = 2.0
    for L in DEPTHS:
        net, X, y = make_problem(L, activation, loss)
        Ws, bs = params64(net)
        for gamma in STEP_SIZES:
            for T in range(0, 2 * L + 2):
                r = pk.pc_infer(net, X, y, variant, T, gamma, precision_ratio=k,
                                schedule="serial")
                if variant == "fpa":
                    dW, db, _, _ = naive.fpa(Ws, bs, activation, loss, X, y, T, gamma)
                else:
                    pis = scaled_pis(L, k) if variant == "scaled" else None
                    dW, db, _, _, _ = naive.vpc(Ws, bs, activation, loss, X, y, T, gamma,
                                                pis=pis)
                assert_close(r.dW, r.db, dW, db, 1e-10,
                             f"{variant} L={L} gamma={gamma} T={T}")


@pytest.mark.parametrize("loss", ["nll", "mse"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_zil_matches_naive_reference(activation, loss):
    for L in DEPTHS:
        net, X, y = make_problem(L, activation, loss)
        Ws, bs = params64(net)
        dW, db = naive.zil(Ws, bs, activation, loss, X, y)
        N = L + 1
        for T in range(0, 2 * L + 2):
            r = pk.pc_infer(net, X, y, "zil", T, 1.0, schedule="serial")
            # Layer l learns at t = N - 1 - l; T state updates visit t = 0..T.
            reached = [N - 1 - l <= T for l in range(N)]
            want_dW = [d if ok else np.zeros_like(d) for d, ok in zip(dW, reached)]
            want_db = [d if ok else np.zeros_like(d) for d, ok in zip(db, reached)]
            assert_close(r.dW, r.db, want_dW, want_db, 1e-10, f"zil L={L} T={T}")


def test_vpc_with_precisions_matches_naive():
    L = 3
    net, X, y = make_problem(L)
    Ws, bs = params64(net)
    pis = [0.5, 2.0, 1.5, 3.0]
    r = pk.pc_infer(net, X, y, "vpc", 5, 0.2, precisions=pis, schedule="serial")
    dW, db, xs, es, _ = naive.vpc(Ws, bs, "tanh", "nll", X, y, 5, 0.2, pis=[1.0] + pis)
    assert_close(r.dW, r.db, dW, db, 1e-10)
    for got, want in zip(r.states, xs[1:L + 1]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
    for got, want in zip(r.errors, es[1:]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------------------------
# Fact 3: fpa / zil == backprop, scaled -> backprop
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["nll", "mse"])
@pytest.mark.parametrize("L", DEPTHS)
def test_fpa_and_zil_equal_backprop(L, loss):
    net, X, y = make_problem(L, "tanh", loss)
    bp = pk.backprop(net, X, y)
    for T in (L, L + 1, 2 * L + 1):
        r = pk.pc_infer(net, X, y, "fpa", T, 1.0, schedule="serial")
        assert rel_err(r.grad, bp.grad) < 1e-10, f"fpa T={T}"
        assert r.loss == pytest.approx(bp.loss, rel=1e-12)
    for T in (L, L + 1, 2 * L + 1):
        r = pk.pc_infer(net, X, y, "zil", T, 1.0, schedule="serial")
        assert rel_err(r.grad, bp.grad) < 1e-10, f"zil T={T}"


@pytest.mark.parametrize("L", (1, 2, 4))
def test_zil_and_fpa_count_steps_alike(L):
    """T counts state updates for every variant: with T < L, zil and fpa leave the same
    layers (those the error has not reached) at zero, and both are exact from T = L."""
    net, X, y = make_problem(L)
    bp = pk.backprop(net, X, y)
    for T in range(0, L + 1):
        z = pk.pc_infer(net, X, y, "zil", T, 1.0, schedule="serial")
        f = pk.pc_infer(net, X, y, "fpa", T, 1.0, schedule="serial")
        for l in range(L + 1):
            reached = L - l <= T
            assert (np.abs(z.dW[l]).max() > 0) == reached, f"zil T={T} layer {l}"
            assert (np.abs(f.dW[l]).max() > 0) == reached, f"fpa T={T} layer {l}"
            if reached:
                np.testing.assert_allclose(z.dW[l], bp.dW[l], rtol=1e-9, atol=1e-13)
                np.testing.assert_allclose(f.dW[l], bp.dW[l], rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("L", DEPTHS)
def test_fpa_errors_are_minus_backprop_derivatives(L):
    net, X, y = make_problem(L)
    _, _, _, ds = naive.backprop(*params64(net), "tanh", "nll", X, y)
    r = pk.pc_infer(net, X, y, "fpa", L, 1.0, schedule="serial")
    for l in range(1, L + 1):
        np.testing.assert_allclose(r.errors[l - 1], -ds[l], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("L", DEPTHS)
def test_scaled_with_large_k_approaches_backprop(L):
    net, X, y = make_problem(L)
    bp = pk.backprop(net, X, y)
    k = 1e4
    r = pk.pc_infer(net, X, y, "scaled", 10 * L + 10, 0.5 / k, precision_ratio=k,
                    schedule="serial")
    assert cosine(r.grad, bp.grad) >= 0.9999
    # with k = 1 (plain vpc, same step budget) the update is measurably different
    r1 = pk.pc_infer(net, X, y, "scaled", 10 * L + 10, 0.5, precision_ratio=1.0,
                     schedule="serial")
    assert cosine(r1.grad, bp.grad) < cosine(r.grad, bp.grad)


# ---------------------------------------------------------------------------------------
# Fact 4 and Theorem 1: the error front
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["fpa", "vpc"])
@pytest.mark.parametrize("L", (2, 3, 4))
def test_unreached_layers_get_zero_update(variant, L):
    net, X, y = make_problem(L)
    bp = pk.backprop(net, X, y)
    for gamma in (1.0, 0.5):
        for T in range(0, L):
            r = pk.pc_infer(net, X, y, variant, T, gamma, schedule="serial")
            # weight layer l reads e_{l+1}, which is nonzero from step L - l on
            for l in range(L + 1):
                if l < L - T:
                    assert np.all(r.dW[l] == 0) and np.all(r.db[l] == 0), (T, l)
                else:
                    assert np.any(r.dW[l] != 0), (T, l)
            assert cosine(r.grad, bp.grad) < 1 - 1e-6


@pytest.mark.parametrize("variant", ["vpc", "fpa"])
@pytest.mark.parametrize("L", DEPTHS)
def test_theorem1_first_nonzero(variant, L):
    net, X, y = make_problem(L)
    front = L + 1 - np.arange(1, L + 1)           # latent l = 1..L
    for gamma in STEP_SIZES:
        for T in range(0, L + 3):
            r = pk.pc_infer(net, X, y, variant, T, gamma, schedule="serial")
            want = np.where(front <= T, front, -1)
            np.testing.assert_array_equal(r.first_nonzero, want,
                                          err_msg=f"gamma={gamma} T={T}")
            assert r.first_nonzero.dtype.kind == "i"


@pytest.mark.parametrize("variant", ["vpc", "fpa"])
def test_theorem1_against_naive_history(variant):
    """The recorded front agrees with the errors of the naive reference, step by step."""
    L, T, gamma = 3, 6, 0.5
    net, X, y = make_problem(L)
    Ws, bs = params64(net)
    if variant == "fpa":
        history = naive.fpa(Ws, bs, "tanh", "nll", X, y, T, gamma)[3]
    else:
        history = naive.vpc(Ws, bs, "tanh", "nll", X, y, T, gamma)[4]
    want = []
    for l in range(L):
        steps = [t for t in range(T + 1) if np.any(history[t][l] != 0)]
        want.append(steps[0] if steps else -1)
    r = pk.pc_infer(net, X, y, variant, T, gamma, schedule="serial")
    np.testing.assert_array_equal(r.first_nonzero, want)


@pytest.mark.parametrize("L", DEPTHS)
def test_corollary1_converged_at(L):
    net, X, y = make_problem(L)
    r = pk.pc_infer(net, X, y, "fpa", L + 3, 1.0, schedule="serial")
    # with step 1 latent l is exact at step L + 1 - l and never changes again
    np.testing.assert_array_equal(r.converged_at, L + 1 - np.arange(1, L + 1))
    assert r.converged_at[0] == L
    for gamma in (0.3, 0.5, 0.9, 1.2):
        r = pk.pc_infer(net, X, y, "fpa", 4 * L + 40, gamma, schedule="serial")
        c = r.converged_at[0]
        assert c == -1 or c > L, (gamma, c)
    # too few steps to settle: not converged within T
    r = pk.pc_infer(net, X, y, "fpa", L, 0.5, schedule="serial")
    assert r.converged_at[0] == -1


# ---------------------------------------------------------------------------------------
# Fact 5: energy
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["nll", "mse"])
@pytest.mark.parametrize("L", (1, 3))
def test_vpc_energy_decreases_and_matches_naive(L, loss):
    T, gamma = 25, 0.05
    net, X, y = make_problem(L, "tanh", loss)
    Ws, bs = params64(net)
    r = pk.pc_infer(net, X, y, "vpc", T, gamma, schedule="serial", trace=True)
    F = r.trace.energy
    assert F.shape == (T + 1,)
    assert np.all(np.diff(F) <= 1e-12 * np.abs(F[:-1])), np.diff(F)
    assert F[-1] < F[0]
    for t in (0, 1, 7, T):
        xs = naive.vpc(Ws, bs, "tanh", loss, X, y, t, gamma)[2]
        want = naive.energy(Ws, bs, "tanh", loss, X, y, xs)
        assert F[t] == pytest.approx(want, rel=1e-10)


def test_scaled_energy_uses_precisions():
    L, T, gamma, k = 2, 4, 0.05, 3.0
    net, X, y = make_problem(L)
    Ws, bs = params64(net)
    r = pk.pc_infer(net, X, y, "scaled", T, gamma, precision_ratio=k, schedule="serial",
                    trace=True)
    pis = scaled_pis(L, k)
    xs = naive.vpc(Ws, bs, "tanh", "nll", X, y, T, gamma, pis=pis)[2]
    assert r.trace.energy[-1] == pytest.approx(
        naive.energy(Ws, bs, "tanh", "nll", X, y, xs, pis=pis), rel=1e-10)


# ---------------------------------------------------------------------------------------
# Schedules, determinism, skipping
# ---------------------------------------------------------------------------------------

CASES = [("vpc", 5, 0.5), ("scaled", 6, 0.1), ("fpa", 3, 1.0), ("fpa", 5, 0.5), ("zil", 4, 1.0)]


def _run(net, X, y, variant, T, gamma, **kw):
    return pk.pc_infer(net, X, y, variant, T, gamma, precision_ratio=2.0, **kw)


@pytest.mark.parametrize("variant,T,gamma", CASES)
def test_schedules_agree(variant, T, gamma):
    net, X, y = make_problem(3, batch=10)
    ref = _run(net, X, y, variant, T, gamma, schedule="serial")
    for schedule, kw in (("layers", {}), ("batch", {"chunk_rows": 3}),
                         ("batch", {"chunk_rows": 32})):
        r = _run(net, X, y, variant, T, gamma, schedule=schedule, **kw)
        assert rel_err(r.grad, ref.grad) < 1e-12, schedule
        assert r.loss == pytest.approx(ref.loss, rel=1e-12)
        np.testing.assert_array_equal(r.first_nonzero, ref.first_nonzero)
        np.testing.assert_array_equal(r.converged_at, ref.converged_at)
        for a, b in zip(r.errors, ref.errors):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
        for a, b in zip(r.states, ref.states):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    r = _run(net, X, y, variant, T, gamma, schedule="batch", chunk_rows=3)
    assert r.work["chunks"] == 4


def _assert_bit_identical(a, b):
    assert np.array_equal(a.grad, b.grad)
    assert a.loss == b.loss
    assert all(np.array_equal(p, q) for p, q in zip(a.errors, b.errors))
    assert all(np.array_equal(p, q) for p, q in zip(a.states, b.states))
    np.testing.assert_array_equal(a.first_nonzero, b.first_nonzero)
    np.testing.assert_array_equal(a.converged_at, b.converged_at)


@pytest.mark.parametrize("schedule", ["serial", "layers", "batch"])
@pytest.mark.parametrize("variant,T,gamma", CASES)
def test_repeated_runs_bit_identical(variant, T, gamma, schedule):
    net, X, y = make_problem(3, batch=10)
    kw = {"schedule": schedule, "chunk_rows": 3 if schedule == "batch" else None}
    a = _run(net, X, y, variant, T, gamma, **kw)
    for _ in range(2):
        _assert_bit_identical(a, _run(net, X, y, variant, T, gamma, **kw))


@pytest.mark.parametrize("schedule", ["serial", "layers", "batch"])
@pytest.mark.parametrize("variant,T,gamma", CASES)
def test_skip_is_bit_identical(variant, T, gamma, schedule):
    net, X, y = make_problem(3, batch=10)
    kw = {"schedule": schedule, "chunk_rows": 3 if schedule == "batch" else None}
    a = _run(net, X, y, variant, T, gamma, skip=True, **kw)
    c = _run(net, X, y, variant, T, gamma, skip=False, **kw)
    assert c.work["vjp_skipped"] == 0 and c.work["forward_skipped"] == 0
    assert a.work["vjp_skipped"] > 0
    assert a.work["vjp_computed"] + a.work["vjp_skipped"] == c.work["vjp_computed"]
    _assert_bit_identical(a, c)


@pytest.mark.parametrize("variant,T", [("vpc", 2), ("zil", 2)])
def test_theorem1_batch_schedule_without_skip(variant, T):
    """Predictions recomputed chunk by chunk must reproduce the initial ones bit for bit,
    or e_l = x_l - pred picks up rounding noise ahead of the front."""
    net, X, y = make_problem(3, batch=10)
    r = pk.pc_infer(net, X, y, variant, T, 1.0, schedule="batch", chunk_rows=3, skip=False)
    np.testing.assert_array_equal(r.first_nonzero, [-1, 2, 1])
    for e in r.errors[:1]:
        assert np.all(e == 0)


@pytest.mark.parametrize("schedule,chunk_rows", [("serial", None), ("layers", None),
                                                 ("batch", 3)])
@pytest.mark.parametrize("L", (1, 3, 4))
def test_fpa_work_counts(L, schedule, chunk_rows):
    net, X, y = make_problem(L, batch=10)
    r = pk.pc_infer(net, X, y, "fpa", L, 1.0, schedule=schedule, chunk_rows=chunk_rows,
                    skip=True)
    chunks = r.work["chunks"]
    assert chunks == (4 if schedule == "batch" else 1)
    # the error front reaches one new latent per step: one VJP per step is all it takes
    assert r.work["vjp_computed"] == L * chunks
    assert r.work["vjp_skipped"] == L * (L - 1) * chunks
    full = pk.pc_infer(net, X, y, "fpa", L, 1.0, schedule=schedule, chunk_rows=chunk_rows,
                       skip=False)
    assert full.work["vjp_computed"] == L * L * chunks
    assert np.array_equal(full.grad, r.grad)


# ---------------------------------------------------------------------------------------
# float32
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant,T,gamma", CASES)
def test_float32_agrees_with_float64(variant, T, gamma):
    # serial only: the parallel schedules are dtype-generic and each compile costs seconds
    net32, X, y = make_problem(3, batch=10, dtype="float32")
    net64, _, _ = make_problem(3, batch=10, dtype="float64")
    net64.params[:] = net32.params
    kw = {"schedule": "serial"}
    r32 = _run(net32, X, y, variant, T, gamma, **kw)
    r64 = _run(net64, X, y, variant, T, gamma, **kw)
    assert r32.grad.dtype == np.float32
    assert rel_err(r32.grad, r64.grad) < 1e-4
    np.testing.assert_array_equal(r32.first_nonzero, r64.first_nonzero)


# ---------------------------------------------------------------------------------------
# Trace
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant,T,gamma", CASES + [("fpa", 1, 1.0)])
def test_trace(variant, T, gamma):
    L = 3
    net, X, y = make_problem(L)
    bp = pk.backprop(net, X, y)
    r = _run(net, X, y, variant, T, gamma, schedule="serial", trace=True)
    plain = _run(net, X, y, variant, T, gamma, schedule="serial")
    assert np.array_equal(r.grad, plain.grad)
    tr = r.trace
    n_points = T + 1
    assert tr.layer_cosine.shape == (n_points, L + 1)
    assert tr.error_norms.shape == (n_points, L + 1)
    assert tr.cosine.shape == (n_points,)
    assert tr.cosine[-1] == pytest.approx(cosine(r.grad, bp.grad), abs=1e-12)
    if variant == "fpa":
        assert tr.energy is None
    else:
        assert tr.energy.shape == (n_points,)
    # at t = 0 only the output layer has an update
    assert np.all(tr.layer_cosine[0, :L] == 0)
    if variant in ("fpa", "zil") and gamma == 1.0 and T >= L:
        assert tr.cosine[-1] == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(tr.layer_cosine[-1], 1.0, atol=1e-12)


def test_trace_error_norms_match_naive():
    L, T, gamma = 2, 4, 0.5
    net, X, y = make_problem(L)
    Ws, bs = params64(net)
    history = naive.vpc(Ws, bs, "tanh", "nll", X, y, T, gamma)[4]
    r = pk.pc_infer(net, X, y, "vpc", T, gamma, schedule="serial", trace=True)
    want = np.array([[np.linalg.norm(e) for e in step] for step in history])
    np.testing.assert_allclose(r.trace.error_norms, want, rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------------------------------------
# Argument checking
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant,T,gamma,kw,match", [
    ("fpa", -1, 1.0, {}, "steps"),
    ("fpa", 1.5, 1.0, {}, "steps"),
    ("vpc", 2, 0.0, {}, "step_size"),
    ("vpc", 2, -0.5, {}, "step_size"),
    ("fpa", 2, float("nan"), {}, "step_size"),
    ("zil", 3, 0.5, {}, "zil"),
    ("bogus", 3, 1.0, {}, "variant"),
    ("fpa", 3, 1.0, {"schedule": "diagonal"}, "schedule"),
    ("fpa", 3, 1.0, {"init": "random"}, "init"),
    ("fpa", 3, 1.0, {"chunk_rows": 0}, "chunk_rows"),
    ("scaled", 3, 0.1, {"precision_ratio": 0.0}, "precision_ratio"),
])
def test_bad_arguments(variant, T, gamma, kw, match):
    net, X, y = make_problem(2)
    with pytest.raises(ValueError, match=match):
        pk.pc_infer(net, X, y, variant, T, gamma, **kw)


# ---------------------------------------------------------------------------------------
# Training on digits
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    ds = pk.load_dataset("digits")
    return ds.X_train[:640], ds.y_train[:640], ds.X_test, ds.y_test


def _train(digits, algo, pc=None, cosine_=False, dtype="float64", seed=3):
    X, y, _, _ = digits
    net = pk.MLP([64, 16, 16, 10], activation="tanh", dtype=dtype, seed=seed)
    hist = pk.train(net, X, y, algo=algo, pc=pc, epochs=1, batch_size=64, lr=0.05,
                    seed=seed, cosine=cosine_)
    return net, hist


@pytest.mark.parametrize("algo", pk.VARIANTS)
def test_train_runs_each_variant(digits, algo):
    net, hist = _train(digits, algo)
    m = hist.final
    assert len(hist.epochs) == 1 and np.isfinite(m.train_loss)
    assert np.all(np.isfinite(net.params))
    acc = np.mean(net.predict(digits[2]) == digits[3])
    assert 0.0 <= acc <= 1.0


@pytest.mark.parametrize("algo,pc", [("fpa", pk.PCSettings(steps=2, step_size=1.0)),
                                     ("fpa", None), ("zil", None)])
def test_train_fpa_and_zil_match_backprop(digits, algo, pc):
    bp_net, _ = _train(digits, "bp")
    net, _ = _train(digits, algo, pc)
    np.testing.assert_allclose(net.params, bp_net.params, rtol=1e-9, atol=1e-12)
    X_test = digits[2]
    np.testing.assert_array_equal(net.predict(X_test), bp_net.predict(X_test))
    # and the nets learned something (not both stuck at a constant)
    assert np.mean(bp_net.predict(X_test) == digits[3]) > 0.3


def test_train_cosine_logging(digits):
    _, hist = _train(digits, "fpa", pk.PCSettings(steps=2, step_size=1.0), cosine_=True)
    assert hist.final.cosine == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(hist.final.layer_cosine, 1.0, atol=1e-9)
    _, hist = _train(digits, "fpa", pk.PCSettings(steps=1, step_size=1.0), cosine_=True)
    assert hist.final.cosine < 0.999
    assert hist.final.layer_cosine[0] == 0.0     # the first layer never got an error
    _, hist = _train(digits, "bp", cosine_=True)
    assert hist.final.cosine == 1.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch", [64, 48, 7])
def test_fpa_step1_reproduces_backprop_bit_for_bit(dtype, batch):
    """Same operations in the same order: fpa (step 1, T >= L) is backprop, not just close."""
    for L in (1, 3, 6):
        net = pk.MLP([20] + [16] * L + [5], dtype=dtype, seed=L)
        rng = np.random.default_rng(L)
        X, y = rng.random((batch, 20)), rng.integers(0, 5, batch)
        g = pk.backprop(net, X, y)
        for schedule in ("serial", "layers"):
            for T in (L, L + 2):
                r = pk.pc_infer(net, X, y, "fpa", T, 1.0, schedule=schedule)
                assert np.array_equal(r.grad, g.grad), (L, schedule, T)
                assert r.loss == g.loss
