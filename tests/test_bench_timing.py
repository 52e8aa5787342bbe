"""The timing method of pck bench / pck complexity, on fake callables and synthetic samples.

Nothing here asserts how fast anything is: the tests check the order of calls, that first
calls stay out of the samples, how paired ratios and their intervals are summarised, and
that a ratio whose interval crosses its line is reported as inconclusive.
"""
import time

import numpy as np
import pytest

from pckernels_bench import harness, suite
from pckernels_bench.harness import (MIN_CONCLUSIVE_REPEATS, Timing, against_line,
                                     merge_noise, noise_report, paired_ratio, ratio_interval,
                                     time_interleaved)
from pckernels_cli.bench import (format_complexity, format_interval, format_noise,
                                 format_side, format_target)


def _recorder(log, name):
    def fn():
        log.append(name)
    return fn


def test_interleaved_rounds_rotate_and_first_calls_come_first():
    log = []
    fns = {n: _recorder(log, n) for n in "abc"}
    time_interleaved(fns, repeats=4, warmup=1, number=1)
    first, warm, samples = log[:3], log[3:6], log[6:]
    assert first == ["a", "b", "c"]               # every first call before anything else
    assert warm == ["a", "b", "c"]
    # round i starts at the i-th callable: ABC BCA CAB ABC, never AAAA BBBB CCCC
    assert samples == list("abc" "bca" "cab" "abc")


def test_interleaved_two_callables_alternate():
    log = []
    time_interleaved({"a": _recorder(log, "a"), "b": _recorder(log, "b")}, repeats=6,
                     warmup=0, number=2)
    samples = log[2:]
    # two calls per sample; the sample order is AB BA AB ...: adjacent samples pair up
    assert samples == ["a", "a", "b", "b", "b", "b", "a", "a", "a", "a", "b", "b",
                       "b", "b", "a", "a", "a", "a", "b", "b", "b", "b", "a", "a"]


def test_first_call_is_excluded_from_samples():
    calls = {"n": 0}

    def compiles_on_first_call():
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(0.2)

    t = time_interleaved({"jit": compiles_on_first_call, "other": lambda: None}, repeats=5,
                         warmup=0, number=3)["jit"]
    assert t.first_call_s >= 0.2
    assert max(t.samples_s) < 0.05
    assert len(t.samples_s) == len(t.cpu_samples_s) == t.repeats == 5
    assert calls["n"] == 1 + 5 * 3


def test_every_runner_is_called_before_any_sample():
    # what bench_depth / run_complexity rely on: compilation of every schedule and kernel
    # build happens in the first phase, never inside another callable's samples
    phases = []
    time_interleaved({n: (lambda: None) for n in ("serial", "layers", "batch")}, repeats=3,
                     warmup=1, min_sample_s=1e-4, max_number=4,
                     on_call=lambda phase, name: phases.append((phase, name)))
    firsts = [i for i, (p, _) in enumerate(phases) if p == "first"]
    samples = [i for i, (p, _) in enumerate(phases) if p == "sample"]
    assert len(firsts) == 3 and max(firsts) < min(samples)
    assert [n for p, n in phases if p == "first"] == ["serial", "layers", "batch"]


def test_paired_ratio_cancels_load_shared_by_a_round():
    # every round is slowed by a very different factor (shared by a and b), while a / b
    # stays within 1.8..2.2: the interval is that of the per-round ratios, not of the
    # wildly spread samples
    b = np.array([1.0, 1000.0, 3.0, 7.0, 50.0])
    c = np.array([1.8, 2.0, 2.2, 2.0, 2.0])
    iv = paired_ratio(c * b, b)
    assert (iv["lo"], iv["median"], iv["hi"]) == pytest.approx((1.8, 2.0, 2.2))
    assert iv["n"] == 5
    assert paired_ratio(_timing(list(c * b), []), _timing(list(b), [])) == iv
    # unpaired (different lengths) is no evidence at all
    iv = paired_ratio((c * b)[:3], b)
    assert iv["n"] == 1 and against_line(iv, 1.0)["conclusive"] is False


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 20])
def test_interval_brackets_median(seed, n):
    r = np.random.default_rng(seed).lognormal(0.0, 0.5, n)
    iv = ratio_interval(r)
    assert iv["lo"] <= iv["median"] <= iv["hi"]
    assert iv["lo"] >= r.min() and iv["hi"] <= r.max()


