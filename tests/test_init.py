"""Weight initialisations (pytorch, xavier, orthogonal), the muPC parameterisation, and
their options: MLP, checkpoints, optimizer, estimator, ``pck train --init/--param``, sweep."""
import csv
import json
import pickle

import numpy as np
import pytest

import pckernels.sweep as S
from pckernels import MLP
from pckernels.model import GAINS, mupc_multipliers
from pckernels.training import Optimizer

INITS = ("pytorch", "xavier", "orthogonal")


# ----------------------------------------------------------------------------- MLP

@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_xavier_is_glorot_uniform_with_the_gain(activation):
    net = MLP([600, 400, 10], activation=activation, init="xavier", dtype="float64", seed=3)
    gain = GAINS[activation]
    for W in net.weights:
        n_in, n_out = W.shape
        bound = gain * np.sqrt(6.0 / (n_in + n_out))
        assert np.abs(W).max() <= bound
        assert np.abs(W).max() > 0.99 * bound           # fills the interval
        assert np.var(W) == pytest.approx(bound ** 2 / 3, rel=0.05 if W.size > 1000 else 0.2)
    for b in net.biases:
        assert not b.any()
    assert GAINS["tanh"] == pytest.approx(5 / 3) and GAINS["relu"] == pytest.approx(2 ** 0.5)


@pytest.mark.parametrize("sizes", [[50, 20, 20, 7], [3, 9, 4], [6, 6]])
def test_orthogonal_has_orthonormal_columns_or_rows_times_the_gain(sizes):
    net = MLP(sizes, activation="tanh", init="orthogonal", dtype="float64", seed=1)
    g2 = GAINS["tanh"] ** 2
    for W in net.weights:
        n_in, n_out = W.shape
        gram = W.T @ W if n_in >= n_out else W @ W.T
        np.testing.assert_allclose(gram, g2 * np.eye(min(n_in, n_out)), atol=1e-12)
    for b in net.biases:
        assert not b.any()


@pytest.mark.parametrize("init", ["xavier", "orthogonal"])
def test_explicit_gain(init):
    ref = MLP([30, 20, 20, 5], init=init, dtype="float64", seed=0)
    one = MLP([30, 20, 20, 5], init=init, dtype="float64", seed=0, gain=1)
    assert ref.gain == pytest.approx(5 / 3) and one.gain == 1.0
    np.testing.assert_allclose(one.params, ref.params * 0.6, rtol=1e-9, atol=1e-15)
    if init == "orthogonal":
        W = one.weights[1]
        np.testing.assert_allclose(W.T @ W, np.eye(20), atol=1e-12)
    assert MLP([3, 2]).gain is None and MLP([3, 2], param="mupc").gain is None


def test_pytorch_init_is_unchanged():
    """The default draws exactly what it drew before ``init`` existed."""
    net = MLP([7, 5, 3], dtype="float64", seed=11)
    rng = np.random.default_rng(11)
    for W, b in zip(net.weights, net.biases):
        bound = 1 / np.sqrt(W.shape[0])
        np.testing.assert_array_equal(W, rng.uniform(-bound, bound, size=W.shape))
        np.testing.assert_array_equal(b, rng.uniform(-bound, bound, size=b.shape))
    assert net.init == "pytorch" and net.param == "standard" and net.multipliers is None


@pytest.mark.parametrize("init", INITS + ("mupc",))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_init_is_fixed_by_the_seed_and_keeps_the_dtype(init, dtype):
    kw = dict(param="mupc") if init == "mupc" else dict(init=init)
    a = MLP([9, 8, 8, 3], dtype=dtype, seed=4, **kw)
    b = MLP([9, 8, 8, 3], dtype=dtype, seed=4, **kw)
    c = MLP([9, 8, 8, 3], dtype=dtype, seed=5, **kw)
    assert a.params.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    c.reset(4)
    np.testing.assert_array_equal(a.params, c.params)
    # float32 is the rounding of the same float64 draw
    d = MLP([9, 8, 8, 3], dtype="float64", seed=4, **kw)
    np.testing.assert_array_equal(a.params, d.params.astype(dtype))


def test_inits_differ_from_each_other():
    nets = [MLP([9, 8, 3], init=i, seed=0) for i in INITS]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.array_equal(nets[i].params, nets[j].params)


