"""pck bench / pck complexity: smoke runs, documented JSON keys, skipping of baselines.

No timing assertions: timings live in bench/ and its outputs, never in tests.
"""
import builtins
import sys
import json

import numpy as np
import pytest
from click.testing import CliRunner

from pckernels import MLP, pc_infer
from pckernels import cost
from pckernels_bench import suite
from pckernels_bench.baselines import Unavailable
from pckernels_bench.harness import MIN_CONCLUSIVE_REPEATS
from pckernels_cli.bench import bench, complexity

TINY = ["--depth", "3", "--width", "6", "--inputs", "10", "--outputs", "4", "--batch-size", "8",
        "--repeats", "1", "--threads", "1"]


def _block(monkeypatch, *names):
    # None in sys.modules makes any import of that module (or an already imported
    # submodule) raise ImportError, even when another test imported it earlier.
    for mod in list(sys.modules):
        if mod.split(".")[0] in names:
            monkeypatch.setitem(sys.modules, mod, None)
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.split(".")[0] in names:
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", fake)


@pytest.fixture(scope="module")
def quick_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "quick.json"
    result = CliRunner().invoke(bench, ["--quick", "--threads", "1", "--compare", "numpy",
                                        "--json", str(path)])
    assert result.exit_code == 0, result.output
    return result.output, json.loads(path.read_text())


def _check_interval(iv):
    assert set(suite.INTERVAL_KEYS) <= set(iv)
    assert iv["lo"] <= iv["median"] <= iv["hi"]


def test_bench_quick_json_has_documented_keys(quick_json):
    output, data = quick_json
    assert set(suite.BENCH_KEYS) <= set(data)
    assert set(suite.NOISE_KEYS) <= set(data["noise"])
    assert [r["depth"] for r in data["results"]] == [2, 3]
    for res in data["results"]:
        assert set(suite.BENCH_DEPTH_KEYS) <= set(res)
        for op in ("forward", "bp", "fpa", "fpa-full", "zil", "fpa_step", "input_vjps"):
            assert set(suite.TIMING_KEYS) <= set(res["timings"][op])
            t = res["timings"][op]
            assert t["min_us"] <= t["median_us"] <= t["max_us"]
            assert t["repeats"] == MIN_CONCLUSIVE_REPEATS     # --quick can be conclusive
            _check_interval(res["ratio_intervals"]["vs_bp"][op])
        assert set(res["schedules"]) >= {"serial_us", "layers_us", "batch_us",
                                         "layers_speedup", "batch_speedup",
                                         "layers_speedup_interval", "batch_speedup_interval"}
        _check_interval(res["schedules"]["layers_speedup_interval"])
        assert set(res["baselines"]["numpy"]) == {"forward", "bp", "fpa"}
        # ratios are the medians of the paired per-round ratios, with their interval
        iv = res["ratio_intervals"]["numpy"]["bp"]
        _check_interval(iv)
        assert iv["n"] == MIN_CONCLUSIVE_REPEATS
        assert res["ratios"]["numpy"]["bp"] == iv["median"]
        names = {t["name"] for t in res["targets"]}
        assert "fpa (skip) <= 1.5x own bp" in names
        for g in res["targets"]:
            assert set(suite.TARGET_KEYS) <= set(g)
            assert g["lo"] <= g["ratio"] <= g["hi"]
            # met is a verdict only when conclusive, and then it is which side the interval is
            if g["conclusive"]:
                assert g["met"] is (g["hi"] <= g["limit"]) and g["met"] is not (
                    g["lo"] > g["limit"])
            else:
                assert g["met"] is None
        assert set(suite.NOISE_KEYS) <= set(res["noise"])
    # documented in the help text too
    help_text = CliRunner().invoke(bench, ["--help"]).output.replace("\n", " ")
    for key in (suite.BENCH_KEYS + suite.BENCH_DEPTH_KEYS + suite.TIMING_KEYS
                + suite.INTERVAL_KEYS + suite.TARGET_KEYS + suite.NOISE_KEYS):
        assert key in help_text, key
    assert "pck/numpy" in output and "GEMM-bound limit" in output
    assert "noise: " in output or "WARNING: " in output


