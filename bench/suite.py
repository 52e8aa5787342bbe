"""What ``pck bench`` and ``pck complexity`` measure (the CLI only parses and prints).

Result dictionaries are plain JSON-ready data; their keys are documented in
``BENCH_KEYS`` / ``COMPLEXITY_KEYS`` and checked by tests/test_bench.py.
"""
import importlib
import math
import sys
import time

import numpy as np

from pckernels import cost
from pckernels.backprop import backprop_into
from pckernels.config import get_threads
from pckernels.io import environment
from pckernels.kernels import pc as K
from pckernels.model import MLP
from pckernels.pc import PCRunner, pc_infer
from pckernels.training import Optimizer, train

from . import probes
from .baselines import Unavailable, random_batch
from .harness import (against_line, gemm_runner, gemm_shapes, gflops, load_average,
                      merge_noise, noise_report, paired_ratio, progress,
                      set_all_threads, time_interleaved)

COMPARE = ("numpy", "sklearn", "torch", "jax")
PC_ALGOS = ("vpc", "scaled", "fpa", "zil")

#: Top-level and per-depth keys of ``pck bench --json`` (documented in the command help).
BENCH_KEYS = ("config", "environment", "load_average", "skipped", "results", "noise")
BENCH_DEPTH_KEYS = ("depth", "sizes", "timings", "gemm_limit_us", "bp_over_gemm_limit",
                    "bp_gemm_fraction", "fpa_step_us", "input_vjps_us",
                    "fpa_step_over_input_vjps", "schedules", "baselines", "ratios",
                    "ratio_intervals", "epoch", "targets", "noise")
TIMING_KEYS = ("median_us", "q1_us", "q3_us", "min_us", "max_us", "first_call_s", "repeats",
               "samples_per_s", "gflops", "cpu_over_wall")
INTERVAL_KEYS = ("median", "lo", "hi", "n", "coverage")
TARGET_KEYS = ("name", "ratio", "lo", "hi", "n", "limit", "met", "conclusive", "reason",
               "factor_off")
NOISE_KEYS = ("load_average", "cpu_count", "threads", "cpu_over_wall", "runqueue_wait",
              "descheduled",
              "spread", "repeats", "noisy", "reasons")
COMPLEXITY_KEYS = ("config", "environment", "load_average", "analytic", "measured",
                   "ratios", "ratio_intervals", "comparisons", "layers", "wasted", "noise")
#: Measured complexity ratios (each / backprop) and the ``measured`` key they come from.
COMPLEXITY_RATIOS = (("serial", "serial"), ("serial_skip", "serial_skip"),
                     ("layer_parallel", "layers"), ("layer_parallel_skip", "layers_skip"),
                     ("batch_parallel", "batch"), ("batch_parallel_skip", "batch_skip"),
                     ("critical_path", None))

#: The issues' targets: (name, numerator op, denominator (source, op), limit).
TARGETS = (
    ("bp <= 0.5x sklearn epoch", ("pck", "epoch"), ("sklearn", "epoch"), 0.5),
    ("bp <= 0.33x torch eager", ("pck", "bp"), ("torch", "bp"), 0.33),
    ("bp <= 0.8x jax jit", ("pck", "bp"), ("jax", "bp"), 0.8),
    ("fpa-full <= 0.05x torch2pc-style", ("pck", "fpa-full"), ("torch", "fpa"), 0.05),
    ("fpa <= 0.05x torch2pc-style", ("pck", "fpa"), ("torch", "fpa"), 0.05),
    ("fpa-full <= 0.8x jax jit", ("pck", "fpa-full"), ("jax", "fpa"), 0.8),
    ("fpa <= 0.8x jax jit", ("pck", "fpa"), ("jax", "fpa"), 0.8),
    ("fpa (skip) <= 1.5x own bp", ("pck", "fpa"), ("pck", "bp"), 1.5),
    ("fpa step <= 1.25x input VJPs", ("pck", "fpa_step"), ("pck", "input_vjps"), 1.25),
    ("vpc auto step rule <= 1.15x fixed", ("pck", "vpc-auto"), ("pck", "vpc"), 1.15),
)


