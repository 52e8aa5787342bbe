"""What ``pck bench`` and ``pck complexity`` measure (the CLI only parses and prints).

Result dictionaries are plain JSON-ready data; their keys are documented in
``BENCH_KEYS`` / ``COMPLEXITY_KEYS`` and checked by tests/test_bench.py.
"""
import importlib
import math
import os
import time


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
from .harness import gemm_shapes, gemm_time, gflops, set_all_threads, time_call

COMPARE = ("numpy", "sklearn", "torch", "jax")
PC_ALGOS = ("vpc", "scaled", "fpa", "zil")

#: Top-level and per-depth keys of ``pck bench --json`` (documented in the command help).
BENCH_KEYS = ("config", "environment", "load_average", "skipped", "results")
BENCH_DEPTH_KEYS = ("depth", "sizes", "timings", "gemm_limit_us", "bp_over_gemm_limit",
                    "bp_gemm_fraction", "fpa_step_us", "input_vjps_us",
                    "fpa_step_over_input_vjps", "schedules", "baselines", "ratios",
                    "epoch", "targets")
TIMING_KEYS = ("median_us", "q1_us", "q3_us", "min_us", "max_us", "first_call_s", "repeats",
               "samples_per_s", "gflops")
COMPLEXITY_KEYS = ("config", "environment", "load_average", "analytic", "measured",
                   "ratios", "layers", "wasted")

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
)


def _echo(msg, err=False):
    print(msg)


def load_average():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def _timing_dict(t, batch=None, flops=None):
    d = {"median_us": t.median_s * 1e6, "q1_us": t.q1_s * 1e6, "q3_us": t.q3_s * 1e6,
         "min_us": t.min_s * 1e6, "max_us": t.max_s * 1e6, "first_call_s": t.first_call_s,
         "repeats": t.repeats, "number": t.number,
         "samples_per_s": batch / t.median_s if batch and t.median_s > 0 else None,
         "gflops": gflops(flops, t.median_s) if flops else None}
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
    if steps is not None:
        return steps + 1 if algo == "zil" else steps
    return L + 1 if algo == "zil" else L


def _make_net(sizes, dtype, batch, seed=0):
    net = MLP(sizes, activation="tanh", loss="nll", dtype=dtype, seed=seed)
    X, y = random_batch(sizes, batch, dtype, seed)
    labels, targets = net.check_targets(y, batch)
    return net, X, y, labels, targets


