"""``pck bench`` and ``pck complexity``: timings and the paper's cost model, as tables.

No numerics here: pckernels_bench.suite measures, this module parses and prints.
"""
import click

from pckernels.io import atomic_write_json
from pckernels.model import DTYPES
from pckernels.pc import SCHEDULES
from pckernels_bench.harness import MIN_CONCLUSIVE_REPEATS
from pckernels_bench.suite import (COMPARE, PC_ALGOS, run_bench,
                                   run_complexity)

from .common import RenamedOption, count

# five rounds: the fewest from which a ratio can be conclusive (MIN_CONCLUSIVE_REPEATS)
QUICK = {"depths": [2, 3], "width": 8, "inputs": 20, "outputs": 5, "batch": 16,
         "repeats": MIN_CONCLUSIVE_REPEATS, "epoch_samples": 256}

REPEATS_HELP = (f"Interleaved rounds of samples; a ratio needs at least "
                f"{MIN_CONCLUSIVE_REPEATS} to be conclusive (with fewer there is no 90% "
                f"interval, and every comparison prints as inconclusive).")


def _int_list(text, name):
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: a comma-separated list of integers",
                                 param_hint=name) from None
    if not values or min(values) < 1:
        raise click.BadParameter(f"{text!r}: integers >= 1", param_hint=name)
    return values


def _name_list(text, allowed, name):
    values = [v.strip() for v in str(text).split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad:
        raise click.BadParameter(f"unknown {', '.join(bad)}; choose from {', '.join(allowed)}",
                                 param_hint=name)
    return values


def _fmt(x, spec=".1f"):
    if x is None:
        return "-"
    return format(x, spec)


def format_interval(iv, spec=".2f"):
    """``median [lo, hi]`` of a ratio interval (``-`` for None)."""
    if iv is None:
        return "-"
    return f"{iv['median']:{spec}} [{iv['lo']:{spec}}, {iv['hi']:{spec}}]"


def format_side(side, below, above):
    """The word for a :func:`pckernels_bench.harness.against_line` result.

    ``below`` / ``above`` name the two conclusive outcomes; anything else is printed as
    inconclusive, with the reason, so that no ratio whose interval crosses its line (or
    has too few repeats for an interval) reads as a result.
    """
    if side is None:
        return "-"
    if not side["conclusive"]:
        return "inconclusive" + (" (too few repeats)" if "repeats" in (side["reason"] or "")
                                 else "")
    return below if side["below"] else above


def format_noise(noise):
    """One line on the measuring conditions; a warning when they were noisy."""
    if not noise:
        return "noise: not recorded"
    load = noise["load_average"]
    cw = noise["cpu_over_wall"]
    facts = (f"load {load[0]:.2f} on {noise['cpu_count']} cores" if load else "load ?") + (
        f", CPU/wall {cw:.2f}" if cw is not None else "") + (
        f", run-queue wait/wall {noise['runqueue_wait']:.2f}"
        if noise.get("runqueue_wait") is not None else "") + (
        f", spread up to {100 * noise['spread']:.0f}%, {noise['repeats']} repeats")
    if not noise["noisy"]:
        return f"noise: {facts}: quiet"
    return (f"WARNING: {'; '.join(noise['reasons'])}: ratios below may be flipped by noise; "
            f"trust only the conclusive ones ({facts})")


def _table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths))) for r in [header] + rows]
    return "\n".join(lines)


def _shape_options(f):
    """--width, --inputs, --outputs, --batch-size, --dtype: the network both commands time."""
    for option in reversed([
            click.option("--width", type=click.IntRange(min=1), default=64, show_default=True,
                         help="Width of every hidden layer."),
            click.option("--inputs", type=click.IntRange(min=1), default=784,
                         show_default=True, help="Input features n_0 (784: MNIST's)."),
            click.option("--outputs", type=click.IntRange(min=2), default=10,
                         show_default=True, help="Output units (classes)."),
            click.option("--batch-size", "batch", type=click.IntRange(min=1), default=64,
                         show_default=True, cls=RenamedOption, old=("--batch",),
                         help="Rows of the random batch the timed steps use."),
            click.option("--dtype", type=click.Choice(DTYPES), default="float32",
                         show_default=True, help="Floating-point type of the networks.")]):
        f = option(f)
    return f