def _echo(msg, err=False):
    print(msg, file=sys.stderr if err else sys.stdout)


def _timing_dict(t, batch=None, flops=None):
    d = {"median_us": t.median_s * 1e6, "q1_us": t.q1_s * 1e6, "q3_us": t.q3_s * 1e6,
         "min_us": t.min_s * 1e6, "max_us": t.max_s * 1e6, "first_call_s": t.first_call_s,
         "repeats": t.repeats, "number": t.number,
         "samples_per_s": batch / t.median_s if batch and t.median_s > 0 else None,
         "gflops": gflops(flops, t.median_s) if flops else None,
         "cpu_over_wall": t.cpu_over_wall}
    return d


def _load_baseline(name):
    return importlib.import_module(f"pckernels_bench.baselines.{name}_mlp")


def prepare_threads(threads, compare):
    """Fix one thread count for everything, before jax can be imported."""
    n = threads or get_threads()
    if "jax" in compare:
        _load_baseline("jax").configure_threads(n)
    if "torch" in compare:
        try:
            import torch
            torch.set_num_threads(n)
        except ImportError:
            pass
    set_all_threads(n)
    return n


def _pc_steps(algo, L, steps):
    # T counts state updates for every variant; T = L reaches the first layer, which for
    # fpa (step 1) and zil is exactly backprop
    return L if steps is None else steps


def _make_net(sizes, dtype, batch, seed=0):
    net = MLP(sizes, activation="tanh", loss="nll", dtype=dtype, seed=seed)
    X, y = random_batch(sizes, batch, dtype, seed)
    labels, targets = net.check_targets(y, batch)
    return net, X, y, labels, targets


def _worst_load(*loads):
    loads = [v for v in loads if v is not None]
    return max(loads, key=lambda v: v[0]) if loads else None