def test_bench_skips_missing_baselines(monkeypatch, tmp_path):
    _block(monkeypatch, "torch", "jax", "sklearn")
    path = tmp_path / "b.json"
    result = CliRunner().invoke(bench, ["--quick", "--threads", "1", "--algo", "bp,fpa",
                                        "--compare", "torch,jax,sklearn", "--json", str(path)])
    assert result.exit_code == 0, result.output
    data = json.loads(path.read_text())
    assert set(data["skipped"]) == {"torch", "jax", "sklearn"}
    for name in ("torch", "jax", "sklearn"):
        assert f"{name} skipped" in result.output
        assert sum(f"{name} skipped" in line for line in result.output.splitlines()) == 1
    assert all(r["baselines"] == {} for r in data["results"])


def test_bench_times_the_vpc_step_rule(tmp_path):
    """With vpc among the algorithms, bench times the auto step rule next to the fixed
    step (interleaved) and reports the ratio with its interval and as a target."""
    path = tmp_path / "b.json"
    result = CliRunner().invoke(bench, ["--quick", "--threads", "1", "--algo", "bp,vpc",
                                        "--json", str(path)])
    assert result.exit_code == 0, result.output
    assert "vpc step rule: auto (same T, stop off) / fixed step = " in result.output
    for res in json.loads(path.read_text())["results"]:
        assert {"vpc", "vpc-auto"} <= set(res["timings"])
        iv = res["ratio_intervals"]["vpc_auto_over_fixed"]
        assert iv["lo"] <= iv["median"] <= iv["hi"]
        assert [g["ratio"] for g in res["targets"]
                if g["name"].startswith("vpc auto")] == [iv["median"]]


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_baseline_make_raises_unavailable(monkeypatch, name):
    import importlib
    mod = importlib.import_module(f"pckernels_bench.baselines.{name}_mlp")
    _block(monkeypatch, name)
    with pytest.raises(Unavailable, match=name):
        mod.make([4, 3, 2], 2)


def test_sklearn_baseline_unavailable(monkeypatch):
    from pckernels_bench.baselines import sklearn_mlp
    _block(monkeypatch, "sklearn")
    with pytest.raises(Unavailable, match="scikit-learn"):
        sklearn_mlp.make([4, 3, 2], 2)


def test_numpy_baseline_fpa_equals_backprop():
    from pckernels_bench.baselines import numpy_mlp
    sizes = [10, 6, 6, 6, 4]
    params = []
    for key in ("bp", "fpa"):
        fns = numpy_mlp.make(sizes, 8, "float64", lr=0.1)
        fns[key]()
        fns[key]()
        params.append(fns["params"]())
    np.testing.assert_allclose(params[0], params[1], rtol=0, atol=1e-12)


def _run_complexity(tmp_path, *extra):
    path = tmp_path / "c.json"
    result = CliRunner().invoke(complexity, TINY + list(extra) + ["--json", str(path)])
    assert result.exit_code == 0, result.output
    return result.output, json.loads(path.read_text())


