"""``pck sweep`` and ``pck plot``: the paper's Figures 3-5 grid. No numerics here."""
import os
import sys
import time

import click

from pckernels.kernels import ACTIVATIONS, LOSSES
from pckernels.model import DTYPES, WEIGHT_INITS, check_init
from pckernels.training import MLP_ALGORITHMS as ALGORITHMS

from .common import (RenamedOption, check_writable_dir, count, data_options, echo_err,
                     gain_option, init_option, is_tty, memory_option, optimizer_options,
                     param_option, positive, warn_unused)


def _number_list(kind, what):
    def parse(ctx, param, value):
        try:
            values = [kind(v) for v in value.replace(" ", "").split(",") if v]
        except ValueError:
            raise click.BadParameter(f"{value!r}: expected a comma-separated list of {what}")
        if not values:
            raise click.BadParameter("needs at least one value")
        return tuple(values)
    return parse


#: SweepConfig's grid fields, by the option that sets each.
_GRID_OPTIONS = {"depths": "--depth", "ratios": "--ratio", "step_sizes": "--step-size",
                 "seeds": "--seed"}


def _option_names(message, options=None):
    """A grid configuration's error about a grid field (``depths: ...``), naming its option
    (``options``: field -> option, SweepConfig's by default)."""
    options = _GRID_OPTIONS if options is None else options
    field, sep, rest = message.partition(": ")
    return f"{options[field]}: {rest}" if sep and field in options else message


def check_grid_options(out_dir, init, param, gain, seeds, scheduler, dask_local, max_memory,
                       what):
    """The checks ``pck sweep`` and ``pck study`` share, before anything is written: one
    clean usage error (exit 2) for conflicting Dask options, an unknown or inconsistent
    initialisation, a seed out of range, an unwritable ``--out`` or an invalid
    ``$PCK_MAX_MEMORY`` (``what``: "the sweep", "the study")."""
    from pckernels.memory import MemoryLimitError, check_memory
    if scheduler and dask_local:
        raise click.UsageError("use either --scheduler or --dask-local, not both")
    if init not in WEIGHT_INITS:  # forward/zeros, the old latent spellings of pck train
        raise click.BadParameter(f"{init!r} is not one of {', '.join(map(repr, WEIGHT_INITS))}",
                                 param_hint="--init")
    try:
        check_init(init, param, gain)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if any(s < 0 or s >= 2 ** 32 for s in seeds):
        raise click.BadParameter(f"every seed must be in 0..{2 ** 32 - 1}",
                                 param_hint="--seed")
    check_writable_dir(out_dir, "--out")
    try:
        check_memory(0, what, max_memory)  # an invalid $PCK_MAX_MEMORY fails here
    except MemoryLimitError as exc:
        raise click.UsageError(str(exc)) from None


def grid_data(dataset, data_dir, val_fraction, seed, dtype):
    """Load the data once here for a clear message (the workers load it again themselves).

    Returns ``(facts, data_bytes, n_features, n_classes, fields)``: facts ``(name, n_train,
    n_val, n_test)``, the bytes a cell's copy of the data takes, and ``fields`` the
    ``dataset``/``data_dir`` of the grid configuration (absolute paths but for the
    built-in datasets)."""
    from .main import load_split
    ds, X_tr, y_tr, X_val, y_val = load_split(dataset, data_dir, val_fraction, seed, dtype)
    facts = (ds.name, len(y_tr), len(y_val), len(ds.y_test))
    data_bytes = (X_tr.nbytes + X_val.nbytes + ds.X_test.nbytes) * 2
    fields = {"dataset": ds.name if ds.name in ("digits", "mnist", "fashion-mnist")
              else os.path.abspath(dataset),
              "data_dir": os.path.abspath(data_dir) if data_dir else None}
    return facts, data_bytes, ds.n_features, ds.n_classes, fields


def data_summary(facts):
    """``NAME: N train / N val / N test`` of :func:`grid_data`'s facts."""
    return f"{facts[0]}: {facts[1]} train / {facts[2]} val / {facts[3]} test"


