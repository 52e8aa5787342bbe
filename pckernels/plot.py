"""Figures 3, 4 and 5 of the paper from a sweep's ``results.csv`` (see :mod:`pckernels.sweep`).

Layout as in the paper: x is the requested ratio T/L of inference steps to hidden layers,
one line per inference step size, one panel per depth; the backprop baseline of the same
depth is a dashed line. Several seeds are averaged, with a band from the lowest to the
highest seed. matplotlib (the ``plot`` extra) is imported only when drawing.
"""
import csv
import io
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

FIGURES = {
    "fig3_cosine": ("Figure 3", "cosine similarity with backprop"),
    "fig4_val_acc": ("Figure 4", "validation accuracy (final epoch)"),
    "fig5_test_acc": ("Figure 5", "test accuracy (end of training)"),
}
ALGO_NAMES = {"fpa": "FPA-PC", "vpc": "PC", "scaled": "scaled PC", "zil": "Z-IL",
              "ipc": "iPC", "bp": "backprop"}


class PlotError(ValueError):
    """The results file cannot be plotted (missing columns, no rows, mixed algorithms)."""


def _float(text):
    return float(text) if text not in ("", None) else float("nan")


def read_table(path, need, what, complete=False):
    """``(line, row)`` for every row of a CSV file, rows as dicts of strings, with at
    least the columns ``need``.

    Raises :class:`PlotError` naming the file (and the line) for an unreadable or binary
    file, no rows, missing columns (``what`` names what the file is not), a row with
    missing or extra fields, or (``complete``) a last line without its line end.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise PlotError(f"{path}: not a text CSV file (not UTF-8)") from None
    except OSError as exc:
        raise PlotError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if "\0" in text:
        raise PlotError(f"{path}: not a text CSV file (binary data)")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = list(reader)
    except csv.Error as exc:
        raise PlotError(f"{path}: not a valid CSV file ({exc})") from None
    if not rows:
        raise PlotError(f"{path}: no rows")
    missing = set(need) - set(reader.fieldnames or ())
    if missing:
        raise PlotError(f"{path}: not {what} (missing {', '.join(sorted(missing))})")
    if complete and not text.endswith("\n"):
        raise PlotError(f"{path}: the last line is not complete (file cut short?)")
    for line, r in enumerate(rows, start=2):
        if None in r or any(v is None for v in r.values()):
            raise PlotError(f"{path}: line {line} has the wrong number of fields ("
                            f"{'too many' if None in r else 'too few'}; file cut short or "
                            "corrupt?)")
        yield line, r


def load_results(path):
    """Rows of a sweep CSV as dicts with numbers parsed (empty fields become NaN).

    Raises :class:`PlotError` naming the file (and the line) for anything that is not a
    complete sweep table: an unreadable or binary file, missing columns, no rows, a row
    with missing or extra fields (a file cut short) or a field that is not a number.
    """
    need = {"algo", "depth", "ratio", "step_size", "seed", "epoch", "cosine", "val_accuracy",
            "test_accuracy"}
    out = []
    for line, r in read_table(path, need, "a sweep results file", complete=True):
        try:
            out.append({"algo": r["algo"], "depth": int(r["depth"]),
                        "ratio": _float(r["ratio"]), "step_size": _float(r["step_size"]),
                        "seed": int(r["seed"]), "epoch": int(r["epoch"]),
                        "cosine": _float(r["cosine"]),
                        "val_accuracy": _float(r["val_accuracy"]),
                        "test_accuracy": _float(r["test_accuracy"])})
        except ValueError as exc:
            raise PlotError(f"{path}: line {line}: {exc}") from None
    return out


def summarise(rows, cosine_epochs="mean"):
    """One value per figure for every (algo, depth, ratio, step size), over seeds.

    Per run: Fig. 3 the cosine averaged over all epochs (``"mean"``; every epoch has the same
    number of batches, so this is the mean over all training batches) or the final epoch's
    (``"final"``); Figs. 4 and 5 the final epoch's validation and test accuracy.

    Returns
    -------
    dict mapping figure key -> {(algo, depth, ratio, step_size): (mean, low, high)}
        over seeds; ratio and step_size are NaN for backprop.
    """
    if cosine_epochs not in ("mean", "final"):
        raise PlotError(f"cosine_epochs must be 'mean' or 'final', got {cosine_epochs!r}")
    runs = defaultdict(list)
    for r in rows:
        # NaN (backprop's ratio and step size) never equals itself: key on None instead.
        runs[(r["algo"], r["depth"], _key(r["ratio"]), _key(r["step_size"]), r["seed"])].append(r)
    per_seed = {k: defaultdict(list) for k in FIGURES}
    for (algo, depth, ratio, step, seed), epochs in runs.items():
        epochs.sort(key=lambda e: e["epoch"])
        last = epochs[-1]
        cos = [e["cosine"] for e in epochs]
        key = (algo, depth, ratio, step)
        per_seed["fig3_cosine"][key].append(np.mean(cos) if cosine_epochs == "mean"
                                            else cos[-1])
        per_seed["fig4_val_acc"][key].append(last["val_accuracy"])
        per_seed["fig5_test_acc"][key].append(last["test_accuracy"])
    return {fig: {k: (float(np.mean(v)), float(np.min(v)), float(np.max(v)))
                  for k, v in d.items()} for fig, d in per_seed.items()}


def _key(x):
    return None if math.isnan(x) else x


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'pckernels[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def supported_formats():
    """Image formats matplotlib can write here (``png``, ``svg``, ``pdf``, ...)."""
    from matplotlib.backend_bases import FigureCanvasBase
    _pyplot()
    return sorted(FigureCanvasBase.get_supported_filetypes())


def default_out_dir(csv_path):
    """Folder ``pck plot`` writes to when given no ``--out``: ``NAME-figures`` beside ``NAME.csv``.

    It sits next to the CSV and is named after it, so it never is a folder of committed
    figures such as ``docs/figures`` (``docs/results/fashion-mnist.csv`` gives
    ``docs/results/fashion-mnist-figures``; a sweep's ``DIR/results.csv`` gives
    ``DIR/results-figures``).
    """
    path = Path(csv_path)
    return path.with_name(f"{path.stem}-figures")


def figure_paths(out_dir, formats=("png", "svg")):
    """The files :func:`plot_figures` writes into ``out_dir``, in its order."""
    return [Path(out_dir) / f"{key}.{fmt}" for key in FIGURES for fmt in formats]


def load_metadata(csv_path):
    """The sweep configuration recorded beside a results CSV, or ``None``.

    Reads ``NAME.json`` next to ``NAME.csv`` (how a sweep is committed, e.g.
    ``docs/results/fashion-mnist.json``), else the ``results.json`` a sweep folder holds.
    Only files beside the CSV are read, so the figures depend on nothing else on the
    machine.

    Returns
    -------
    dict or None
        The JSON's ``config`` mapping (dataset, width, activation, optimizer, lr, epochs,
        and init/gain for newer sweeps).
    """
    path = Path(csv_path)
    for meta in (path.with_suffix(".json"), path.with_name("results.json")):
        try:
            with open(meta) as f:
                cfg = json.load(f)["config"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(cfg, dict):
            return cfg
    return None


def _subtitle(cfg, n_seeds):
    parts = []
    if cfg:
        try:
            parts.append(Path(str(cfg["dataset"])).name)
            parts.append(f"MLPs of width {cfg['width']} ({cfg['activation']}), "
                         f"{cfg['optimizer']} lr {cfg['lr']:g}, {cfg['epochs']} "
                         f"epoch{'s' if cfg['epochs'] > 1 else ''}")
            # Sweeps older than --init recorded none: they all used PyTorch's default.
            init, gain = f"{cfg.get('init') or 'pytorch'} init", cfg.get("gain")
            if cfg.get("init") in ("xavier", "orthogonal"):
                init += f", gain {gain:g}" if gain is not None else f", {cfg['activation']}'s gain"
            parts.append(init)
            if cfg.get("param") not in (None, "standard"):
                parts.append(f"{cfg['param']} parameterisation")
        except (KeyError, TypeError, ValueError):
            parts = parts[:1]
    parts.append(f"mean of {n_seeds} seeds, band: min to max" if n_seeds > 1 else "1 seed")
    return "; ".join(parts)


COSINE_NOTE = {"mean": "cosine of a run: mean over all its training batches (every epoch)",
               "final": "cosine of a run: mean over its final epoch's batches"}


def make_figures(csv_path, cosine_epochs="mean"):
    """Figures 3-5 of a sweep's results as matplotlib Figures, without writing anything.

    Parameters
    ----------
    csv_path : path of a sweep's results CSV; its configuration (for the subtitles) is
        read by :func:`load_metadata` from the JSON beside it.
    cosine_epochs : {"mean", "final"}
        Figure 3's cosine per run: mean over all epochs, or over the final epoch only
        (see :func:`summarise`); Figure 3's subtitle says which.

    Returns
    -------
    dict mapping ``fig3_cosine``, ``fig4_val_acc``, ``fig5_test_acc`` to a Figure with one
        axes per depth (one line per step size, x = T/L; backprop a horizontal line). The
        caller closes them.

    Raises
    ------
    PlotError
        For a file that is not a sweep table, several algorithms, or a bad ``cosine_epochs``.
    ImportError
        When matplotlib is not installed.
    """
    plt = _pyplot()
    rows = load_results(csv_path)
    algos = sorted({r["algo"] for r in rows} - {"bp"}) or ["bp"]
    if len(algos) > 1:
        raise PlotError(f"{csv_path}: several algorithms ({', '.join(algos)}); plot one")
    algo = algos[0]
    summary = summarise(rows, cosine_epochs)
    depths = sorted({r["depth"] for r in rows})
    ratios = sorted({r["ratio"] for r in rows if r["algo"] == algo and not math.isnan(r["ratio"])})
    steps = sorted({r["step_size"] for r in rows
                    if r["algo"] == algo and not math.isnan(r["step_size"])})
    n_seeds = len({r["seed"] for r in rows})
    cfg = load_metadata(csv_path)
    name = ALGO_NAMES.get(algo, algo)
    titles = {
        "fig3_cosine": f"Cosine similarity between {name} updates and backprop",
        "fig4_val_acc": f"Validation accuracy with {name}",
        "fig5_test_acc": f"Final test accuracy with {name}",
    }
    subtitle = _subtitle(cfg, n_seeds)
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(1, len(steps))))
    markers = "osD^v<>ph*"
    figures = {}
    for fig_key, (label, ylabel) in FIGURES.items():
        data = summary[fig_key]
        fig, axes = plt.subplots(1, len(depths), figsize=(max(7.5, 2.9 * len(depths) + 1.8), 3.9),
                                 sharey=True, squeeze=False, layout="constrained")
        for ax, depth in zip(axes[0], depths):
            if algo != "bp":
                for i, step in enumerate(steps):
                    pts = [(r, data.get((algo, depth, r, step))) for r in ratios]
                    pts = [(r, v) for r, v in pts if v is not None]
                    xs = [r for r, _ in pts]
                    ax.plot(xs, [v[0] for _, v in pts], marker=markers[i % len(markers)],
                            ms=4.5, lw=1.6, color=colors[i], label=f"step size {step:g}")
                    if n_seeds > 1:
                        ax.fill_between(xs, [v[1] for _, v in pts], [v[2] for _, v in pts],
                                        color=colors[i], alpha=0.18, lw=0)
            base = data.get(("bp", depth, None, None))
            if base is not None:
                ax.axhline(base[0], color="0.15", ls="--", lw=1.3, label="backprop")
                if n_seeds > 1:
                    ax.axhspan(base[1], base[2], color="0.5", alpha=0.12, lw=0)
            if ratios:
                ax.axvline(1.0, color="0.6", ls=":", lw=1.0, zorder=0)
                ax.set_xticks(ratios)
                ax.set_xticklabels([f"{r:g}" for r in ratios], fontsize=8)
            ax.tick_params(axis="y", labelsize=8)
            ax.set_title(f"L = {depth} hidden layers", fontsize=10)
            ax.grid(True, alpha=0.25)
        axes[0][0].set_ylabel(ylabel, fontsize=9)
        fig.supxlabel("inference steps per hidden layer, T / L   "
                      "(T = max(1, round(T/L \u00d7 L)); dotted line: T = L)", fontsize=9)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right center", fontsize=8, frameon=False)
        sub = subtitle + ("\n" + COSINE_NOTE[cosine_epochs] if fig_key == "fig3_cosine" else "")
        fig.suptitle(f"{label}: {titles[fig_key]}\n{sub}", fontsize=10, linespacing=1.6)
        figures[fig_key] = fig
    return figures


def plot_figures(csv_path, out_dir, cosine_epochs="mean", formats=("png", "svg"),
                 overwrite=True):
    """Write Figures 3-5 as ``fig3_cosine.png`` etc. into ``out_dir``; return the paths.

    Parameters
    ----------
    csv_path : path of a sweep's results CSV (see :func:`make_figures`)
    out_dir : path
        Created if missing; :func:`default_out_dir` gives ``pck plot``'s default.
    cosine_epochs : {"mean", "final"}
        Figure 3's cosine: mean over all epochs, or the final epoch only.
    formats : sequence of str
        Image formats matplotlib writes (``png``, ``svg``, ``pdf``, ...).
    overwrite : bool
        False: raise :class:`PlotError` before drawing if any of the files exists.

    Raises
    ------
    PlotError
        For an unknown format, an existing file under ``overwrite=False``, a folder that
        cannot be created, or a CSV :func:`make_figures` rejects.
    """
    plt = _pyplot()
    formats = check_formats(formats)
    out = Path(out_dir)
    if not overwrite:
        check_absent(figure_paths(out, formats))
    figures = make_figures(csv_path, cosine_epochs)
    try:
        make_out_dir(out)
    except PlotError:
        for fig in figures.values():
            plt.close(fig)
        raise
    paths = []
    try:
        for fig_key, fig in figures.items():
            paths += save_figure(fig, out, fig_key, formats)
    finally:
        for fig in figures.values():
            plt.close(fig)
    return paths


# ---------------------------------------------------------------------- writing figures
# Shared with pckernels.heatmap.

def check_formats(formats):
    """``formats`` as a tuple; :class:`PlotError` for none or one matplotlib cannot write."""
    formats = tuple(formats)
    supported = supported_formats()
    bad = [f for f in formats if f not in supported]
    if not formats or bad:
        raise PlotError(f"unknown image format {bad[0]!r}; choose from "
                        f"{', '.join(sorted(supported))}" if bad else "no image format given")
    return formats


def check_absent(paths):
    """:class:`PlotError` if any of the figure files ``paths`` exists (no overwriting)."""
    exist = [p for p in paths if p.exists()]
    if exist:
        raise PlotError(f"{exist[0]} exists ({len(exist)} of the figures do); "
                        "use --force to replace them, or another --out")


def make_out_dir(out):
    """Create the folder ``out`` (and its parents); :class:`PlotError` if that fails."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlotError(f"cannot create {out}: {exc.strerror or exc}") from None


def save_figure(fig, out, stem, formats):
    """Write ``fig`` as ``out/stem.FMT`` for every format, each atomically; return the
    paths. The SVG has no creation date, so re-plotting the same CSV gives the same file."""
    paths = []
    for fmt in formats:
        path = out / f"{stem}.{fmt}"
        tmp = out / f".tmp-{stem}.{fmt}"
        meta = {"Date": None} if fmt == "svg" else None
        try:
            fig.savefig(tmp, dpi=150, format=fmt, metadata=meta)
            tmp.replace(path)
        finally:
            if tmp.exists():
                tmp.unlink()
        paths.append(path)
    return paths