def bench_depth(L, cfg, log=_echo):
    """All measurements for one depth; ``cfg`` holds the CLI options (see ``run_bench``).

    Every operation of the depth - pckernels' forward, bp and PC steps, the fpa step and
    input-VJP probes, the three schedules, the GEMM limit and the baselines' steps - is
    timed in one :func:`time_interleaved` run, so every ratio below comes from paired
    samples taken side by side.
    """
    sizes = [cfg["inputs"]] + [cfg["width"]] * L + [cfg["outputs"]]
    B, dtype, reps = cfg["batch"], cfg["dtype"], cfg["repeats"]
    net, X, y, labels, targets = _make_net(sizes, dtype, B)
    kf = cost.kernel_flops(sizes, B, steps=L if cfg["steps"] is None else cfg["steps"])
    grad = net.zeros_like_params()
    opt = Optimizer(net, "sgd", lr=cfg["lr"], momentum=0.9)
    ws = net.workspace(B)
    fns, flops = {}, {}

    def add(name, fn, fl=None):
        fns[name] = fn
        flops[name] = fl

    add("forward", lambda: net._forward_raw(X), kf["forward"])

    def bp_step():
        backprop_into(net, X, labels, targets, grad)
        opt.step(grad)
    add("bp", bp_step, kf["backprop"] + kf["sgd"])

    skip = not cfg["no_skip"]
    # vpc and vpc-auto train a copy of the network whose SGD step (the same work) leaves
    # its weights at their initial values: every other row trains the shared network on
    # the one benchmark batch thousands of times until it has memorised it, and there,
    # with the stop off, rounding makes the auto rule reject and undo steps that training
    # on fresh batches rarely sees (Fashion-MNIST, 64x5: at most 0.12% of sample-steps
    # per epoch in the first three; README). Fixed-step costs do not depend on the weights.
    frozen = MLP(list(net.sizes), activation="tanh", loss="nll", dtype=net.dtype, seed=0)
    frozen.params[...] = net.params
    frozen_grad = frozen.zeros_like_params()
    frozen_opt = Optimizer(frozen, "sgd", lr=1e-12, momentum=0.9)
    for algo in cfg["algos"]:
        if algo == "bp":
            continue
        T = _pc_steps(algo, L, cfg["steps"])
        gamma = 1.0 if algo == "zil" else cfg["step_size"]
        variants = [(algo, skip)] + ([(algo + "-full", False)] if skip and algo == "fpa" else [])
        for name, sk in variants:
            pnet, pgrad, popt = (frozen, frozen_grad, frozen_opt) if algo == "vpc" \
                else (net, grad, opt)
            runner = PCRunner(pnet, algo, T, gamma, schedule=cfg["schedule"], skip=sk)

            def pc_step(runner=runner, pgrad=pgrad, popt=popt):
                runner.run(X, labels, targets, pgrad)
                popt.step(pgrad)
            add(name, pc_step, kf["fpa"] + kf["sgd"] if algo == "fpa" and not sk else None)
        if algo == "vpc":
            # the cost of the default step rule: same T, its convergence stop off (the stop
            # only saves steps), against the fixed-step row, both on the frozen copy
            runner = PCRunner(frozen, algo, T, 1.0, schedule=cfg["schedule"], skip=skip,
                              step_rule="auto", energy_tol=0.0)

            def auto_step(runner=runner):
                runner.run(X, labels, targets, frozen_grad)
                frozen_opt.step(frozen_grad)
            add("vpc-auto", auto_step)

    # issue 3: one fpa inference step over all layers vs the input-side VJPs of backprop
    T = L if cfg["steps"] is None else cfg["steps"]
    runner = PCRunner(net, "fpa", max(T, 1), cfg["step_size"], schedule="serial", skip=False)
    _, pws, _ = runner.run(X, labels, targets, grad)
    data = K.PCData(X=X, labels=labels, targets=targets)
    st = pws.state

    def fpa_one_step():
        K._steps_serial(0, 1, 0, B, 0, runner.knet, data, st, runner.opts)
    add("fpa_step", fpa_one_step, kf["fpa_step"])
    backprop_into(net, X, labels, targets, grad)
    add("input_vjps", lambda: probes.input_vjps(ws["d"], net.params, net.sizes, B),
        kf["input_vjps"])

    # schedules of the full-work fpa inference (no update); each schedule (and so each
    # serial/parallel kernel build) gets its first, compiling call before any sample
    for sched in ("serial", "layers", "batch"):
        r = PCRunner(net, "fpa", T, cfg["step_size"], schedule=sched, skip=False)
        add(f"schedule:{sched}", lambda r=r: r.run(X, labels, targets, grad))
    add("gemm_limit", gemm_runner(gemm_shapes(sizes, B, "backprop"), dtype))

    baselines, skipped = _baseline_fns(sizes, cfg)
    for name, ops in baselines.items():
        for op in ("forward", "bp", "fpa"):
            add(f"{name}:{op}", ops[op])

    load0 = load_average()
    tm = time_interleaved(fns, repeats=reps,
                          on_call=progress(lambda m: log(m, err=True), f"L={L}", reps))
    noise = noise_report(tm, load=_worst_load(load0, load_average()), threads=get_threads())

    timings = {name: _timing_dict(tm[name], B, flops[name]) for name in fns
               if ":" not in name and name != "gemm_limit"}
    ivs = {"vs_bp": {op: paired_ratio(tm[op], tm["bp"]) for op in timings}}
    ivs["fpa_step_over_input_vjps"] = paired_ratio(tm["fpa_step"], tm["input_vjps"])
    ivs["bp_over_gemm_limit"] = paired_ratio(tm["bp"], tm["gemm_limit"])
    if "vpc-auto" in tm:
        ivs["vpc_auto_over_fixed"] = paired_ratio(tm["vpc-auto"], tm["vpc"])

    schedules = {f"{s}_us": tm[f"schedule:{s}"].median_s * 1e6
                 for s in ("serial", "layers", "batch")}
    for s in ("layers", "batch"):
        iv = paired_ratio(tm["schedule:serial"], tm[f"schedule:{s}"])
        schedules[f"{s}_speedup"] = iv["median"]
        schedules[f"{s}_speedup_interval"] = iv
    schedules["threads"] = get_threads()

    gl = tm["gemm_limit"].median_s * 1e6
    res = {"depth": L, "sizes": sizes, "timings": timings, "gemm_limit_us": gl,
           "bp_over_gemm_limit": ivs["bp_over_gemm_limit"]["median"],
           "bp_gemm_fraction": 1.0 / ivs["bp_over_gemm_limit"]["median"],
           "fpa_step_us": timings["fpa_step"]["median_us"],
           "input_vjps_us": timings["input_vjps"]["median_us"],
           "fpa_step_over_input_vjps": ivs["fpa_step_over_input_vjps"]["median"],
           "schedules": schedules, "baselines": dict(skipped), "ratios": {},
           "ratio_intervals": ivs, "epoch": None, "targets": [], "noise": noise}
    for name in baselines:
        res["baselines"][name] = {op: _timing_dict(tm[f"{name}:{op}"], B)
                                  for op in ("forward", "bp", "fpa")}
        ivs[name] = {op: paired_ratio(tm[op], tm[f"{name}:{op}"]) for op in ("forward", "bp")}
        for mine in ("fpa", "fpa-full"):
            if mine in tm:
                ivs[name][mine] = paired_ratio(tm[mine], tm[f"{name}:fpa"])
        res["ratios"][name] = {op: iv["median"] for op, iv in ivs[name].items()}
    if "sklearn" in cfg["compare"]:
        _compare_epoch(res, sizes, cfg)
    res["targets"] = _targets(res)
    return res


