"""The ``auto`` inference step rule (curvature step, energy safeguard, convergence stop),
the latent optimizers and incremental PC (ipc), against tests/naive.py and their defining
properties (docs/algorithms.md, "Inference step from curvature"; kernels/pc_safeguard.py)."""
import json

import numpy as np
import pytest

import pckernels as pk
from pckernels.pc import PCRunner, curvature_steps
from pckernels.training import BatchUpdate, PCSettings

try:
    import naive
except ImportError:
    from tests import naive


def make_problem(sizes, loss="nll", batch=12, dtype="float64", seed=0, weight_scale=1.0,
                 activation="tanh"):
    """A net whose weights are multiplied by ``weight_scale`` (a "trained" net whose
    weights grew) and a random batch."""
    net = pk.MLP(sizes, activation=activation, loss=loss, dtype=dtype, seed=seed)
    for W in net.weights:
        W *= weight_scale
    rng = np.random.default_rng(seed + 100)
    X = rng.normal(size=(batch, sizes[0]))
    y = rng.normal(size=(batch, sizes[-1])) if loss == "mse" else \
        rng.integers(0, sizes[-1], size=batch)
    return net, X, y


def params64(net):
    return ([np.asarray(W, dtype=np.float64) for W in net.weights],
            [np.asarray(b, dtype=np.float64) for b in net.biases])


def auto_gammas(net, variant="vpc", k=1.0):
    """The per-latent steps the runner uses (power-iteration norms)."""
    runner = PCRunner(net, variant, 1, 1.0, precision_ratio=k, step_rule="auto")
    return runner._base_steps(), runner


# ---------------------------------------------------------------------------------------
# Curvature step
# ---------------------------------------------------------------------------------------

def _hessian(Ws, bs, loss, X, y, pis, h=1e-5):
    """Hessian of the one-sample energy in the latents at the feedforward values, by
    central differences of the analytic gradient (naive.energy_grads)."""
    N = len(Ws)
    acts = naive.layer_acts("tanh", N)
    hs, _ = naive.forward(Ws, bs, "tanh", X)
    sizes = [W.shape[1] for W in Ws[:-1]]
    n = sum(sizes)

    def grad(z):
        xs, off = [X], 0
        for m in sizes:
            xs.append(z[off:off + m][None, :])
            off += m
        es, _ = naive._errors(Ws, bs, acts, loss, X, y, xs)
        gs = naive.energy_grads(Ws, bs, acts, es, xs, pis)
        return np.concatenate([g.ravel() for g in gs[1:]])

    z0 = np.concatenate([h.ravel() for h in hs[1:N]])
    H = np.zeros((n, n))
    for i in range(n):
        d = np.zeros(n)
        d[i] = h
        H[:, i] = (grad(z0 + d) - grad(z0 - d)) / (2 * h)
    return (H + H.T) / 2, sizes


@pytest.mark.parametrize("weight_scale", [1.0, 4.0])
@pytest.mark.parametrize("sizes,loss,k", [([5, 4, 3], "nll", 1.0),
                                          ([6, 8, 8, 8, 3], "nll", 1.0),
                                          ([6, 8, 8, 8, 3], "mse", 1.0),
                                          ([4, 7, 5, 2], "nll", 100.0)])
def test_curvature_step_bounds_the_hessian(sizes, loss, k, weight_scale):
    """diag(gamma)^1/2 H diag(gamma)^1/2 has eigenvalues <= 1 (so gamma_l < 2/lambda) at
    the feedforward values, where H is the exact Hessian of one sample's energy."""
    net, X, y = make_problem(sizes, loss=loss, batch=1, weight_scale=weight_scale)
    variant = "scaled" if k != 1.0 else "vpc"
    pis = pk.pc.precisions_for(net, variant, k)
    Ws, bs = params64(net)
    norms = np.array([np.linalg.norm(W, 2) for W in Ws])
    gammas = curvature_steps(norms, pis, net.codes, net.loss_code)
    H, widths = _hessian(Ws, bs, loss, X, y, pis)
    g = np.concatenate([np.full(m, gammas[l + 1]) for l, m in enumerate(widths)])
    M = np.sqrt(g)[:, None] * H * np.sqrt(g)[None, :]
    top = np.linalg.eigvalsh(M).max()
    assert top <= 1.0 + 1e-6
    # not vacuous: the step is within a small factor of the largest stable one
    assert top >= 0.2


