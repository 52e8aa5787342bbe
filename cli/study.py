"""``pck study``: the learning rate x batch size grid of the paper's section 3.6. No numerics."""
import click

from pckernels.training import MLP_ALGORITHMS

from .common import count, finite
from .sweep import (_number_list, _option_names, check_cells_memory, check_grid_options,
                    data_summary, grid_data, grid_data_options, grid_epochs_option,
                    grid_model_options, grid_out_option, grid_run_options, run_grid)

DEFAULT_RUNS = "bp-sgd,bp-momentum,bp-adam,ilprox,vpc"
DEFAULT_LRS = "0.0001,0.0003,0.001,0.003,0.01,0.03,0.1,0.3,1,3,10"
#: StudyConfig's grid fields, by the option that sets each.
_GRID_OPTIONS = {"algos": "--algo", "lrs": "--lr", "batch_sizes": "--batch-size",
                 "seeds": "--seed"}


def _runs(ctx, param, value):
    from pckernels.study import parse_run, run_label
    labels = [v for v in value.replace(" ", "").split(",") if v]
    if not labels:
        raise click.BadParameter("needs at least one run label")
    try:
        return tuple(run_label(*parse_run(v)) for v in labels)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _columns_help():
    from pckernels.study import STUDY_COLUMNS
    return "\n".join(f"  {k}: {v}" for k, v in STUDY_COLUMNS.items())


STUDY_HELP = f"""Train a grid of run labels x learning rates x batch sizes x seeds (paper, 3.6).

Asks the paper's section 3.6 question: is PC-style learning more robust to large learning
rates and to online learning (batch size 1) than backprop, once backprop has momentum or
Adam? Every cell trains the same MLP (--depth hidden layers of --width units) for --epochs
epochs with one run label, learning rate and batch size, and records its final and best
accuracies, or the epoch in which it diverged (non-finite loss, or an epoch's mean loss
over 100x the first batch's): a diverged cell is a row, not an error.

A run label is ALGO-OPT: ALGO one of {', '.join(MLP_ALGORITHMS)} (PC variants with their
default inference settings, as `pck train`), OPT one of sgd (momentum 0), momentum (SGD
with --momentum) or adam. A bare ALGO means ALGO-sgd; ilprox, which takes its own
proximal step (implicit SGD with step --lr), has no OPT. --algo, --lr, --batch-size and
--seed take comma-separated lists: the grid is their product.

Writes DIR/results.csv (one row per cell), DIR/results.json (configuration, package
versions, machine, run facts) and DIR/cells/*.json (per-epoch metrics of each cell), like
`pck sweep`: rerunning the same command resumes, skipping finished cells; a different
configuration for the same DIR is an error unless --force. `pck plot DIR/results.csv`
draws the heatmaps.

\b
CSV columns:
{_columns_help()}
"""


@click.command("study", help=STUDY_HELP)
@grid_out_option
@click.option("--algo", "algos", default=DEFAULT_RUNS, show_default=True, callback=_runs,
              help="Run labels ALGO-OPT of the grid, comma-separated.")
@click.option("--lr", "lrs", default=DEFAULT_LRS, show_default=True,
              callback=_number_list(float, "numbers"),
              help="Learning rates of the grid, comma-separated.")
@click.option("--batch-size", "batch_sizes", default="1,8,64", show_default=True,
              callback=_number_list(int, "integers"),
              help="Batch sizes (samples per update) of the grid, comma-separated.")
@click.option("--seed", "seeds", default="0", show_default=True,
              callback=_number_list(int, "integers"),
              help="Seeds of initialisation, shuffling and the validation split, "
                   "comma-separated.")
@grid_data_options
@click.option("--depth", type=click.IntRange(min=1), default=2, show_default=True,
              help="Hidden layers.")
@grid_model_options
@click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.9,
              show_default=True, callback=finite, help="Momentum of the *-momentum runs.")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True,
              callback=finite, help="L2 penalty added to every run's gradient.")
@grid_epochs_option
@grid_run_options
def study(out_dir, algos, lrs, batch_sizes, seeds, dataset, data_dir, val_fraction, depth,
          width, activation, loss, dtype, init, gain, param, momentum, weight_decay, epochs,
          jobs, threads, scheduler, dask_local, force, progress, max_memory):
    from pckernels.memory import describe_sizes, training_bytes
    from pckernels.study import StudyConfig, parse_run
    from pckernels.sweep import SweepError

    from .common import warn_unused
    from .main import IDX_DATASETS

    warn_unused(click.get_current_context(), [
        ("momentum", "--momentum", any(a.endswith("-momentum") for a in algos),
         "without a *-momentum run"),
        ("data_dir", "--data-dir", dataset.strip().lower().replace("_", "-") in IDX_DATASETS,
         f"to --dataset {dataset} (only to mnist and fashion-mnist)"),
        ("jobs", "--jobs", not (scheduler or dask_local), "to a Dask run"),
    ])
    check_grid_options(out_dir, init, param, gain, seeds, scheduler, dask_local, max_memory,
                       "the study")
    facts, data_bytes, n_features, n_classes, data_fields = grid_data(
        dataset, data_dir, val_fraction, seeds[0], dtype)
    sizes = [n_features] + [width] * depth + [n_classes]
    try:
        config = StudyConfig(
            algos=algos, lrs=lrs, batch_sizes=batch_sizes, seeds=seeds, **data_fields,
            val_fraction=val_fraction, depth=depth, width=width, activation=activation,
            loss=loss, dtype=dtype, momentum=momentum, weight_decay=weight_decay,
            epochs=epochs, init=init, param=param, gain=gain)
    except SweepError as exc:
        raise click.UsageError(_option_names(str(exc), _GRID_OPTIONS)) from None
    check_cells_memory(
        config, lambda: max(
            training_bytes(sizes, max(batch_sizes), dtype=dtype, algo=algo,
                           optimizer="adam" if opt == "adam" else "sgd", loss=loss,
                           n_eval=facts[2] + facts[3], n_train=facts[1], param=param)
            for algo, opt in map(parse_run, config.algos)) + data_bytes,
        describe_sizes(sizes), jobs, scheduler, dask_local, max_memory)

    header = (f"{data_summary(facts)}; MLP "
              f"{describe_sizes(sizes)}; runs {','.join(config.algos)}; lr "
              f"{','.join(f'{v:g}' for v in config.lrs)}; batch sizes "
              f"{','.join(map(str, config.batch_sizes))}; seeds "
              f"{','.join(map(str, config.seeds))}; {count(epochs, 'epoch')}")
    run_grid(config, out_dir, header=header, describe=_describe_cell, jobs=jobs,
             threads=threads, scheduler=scheduler, dask_local=dask_local, force=force,
             progress=progress)


def _describe_cell(rec):
    epochs = rec["epochs"]
    if rec["status"] == "completed":
        return (f"{rec['name']}: test {epochs[-1]['test_accuracy']:.4f}, "
                f"{rec['wall_seconds']:.1f} s")
    return f"{rec['name']}: diverged in epoch {len(epochs) + 1}, {rec['wall_seconds']:.1f} s"
