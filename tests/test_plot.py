"""Tests for pckernels.plot and ``pck plot``: Figures 3-5 from a sweep's CSV."""
import csv
import io
import json
import math
import re
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import pckernels.sweep as S
from pckernels.plot import PlotError, load_results, summarise
from pckernels_cli.main import cli

try:
    import matplotlib  # noqa: F401
    HAVE_MPL = True
except ImportError:
    HAVE_MPL = False
needs_mpl = pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A tiny two-seed, two-epoch sweep on digits."""
    out = tmp_path_factory.mktemp("plot") / "sweep"
    cfg = S.SweepConfig(depths=(2, 4), ratios=(0.5, 1), step_sizes=(0.5, 1), seeds=(0, 1),
                        epochs=2, width=16)
    S.run_sweep(cfg, out, threads=1)
    return out / "results.csv"


@needs_mpl
def test_plot_writes_three_figures_in_two_formats(results, tmp_path):
    out = tmp_path / "figs"
    result = CliRunner().invoke(cli, ["plot", str(results), "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{f}.{ext}" for f in ("fig3_cosine", "fig4_val_acc",
                                                  "fig5_test_acc") for ext in ("png", "svg"))
    for p in out.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
    for p in out.glob("*.svg"):
        assert "<svg" in p.read_text()[:2000]
    assert len(result.output.split()) == 6


@needs_mpl
def test_plot_final_epoch_cosine_and_one_format(results, tmp_path):
    result = CliRunner().invoke(cli, ["plot", str(results), "--out", str(tmp_path),
                                      "--cosine", "final", "--format", "png"])
    assert result.exit_code == 0, result.output
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".png"] * 3


def test_summary_mean_versus_final_and_seeds(results):
    rows = load_results(results)
    mean = summarise(rows, "mean")
    final = summarise(rows, "final")
    by_run = {}
    for r in rows:
        if r["algo"] == "fpa" and r["depth"] == 4 and r["ratio"] == 0.5 and r["step_size"] == 1:
            by_run.setdefault(r["seed"], []).append(r)
    per_seed_mean = [sum(e["cosine"] for e in v) / len(v) for v in by_run.values()]
    per_seed_final = [max(v, key=lambda e: e["epoch"])["cosine"] for v in by_run.values()]
    m, lo, hi = mean["fig3_cosine"][("fpa", 4, 0.5, 1.0)]
    assert m == pytest.approx(sum(per_seed_mean) / 2) and lo == min(per_seed_mean)
    assert hi == max(per_seed_mean)
    assert final["fig3_cosine"][("fpa", 4, 0.5, 1.0)][0] == pytest.approx(
        sum(per_seed_final) / 2)
    # Backprop is keyed without ratio and step size, and reaches every figure.
    for fig in ("fig3_cosine", "fig4_val_acc", "fig5_test_acc"):
        assert ("bp", 2, None, None) in mean[fig]
    assert mean["fig3_cosine"][("bp", 2, None, None)] == (1.0, 1.0, 1.0)
    last_test = [r["test_accuracy"] for r in rows
                 if r["algo"] == "bp" and r["depth"] == 2 and r["epoch"] == 2]
    assert mean["fig5_test_acc"][("bp", 2, None, None)][0] == pytest.approx(
        sum(last_test) / len(last_test))
    assert not any(math.isnan(v[0]) for v in mean["fig5_test_acc"].values())


def test_not_a_sweep_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.csv"
    with open(bad, "w", newline="") as f:
        csv.writer(f).writerows([["a", "b"], [1, 2]])
    with pytest.raises(PlotError, match="not a sweep results file"):
        load_results(bad)
    result = CliRunner().invoke(cli, ["plot", str(bad), "--out", str(tmp_path / "f")])
    assert result.exit_code == 1 and "missing" in result.output


def test_missing_matplotlib_is_one_clear_line(results, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = CliRunner().invoke(cli, ["plot", str(results), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "Error: plotting needs matplotlib: pip install 'pckernels[plot]'" in result.output


# ----------------------------------------------- the committed Figures 3-5 and their CSV
DOCS = Path(__file__).resolve().parents[1] / "docs"
COMMITTED = [  # (CSV, its figure folder, the --cosine the README's figures use)
    (DOCS / "results" / "fashion-mnist.csv", DOCS / "figures", "final"),
    (DOCS / "results" / "fashion-mnist-L20-orth.csv", DOCS / "figures" / "fashion-mnist-L20-orth",
     "final"),
]


def _final_epoch_rows(csv_path):
    """{(algo, depth, ratio or None, step or None): last epoch's row}, read with csv only."""
    last = {}
    with open(csv_path, newline="") as f:
        for r in csv.DictReader(f):
            key = (r["algo"], int(r["depth"]), float(r["ratio"]) if r["ratio"] else None,
                   float(r["step_size"]) if r["step_size"] else None)
            if key not in last or int(r["epoch"]) > int(last[key]["epoch"]):
                last[key] = r
    return last


def _svg_texts(svg):
    """The texts matplotlib writes into an SVG, one comment per text line, in order."""
    return re.findall(r"<!-- (.*?) -->", svg)


@needs_mpl
@pytest.mark.parametrize("csv_path, fig_dir, cosine", COMMITTED,
                         ids=[c[0].stem for c in COMMITTED])
def test_committed_csv_gives_the_committed_figures(csv_path, fig_dir, cosine):
    import matplotlib.pyplot as plt
    from pckernels.plot import FIGURES, make_figures
    with open(csv_path.with_suffix(".json")) as f:
        cfg = json.load(f)["config"]
    last = _final_epoch_rows(csv_path)
    column = {"fig3_cosine": "cosine", "fig4_val_acc": "val_accuracy",
              "fig5_test_acc": "test_accuracy"}
    figures = make_figures(csv_path, cosine)
    try:
        assert list(figures) == list(FIGURES)
        for key, fig in figures.items():
            # The subtitle is the committed JSON's configuration, nothing from this machine.
            title = fig._suptitle.get_text().split("\n")
            assert title[1].startswith(f"{cfg['dataset']}; MLPs of width {cfg['width']} "
                                       f"({cfg['activation']}), {cfg['optimizer']} lr "
                                       f"{cfg['lr']:g}, {cfg['epochs']} epochs; ")
            if key == "fig3_cosine":
                assert title[2] == {"final": "cosine of a run: mean over its final epoch's "
                                             "batches",
                                    "mean": "cosine of a run: mean over all its training "
                                            "batches (every epoch)"}[cosine]
            # Every plotted point is the final epoch's value in the CSV.
            n_points = 0
            for ax in fig.axes:
                depth = int(ax.get_title().split()[2])
                for line in ax.get_lines():
                    label = line.get_label()
                    if label.startswith("step size"):
                        step = float(label.split()[-1])
                        for x, y in zip(line.get_xdata(), line.get_ydata()):
                            row = last[("fpa", depth, float(x), step)]
                            assert y == pytest.approx(float(row[column[key]]), abs=1e-12)
                            n_points += 1
                    elif label == "backprop":
                        row = last[("bp", depth, None, None)]
                        assert line.get_ydata()[0] == pytest.approx(float(row[column[key]]))
                        n_points += 1
            assert n_points == len(last)
            # The committed SVG carries exactly these texts (titles, subtitle, axes, ticks).
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None})
            committed = (fig_dir / f"{key}.svg").read_text(encoding="utf-8")
            assert _svg_texts(buf.getvalue()) == _svg_texts(committed)
    finally:
        for fig in figures.values():
            plt.close(fig)