def bench_depth(L, cfg, log=_echo):
    """All measurements for one depth; ``cfg`` holds the CLI options (see ``run_bench``)."""
    sizes = [cfg["inputs"]] + [cfg["width"]] * L + [cfg["outputs"]]
    B, dtype, reps = cfg["batch"], cfg["dtype"], cfg["repeats"]
    net, X, y, labels, targets = _make_net(sizes, dtype, B)
    kf = cost.kernel_flops(sizes, B, steps=L if cfg["steps"] is None else cfg["steps"])
    grad = net.zeros_like_params()
    opt = Optimizer(net, "sgd", lr=cfg["lr"], momentum=0.9)
    ws = net.workspace(B)
    timings = {}

    def measure(name, fn, flops=None):
        timings[name] = _timing_dict(time_call(fn, repeats=reps), B, flops)

    measure("forward", lambda: net._forward_raw(X), kf["forward"])

    def bp_step():
        backprop_into(net, X, labels, targets, grad)
        opt.step(grad)
    measure("bp", bp_step, kf["backprop"] + kf["sgd"])

    skip = not cfg["no_skip"]
    for algo in cfg["algos"]:
        if algo == "bp":
            continue
        T = _pc_steps(algo, L, cfg["steps"])
        gamma = 1.0 if algo == "zil" else cfg["step_size"]
        variants = [(algo, skip)] + ([(algo + "-full", False)] if skip and algo == "fpa" else [])
        for name, sk in variants:
            runner = PCRunner(net, algo, T, gamma, schedule=cfg["schedule"], skip=sk)

            def pc_step(runner=runner):
                runner.run(X, labels, targets, grad)
                opt.step(grad)
            flops = kf["fpa"] + kf["sgd"] if algo == "fpa" and not sk else None
            measure(name, pc_step, flops)

    # issue 3: one fpa inference step over all layers vs the input-side VJPs of backprop
    T = L if cfg["steps"] is None else cfg["steps"]
    runner = PCRunner(net, "fpa", max(T, 1), cfg["step_size"], schedule="serial", skip=False)
    _, pws, _ = runner.run(X, labels, targets, grad)
    data = K.PCData(X=X, labels=labels, targets=targets)
    st = pws.state

    def fpa_one_step():
        K._steps_serial(0, 1, 0, B, 0, runner.knet, data, st, runner.opts)
    measure("fpa_step", fpa_one_step, kf["fpa_step"])
    backprop_into(net, X, labels, targets, grad)
    measure("input_vjps", lambda: probes.input_vjps(ws["d"], net.params, net.sizes, B),
            kf["input_vjps"])

    # schedules of the full-work fpa inference (no update)
    schedules = {}
    for sched in ("serial", "layers", "batch"):
        r = PCRunner(net, "fpa", T, cfg["step_size"], schedule=sched, skip=False)
        t = time_call(lambda r=r: r.run(X, labels, targets, grad), repeats=reps)
        schedules[f"{sched}_us"] = t.median_s * 1e6
    schedules["layers_speedup"] = schedules["serial_us"] / schedules["layers_us"]
    schedules["batch_speedup"] = schedules["serial_us"] / schedules["batch_us"]
    schedules["threads"] = get_threads()

    gl = gemm_time(gemm_shapes(sizes, B, "backprop"), dtype, repeats=reps).median_s * 1e6
    res = {"depth": L, "sizes": sizes, "timings": timings, "gemm_limit_us": gl,
           "bp_over_gemm_limit": timings["bp"]["median_us"] / gl,
           "bp_gemm_fraction": gl / timings["bp"]["median_us"],
           "fpa_step_us": timings["fpa_step"]["median_us"],
           "input_vjps_us": timings["input_vjps"]["median_us"],
           "fpa_step_over_input_vjps": (timings["fpa_step"]["median_us"]
                                        / timings["input_vjps"]["median_us"]),
           "schedules": schedules, "baselines": {}, "ratios": {}, "epoch": None,
           "targets": []}
    _compare(res, net, sizes, cfg, log)
    res["targets"] = _targets(res)
    return res


def _compare(res, net, sizes, cfg, log):
    B, dtype, reps = cfg["batch"], cfg["dtype"], cfg["repeats"]
    pck = res["timings"]
    T = len(sizes) - 2 if cfg["steps"] is None else cfg["steps"]
    for name in cfg["compare"]:
        if name == "sklearn":
            continue
        try:
            fns = _load_baseline(name).make(
                sizes, B, dtype, steps=T, step_size=cfg["step_size"], lr=cfg["lr"],
                **({"threads": cfg["threads"]} if name in ("torch", "jax") else {}))
        except Unavailable as exc:
            res["baselines"][name] = {"skipped": str(exc)}
            continue
        out = {}
        for op in ("forward", "bp", "fpa"):
            out[op] = _timing_dict(time_call(fns[op], repeats=reps), B)
        res["baselines"][name] = out
        res["ratios"][name] = {op: pck[op]["median_us"] / out[op]["median_us"]
                               for op in ("forward", "bp")}
        for mine in ("fpa", "fpa-full"):
            if mine in pck:
                res["ratios"][name][mine] = pck[mine]["median_us"] / out["fpa"]["median_us"]
    if "sklearn" in cfg["compare"]:
        n_samples = cfg["epoch_samples"]
        try:
            epoch, n = _load_baseline("sklearn").make(sizes, B, dtype, lr=cfg["lr"],
                                                      n_samples=n_samples)
        except Unavailable as exc:
            res["baselines"]["sklearn"] = {"skipped": str(exc)}
            return
        sk = time_call(epoch, repeats=max(1, min(reps, 3)), warmup=0, number=1)
        Xs, ys = random_batch(sizes, n_samples, dtype, seed=1)
        mine = MLP(sizes, activation="tanh", loss="nll", dtype=dtype, seed=0)
        pe = time_call(lambda: train(mine, Xs, ys, epochs=1, batch_size=B, lr=cfg["lr"]),
                       repeats=max(1, min(reps, 3)), warmup=0, number=1)
        n_batches = math.ceil(n_samples / B)
        res["baselines"]["sklearn"] = {"epoch": _timing_dict(sk, n_samples)}
        res["epoch"] = {"samples": n_samples, "batches": n_batches,
                        "pck_train_epoch_s": pe.median_s,
                        "pck_from_step_s": pck["bp"]["median_us"] * 1e-6 * n_batches,
                        "sklearn_epoch_s": sk.median_s,
                        "ratio": pe.median_s / sk.median_s}
        res["ratios"]["sklearn"] = {"epoch": pe.median_s / sk.median_s}