def _set_threads_or_fail(threads):
    from pckernels.config import set_threads
    if threads:
        try:
            set_threads(threads)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--threads") from None


@click.command("bench")
@click.option("--depth", "depths", default="2,5,10,20", show_default=True,
              cls=RenamedOption, old=("--depths",),
              help="Hidden-layer counts L to time: one, or several comma-separated.")
@_shape_options
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="One thread count for Numba, BLAS, torch and XLA [default: all].")
@click.option("--schedule", type=click.Choice(SCHEDULES), default="auto", show_default=True,
              help="Parallel schedule of PC inference in the training steps.")
@click.option("--steps", type=click.IntRange(min=0), default=None,
              help="Inference steps T, the state updates of every variant [default: L].")
@click.option("--step-size", type=float, default=1.0, show_default=True,
              help="Inference step size gamma of the PC variants.")
@click.option("--algo", "algos", default="bp,fpa,zil", show_default=True,
              cls=RenamedOption, old=("--algos",),
              help="bp and PC variants (vpc, scaled, fpa, zil) to time, comma-separated.")
@click.option("--no-skip", is_flag=True,
              help="Time PC variants without skipping provably unchanged work. Without it, "
                   "fpa is timed both ways (rows fpa and fpa-full).")
@click.option("--repeats", type=click.IntRange(min=1), default=7, show_default=True,
              help=REPEATS_HELP)
@click.option("--compare", default="", show_default=True,
              help="Baselines: numpy,sklearn,torch,jax (missing packages are skipped).")
@click.option("--lr", type=float, default=0.05, show_default=True,
              help="Learning rate of the timed SGD-momentum updates (pck train's default; "
                   "the work timed is the same at any rate).")
@click.option("--epoch-samples", type=click.IntRange(min=1), default=60000, show_default=True,
              help="Samples per epoch for the sklearn comparison.")
@click.option("--quick", is_flag=True,
              help=f"Tiny sizes (20-8xL-5, batch 16, L in 2,3), {MIN_CONCLUSIVE_REPEATS} "
                   "repeats: a smoke test.")
@click.option("--targets", "show_targets", is_flag=True,
              help="Also print the project's speed targets with their verdicts (always in "
                   "the JSON).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write all results here.")