@pytest.mark.parametrize("extra", [[], ["--steps", "12", "--step-size", "0.6"]])
def test_complexity_counts_agree_with_pc_infer(tmp_path, extra):
    output, data = _run_complexity(tmp_path, *extra)
    assert set(suite.COMPLEXITY_KEYS) <= set(data)
    help_text = CliRunner().invoke(complexity, ["--help"]).output.replace("\n", " ")
    for key in suite.COMPLEXITY_KEYS + suite.NOISE_KEYS:
        assert f'"{key}"' in help_text
    c = data["config"]
    # recompute the counts independently from the same network and batch
    sizes = [c["inputs"]] + [c["width"]] * c["depth"] + [c["outputs"]]
    net = MLP(sizes, activation="tanh", loss="nll", dtype=c["dtype"], seed=0)
    from pckernels_bench.baselines import random_batch
    X, y = random_batch(sizes, c["batch"], c["dtype"], 0)
    nb = c["count_batch"]
    r = pc_infer(net, X[:nb], y[:nb], "fpa", c["steps"], c["step_size"], tol=c["tol"],
                 schedule="serial")
    lay = data["layers"]
    assert lay["first_nonzero_pc_infer"] == r.first_nonzero.tolist()
    assert lay["converged_at_pc_infer"] == r.converged_at.tolist()
    assert lay["first_nonzero_simulated"] == r.first_nonzero.tolist()
    assert lay["converged_at_simulated"] == r.converged_at.tolist()
    assert lay["first_nonzero_theory"] == [3, 2, 1]
    assert lay["agree"] is True
    assert "counts agree (theory / pc_infer / simulation): yes" in output
    w = data["wasted"]
    assert w["analytic"]["wasted"] == w["measured"]["wasted"]
    assert w["analytic"] == cost.wasted_vjps("fpa", 3, c["steps"], c["step_size"])
    a = data["analytic"]
    assert a["fpa"]["time_ratio_bp"] == pytest.approx(data["ratios"]["analytic_time_ratio"])
    assert a == json.loads(json.dumps(cost.analytic(sizes, c["batch"], steps=c["steps"],
                                                    algos=("bp", "fpa"))))
    for key in ("serial", "layer_parallel", "batch_parallel", "critical_path"):
        assert data["ratios"][key] > 0
    assert len(data["measured"]["vjp_us_per_layer"]) == 3
    # one repeat has no spread: every measured ratio is inconclusive, and says why
    for key, _ in suite.COMPLEXITY_RATIOS:
        iv = data["ratio_intervals"][key]
        assert iv["lo"] <= iv["median"] <= iv["hi"] and iv["n"] == 1
        assert data["ratios"][key] == iv["median"]
        for side in data["comparisons"][key].values():
            assert side["conclusive"] is False and side["below"] is None
            assert "repeats" in side["reason"]
    assert data["comparisons"]["serial"]["vs_model"]["line"] == a["fpa"]["time_ratio_bp"]
    assert data["noise"]["noisy"] is True
    table = output.split("ideal critical path")[0]
    assert table.count("inconclusive (too few repeats)") == 2 * 6
    assert "faster" not in table and "slower" not in table
    assert "90% interval" in output


def test_complexity_zil(tmp_path):
    # needs zil's new step count (T = state updates) from main's pc.py
    output, data = _run_complexity(tmp_path, "--algo", "zil")
    assert data["config"]["steps"] == 3                 # T = L state updates
    assert data["layers"]["first_nonzero_pc_infer"] == [3, 2, 1]
    assert data["wasted"]["analytic"]["useful"] == 3
    assert data["wasted"]["measured"]["wasted"] == data["wasted"]["analytic"]["wasted"]


def test_bench_rejects_bad_lists():
    r = CliRunner().invoke(bench, ["--depth", "2,x"])
    assert r.exit_code != 0 and "--depth" in r.output
    r = CliRunner().invoke(bench, ["--algo", "bp,nope"])
    assert r.exit_code != 0 and "nope" in r.output
    r = CliRunner().invoke(bench, ["--compare", "tensorflow"])
    assert r.exit_code != 0 and "tensorflow" in r.output


def test_gemm_line_gives_a_share_only_when_the_step_is_the_slower():
    from pckernels_cli.bench import format_gemm_limit

    def line(median, lo, hi):
        return format_gemm_limit({"gemm_limit_us": 10.0, "ratio_intervals": {
            "bp_over_gemm_limit": {"median": median, "lo": lo, "hi": hi}}})
    assert line(1.25, 1.2, 1.3).endswith("i.e. its products are 80% of its time")
    faster = line(0.88, 0.61, 1.15)
    assert "%" not in faster and "timing noise" in faster
