"""Tests for pckernels.plot and ``pck plot``: Figures 3-5 from a sweep's CSV."""
import csv
import math
import sys

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