def _targets(res):
    out = []
    for name, (src_a, op_a), (src_b, op_b), limit in TARGETS:
        def get(src, op):
            if src == "pck":
                if op == "epoch":
                    return res["epoch"]["pck_train_epoch_s"] if res["epoch"] else None
                t = res["timings"].get(op)
                return t["median_us"] * 1e-6 if t else None
            b = res["baselines"].get(src, {})
            if op == "epoch":
                return res["epoch"]["sklearn_epoch_s"] if res["epoch"] else None
            t = b.get(op) if isinstance(b, dict) else None
            return t["median_us"] * 1e-6 if isinstance(t, dict) and "median_us" in t else None
        a, b = get(src_a, op_a), get(src_b, op_b)
        if a is None or b is None:
            continue
        ratio = a / b
        out.append({"name": name, "ratio": ratio, "limit": limit, "met": bool(ratio <= limit),
                    "factor_off": ratio / limit})
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
            "skipped": skipped, "results": results}


def run_complexity(cfg):
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
    key = algo if algo in ("fpa", "zil") else "fpa"

    net, X, y, labels, targets = _make_net(sizes, dtype, B)
    grad = net.zeros_like_params()
    ws = net.workspace(B)
    bp_t = time_call(lambda: backprop_into(net, X, labels, targets, grad), repeats=reps)
    fwd_t = time_call(lambda: net._forward_raw(X), repeats=reps)
    backprop_into(net, X, labels, targets, grad)
    vjp_us = []
    for l in range(1, L + 1):
        t = time_call(lambda l=l: probes.one_input_vjp(ws["d"], net.params, net.sizes, B, l),
                      repeats=reps)
        vjp_us.append(t.median_s * 1e6)
    measured = {"bp_us": bp_t.median_s * 1e6, "forward_us": fwd_t.median_s * 1e6,
                "vjp_us_per_layer": vjp_us, "threads": threads}
    for sched in ("serial", "layers", "batch"):
        for sk in (False, True):
            r = PCRunner(net, algo, T, gamma, schedule=sched, skip=sk)
            t = time_call(lambda r=r: r.run(X, labels, targets, grad), repeats=reps)
            measured[f"{sched}{'_skip' if sk else ''}_us"] = t.median_s * 1e6
    n_updates = T - 1 if algo == "zil" else T
    critical = measured["forward_us"] + n_updates * max(vjp_us, default=0.0)
    measured["critical_path_us"] = critical
    bp_us = measured["bp_us"]
    ratios = {"analytic_time_ratio": model[key]["time_ratio_bp"],
              "analytic_work_ratio": model[key]["work_flops"] / model["bp"]["work_flops"],
              "serial": measured["serial_us"] / bp_us,
              "serial_skip": measured["serial_skip_us"] / bp_us,
              "layer_parallel": measured["layers_us"] / bp_us,
              "layer_parallel_skip": measured["layers_skip_us"] / bp_us,
              "batch_parallel": measured["batch_us"] / bp_us,
              "critical_path": critical / bp_us}

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
            "analytic": model, "measured": measured, "ratios": ratios, "layers": layers,
            "wasted": wasted}