def test_power_iteration_warm_start():
    net, _, _ = make_problem([30, 40, 20, 5], seed=3)
    _, runner = auto_gammas(net)
    exact = np.array([np.linalg.norm(W, 2) for W in params64(net)[0]])[1:]
    assert np.isnan(runner.norms[0])  # W_0 is not needed: the input is clamped
    norms = runner.norms[1:]
    assert np.all(norms <= exact * (1 + 1e-9))  # a lower bound, never above
    np.testing.assert_allclose(norms, exact, rtol=2e-2)
    for _ in range(5):  # warm-started calls keep improving
        runner._base_steps()
    np.testing.assert_allclose(runner.norms[1:], exact, rtol=2e-3)


# ---------------------------------------------------------------------------------------
# The safeguarded loop against its naive reference
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer,scale", [("gd", 1.0), ("gd", 3.0), ("momentum", 1.0),
                                             ("adam", 1.0)])
@pytest.mark.parametrize("loss", ["nll", "mse"])
def test_auto_matches_naive(optimizer, scale, loss):
    """States, stop steps and rejections of the kernel equal the per-sample NumPy loop,
    given the same per-latent steps (here 1.5x the curvature step, so that some steps
    are rejected)."""
    net, X, y = make_problem([5, 6, 6, 3], loss=loss, batch=9, weight_scale=scale)
    step = 0.05 if optimizer == "adam" else 1.5
    r = pk.pc_infer(net, X, y, "vpc", 25, step, step_rule="auto",
                    latent_optimizer=optimizer, energy_tol=1e-5)
    gammas, _ = auto_gammas(net)
    if optimizer == "adam":
        gammas = np.where(gammas > 0, step, 0.0)
    else:
        gammas = gammas * step
    Ws, bs = params64(net)
    xs, stop, rejects = naive.safeguarded_vpc(Ws, bs, "tanh", loss, X, y, 25, gammas,
                                              optimizer=optimizer, rtol=1e-5)
    # Adam divides by sqrt(v) of near-zero gradients, which magnifies rounding
    tol = 1e-6 if optimizer == "adam" else 1e-9
    for got, want in zip(r.states, xs[1:]):
        np.testing.assert_allclose(got, want, rtol=tol, atol=1e-12)
    assert r.rejected == rejects.sum()
    assert r.stopped_at == (25 if np.any(stop < 0) else stop.max())


# ---------------------------------------------------------------------------------------
# The energy never rises under the default rule
# ---------------------------------------------------------------------------------------

def _trained_net(width, dtype):
    """A net trained for a few batches with a large learning rate (weights grown)."""
    net, X, y = make_problem([10, width, width, 4], batch=64, dtype=dtype, seed=1)
    update = BatchUpdate(net, "vpc", PCSettings(steps=5), lr=0.5)
    labels, targets = net.check_targets(y, X.shape[0])
    for _ in range(30):
        update(net.check_input(X), labels, targets, "batch")
    return net, X, y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("width", [4, 32, 256])
@pytest.mark.parametrize("kind", ["random", "grown", "trained"])
@pytest.mark.parametrize("variant,optimizer", [("vpc", "gd"), ("scaled", "gd"),
                                               ("vpc", "momentum"), ("vpc", "adam")])