def bench(depths, width, inputs, outputs, batch, dtype, threads, schedule, steps, step_size,
          algos, no_skip, repeats, compare, lr, epoch_samples, quick, show_targets,
          json_path):
    """Time forward, a backprop step and PC training steps; compare with baselines.

    A backprop step is forward + backward + SGD-momentum update; a PC step is T inference
    steps + the update. With vpc, the row vpc-auto times the default step rule (same T,
    stop off); vpc and vpc-auto step a copy of the network with a 1e-12 learning rate, so
    that they are timed at its initial weights rather than on a batch the other rows
    have memorised. Ratios are pckernels / other (below 1: pckernels is faster).
    All operations of a depth are timed together: each is called once first (JIT
    compilation, shown separately as first_s), then the samples alternate between them
    round by round. A ratio is the median of the per-round ratios with a 90% interval;
    a target is met or missed only when the whole interval lies on one side of its limit
    and there are at least 5 rounds, else it prints as inconclusive. A warning line says
    when the machine was loaded or the samples noisy.

    \b
    JSON (--json): {"config", "environment", "load_average", "skipped" (baseline ->
    reason), "noise" (all depths: worst of each field), "results": [per depth: "depth",
    "sizes", "timings" (op -> {"median_us", "q1_us", "q3_us", "min_us", "max_us",
    "first_call_s", "repeats", "number", "samples_per_s", "gflops", "cpu_over_wall"}; ops
    forward, bp, the PC algos, fpa-full, vpc-auto, fpa_step, input_vjps), "gemm_limit_us"
    (the same GEMMs alone, through the kernels' single-threaded BLAS), "bp_over_gemm_limit", "bp_gemm_fraction",
    "fpa_step_us", "input_vjps_us", "fpa_step_over_input_vjps", "schedules"
    ({serial,layers,batch}_us, layers_speedup, batch_speedup, threads,
    {layers,batch}_speedup_interval), "baselines" (name -> op -> timing, or {"skipped"}),
    "ratios" (name -> op -> pckernels/other, median of paired ratios),
    "ratio_intervals" ("vs_bp": op -> op/bp, "fpa_step_over_input_vjps",
    "bp_over_gemm_limit", "vpc_auto_over_fixed", baseline name -> op -> pckernels/other; each an interval
    {"median", "lo", "hi", "n", "coverage", "q1", "q3"}), "epoch" (sklearn comparison
    with "ratio_interval", or null), "targets" ([{"name", "ratio", "lo", "hi", "n",
    "limit", "met" (true, false, or null when inconclusive), "conclusive", "reason",
    "factor_off"}]), "noise" ({"load_average", "cpu_count", "threads", "cpu_over_wall",
    "runqueue_wait", "descheduled", "spread", "repeats", "noisy", "reasons"})]}
    """
    cfg = {"depths": _int_list(depths, "--depth"), "width": width, "inputs": inputs,
           "outputs": outputs, "batch": batch, "dtype": dtype, "threads": threads,
           "schedule": schedule, "steps": steps, "step_size": step_size,
           "algos": _name_list(algos, ("bp",) + PC_ALGOS, "--algo"), "no_skip": no_skip,
           "repeats": repeats, "compare": _name_list(compare, COMPARE, "--compare"),
           "lr": lr, "epoch_samples": epoch_samples, "quick": quick}
    if not step_size > 0:
        raise click.BadParameter("must be > 0", param_hint="--step-size")
    if quick:
        cfg.update(QUICK)
    _set_threads_or_fail(threads)
    out = run_bench(cfg, log=lambda msg, err=False: click.echo(msg, err=err))
    c = out["config"]
    click.echo(f"pck bench: {c['inputs']}-{c['width']}xL-{c['outputs']} tanh, batch "
               f"{c['batch']}, {c['dtype']}, {count(c['threads'], 'thread')}, schedule "
               f"{c['schedule']}, "
               f"load average {_fmt_load(out['load_average'])}")
    for res in out["results"]:
        click.echo("")
        click.echo(format_depth(res, c, show_targets))
    click.echo("")
    click.echo(COLUMNS)
    if json_path:
        atomic_write_json(json_path, out)


def _fmt_load(load):
    return "/".join(f"{v:.2f}" for v in load) if load else "?"


def format_target(g):
    """The met column of a target: yes, NO, or inconclusive (never a bare yes/NO when the
    ratio's interval crosses the limit)."""
    side = {"conclusive": g["conclusive"], "below": g["met"], "reason": g["reason"]}
    return format_side(side, "yes", "NO")


def format_gemm_limit(res):
    """The bp step against its matrix products alone, as a share of its time when the
    step is the slower of the two (a share above 100% would be noise read as a result)."""
    over = res["ratio_intervals"]["bp_over_gemm_limit"]
    line = (f"GEMM-bound limit of a bp step (its matrix products alone, through the same "
            f"BLAS): {res['gemm_limit_us']:.1f} us; the bp step takes "
            f"{format_interval(over)}x that")
    if over["median"] >= 1:
        return line + f", i.e. its products are {100 / over['median']:.0f}% of its time"
    return line + (": faster than its own products timed alone, which is timing noise "
                   "(see the noise line), so no share of its time is given")


#: What the columns of a depth's table mean, printed once after the tables.
COLUMNS = ("columns: us = median microseconds per call; iqr% = interquartile range / median; "
           "cpu/wall = CPU time / wall time (below 1: waiting for a core); first_s = first "
           "call, compiling included, in seconds; /bp = time / the bp step's, median [90% "
           "interval]; pck/NAME = pckernels' time / NAME's (below 1: pckernels is faster)")