def test_mupc_multipliers_and_init():
    sizes = [784, 256, 256, 256, 10]
    assert mupc_multipliers(sizes) == pytest.approx([1 / 28, 1 / 16, 1 / 16, 1 / 256])
    assert mupc_multipliers([5, 3]) == pytest.approx([5 ** -0.5])
    net = MLP(sizes, param="mupc", dtype="float64", seed=2)
    Ms, Mb = net.split(net.multipliers)
    for W, M, b, mb, a in zip(net.weights, Ms, net.biases, Mb, mupc_multipliers(sizes)):
        assert np.all(M == a) and np.all(mb == 1)
        V = W / a                                       # the trainable muPC parameters
        assert np.mean(V) == pytest.approx(0, abs=0.02)
        assert np.var(V) == pytest.approx(1, rel=0.1)
        assert not b.any()


def test_mupc_keeps_the_first_layer_preactivations_order_one():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 400))
    net = MLP([400, 64, 10], param="mupc", dtype="float64", seed=0)
    z = X @ net.weights[0]
    assert np.std(z) == pytest.approx(1, rel=0.15)


@pytest.mark.parametrize("init, param, match", [
    ("bogus", "standard", "unknown init"), ("forward", "standard", "unknown init"),
    ("pytorch", "mup", "unknown param"), ("xavier", "mupc", "mupc"),
])
def test_bad_init_or_param_is_a_valueerror(init, param, match):
    with pytest.raises(ValueError, match=match):
        MLP([3, 2], init=init, param=param)


@pytest.mark.parametrize("init, param, gain, match", [
    ("pytorch", "standard", 1.0, "gain applies"), ("pytorch", "mupc", 1.0, "gain applies"),
    ("xavier", "standard", 0.0, "> 0"), ("orthogonal", "standard", float("nan"), "> 0"),
    ("xavier", "standard", "1", "number"),
])
def test_bad_gain_is_a_valueerror(init, param, gain, match):
    with pytest.raises(ValueError, match=match):
        MLP([3, 2], init=init, param=param, gain=gain)


# ----------------------------------------------------------------------------- optimizer

@pytest.mark.parametrize("name, kw", [("sgd", dict(momentum=0.9, weight_decay=0.01)),
                                      ("adam", dict(weight_decay=0.01))])
def test_mupc_optimizer_steps_in_the_muPC_coordinates(name, kw):
    """Training W = a V with gradient dL/dW equals training V with gradient a dL/dW."""
    sizes = [6, 5, 5, 3]
    net = MLP(sizes, param="mupc", dtype="float64", seed=0)
    a = net.multipliers.copy()
    plain = MLP(sizes, dtype="float64", seed=0)
    plain.params[:] = net.params / a                    # V
    opt, ref = Optimizer(net, name, 0.1, **kw), Optimizer(plain, name, 0.1, **kw)
    rng = np.random.default_rng(1)
    for _ in range(3):
        g = rng.standard_normal(net.n_params)
        g_before = g.copy()
        opt.step(g)
        ref.step(a * g)
        np.testing.assert_array_equal(g, g_before)      # the caller's gradient is untouched
        np.testing.assert_allclose(net.params, a * plain.params, rtol=1e-12, atol=1e-15)
    assert not np.allclose(net.params, MLP(sizes, param="mupc", dtype="float64").params)


def test_memory_estimate_counts_the_mupc_buffers():
    from pckernels.memory import training_bytes
    sizes = [100, 50, 10]
    n_params = 100 * 50 + 50 + 50 * 10 + 10
    assert (training_bytes(sizes, 8, param="mupc") - training_bytes(sizes, 8)
            == 3 * n_params * 4)


def test_standard_optimizer_is_unaffected():
    net = MLP([4, 3, 2], dtype="float64", seed=0)
    before = net.params.copy()
    g = np.ones(net.n_params)
    Optimizer(net, "sgd", 0.1, momentum=0.0).step(g)
    np.testing.assert_allclose(net.params, before - 0.1)


# ----------------------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("kw", [dict(init="xavier"), dict(init="orthogonal"),
                                dict(init="orthogonal", gain=0.5), dict(param="mupc")])
def test_checkpoint_and_pickle_keep_init_and_param(tmp_path, kw):
    net = MLP([5, 4, 4, 3], seed=7, **kw)
    net.params[:] += 0.25                               # not the seed's initialisation
    net.save(tmp_path / "net.npz")
    for back in (MLP.load(tmp_path / "net.npz"), pickle.loads(pickle.dumps(net))):
        assert back.config() == net.config()
        assert back.config()["init"] == kw.get("init", "pytorch")
        assert back.config()["param"] == kw.get("param", "standard")
        assert back.gain == net.gain
        np.testing.assert_array_equal(back.params, net.params)
        if net.multipliers is None:
            assert back.multipliers is None
        else:
            np.testing.assert_array_equal(back.multipliers, net.multipliers)