def _baseline_fns(sizes, cfg):
    """The step callables of the per-step baselines, and the ones that cannot run."""
    B, dtype = cfg["batch"], cfg["dtype"]
    T = len(sizes) - 2 if cfg["steps"] is None else cfg["steps"]
    fns, skipped = {}, {}
    for name in cfg["compare"]:
        if name == "sklearn":
            continue
        try:
            fns[name] = _load_baseline(name).make(
                sizes, B, dtype, steps=T, step_size=cfg["step_size"], lr=cfg["lr"],
                **({"threads": cfg["threads"]} if name in ("torch", "jax") else {}))
        except Unavailable as exc:
            skipped[name] = {"skipped": str(exc)}
    return fns, skipped


def _compare_epoch(res, sizes, cfg):
    """A training epoch of pckernels against sklearn's MLPClassifier, interleaved."""
    B, dtype = cfg["batch"], cfg["dtype"]
    n_samples = cfg["epoch_samples"]
    try:
        epoch, n = _load_baseline("sklearn").make(sizes, B, dtype, lr=cfg["lr"],
                                                  n_samples=n_samples)
    except Unavailable as exc:
        res["baselines"]["sklearn"] = {"skipped": str(exc)}
        return
    Xs, ys = random_batch(sizes, n_samples, dtype, seed=1)
    mine = MLP(sizes, activation="tanh", loss="nll", dtype=dtype, seed=0)
    # an epoch lasts long enough to be one sample; at most 5 rounds (the fewest a ratio
    # needs to be conclusive) keep the comparison affordable
    tm = time_interleaved(
        {"pck": lambda: train(mine, Xs, ys, epochs=1, batch_size=B, lr=cfg["lr"]),
         "sklearn": epoch}, repeats=max(1, min(cfg["repeats"], 5)), warmup=0, number=1)
    pe, sk = tm["pck"], tm["sklearn"]
    iv = paired_ratio(pe, sk)
    n_batches = math.ceil(n_samples / B)
    res["baselines"]["sklearn"] = {"epoch": _timing_dict(sk, n_samples)}
    res["epoch"] = {"samples": n_samples, "batches": n_batches,
                    "pck_train_epoch_s": pe.median_s,
                    "pck_from_step_s": res["timings"]["bp"]["median_us"] * 1e-6 * n_batches,
                    "sklearn_epoch_s": sk.median_s, "ratio": iv["median"],
                    "ratio_interval": iv}
    res["ratios"]["sklearn"] = {"epoch": iv["median"]}
    res["ratio_intervals"]["sklearn"] = {"epoch": iv}
    res["noise"] = merge_noise([res["noise"], noise_report(tm, threads=get_threads())])