def format_depth(res, cfg, show_targets=False):
    """The readable tables of one depth."""
    t = res["timings"]
    ivs = res["ratio_intervals"]
    names = [n for n in res["baselines"] if "skipped" not in res["baselines"][n]
             and n != "sklearn"]
    header = ["L=%d %s" % (res["depth"], "-".join(map(str, res["sizes"]))), "us", "iqr%",
              "cpu/wall", "first_s", "samples/s", "GFLOP/s", "/bp [90%]"]
    for n in names:
        header += [f"{n}_us", f"pck/{n} [90%]"]
    rows = []
    for op in t:
        if op in ("fpa_step", "input_vjps"):
            continue
        tm = t[op]
        row = [op, _fmt(tm["median_us"]),
               _fmt(100 * (tm["q3_us"] - tm["q1_us"]) / tm["median_us"], ".0f"),
               _fmt(tm["cpu_over_wall"], ".2f"),
               _fmt(tm["first_call_s"], ".2f"), _fmt(tm["samples_per_s"], ",.0f"),
               _fmt(tm["gflops"], ".2f"), format_interval(ivs["vs_bp"].get(op))]
        base_op = "fpa" if op.startswith("fpa") else op
        for n in names:
            b = res["baselines"][n].get(base_op)
            row += [_fmt(b["median_us"]) if b else "-",
                    format_interval(ivs.get(n, {}).get(op), ".3f")]
        rows.append(row)
    lines = [format_noise(res["noise"]), _table(header, rows)]
    lines.append(format_gemm_limit(res))
    lines.append(f"one fpa inference step (all layers, no skip): {res['fpa_step_us']:.1f} us; "
                 f"input-side VJPs of one backward pass: {res['input_vjps_us']:.1f} us; "
                 f"ratio {format_interval(ivs['fpa_step_over_input_vjps'])}")
    if "vpc_auto_over_fixed" in ivs:
        lines.append(f"vpc step rule: auto (same T, stop off) / fixed step = "
                     f"{format_interval(ivs['vpc_auto_over_fixed'], '.3f')}")
    s = res["schedules"]
    lines.append(f"fpa-full inference, {count(s['threads'], 'thread')}: serial "
                 f"{s['serial_us']:.1f} us, "
                 f"layer-parallel {s['layers_us']:.1f} us "
                 f"(x{format_interval(s['layers_speedup_interval'])}), "
                 f"batch-parallel {s['batch_us']:.1f} us "
                 f"(x{format_interval(s['batch_speedup_interval'])})")
    if res["epoch"]:
        e = res["epoch"]
        lines.append(f"epoch of {count(e['samples'], 'sample')} "
                     f"({count(e['batches'], 'batch', 'batches')}): pckernels "
                     f"train() {1e3 * e['pck_train_epoch_s']:.1f} ms (bp step x batches "
                     f"{1e3 * e['pck_from_step_s']:.1f} ms), sklearn MLPClassifier "
                     f"{1e3 * e['sklearn_epoch_s']:.1f} ms, pck/sklearn "
                     f"{format_interval(e['ratio_interval'], '.3f')}")
    for n, b in res["baselines"].items():
        if "skipped" in b:
            lines.append(f"{n}: skipped ({b['skipped']})")
    if res["targets"] and show_targets:
        lines.append(_table(["target", "ratio [90%]", "limit", "met", "off by"],
                            [[g["name"],
                              format_interval({"median": g["ratio"], "lo": g["lo"],
                                               "hi": g["hi"]}, ".3f"),
                              _fmt(g["limit"], ".2f"), format_target(g),
                              _fmt(g["factor_off"], ".2f") + "x"]
                             for g in res["targets"]]))
    return "\n".join(lines)


@click.command("complexity")
@click.option("--depth", type=click.IntRange(min=1), default=5, show_default=True,
              help="Hidden layers L.")
