"""Heatmaps of an ``lr-batch`` grid's ``results.csv`` (see :mod:`pckernels.study`).

One panel per run label (``ALGO-OPT``): x the learning rate, y the batch size, colour the
test accuracy (the mean over seeds of the cells that did not diverge). A cell where every
seed diverged is grey, hatched and labelled with the earliest epoch of divergence; a cell
where some seeds diverged shows the survivors' mean and how many diverged. matplotlib
(the ``plot`` extra) is imported only when drawing.
"""
import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from .plot import (PlotError, _float as _num, _pyplot, check_absent, check_formats, load_metadata,
                   make_out_dir, read_table, save_figure)

#: Figures written by :func:`plot_heatmaps`: file stem -> (CSV column, colour bar label).
HEATMAPS = {
    "lr_batch_final_acc": ("final_test_accuracy", "final test accuracy"),
    "lr_batch_best_acc": ("best_test_accuracy", "best test accuracy over the epochs"),
}
_NEED = ("grid", "run", "lr", "batch_size", "seed", "status", "diverged_epoch",
         "final_test_accuracy", "best_test_accuracy")
RUN_NAMES = {"sgd": "SGD", "momentum": "SGD + momentum", "adam": "Adam"}


def csv_grid_kind(path):
    """Grid kind of a results CSV: ``"lr-batch"`` when its first column is ``grid`` naming
    it, else ``"depth-steps"`` (the Figs. 3-5 sweep, whose CSV has no ``grid`` column).
    Unreadable files are left to the loaders, which name the problem."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            head = csv.reader(f)
            header, first = next(head, []), next(head, [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return "depth-steps"
    if header[:1] == ["grid"] and first[:1]:
        return first[0]
    return "depth-steps"


def load_study(path):
    """Rows of an ``lr-batch`` CSV as dicts with numbers parsed (empty fields NaN).

    Raises
    ------
    PlotError
        Naming the file (and line) for a file that is not a complete ``lr-batch`` table.
    """
    out = []
    for line, r in read_table(path, _NEED, "an lr-batch results file"):
        try:
            out.append({"run": r["run"], "lr": float(r["lr"]),
                        "batch_size": int(r["batch_size"]), "seed": int(r["seed"]),
                        "status": r["status"], "diverged_epoch": _num(r["diverged_epoch"]),
                        "final_test_accuracy": _num(r["final_test_accuracy"]),
                        "best_test_accuracy": _num(r["best_test_accuracy"])})
        except ValueError as exc:
            raise PlotError(f"{path}: line {line}: {exc}") from None
    return out


def summarise_study(rows, column):
    """Per ``(run, batch_size, lr)``: ``(mean of column over the seeds that completed (NaN
    if none), seeds, seeds diverged, earliest divergence epoch or None)``.

    ``best_test_accuracy`` of a diverged seed (its best before diverging) is not part of
    the mean either: a cell's colour is always over the runs that finished.
    """
    groups = defaultdict(list)
    for r in rows:
        groups[(r["run"], r["batch_size"], r["lr"])].append(r)
    out = {}
    for key, rs in groups.items():
        done = [r[column] for r in rs if r["status"] == "completed"]
        div = [r["diverged_epoch"] for r in rs if r["status"] != "completed"]
        out[key] = (float(np.mean(done)) if done else float("nan"), len(rs), len(div),
                    int(min(div)) if div else None)
    return out


def heatmap_paths(out_dir, formats=("png", "svg")):
    """The files :func:`plot_heatmaps` writes into ``out_dir``, in its order."""
    return [Path(out_dir) / f"{stem}.{fmt}" for stem in HEATMAPS for fmt in formats]


def _run_title(run):
    algo, _, opt = run.rpartition("-")
    return f"{algo} + {RUN_NAMES.get(opt, opt)}" if algo else run


def plot_heatmaps(csv_path, out_dir, formats=("png", "svg"), overwrite=True):
    """Write the ``lr-batch`` heatmaps (:data:`HEATMAPS`) into ``out_dir``; return the paths.

    Parameters
    ----------
    csv_path : path of an ``lr-batch`` grid's results CSV (``pck study``); the subtitle's
        configuration comes from the JSON beside it (:func:`pckernels.plot.load_metadata`).
    out_dir : path
        Created if missing.
    formats : sequence of str
        Image formats matplotlib writes (``png``, ``svg``, ``pdf``, ...).
    overwrite : bool
        False: raise :class:`PlotError` before drawing if any of the files exists.

    Raises
    ------
    PlotError
        For a file that is not an ``lr-batch`` table, an unknown format, or an existing
        file under ``overwrite=False``.
    """
    plt = _pyplot()
    from matplotlib.colors import Normalize
    formats = check_formats(formats)
    if not overwrite:
        check_absent(heatmap_paths(out_dir, formats))
    rows = load_study(csv_path)
    runs = list(dict.fromkeys(r["run"] for r in rows))
    lrs = sorted({r["lr"] for r in rows})
    batches = sorted({r["batch_size"] for r in rows})
    n_seeds = len({r["seed"] for r in rows})
    cfg = load_metadata(csv_path)
    out = Path(out_dir)
    make_out_dir(out)
    cmap = plt.get_cmap("viridis").copy()
    norm = Normalize(0.0, 1.0)
    ncols = min(len(runs), 3)
    nrows = math.ceil(len(runs) / ncols)
    paths = []
    for stem, (column, label) in HEATMAPS.items():
        summary = summarise_study(rows, column)
        fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained",
                                 figsize=(0.55 * len(lrs) * ncols + 1.8,
                                          0.62 * len(batches) * nrows + 1.6 * nrows + 0.6))
        for ax in axes.flat[len(runs):]:
            ax.set_visible(False)
        image = None
        for ax, run in zip(axes.flat, runs):
            grid = np.full((len(batches), len(lrs)), np.nan)
            for i, bs in enumerate(batches):
                for j, lr in enumerate(lrs):
                    cell = summary.get((run, bs, lr))
                    if cell is None:
                        continue
                    mean, n, n_div, epoch = cell
                    grid[i, j] = mean
                    if n_div == n:   # every seed diverged
                        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="0.82",
                                                   edgecolor="0.45", hatch="///", lw=0))
                        ax.text(j, i, f"div\ne{epoch}", ha="center", va="center",
                                fontsize=6.5, color="0.1")
                        continue
                    text = f"{mean:.2f}"[1:] if mean < 1 else "1.0"
                    if n_div:
                        text += f"\n{n_div}/{n} div"
                    ax.text(j, i, text, ha="center", va="center", fontsize=6.5,
                            color="black" if mean > 0.55 else "white")
            image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm,
                              aspect="auto", origin="lower")
            ax.set_xticks(range(len(lrs)))
            ax.set_xticklabels([f"{v:g}" for v in lrs], fontsize=7, rotation=45)
            ax.set_yticks(range(len(batches)))
            ax.set_yticklabels([str(b) for b in batches], fontsize=7)
            ax.set_title(_run_title(run), fontsize=9)
            ax.set_xlabel("learning rate", fontsize=8)
            ax.set_ylabel("batch size", fontsize=8)
            ax.set_xlim(-0.5, len(lrs) - 0.5)
            ax.set_ylim(-0.5, len(batches) - 0.5)
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.85)
        bar.set_label(label + (" (mean over seeds that finished)" if n_seeds > 1 else ""),
                      fontsize=8)
        sub = []
        if cfg:
            sub.append(f"{Path(str(cfg.get('dataset'))).name}: MLP {cfg.get('depth')}x"
                       f"{cfg.get('width')} ({cfg.get('activation')}), {cfg.get('epochs')} "
                       f"epochs")
        sub.append(f"{n_seeds} seed{'s' if n_seeds > 1 else ''}; hatched: every seed "
                   "diverged (eK: earliest epoch)")
        fig.suptitle(f"Section 3.6: {label} over learning rate and batch size\n"
                     + "; ".join(sub), fontsize=10, linespacing=1.5)
        paths += save_figure(fig, out, stem, formats)
        plt.close(fig)
    return paths