def check_cells_memory(config, per_cell, model, jobs, scheduler, dask_local, max_memory):
    """Runtime error (exit 1) when the cells running at once, each holding ``per_cell()``
    bytes (its data and its widest network, ``model`` describing it), would not fit, or
    when a layer is too wide to estimate."""
    from pckernels.memory import MemoryLimitError, check_memory
    in_parallel = 1 if (scheduler or dask_local) else min(jobs, len(config.cells()))
    try:
        check_memory(in_parallel * per_cell(),
                     f"{in_parallel} cell{'s' if in_parallel > 1 else ''} at once, each an "
                     f"MLP {model},", max_memory)
    except MemoryLimitError as exc:
        raise click.ClickException(str(exc)) from None


def _clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _csv_help():
    from pckernels.sweep import CSV_COLUMNS
    lines = [f"  {k}: {v}" for k, v in CSV_COLUMNS.items()]
    return "\n".join(lines)


def _stack(*options):
    """One decorator applying ``options`` (click option decorators) in the order listed,
    which is also their order in --help."""
    def apply(f):
        for option in reversed(options):
            f = option(f)
        return f
    return apply


#: ``--out DIR`` of ``pck sweep`` and ``pck study``.
grid_out_option = click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), required=True,
    help="Results folder (created; reused to resume).")

#: The data options of a grid: where the data comes from and the validation share.
grid_data_options = _stack(
    data_options,
    click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1,
                 show_default=True, help="Share of the training set held out for validation."))

#: The model of every cell of a grid (but its depth).
grid_model_options = _stack(
    click.option("--width", type=click.IntRange(min=1), default=64, show_default=True,
                 help="Units per hidden layer."),
    click.option("--activation", type=click.Choice(sorted(ACTIVATIONS)), default="tanh",
                 show_default=True, help="Hidden activation."),
    click.option("--loss", type=click.Choice(sorted(LOSSES)), default="nll",
                 show_default=True, help="nll: log-softmax + NLL; mse: 1/2 squared error."),
    click.option("--dtype", type=click.Choice(DTYPES), default="float32", show_default=True,
                 help="Floating-point type of the parameters, activations and data."),
    init_option, gain_option, param_option)

#: ``--epochs`` of every cell of a grid.
grid_epochs_option = click.option(
    "--epochs", type=click.IntRange(min=1), default=10, show_default=True,
    help="Passes over the training set of every run.")

#: How a grid runs (:func:`run_grid`): workers, threads, Dask, reuse, progress, memory.
grid_run_options = _stack(
    click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Cells in parallel on this machine (joblib processes)."),
    click.option("--threads", type=click.IntRange(min=1), default=None,
                 help="Numba threads per cell [default: cores // jobs, so jobs x threads <= "
                      "cores; on Dask: cores // worker threads of each host]."),
    click.option("--scheduler", default=None, metavar="ADDRESS",
                 help="Run the cells on this Dask scheduler (tcp://host:8786)."),
    click.option("--dask-local", type=click.IntRange(min=1), default=None, metavar="N",
                 help="Start a local Dask cluster of N single-threaded workers on 127.0.0.1 "
                      "and run the cells there."),
    click.option("--force", is_flag=True,
                 help="Reuse a DIR that holds a different configuration: keep the finished "
                      "cells the new grid shares with identical settings, delete the rest."),
    click.option("--progress/--no-progress", default=None,
                 help="Progress bar [default: on when stderr is a terminal; otherwise one "
                      "line per finished cell]."),
    memory_option)


SWEEP_HELP = f"""Train a grid of depths x T/L ratios x step sizes x seeds (paper, Figs. 3-5).

Each cell trains an MLP of DEPTH hidden layers of --width units with --algo, using
T = max(1, round_half_up(ratio * DEPTH)) inference steps (0.5 rounds up; both ratio and T
are recorded; ratios giving the same T share one run), plus one backprop baseline per depth
and seed. Every batch also computes backprop's gradient at the same weights to record the
cosine similarity of the update with it.

Writes DIR/results.csv (tidy: one row per cell and epoch), DIR/results.json (configuration,
package versions, machine) and DIR/cells/*.json (one per finished cell). Rerunning the same
command resumes: finished cells are skipped. A different configuration for the same DIR is
an error unless --force. Results do not depend on --jobs, --threads or the Dask cluster.

\b
CSV columns:
{_csv_help()}
"""