def test_old_checkpoint_without_init_loads_as_pytorch(tmp_path):
    net = MLP([3, 4, 2], seed=1)
    path = tmp_path / "old.npz"
    np.savez(path, params=net.params, sizes=net.sizes, activation=np.array("tanh"),
             loss=np.array("nll"), dtype=np.array("float32"), seed=np.array(1),
             format=np.array("pckernels-mlp-1"))
    back = MLP.load(path)
    assert back.init == "pytorch" and back.param == "standard" and back.multipliers is None
    assert back.gain is None
    np.testing.assert_array_equal(back.params, net.params)


def test_checkpoint_with_unknown_init_is_rejected(tmp_path):
    net = MLP([3, 2], seed=1)
    path = tmp_path / "bad.npz"
    np.savez(path, params=net.params, sizes=net.sizes, activation=np.array("tanh"),
             loss=np.array("nll"), dtype=np.array("float32"), seed=np.array(1),
             init=np.array("bogus"), format=np.array("pckernels-mlp-1"))
    with pytest.raises(ValueError, match="bogus"):
        MLP.load(path)


# ----------------------------------------------------------------------------- estimator

def test_estimator_init_and_param(digits):
    from sklearn.base import clone

    from pckernels import PCClassifier
    X, y = digits.X_train[:300], digits.y_train[:300]
    clf = PCClassifier(hidden=(16, 16), init="orthogonal", gain=1.0, epochs=1).fit(X, y)
    assert clf.get_params()["init"] == "orthogonal" and clf.net_.init == "orthogonal"
    assert clf.get_params()["gain"] == 1.0 and clf.net_.gain == 1.0
    assert clone(clf).init == "orthogonal"
    back = pickle.loads(pickle.dumps(clf))
    assert back.net_.init == "orthogonal" and back.net_.gain == 1.0
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    mupc = PCClassifier(hidden=(16,), param="mupc", algorithm="fpa", epochs=1).fit(X, y)
    assert mupc.net_.param == "mupc" and mupc.net_.multipliers is not None
    assert pickle.loads(pickle.dumps(mupc)).net_.multipliers is not None
    with pytest.raises(ValueError, match="unknown init"):
        PCClassifier(init="he").fit(X, y)
    with pytest.raises(ValueError, match="gain applies"):
        PCClassifier(gain=2.0).fit(X, y)


# ----------------------------------------------------------------------------- pck train

FAST = ["train", "--no-progress", "--epochs", "1", "--hidden", "8x2"]


def warnings_of(result):
    return [line for line in result.output.splitlines() if line.startswith("warning:")]


@pytest.mark.parametrize("args, init, param, gain", [
    ([], "pytorch", "standard", None), (["--init", "xavier"], "xavier", "standard", 5 / 3),
    (["--init", "orthogonal", "--gain", "1"], "orthogonal", "standard", 1.0),
    (["--param", "mupc"], "pytorch", "mupc", None),
])
def test_train_init_and_param_reach_the_network(run, tmp_path, args, init, param, gain):
    result = run(*FAST, *args, "--json", "out.json", "--save", "net.npz")
    assert result.exit_code == 0, result.output
    assert not warnings_of(result)
    config = json.loads((tmp_path / "out.json").read_text())["config"]
    assert (config["init"], config["param"]) == (init, param)
    assert config["gain"] == pytest.approx(gain) if gain else config["gain"] is None
    net = MLP.load(tmp_path / "net.npz")
    assert (net.init, net.param) == (init, param)


def test_latent_init(run, tmp_path):
    result = run(*FAST, "--algo", "vpc", "--latent-init", "zeros", "--json", "out.json")
    assert result.exit_code == 0, result.output
    assert not warnings_of(result)
    config = json.loads((tmp_path / "out.json").read_text())["config"]
    assert config["pc"]["init"] == "zeros" and config["init"] == "pytorch"


@pytest.mark.parametrize("value", ["forward", "zeros"])
def test_init_forward_or_zeros_is_deprecated_but_works(run, tmp_path, value):
    result = run(*FAST, "--algo", "vpc", "--init", value, "--json", "out.json")
    assert result.exit_code == 0, result.output
    assert warnings_of(result) == [f"warning: --init {value} is deprecated; use "
                                   f"--latent-init {value}"]
    config = json.loads((tmp_path / "out.json").read_text())["config"]
    assert config["pc"]["init"] == value and config["init"] == "pytorch"