def test_interval_order_statistics_and_coverage():
    iv = ratio_interval([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (iv["lo"], iv["median"], iv["hi"]) == (1.0, 3.0, 5.0)     # n = 5: min..max
    assert iv["coverage"] == pytest.approx(1 - 2 / 32)
    iv = ratio_interval(np.arange(1.0, 21.0))                        # n = 20: x_(6)..x_(15)
    assert (iv["lo"], iv["hi"]) == (6.0, 15.0)
    assert iv["coverage"] >= harness.COVERAGE
    assert ratio_interval([1.0, 2.0, 3.0])["coverage"] == pytest.approx(0.75)
    with pytest.raises(ValueError):
        ratio_interval([])


def test_against_line():
    crossing = {"median": 0.95, "lo": 0.80, "hi": 1.10, "n": 7}
    side = against_line(crossing, 1.0)
    assert side == {"line": 1.0, "below": None, "conclusive": False,
                    "reason": "interval crosses the line"}
    assert against_line(dict(crossing, hi=0.99), 1.0)["below"] is True
    assert against_line(dict(crossing, lo=1.01, hi=1.2), 1.0)["below"] is False
    assert against_line(dict(crossing, hi=1.0), 1.0)["below"] is True    # at the limit: met
    few = against_line({"median": 0.5, "lo": 0.4, "hi": 0.6, "n": MIN_CONCLUSIVE_REPEATS - 1},
                       1.0)
    assert few["conclusive"] is False and few["below"] is None
    assert "repeats" in few["reason"]


def test_crossing_ratio_prints_inconclusive():
    iv = {"median": 0.95, "lo": 0.80, "hi": 1.10, "n": 7}
    assert format_interval(iv) == "0.95 [0.80, 1.10]"
    assert format_side(against_line(iv, 1.0), "faster", "slower") == "inconclusive"
    assert format_side(against_line(dict(iv, hi=0.9), 1.0), "faster", "slower") == "faster"
    assert format_side(against_line(dict(iv, n=1), 1.0), "yes", "NO") == \
        "inconclusive (too few repeats)"


def _res_with(ratio_iv):
    return {"ratio_intervals": {"vs_bp": {"fpa": ratio_iv, "bp": ratio_iv},
                                "fpa_step_over_input_vjps": ratio_iv},
            "epoch": None, "baselines": {}}


@pytest.mark.parametrize("lo,hi,met,word", [(1.2, 1.8, None, "inconclusive"),
                                            (1.1, 1.4, True, "yes"),
                                            (1.6, 2.0, False, "NO")])
def test_targets_are_met_only_when_the_interval_says_so(lo, hi, met, word):
    iv = {"median": (lo + hi) / 2, "lo": lo, "hi": hi, "n": 7, "coverage": 0.98}
    targets = {g["name"]: g for g in suite._targets(_res_with(iv))}
    g = targets["fpa (skip) <= 1.5x own bp"]
    assert g["met"] is met and g["conclusive"] is (met is not None)
    assert (g["lo"], g["hi"]) == (lo, hi)
    assert format_target(g) == word


def _timing(samples, cpu):
    return harness._timing(samples, cpu, first=0.0, number=1)


def test_noise_report_quiet_and_loaded():
    quiet = {"a": _timing([1.0, 1.01, 0.99, 1.0, 1.0], [1.0, 1.01, 0.99, 1.0, 1.0])}
    rec = noise_report(quiet, load=[0.2, 0.2, 0.2], cpu_count=2, threads=1)
    assert set(suite.NOISE_KEYS) <= set(rec)
    assert rec["noisy"] is False and rec["reasons"] == []
    assert rec["cpu_over_wall"] == pytest.approx(1.0)
    assert format_noise(rec).endswith("quiet")

    rec = noise_report(quiet, load=[3.1, 2.0, 1.0], cpu_count=2, threads=1)
    assert rec["noisy"] is True
    assert rec["reasons"] == ["machine loaded (load 3.1 on 2 cores)"]
    line = format_noise(rec)
    assert line.startswith("WARNING: machine loaded (load 3.1 on 2 cores)")
    assert "flipped by noise" in line


def test_noise_report_sees_descheduling_spread_and_few_repeats():
    # wall time doubled while the CPU time stayed: the process waited for a core
    desched = {"a": _timing([1.0, 2.0, 2.0, 1.0, 2.0], [1.0, 1.0, 1.0, 1.0, 1.0])}
    rec = noise_report(desched, load=[0.1, 0.1, 0.1], cpu_count=2)
    assert rec["descheduled"] == pytest.approx(0.6)
    assert any("descheduled" in r for r in rec["reasons"])
    assert any("spread" in r for r in rec["reasons"])
    # a parallel callable that used two cores in its good samples but one in a bad one
    par = {"p": _timing([1.0] * 5, [2.0, 2.0, 1.0, 2.0, 2.0])}
    assert noise_report(par, load=[0.1] * 3, cpu_count=2)["descheduled"] == pytest.approx(0.2)
    few = {"a": _timing([1.0, 1.0], [1.0, 1.0])}
    rec = noise_report(few, load=[0.1] * 3, cpu_count=2)
    assert rec["noisy"] and "fewer than 5" in rec["reasons"][0]
    merged = merge_noise([noise_report(quiet_t(), load=[0.1] * 3, cpu_count=2), rec])
    assert merged["noisy"] and merged["repeats"] == 2


def quiet_t():
    return {"a": _timing([1.0] * 5, [1.0] * 5)}


def test_time_call_is_one_callable_interleaved():
    t = harness.time_call(lambda: None, repeats=3, warmup=0, number=2)
    assert isinstance(t, Timing) and t.repeats == 3 and t.number == 2
    assert t.cpu_over_wall is not None


def _complexity_out(iv):
    ivs = {k: iv for k, _ in suite.COMPLEXITY_RATIOS}
    comparisons = {k: {"vs_bp": against_line(iv, 1.0), "vs_model": against_line(iv, 1.3)}
                   for k in ivs}
    measured = {"bp_us": 100.0, "forward_us": 30.0, "vjp_us_per_layer": [5.0, 5.0],
                "threads": 2, "critical_path_us": 50.0}
    for name in ("serial", "serial_skip", "layers", "layers_skip", "batch", "batch_skip"):
        measured[f"{name}_us"] = 95.0
    return {"config": {"algo": "fpa", "inputs": 4, "width": 3, "depth": 2, "outputs": 2,
                       "batch": 8, "dtype": "float32", "steps": 2, "step_size": 1.0},
            "analytic": {"C": [1.0, 1.0, 1.0], "C_sum": 3.0, "C_max": 1.0,
                         "fpa": {"work_fwd": 5.0, "time_fwd": 2.33, "time_ratio_bp": 1.3}},
            "measured": measured, "ratios": {k: iv["median"] for k in ivs},
            "ratio_intervals": ivs, "comparisons": comparisons, "load_average": [0.1] * 3,
            "layers": {"latent": [1, 2], "first_nonzero_theory": [2, 1],
                       "first_nonzero_pc_infer": [2, 1], "converged_at_pc_infer": [2, 1],
                       "convergence_lower_bound": [2, 1], "agree": True},
            "wasted": {"analytic": {"wasted": 2, "total": 4, "wasted_fraction": 0.5},
                       "measured": {"wasted": 2, "total": 4, "wasted_fraction": 0.5}},
            "noise": noise_report(quiet_t(), load=[0.1] * 3, cpu_count=2)}


def test_complexity_table_prints_crossing_ratio_as_inconclusive():
    # the case: fpa apparently faster than backprop, within the noise
    out = _complexity_out({"median": 0.95, "lo": 0.80, "hi": 1.10, "n": 7})
    table = format_complexity(out)
    row = next(line for line in table.splitlines() if line.startswith("serial (skip)"))
    assert "0.95" in row and "[0.80, 1.10]" in row
    assert row.split()[-2:] == ["inconclusive", "below"]
    assert "faster" not in table and "slower" not in table
    out = _complexity_out({"median": 1.5, "lo": 1.4, "hi": 1.6, "n": 7})
    row = next(line for line in format_complexity(out).splitlines()
               if line.startswith("serial (skip)"))
    assert row.split()[-2:] == ["slower", "above"]


@pytest.fixture
def interleaved_calls(monkeypatch):
    calls = []
    real = suite.time_interleaved

    def spy(fns, *args, **kwargs):
        calls.append(list(fns))
        return real(fns, *args, **kwargs)
    monkeypatch.setattr(suite, "time_interleaved", spy)
    return calls


def test_complexity_compares_within_one_interleaved_run(interleaved_calls):
    cfg = {"depth": 2, "width": 4, "inputs": 6, "outputs": 3, "batch": 4,
           "dtype": "float64", "threads": 1, "steps": None, "step_size": 1.0, "tol": 1e-6,
           "algo": "fpa", "repeats": 2, "count_batch": 4}
    out = suite.run_complexity(cfg)
    assert len(interleaved_calls) == 1
    assert set(interleaved_calls[0]) == {"bp", "forward", "serial", "serial_skip", "layers",
                                         "layers_skip", "batch", "batch_skip", "vjp_1",
                                         "vjp_2"}
    assert out["ratio_intervals"]["serial"]["n"] == 2


def test_bench_depth_compares_within_one_interleaved_run(interleaved_calls):
    cfg = {"width": 4, "inputs": 6, "outputs": 3, "batch": 4, "dtype": "float64",
           "threads": 1, "schedule": "auto", "steps": None, "step_size": 1.0,
           "algos": ["bp", "fpa", "zil"], "no_skip": False, "repeats": 2,
           "compare": ["numpy"], "lr": 0.01, "epoch_samples": 16}
    res = suite.bench_depth(2, cfg)
    assert len(interleaved_calls) == 1
    assert set(interleaved_calls[0]) >= {
        "forward", "bp", "fpa", "fpa-full", "zil", "fpa_step", "input_vjps",
        "schedule:serial", "schedule:layers", "schedule:batch", "gemm_limit",
        "numpy:forward", "numpy:bp", "numpy:fpa"}
    assert res["ratio_intervals"]["numpy"]["bp"]["n"] == 2


def test_noise_report_sees_threads_waiting_for_a_core():
    # CPU/wall looks perfect (a thread spins while its sibling waits), the run queue
    # shows the sibling waiting the whole time
    t = harness._timing([1.0] * 5, [1.0] * 5, first=0.0, number=1, wait_samples=[1.0] * 5)
    rec = noise_report({"a": t}, load=[0.1] * 3, cpu_count=2)
    assert rec["runqueue_wait"] == pytest.approx(1.0) and rec["descheduled"] == 1.0
    assert rec["noisy"] and "waiting for a core" in rec["reasons"][0]
    ok = harness._timing([1.0] * 5, [1.0] * 5, first=0.0, number=1, wait_samples=[0.0] * 5)
    assert noise_report({"a": ok}, load=[0.1] * 3, cpu_count=2)["noisy"] is False


def test_runqueue_wait_is_a_number_where_linux_reports_it():
    w = harness.runqueue_wait_s()
    assert w is None or w >= 0.0


def test_progress_reports_each_phase_and_round():
    from pckernels_bench.harness import progress
    lines = []
    on_call = progress(lines.append, "L=2", 3)
    time_interleaved({"a": lambda: None, "b": lambda: None}, repeats=3, warmup=1, number=1,
                     on_call=on_call)
    assert lines == ["L=2: compiling and warming up", "L=2: round 1/3", "L=2: round 2/3",
                     "L=2: round 3/3"]


def test_bench_prints_targets_only_when_asked():
    from click.testing import CliRunner

    from pckernels_cli.main import cli
    plain = CliRunner().invoke(cli, ["bench", "--quick", "--depth", "2", "--algo", "bp,fpa"])
    assert plain.exit_code == 0, plain.output
    assert "target" not in plain.output and "1 threads" not in plain.output
    asked = CliRunner().invoke(cli, ["bench", "--quick", "--depth", "2", "--algo", "bp,fpa",
                                     "--targets"])
    assert asked.exit_code == 0 and "fpa (skip) <= 1.5x own bp" in asked.output