@click.command("sweep", help=SWEEP_HELP)
@grid_out_option
@click.option("--algo", type=click.Choice(ALGORITHMS), default="fpa", show_default=True,
              help="Algorithm of the grid (bp: baselines only).")
@click.option("--depth", "depths", default="2,5,10,20", show_default=True,
              callback=_number_list(int, "integers"), cls=RenamedOption, old=("--depths",),
              help="Hidden-layer counts L of the grid, comma-separated.")
@click.option("--ratio", "ratios", default="0.25,0.5,0.75,1,1.5,2", show_default=True,
              callback=_number_list(float, "numbers"), cls=RenamedOption, old=("--ratios",),
              help="Inference steps per layer T/L of the grid, comma-separated.")
@click.option("--step-size", "step_sizes", default="0.1,0.5,1", show_default=True,
              callback=_number_list(float, "numbers"), cls=RenamedOption,
              old=("--step-sizes",),
              help="Inference step sizes gamma of the grid, comma-separated.")
@click.option("--seed", "seeds", default="0", show_default=True,
              callback=_number_list(int, "integers"), cls=RenamedOption, old=("--seeds",),
              help="Seeds of initialisation, shuffling and the validation split, "
                   "comma-separated (one run per seed).")
@click.option("--no-baseline", is_flag=True, help="Skip the backprop baselines.")
@grid_data_options
@grid_model_options
@optimizer_options
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Samples per mini-batch (one parameter update each).")
@grid_epochs_option
@click.option("--precision-ratio", type=float, default=1.0, show_default=True,
              callback=positive(), help="scaled: k, the hidden precisions.")
@grid_run_options
def sweep(out_dir, algo, depths, ratios, step_sizes, seeds, no_baseline, dataset, data_dir,
          val_fraction, width, activation, loss, dtype, init, gain, param, optimizer, lr,
          momentum, weight_decay, batch_size, epochs, precision_ratio, jobs, threads, scheduler,
          dask_local, force, progress, max_memory):
    from pckernels import sweep as S
    from pckernels.memory import describe_sizes, training_bytes

    from .main import IDX_DATASETS

    # Every option is checked before anything is written.
    warn_unused(click.get_current_context(), [
        ("ratios", "--ratio", algo != "bp", "to --algo bp"),
        ("step_sizes", "--step-size", algo != "bp", "to --algo bp"),
        ("precision_ratio", "--precision-ratio", algo == "scaled",
         f"to --algo {algo} (only to scaled)"),
        ("momentum", "--momentum", optimizer == "sgd", f"to --optimizer {optimizer}"),
        ("data_dir", "--data-dir", dataset.strip().lower().replace("_", "-") in IDX_DATASETS,
         f"to --dataset {dataset} (only to mnist and fashion-mnist)"),
        ("jobs", "--jobs", not (scheduler or dask_local), "to a Dask run"),
    ])
    check_grid_options(out_dir, init, param, gain, seeds, scheduler, dask_local, max_memory,
                       "the sweep")
    data_facts, data_bytes, n_features, n_classes, data_fields = grid_data(
        dataset, data_dir, val_fraction, seeds[0], dtype)
    try:
        config = S.SweepConfig(
            depths=depths, ratios=ratios, step_sizes=step_sizes, seeds=seeds, algo=algo,
            baseline=not no_baseline, **data_fields, val_fraction=val_fraction, width=width,
            activation=activation, loss=loss, dtype=dtype, optimizer=optimizer, lr=lr,
            momentum=momentum, weight_decay=weight_decay, batch_size=batch_size,
            epochs=epochs, precision_ratio=precision_ratio, init=init, param=param, gain=gain)
    except S.SweepError as exc:
        raise click.UsageError(_option_names(str(exc))) from None
    sizes = [n_features] + [width] * max(config.depths) + [n_classes]
    check_cells_memory(
        config, lambda: training_bytes(sizes, batch_size, dtype=dtype, algo=algo,
                                       optimizer=optimizer, loss=loss, cosine=True,
                                       n_eval=data_facts[2] + data_facts[3],
                                       n_train=data_facts[1], param=param) + data_bytes,
        f"up to {describe_sizes(sizes)}", jobs, scheduler, dask_local, max_memory)

    header = (f"{data_summary(data_facts)}; {algo}, depths "
              f"{','.join(map(str, config.depths))}, "
              f"T/L {','.join(f'{r:g}' for r in config.ratios)}, step sizes "
              f"{','.join(f'{s:g}' for s in config.step_sizes)}, seeds "
              f"{','.join(map(str, config.seeds))}; init {init}, param {param}; "
              f"{count(epochs, 'epoch')}")
    run_grid(config, out_dir, header=header, describe=_describe_cell, jobs=jobs,
             threads=threads, scheduler=scheduler, dask_local=dask_local, force=force,
             progress=progress)