def _target_interval(res, a, b):
    """The paired interval of target ratio ``a / b`` ((source, op) pairs), or None."""
    (src_a, op_a), (src_b, op_b) = a, b
    ivs = res["ratio_intervals"]
    if src_a == "pck" and src_b == "pck":
        if (op_a, op_b) == ("fpa_step", "input_vjps"):
            return ivs["fpa_step_over_input_vjps"]
        if (op_a, op_b) == ("vpc-auto", "vpc"):
            return ivs.get("vpc_auto_over_fixed")
        return ivs["vs_bp"].get(op_a) if op_b == "bp" else None
    # pckernels' op against a baseline's: keyed by pckernels' op (fpa-full vs their fpa)
    return ivs.get(src_b, {}).get(op_a)


def _targets(res):
    out = []
    for name, a, b, limit in TARGETS:
        iv = _target_interval(res, a, b)
        if iv is None:
            continue
        side = against_line(iv, limit)
        out.append({"name": name, "ratio": iv["median"], "lo": iv["lo"], "hi": iv["hi"],
                    "n": iv["n"], "limit": limit, "met": side["below"],
                    "conclusive": side["conclusive"], "reason": side["reason"],
                    "factor_off": iv["median"] / limit})
    return out


def run_bench(cfg, log=_echo):
    """Run ``pck bench``; ``cfg`` keys: depths, width, inputs, outputs, batch, dtype,
    threads, schedule, steps, step_size, algos, no_skip, repeats, compare, lr,
    epoch_samples."""
    threads = prepare_threads(cfg["threads"], cfg["compare"])
    cfg = dict(cfg, threads=threads)
    skipped = {}
    for name in cfg["compare"]:
        try:
            if name == "sklearn":
                importlib.import_module("sklearn.neural_network")
            else:
                importlib.import_module({"numpy": "numpy", "torch": "torch",
                                         "jax": "jax"}[name])
        except ImportError as exc:
            skipped[name] = f"{name} skipped: not installed ({exc})"
            log(skipped[name])
    cfg["compare"] = [c for c in cfg["compare"] if c not in skipped]
    results = []
    for L in cfg["depths"]:
        t0 = time.perf_counter()
        results.append(bench_depth(L, cfg, log))
        log(f"  depth {L} measured in {time.perf_counter() - t0:.1f} s", err=True)
    return {"config": cfg, "environment": environment(), "load_average": load_average(),
            "skipped": skipped, "results": results,
            "noise": merge_noise([r["noise"] for r in results])}