def test_energy_never_increases(variant, optimizer, kind, width, dtype):
    if kind == "trained":
        net, X, y = _trained_net(width, dtype)
    else:
        net, X, y = make_problem([10, width, width, width, 4], batch=16, dtype=dtype,
                                 weight_scale=3.0 if kind == "grown" else 1.0)
    s = PCSettings(step_rule="auto", latent_optimizer=optimizer,
                   precision_ratio=100.0).resolved(variant, 3)
    r = pk.pc_infer(net, X, y, variant, 30, s.step_size, precision_ratio=100.0,
                    step_rule="auto", latent_optimizer=optimizer, trace=True)
    F = r.trace.energy
    assert np.all(np.diff(F) <= 1e-12 * np.abs(F[:-1])), np.diff(F).max()
    assert F[-1] < F[0]


def test_fixed_step_raises_energy_where_auto_does_not():
    """The situation the rule is for: on grown weights gamma = 1 makes F rise."""
    net, X, y = make_problem([10, 32, 32, 32, 4], batch=16, weight_scale=3.0)
    fixed = pk.pc_infer(net, X, y, "vpc", 10, 1.0, trace=True)
    assert np.any(np.diff(fixed.trace.energy) > 0)
    auto = pk.pc_infer(net, X, y, "vpc", 10, 1.0, step_rule="auto", trace=True)
    assert np.all(np.diff(auto.trace.energy) <= 0)


def test_convergence_stop_and_diagnostics():
    net, X, y = make_problem([6, 16, 16, 3], batch=20)
    r = pk.pc_infer(net, X, y, "vpc", 200, 1.0, step_rule="auto", energy_tol=1e-3,
                    trace=True)
    assert 0 < r.stopped_at < 200
    tr = r.trace
    # after the stop nothing moves
    assert np.all(tr.energy[r.stopped_at:] == tr.energy[r.stopped_at])
    assert np.all(tr.layer_step[r.stopped_at:] == 0)
    # the energy terms add up to F
    np.testing.assert_allclose(tr.layer_energy.sum(axis=1), tr.energy, rtol=1e-12)
    assert tr.layer_step.shape == (201, 2) and tr.rejected.shape == (201,)
    np.testing.assert_allclose(r.layer_energy, tr.layer_energy[-1], rtol=1e-12)
    tighter = pk.pc_infer(net, X, y, "vpc", 200, 1.0, step_rule="auto", energy_tol=1e-6)
    assert tighter.stopped_at > r.stopped_at


def test_rejected_steps_are_counted_and_undone():
    """With 4x the curvature step some steps are rejected; the energy still never rises."""
    net, X, y = make_problem([6, 16, 16, 3], batch=20, weight_scale=2.0)
    r = pk.pc_infer(net, X, y, "vpc", 30, 4.0, step_rule="auto", trace=True)
    assert r.rejected > 0 and r.trace.rejected[-1] == r.rejected
    assert np.all(np.diff(r.trace.rejected) >= 0)
    assert np.all(np.diff(r.trace.energy) <= 0)


@pytest.mark.parametrize("variant,step_size,schedule", [("vpc", 4.0, "serial"),
                                                         ("vpc", 1.0, "batch"),
                                                         ("ipc", 1.0, "layers")])
def test_row_energies_match_the_errors(variant, step_size, schedule):
    """The per-sample energies the safeguard compares (kept from squared row norms that
    the predictions update, also after undone steps and skipped layers) equal F_b
    recomputed from the final errors."""
    net, X, y = make_problem([6, 16, 16, 16, 3], batch=20, weight_scale=2.0)
    runner = PCRunner(net, variant, 12, step_size, step_rule="auto", energy_tol=0.0,
                      schedule=schedule, chunk_rows=8)
    grad = net.zeros_like_params()
    X = net.check_input(X)
    labels, targets = net.check_targets(y, X.shape[0])
    saved = net.params.copy()

    def weight_step(g):
        net.params -= 0.05 * g
    _, ws, _ = runner.run(X, labels, targets, grad, weight_step=weight_step)
    sg, n, B = ws.safe, net.n_layers, X.shape[0]
    if step_size > 1:
        assert sg.rejects.sum() > 0  # the undo path is exercised
    off, expect = 0, np.zeros(B)
    for l in range(1, n):
        m = net.sizes[l]
        e = ws.state.e[off:off + B * m].reshape(B, m).astype(np.float64)
        expect += 0.5 * (e * e).sum(axis=1)
        off += B * m
    m = net.sizes[n]
    logits = ws.state.pred[off:off + B * m].reshape(B, m).astype(np.float64)
    lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    expect += lse - logits[np.arange(B), labels]
    np.testing.assert_allclose(sg.energy, expect, rtol=1e-12, atol=1e-12)
    net.params[:] = saved