def _describe_cell(rec):
    last = rec["epochs"][-1] if rec["epochs"] else {}
    return (f"{rec['name']}: cosine {last.get('cosine', float('nan')):.4f}, "
            f"test {last.get('test_accuracy') or float('nan'):.4f}, "
            f"{rec['wall_seconds']:.1f} s" + ("" if rec["status"] == "completed"
                                              else f" [{rec['status']}]"))


def run_grid(config, out_dir, *, header, describe, jobs, threads, scheduler, dask_local,
             force, progress):
    """Run a checked grid of any kind (``pckernels.sweep.run_sweep``) with progress
    reports: set up the backend, print ``header``, one ``describe(record)`` line per
    finished cell, map every failure to one clean line. Shared by ``pck sweep`` and
    ``pck study``."""
    from pckernels import sweep as S

    backend, client, cluster = None, None, None
    if scheduler or dask_local:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise click.ClickException("--scheduler/--dask-local need dask[distributed]: "
                                       "pip install 'pckernels[dist]'") from None
        if dask_local:
            cluster = LocalCluster(n_workers=dask_local, threads_per_worker=1,
                                   host="127.0.0.1", dashboard_address=None)
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise click.ClickException(f"cannot reach Dask scheduler {scheduler}: "
                                           f"{exc}") from None
        backend = "dask"
        if threads is None:
            threads = S.dask_threads(client)
    elif jobs > 1:
        try:
            import joblib  # noqa: F401
        except ImportError:
            raise click.ClickException("--jobs needs joblib: pip install 'pckernels[dist]'") \
                from None

    click.echo(header)
    show_bar = is_tty() if progress is None else progress
    state = {"bar": None, "done": 0, "total": 0, "start": time.perf_counter()}

    def on_start(todo, skipped):
        state["total"] = len(todo)
        where = (f"Dask {client.scheduler.address}" if client is not None else
                 f"{jobs} job{'s' if jobs > 1 else ''}")
        click.echo(f"{count(len(skipped) + len(todo), 'cell')}: {len(skipped)} finished, "
                   f"{len(todo)} to run on {where}"
                   + (f" x {threads} thread{'s' if threads > 1 else ''}" if threads else ""))
        state["start"] = time.perf_counter()
        if show_bar and todo:
            state["bar"] = click.progressbar(
                length=len(todo), label="cells", show_pos=True, show_eta=True,
                file=sys.stderr, item_show_func=lambda name: name)
            state["bar"].__enter__()

    def on_result(rec):
        state["done"] += 1
        summary = describe(rec)
        if state["bar"] is not None:
            state["bar"].update(1, rec["name"])
            return
        elapsed = time.perf_counter() - state["start"]
        left = elapsed / state["done"] * (state["total"] - state["done"])
        click.echo(f"[{state['done']}/{state['total']}] {summary}  "
                   f"(elapsed {_clock(elapsed)}, ~{_clock(left)} left)", err=True)

    try:
        run = S.run_sweep(config, out_dir, jobs=jobs, threads=threads, backend=backend,
                          force=force, on_start=on_start, on_result=on_result)
    except S.SweepError as exc:
        raise click.ClickException(str(exc)) from None
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        where = exc.filename or out_dir
        raise click.ClickException(f"cannot write {where}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        raise click.ClickException(
            f"interrupted after {count(state['done'], 'cell')}; rerun the same command to resume "
            f"(finished cells are in {os.path.join(out_dir, 'cells')})") from None
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    diverged = [c.name for c, r in run.records.items() if r["status"] != "completed"]
    click.echo(f"trained {count(len(run.trained), 'cell')} in {_clock(run.seconds)}, skipped "
               f"{len(run.skipped)}; results: {os.path.join(out_dir, 'results.csv')}")
    if diverged:
        echo_err(f"diverged ({len(diverged)}): {', '.join(sorted(diverged))}")