@_shape_options
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="P, the threads of the parallel schedules [default: all].")
@click.option("--algo", type=click.Choice(("fpa", "zil", "vpc")), default="fpa",
              show_default=True, help="The PC variant whose inference is costed and timed.")
@click.option("--steps", type=click.IntRange(min=0), default=None,
              help="Inference steps T, the state updates of every variant [default: L].")
@click.option("--step-size", type=float, default=1.0, show_default=True,
              help="Inference step size gamma.")
@click.option("--tol", type=float, default=1e-6, show_default=True,
              help="Convergence tolerance of the per-layer counts.")
@click.option("--count-batch-size", "count_batch", type=click.IntRange(min=1), default=8,
              show_default=True, cls=RenamedOption, old=("--count-batch",),
              help="Rows of the random batch the per-layer counts use.")
@click.option("--repeats", type=click.IntRange(min=1), default=7, show_default=True,
              help=REPEATS_HELP)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write all results here.")
def complexity(depth, width, inputs, outputs, batch, dtype, threads, algo, steps, step_size,
               tol, count_batch, repeats, json_path):
    """The paper's cost model next to measured times, per-layer counts and wasted work.

    Times are divided by the measured backprop time (forward + backward, no update).
    Critical path: forward + sum over steps of the slowest layer's measured VJP.
    Backprop, every schedule and the per-layer VJPs are timed together, compiled first,
    with their samples alternating round by round; meas/bp is the median of the per-round
    ratios, shown with its 90% interval. It is called faster or slower than backprop
    (line 1.0) and below or above the model (the analytic TIME/bp) only when the whole
    interval lies on one side of the line and there are at least 5 rounds; otherwise
    "inconclusive". A warning line says when the machine was loaded or the samples noisy.

    \b
    JSON (--json): {"config", "environment", "load_average",
    "analytic" (pckernels.cost.analytic: "C", "C_sum", "C_max", "L", and per algorithm
      {"steps", "work_flops", "time_flops", "work_fwd", "time_fwd", "time_ratio_bp"}),
    "measured" ("bp_us", "forward_us", "vjp_us_per_layer", "threads", "critical_path_us",
      "{serial,layers,batch}_us" and "..._skip_us": inference + final update),
    "ratios" (each / bp: "analytic_time_ratio", "analytic_work_ratio", "serial",
      "serial_skip", "layer_parallel", "layer_parallel_skip", "batch_parallel",
      "batch_parallel_skip", "critical_path"; measured ones: median of paired ratios),
    "ratio_intervals" (measured ratio -> {"median", "lo", "hi", "n", "coverage", "q1",
      "q3"}),
    "comparisons" (measured ratio -> {"vs_bp", "vs_model"}, each {"line", "below" (true,
      false, or null when inconclusive), "conclusive", "reason"}),
    "noise" ({"load_average", "cpu_count", "threads", "cpu_over_wall", "runqueue_wait",
      "descheduled", "spread", "repeats", "noisy", "reasons"}),
    "layers" ("latent", "first_nonzero_theory", "first_nonzero_pc_infer",
      "converged_at_pc_infer", "convergence_lower_bound", fpa: "first_nonzero_simulated",
      "converged_at_simulated"; "agree"),
    "wasted" ("analytic": cost.wasted_vjps, "measured": cost.measured_wasted, "work")}
    """
    if not step_size > 0:
        raise click.BadParameter("must be > 0", param_hint="--step-size")
    _set_threads_or_fail(threads)
    cfg = {"depth": depth, "width": width, "inputs": inputs, "outputs": outputs,
           "batch": batch, "dtype": dtype, "threads": threads, "algo": algo, "steps": steps,
           "step_size": step_size, "tol": tol, "count_batch": count_batch,
           "repeats": repeats}
    out = run_complexity(cfg, log=lambda msg, err=False: click.echo(msg, err=err))
    click.echo(format_complexity(out))
    if json_path:
        atomic_write_json(json_path, out)