def test_default_out_dir_is_beside_the_csv_never_docs_figures(tmp_path):
    from pckernels.plot import default_out_dir
    for csv_path, fig_dir, _ in COMMITTED:
        out = default_out_dir(csv_path)
        assert out.parent == csv_path.parent and out.resolve() != fig_dir.resolve()
    for name in ("results.csv", "figures.csv", "x.csv"):
        for where in (DOCS, DOCS / "results", DOCS / "figures", tmp_path):
            out = default_out_dir(where / name)
            assert out.parent == where and out.resolve() != (DOCS / "figures").resolve()


@needs_mpl
def test_plot_default_folder_and_no_silent_overwrite(results, tmp_path):
    src = tmp_path / "sweep.csv"
    shutil.copy(results, src)
    shutil.copy(results.with_name("results.json"), tmp_path / "sweep.json")
    runner = CliRunner()
    for _ in range(2):  # the default folder belongs to the CSV: refreshed without --force
        result = runner.invoke(cli, ["plot", str(src), "--format", "svg"])
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "sweep-figures").iterdir()) == [
        "fig3_cosine.svg", "fig4_val_acc.svg", "fig5_test_acc.svg"]
    assert "digits; MLPs of width 16" in (tmp_path / "sweep-figures" / "fig4_val_acc.svg"
                                           ).read_text()
    out = tmp_path / "mine"
    out.mkdir()
    (out / "fig4_val_acc.svg").write_text("keep me")
    result = runner.invoke(cli, ["plot", str(src), "--out", str(out), "--format", "svg"])
    assert result.exit_code == 1 and "exists" in result.output and "--force" in result.output
    assert (out / "fig4_val_acc.svg").read_text() == "keep me"
    assert not (out / "fig3_cosine.svg").exists()
    result = runner.invoke(cli, ["plot", str(src), "--out", str(out), "--format", "svg",
                                 "--force"])
    assert result.exit_code == 0, result.output
    assert "<svg" in (out / "fig4_val_acc.svg").read_text()