def test_latent_init_that_does_not_apply_warns(run):
    result = run(*FAST, "--algo", "fpa", "--latent-init", "zeros")
    assert result.exit_code == 0, result.output
    assert len(warnings_of(result)) == 1 and "--latent-init" in warnings_of(result)[0]


@pytest.mark.parametrize("args, fragment", [
    (["--init", "he"], "--init"),
    (["--param", "mup"], "--param"),
    (["--init", "xavier", "--param", "mupc"], "mupc"),
    (["--gain", "2"], "gain applies"),
    (["--init", "xavier", "--gain", "0"], "--gain"),
    (["--algo", "vpc", "--init", "zeros", "--latent-init", "forward"], "contradicts"),
])
def test_bad_init_options_fail_with_exit_2(run, args, fragment):
    result = run(*FAST, *args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and fragment in result.output, result.output


def test_deep_tanh_network_learns_with_xavier_or_orthogonal_not_with_pytorch(run, tmp_path):
    """The issue's depth problem in small: 20 tanh layers on digits, 6 epochs of backprop."""
    acc = {}
    for init in ("pytorch", "xavier", "orthogonal"):
        result = run("train", "--no-progress", "--epochs", "6", "--hidden", "32x20",
                     "--lr", "0.01", "--init", init, "--json", f"{init}.json")
        assert result.exit_code == 0, result.output
        acc[init] = json.loads((tmp_path / f"{init}.json").read_text())["final_test_accuracy"]
    assert acc["pytorch"] < 0.3 and acc["xavier"] > 0.6 and acc["orthogonal"] > 0.6, acc


# ----------------------------------------------------------------------------- sweep

def test_sweep_config_records_and_compares_init():
    default, xavier = S.SweepConfig(depths=(1,)), S.SweepConfig(depths=(1,), init="xavier")
    assert xavier.to_dict()["init"] == "xavier" and default.to_dict()["param"] == "standard"
    # a folder written before init existed (no such key) resumes under the default
    old = {k: v for k, v in default.to_dict().items() if k not in ("init", "param")}
    assert S.SweepConfig.from_dict(old).comparable() == default.comparable()
    assert "init" not in default.comparable()
    assert xavier.comparable() != default.comparable()
    assert xavier.settings_hash() != default.settings_hash()
    assert S.SweepConfig(depths=(1,), param="mupc").settings_hash() != default.settings_hash()
    g1, g1f = (S.SweepConfig(depths=(1,), init="xavier", gain=g) for g in (1, 1.0))
    assert g1.settings_hash() == g1f.settings_hash() != xavier.settings_hash()
    assert "gain" not in xavier.comparable()
    with pytest.raises(S.SweepError, match="gain applies"):
        S.SweepConfig(depths=(1,), gain=2.0)
    with pytest.raises(S.SweepError, match="unknown init"):
        S.SweepConfig(depths=(1,), init="he")
    with pytest.raises(S.SweepError, match="mupc"):
        S.SweepConfig(depths=(1,), init="orthogonal", param="mupc")


def test_sweep_init_in_csv_json_and_resume(run, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "tiny.npz", X=rng.random((40, 3)), y=np.arange(40) % 2)
    grid = ["sweep", "--no-progress", "--epochs", "1", "--dataset", "tiny.npz", "--width", "4",
            "--depth", "1", "--ratio", "1", "--step-size", "0.5", "--out", "out"]
    result = run(*grid, "--init", "orthogonal", "--gain", "0.5")
    assert result.exit_code == 0, result.output
    with open(tmp_path / "out/results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["init"] == "orthogonal" and r["param"] == "standard"
                        and r["gain"] == "0.5" for r in rows)
    meta = json.loads((tmp_path / "out/results.json").read_text())
    assert meta["config"]["init"] == "orthogonal" and meta["config"]["gain"] == 0.5
    assert "init" in meta["csv_columns"]
    again = run(*grid, "--init", "orthogonal", "--gain", "0.5")
    assert again.exit_code == 0 and "2 finished, 0 to run" in again.output, again.output
    changed = run(*grid, "--init", "xavier", "--gain", "0.5")
    assert changed.exit_code == 1 and "changed: init" in changed.output, changed.output
    changed = run(*grid, "--init", "orthogonal")
    assert changed.exit_code == 1 and "changed: gain" in changed.output, changed.output
    assert run(*grid, "--init", "forward").exit_code == 2