def format_complexity(out):
    c, a, m, r = out["config"], out["analytic"], out["measured"], out["ratios"]
    key = c["algo"] if c["algo"] in ("fpa", "zil") else "fpa"
    sizes = [c["inputs"]] + [c["width"]] * c["depth"] + [c["outputs"]]
    lines = [f"pck complexity: {'-'.join(map(str, sizes))} tanh, batch {c['batch']}, "
             f"{c['dtype']}, {c['algo']} T={c['steps']} step={c['step_size']:g}, "
             f"{count(m['threads'], 'thread')}, load average {_fmt_load(out['load_average'])}",
             "C_i (forward FLOPs per layer): " + ", ".join(f"{x:.3g}" for x in a["C"])
             + f"; C_F = {a['C_sum']:.4g}, C_max = {a['C_max']:.4g}", ""]
    iv, cmp = out["ratio_intervals"], out["comparisons"]

    def measured_row(label, us_key, ratio_key):
        c_ = cmp[ratio_key]
        return [label, "", "", "", _fmt(m[us_key]), _fmt(r[ratio_key], ".2f"),
                f"[{iv[ratio_key]['lo']:.2f}, {iv[ratio_key]['hi']:.2f}]",
                format_side(c_["vs_bp"], "faster", "slower"),
                format_side(c_["vs_model"], "below", "above")]
    P = m["threads"]
    rows = [["backprop", "3.00", "3.00", "1.00", _fmt(m["bp_us"]), "1.00", "", "", ""],
            [f"{key} (model)", _fmt(a[key]["work_fwd"], ".2f"), _fmt(a[key]["time_fwd"], ".2f"),
             _fmt(a[key]["time_ratio_bp"], ".2f"), "", "", "", "", ""],
            measured_row("serial (full work)", "serial_us", "serial"),
            measured_row("serial (skip)", "serial_skip_us", "serial_skip"),
            measured_row(f"layer-parallel P={P}", "layers_us", "layer_parallel"),
            measured_row(f"layer-parallel P={P} (skip)", "layers_skip_us",
                         "layer_parallel_skip"),
            measured_row(f"batch-parallel P={P}", "batch_us", "batch_parallel"),
            measured_row(f"batch-parallel P={P} (skip)", "batch_skip_us",
                         "batch_parallel_skip"),
            measured_row("ideal critical path", "critical_path_us", "critical_path")]
    lines.append(format_noise(out["noise"]))
    lines.append(_table(["", "WORK/C_F", "TIME/C_F", "TIME/bp", "measured_us", "meas/bp",
                         "90% interval", "vs bp (1.00)",
                         f"vs model ({a[key]['time_ratio_bp']:.2f})"], rows))
    lines.append("per-layer input VJP (us): " + ", ".join(f"{v:.1f}" for v in
                                                           m["vjp_us_per_layer"]))
    lay = out["layers"]
    header = ["latent", "first_nonzero theory", "pc_infer"]
    cols = [lay["first_nonzero_theory"], lay["first_nonzero_pc_infer"]]
    if "first_nonzero_simulated" in lay:
        header.append("simulated")
        cols.append(lay["first_nonzero_simulated"])
    header += ["converged >=", "pc_infer"]
    cols += [lay["convergence_lower_bound"], lay["converged_at_pc_infer"]]
    if "converged_at_simulated" in lay:
        header.append("simulated")
        cols.append(lay["converged_at_simulated"])
    rows = [[l] + [col[i] for col in cols] for i, l in enumerate(lay["latent"])]
    lines += ["", _table(header, rows),
              f"counts agree (theory / pc_infer / simulation): {'yes' if lay['agree'] else 'NO'}"
              " (-1: not within T steps)"]
    w = out["wasted"]
    lines.append(f"wasted inference VJPs: analytic {w['analytic']['wasted']} of "
                 f"{w['analytic']['total']} ({100 * w['analytic']['wasted_fraction']:.1f}%), "
                 f"measured by pc_infer(skip=True) {w['measured']['wasted']:g} of "
                 f"{w['measured']['total']:g} ({100 * w['measured']['wasted_fraction']:.1f}%)")
    return "\n".join(lines)