def run_complexity(cfg, log=_echo):
    """Run ``pck complexity``; ``cfg`` keys: depth, width, inputs, outputs, batch, dtype,
    threads, steps, step_size, tol, algo, repeats, count_batch."""
    threads = prepare_threads(cfg["threads"], ())
    L, B, dtype, reps = cfg["depth"], cfg["batch"], cfg["dtype"], cfg["repeats"]
    algo = cfg["algo"]
    sizes = [cfg["inputs"]] + [cfg["width"]] * L + [cfg["outputs"]]
    T = _pc_steps(algo, L, cfg["steps"])
    gamma = 1.0 if algo == "zil" else cfg["step_size"]
    model = cost.analytic(sizes, B, steps=T, algos=("bp", algo) if algo in ("fpa", "zil")
                          else ("bp", "fpa"))
    key_model = algo if algo in ("fpa", "zil") else "fpa"

    net, X, y, labels, targets = _make_net(sizes, dtype, B)
    grad = net.zeros_like_params()
    ws = net.workspace(B)
    # backprop, every schedule with and without skipping, the forward pass and each
    # layer's VJP are timed in one interleaved run: each compiles before any sample, and
    # every ratio to backprop is a median of per-round paired ratios
    fns = {"bp": lambda: backprop_into(net, X, labels, targets, grad),
           "forward": lambda: net._forward_raw(X)}
    for sched in ("serial", "layers", "batch"):
        for sk in (False, True):
            r = PCRunner(net, algo, T, gamma, schedule=sched, skip=sk)
            fns[f"{sched}{'_skip' if sk else ''}"] = (
                lambda r=r: r.run(X, labels, targets, grad))
    backprop_into(net, X, labels, targets, grad)
    for l in range(1, L + 1):
        fns[f"vjp_{l}"] = (
            lambda l=l: probes.one_input_vjp(ws["d"], net.params, net.sizes, B, l))
    load0 = load_average()
    tm = time_interleaved(fns, repeats=reps,
                          on_call=progress(lambda m: log(m, err=True), "measuring", reps))
    noise = noise_report(tm, load=_worst_load(load0, load_average()), threads=threads)
    vjp_us = [tm[f"vjp_{l}"].median_s * 1e6 for l in range(1, L + 1)]
    measured = {"bp_us": tm["bp"].median_s * 1e6, "forward_us": tm["forward"].median_s * 1e6,
                "vjp_us_per_layer": vjp_us, "threads": threads}
    for name in ("serial", "serial_skip", "layers", "layers_skip", "batch", "batch_skip"):
        measured[f"{name}_us"] = tm[name].median_s * 1e6
    # T state updates for every variant (zil included), one slowest VJP each
    n_updates = T
    vjp_rounds = np.array([tm[f"vjp_{l}"].samples_s for l in range(1, L + 1)])
    critical_rounds = (np.asarray(tm["forward"].samples_s)
                       + n_updates * (vjp_rounds.max(axis=0) if L else 0.0))
    measured["critical_path_us"] = float(np.median(critical_rounds)) * 1e6
    intervals = {}
    for key, name in COMPLEXITY_RATIOS:
        intervals[key] = paired_ratio(critical_rounds if name is None else tm[name], tm["bp"])
    model_line = model[key_model]["time_ratio_bp"]
    ratios = {"analytic_time_ratio": model_line,
              "analytic_work_ratio": (model[key_model]["work_flops"]
                                      / model["bp"]["work_flops"])}
    ratios.update({key: iv["median"] for key, iv in intervals.items()})
    comparisons = {key: {"vs_bp": against_line(iv, 1.0),
                         "vs_model": against_line(iv, model_line)}
                   for key, iv in intervals.items()}

    nb = min(cfg["count_batch"], B)
    res = pc_infer(net, X[:nb], y[:nb], algo, T, gamma, tol=cfg["tol"], schedule="serial",
                   skip=True)
    theory = cost.first_nonzero_steps(L)
    layers = {"latent": list(range(1, L + 1)), "first_nonzero_theory": theory.tolist(),
              "first_nonzero_pc_infer": res.first_nonzero.tolist(),
              "converged_at_pc_infer": res.converged_at.tolist(),
              "convergence_lower_bound": theory.tolist()}
    if algo == "fpa":
        sim = cost.simulate_fpa(net, X[:nb], y[:nb], T, gamma, tol=cfg["tol"])
        layers["first_nonzero_simulated"] = sim["first_nonzero"].tolist()
        layers["converged_at_simulated"] = sim["converged_at"].tolist()
    layers["agree"] = bool(
        res.first_nonzero.tolist() == [t if t <= n_updates else -1 for t in theory.tolist()]
        and ("first_nonzero_simulated" not in layers
             or (layers["first_nonzero_simulated"] == layers["first_nonzero_pc_infer"]
                 and layers["converged_at_simulated"] == layers["converged_at_pc_infer"])))
    wasted = {"analytic": cost.wasted_vjps(algo, L, T, gamma),
              "measured": cost.measured_wasted(res.work, algo, L, T, gamma),
              "work": res.work}
    cfg = dict(cfg, threads=threads, steps=T, step_size=gamma)
    return {"config": cfg, "environment": environment(), "load_average": load_average(),
            "analytic": model, "measured": measured, "ratios": ratios,
            "ratio_intervals": intervals, "comparisons": comparisons, "layers": layers,
            "wasted": wasted, "noise": noise}