# ---------------------------------------------------------------------------------------
# Schedules, threads, determinism
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant,optimizer", [("vpc", "gd"), ("vpc", "momentum"),
                                               ("scaled", "adam"), ("ipc", "gd")])
def test_auto_schedules_and_threads(variant, optimizer):
    """serial == layers bit for bit; batch repeats bit for bit on 1 and 2 threads and
    agrees with serial to rounding (per-sample decisions do not depend on the chunks)."""
    net, X, y = make_problem([8, 16, 16, 16, 3], batch=40, dtype="float32", weight_scale=2.0)
    step = 0.01 if optimizer == "adam" else 1.0

    def run(schedule, threads):
        old = pk.set_threads(threads)
        try:
            return pk.pc_infer(net, X, y, variant, 12, step, precision_ratio=10.0,
                               step_rule="auto", latent_optimizer=optimizer,
                               schedule=schedule, chunk_rows=7)
        finally:
            pk.set_threads(old)

    ref = run("serial", 1)
    threads = [1, 2] if pk.config.numba.config.NUMBA_NUM_THREADS >= 2 else [1]
    for n in threads:
        for schedule in ("serial", "layers"):
            r = run(schedule, n)
            assert np.array_equal(r.grad, ref.grad), (schedule, n)
            assert all(np.array_equal(a, b) for a, b in zip(r.states, ref.states))
            assert r.rejected == ref.rejected
    batch = [run("batch", n) for n in threads for _ in range(2)]
    for r in batch[1:]:
        assert np.array_equal(r.grad, batch[0].grad)
        assert all(np.array_equal(a, b) for a, b in zip(r.states, batch[0].states))
    np.testing.assert_allclose(batch[0].grad, ref.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_serial_one_call_equals_step_by_step(optimizer, dtype):
    """The serial schedule runs init, steps and update in one kernel call unless traced;
    the traced run goes through the separate init, step and update kernels. Same bits,
    with rejected (undone) steps among them."""
    net, X, y = make_problem([7, 12, 12, 12, 3], batch=16, dtype=dtype, weight_scale=2.5)
    step = 0.2 if optimizer == "adam" else 4.0
    kw = dict(step_rule="auto", latent_optimizer=optimizer, schedule="serial",
              energy_tol=1e-5)
    one = pk.pc_infer(net, X, y, "vpc", 15, step, **kw)
    steps = pk.pc_infer(net, X, y, "vpc", 15, step, trace=True, **kw)
    assert one.rejected > 0 and one.rejected == steps.rejected
    assert one.loss == steps.loss and one.stopped_at == steps.stopped_at
    assert np.array_equal(one.grad, steps.grad)
    assert all(np.array_equal(a, b) for a, b in zip(one.states, steps.states))
    assert all(np.array_equal(a, b) for a, b in zip(one.errors, steps.errors))
    assert np.array_equal(one.layer_energy, steps.layer_energy)
    assert np.array_equal(one.layer_step, steps.layer_step)


def test_fixed_rule_is_unchanged():
    """step_rule="fixed" with gd runs the original kernels: same as the naive vpc."""
    net, X, y = make_problem([5, 4, 4, 3], batch=6)
    r = pk.pc_infer(net, X, y, "vpc", 4, 0.5, step_rule="fixed")
    Ws, bs = params64(net)
    dWs, dbs, xs, _, _ = naive.vpc(Ws, bs, "tanh", "nll", X, y, 4, 0.5)
    np.testing.assert_allclose(r.dW[0], dWs[0], rtol=1e-10)
    assert r.rejected == 0 and r.stopped_at == 4


# ---------------------------------------------------------------------------------------
# ipc
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["nll", "mse"])
@pytest.mark.parametrize("T", [1, 3])
def test_ipc_matches_naive(T, loss):
    """The weights take a step on the energy after every inference step."""
    net, X, y = make_problem([5, 4, 4, 3], loss=loss, batch=6)
    Ws, bs = params64(net)
    before = net.params.copy()
    r = pk.pc_infer(net, X, y, "ipc", T, 0.5, step_rule="fixed", weight_lr=0.3)
    assert np.array_equal(net.params, before)  # net untouched
    want_W, want_b, mean_dW, mean_db, xs = naive.ipc(Ws, bs, "tanh", loss, X, y, T, 0.5, 0.3)
    got_W, got_b = net.split(r.params)
    for a, b in zip(got_W + got_b, want_W + want_b):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    for a, b in zip(r.dW + r.db, mean_dW + mean_db):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-13)
    for a, b in zip(r.states, xs[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_ipc_differs_from_vpc_after_one_step():
    """Defining property: with T = 2 the second state step already sees moved weights."""
    net, X, y = make_problem([5, 4, 4, 3], batch=6)
    ipc = pk.pc_infer(net, X, y, "ipc", 2, 0.5, step_rule="fixed", weight_lr=0.3)
    vpc = pk.pc_infer(net, X, y, "vpc", 2, 0.5, step_rule="fixed")
    assert not np.allclose(ipc.states[0], vpc.states[0])
    one = pk.pc_infer(net, X, y, "ipc", 1, 0.5, step_rule="fixed", weight_lr=0.3)
    vpc1 = pk.pc_infer(net, X, y, "vpc", 1, 0.5, step_rule="fixed")
    np.testing.assert_allclose(one.grad, vpc1.grad, rtol=1e-10)  # T = 1: same gradient
    np.testing.assert_allclose(one.params, net.params - 0.3 * vpc1.grad, rtol=1e-12)


def test_ipc_trace_cosine():
    net, X, y = make_problem([5, 8, 8, 3], batch=16)
    r = pk.pc_infer(net, X, y, "ipc", 4, 1.0, step_rule="auto", weight_lr=0.05, trace=True)
    assert r.trace.cosine.shape == (5,) and np.all(r.trace.cosine > 0.3)
    np.testing.assert_allclose(
        r.trace.cosine[-1], pk.pc.cosine(r.grad, pk.backprop(net, X, y).grad), rtol=1e-9)


def test_train_ipc_steps_weights_each_inference_step(digits):
    """In training, ipc calls the optimizer once per inference step (and not after)."""
    X, y = digits.X_train, digits.y_train
    net = pk.MLP([64, 16, 10], seed=0)
    update = BatchUpdate(net, "ipc", PCSettings(steps=3, step_rule="fixed", step_size=0.5),
                         optimizer="sgd", lr=0.1, momentum=0.0)
    net2 = pk.MLP([64, 16, 10], seed=0)
    r = pk.pc_infer(net2, X[:32], y[:32], "ipc", 3, 0.5, step_rule="fixed", weight_lr=0.1)
    labels, targets = net.check_targets(y[:32], 32)
    update(net.check_input(X[:32]), labels, targets, "b")
    assert update.opt.t == 3
    np.testing.assert_allclose(net.params, r.params, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------
# Training: defaults and metrics
# ---------------------------------------------------------------------------------------

def test_settings_defaults():
    assert PCSettings().resolved("vpc", 3).step_rule == "auto"
    assert PCSettings().resolved("scaled", 3).steps == 20
    assert PCSettings().resolved("fpa", 3).step_rule == "fixed"
    assert PCSettings().resolved("fpa", 3).steps == 3
    s = PCSettings(step_rule="fixed").resolved("scaled", 2)
    assert s.steps == 2 and s.step_size == pytest.approx(0.1)
    with pytest.raises(ValueError, match="applies to"):
        PCSettings(step_rule="auto").resolved("fpa", 2).runner(pk.MLP([2, 2, 2]), "fpa")
    with pytest.raises(ValueError, match="latent_optimizer"):
        PCRunner(pk.MLP([2, 2, 2]), "vpc", 2, 1.0, latent_optimizer="rmsprop")


@pytest.mark.parametrize("algo", ["vpc", "ipc"])
def test_train_metrics(digits, algo):
    X, y = digits.X_train, digits.y_train
    net = pk.MLP([64, 32, 32, 10], seed=0)
    h = pk.train(net, X[:640], y[:640], X_test=X[640:], y_test=y[640:], algo=algo,
                 epochs=2, cosine=True)
    m = h.final
    assert m.test_accuracy > 0.5
    assert m.rejected_steps >= 0 and 1 <= m.inference_steps <= 20
    assert len(m.layer_step) == 2 and all(s > 0 for s in m.layer_step)
    assert len(m.layer_energy) == 3 and m.layer_energy[-1] > 0
    assert 0 < m.cosine <= 1
    assert m.energy_rises == 0


@pytest.mark.parametrize("schedule", ["serial", "layers", "batch"])
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_auto_skip_is_bit_identical(optimizer, schedule):
    """Skipping the layers ahead of the error front changes no bit, and skips something."""
    net, X, y = make_problem([5, 6, 6, 6, 6, 3], batch=10, weight_scale=3.0)
    step = 0.05 if optimizer == "adam" else 1.5
    kw = dict(step_rule="auto", latent_optimizer=optimizer, schedule=schedule, chunk_rows=3)
    a = pk.pc_infer(net, X, y, "vpc", 12, step, skip=True, **kw)
    b = pk.pc_infer(net, X, y, "vpc", 12, step, skip=False, **kw)
    assert a.work["vjp_skipped"] > 0 and b.work["vjp_skipped"] == 0
    assert np.array_equal(a.grad, b.grad)
    assert all(np.array_equal(p, q) for p, q in zip(a.states, b.states))
    assert a.rejected == b.rejected and a.stopped_at == b.stopped_at
    np.testing.assert_array_equal(a.first_nonzero, [4, 3, 2, 1])


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------

@pytest.fixture
def run_cli(monkeypatch, tmp_path):
    from click.testing import CliRunner
    from pckernels_cli.main import cli
    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
    return invoke


def test_cli_step_rule_and_json_metrics(run_cli, tmp_path):
    fast = ["--epochs", "1", "--hidden", "8x2", "--no-progress"]
    r = run_cli("train", "--algo", "vpc", *fast, "--json", "auto.json")
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "auto.json").read_text())
    assert summary["config"]["pc"]["step_rule"] == "auto"
    assert summary["config"]["pc"]["steps"] == 20
    epoch = summary["epochs"][0]
    assert len(epoch["layer_step"]) == 2 and len(epoch["layer_energy"]) == 3
    assert epoch["rejected_steps"] >= 0 and 1 <= epoch["inference_steps"] <= 20
    r = run_cli("train", "--algo", "vpc", *fast, "--step-rule", "fixed",
                "--latent-optimizer", "momentum", "--json", "fixed.json")
    assert r.exit_code == 0, r.output
    pc = json.loads((tmp_path / "fixed.json").read_text())["config"]["pc"]
    assert pc["step_rule"] == "fixed" and pc["steps"] == 2 and pc["step_size"] == 1.0
    assert pc["latent_optimizer"] == "momentum"
    r = run_cli("train", "--algo", "fpa", *fast, "--step-rule", "auto")
    assert r.exit_code == 0 and "--step-rule does not apply" in r.output
    r = run_cli("train", "--algo", "ipc", *fast, "--latent-optimizer", "adam")
    assert r.exit_code == 0, r.output