@click.command("plot")
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the figures [default: NAME-figures beside NAME.csv, "
                   "refreshed on every run]. An --out folder that already holds these "
                   "figures is an error unless --force.")
@click.option("--cosine", "cosine_epochs", type=click.Choice(["mean", "final"]),
              default="mean", show_default=True,
              help="Figure 3: cosine averaged over all epochs' batches, or over the final "
                   "epoch's only (the subtitle says which).")
@click.option("--format", "formats", default="png,svg", show_default=True,
              cls=RenamedOption, old=("--formats",),
              help="Image formats, comma-separated.")
@click.option("--force", is_flag=True, help="Replace the figures already in --out.")
def plot(results, out_dir, cosine_epochs, formats, force):
    """Figures 3, 4 and 5 of the paper from a `pck sweep` RESULTS.csv, or the heatmaps of
    a `pck study` one.

    \b
    fig3_cosine:   cosine similarity of the update with backprop vs T/L
    fig4_val_acc:  final-epoch validation accuracy vs T/L
    fig5_test_acc: final test accuracy vs T/L
    One panel per depth, one line per step size, backprop as a dashed line; the mean over
    seeds, with a band from the lowest to the highest seed when there are several. The
    subtitles (dataset, model, optimizer) come from NAME.json beside NAME.csv, or from the
    sweep folder's results.json.

    \b
    From `pck study` (section 3.6):
    lr_batch_final_acc: final test accuracy over learning rate x batch size
    lr_batch_best_acc:  best test accuracy over the epochs, the same way
    One panel per run label, the mean over seeds; cells where every seed diverged hatched.
    """
    try:
        from pckernels.plot import PlotError, default_out_dir, plot_figures, supported_formats
        supported = supported_formats()
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    fmts = tuple(f.strip().lower() for f in formats.split(",") if f.strip())
    bad = [f for f in fmts if f not in supported] if fmts else ["(none)"]
    if bad:
        raise click.BadParameter(f"unknown image format {bad[0]!r}; choose from "
                                 f"{', '.join(supported)}", param_hint="--format")
    overwrite = force or out_dir is None
    if out_dir is None:
        out_dir = default_out_dir(results)
    try:
        from pckernels.heatmap import csv_grid_kind, plot_heatmaps
        if csv_grid_kind(results) == "lr-batch":  # `pck study`
            warn_unused(click.get_current_context(),
                        [("cosine_epochs", "--cosine", False, "to an lr-batch grid")])
            paths = plot_heatmaps(results, out_dir, formats=fmts, overwrite=overwrite)
        else:
            paths = plot_figures(results, out_dir, cosine_epochs=cosine_epochs, formats=fmts,
                                 overwrite=overwrite)
    except (PlotError, ImportError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename or out_dir}: "
                                   f"{exc.strerror or exc}") from None
    for p in paths:
        click.echo(p)
