"""Tests for pckernels.study, ``pck study`` and the lr-batch heatmaps of ``pck plot``."""
import csv
import json

import pytest
from click.testing import CliRunner

import pckernels.study as St
import pckernels.sweep as S
from pckernels.training import ALGORITHMS, MLP_ALGORITHMS
from pckernels_cli.main import cli

try:
    import matplotlib  # noqa: F401
    HAVE_MPL = True
except ImportError:
    HAVE_MPL = False
needs_mpl = pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed")

# bp at lr 0.1 learns; at lr 1e4 it diverges in the first epoch.
TINY = ["--algo", "bp-sgd,bp-adam", "--lr", "0.1,1e4", "--batch-size", "16,64",
        "--depth", "1", "--width", "8", "--epochs", "2", "--no-progress"]
N_CELLS = 8


def run_cli(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "grid"
    result = run_cli("study", "--out", str(out), *TINY)
    assert result.exit_code == 0, result.output
    return out, result


# ----------------------------------------------------------------------------- grid

def test_grid_expands_labels_x_batch_sizes_x_lrs_x_seeds():
    cfg = St.StudyConfig(algos=("bp", "vpc-sgd", "bp-adam", "bp-sgd"), lrs=(0.1, 1, 0.1),
                         batch_sizes=(1, 8), seeds=(0, 1))
    # a bare ALGO is ALGO-sgd; duplicates (after that) are dropped, order kept
    assert cfg.algos == ("bp-sgd", "vpc-sgd", "bp-adam") and cfg.lrs == (0.1, 1.0)
    rows = cfg.rows()
    assert len(rows) == 3 * 2 * 2 * 2
    assert rows[:3] == [St.StudyCell("bp-sgd", 0.1, 1, 0), St.StudyCell("bp-sgd", 0.1, 1, 1),
                        St.StudyCell("bp-sgd", 1.0, 1, 0)]
    assert len({c.name for c in rows}) == len(rows)
    assert sorted(cfg.cells(), key=rows.index) == rows
    assert cfg.cells()[0].run == "vpc-sgd" and cfg.cells()[0].batch_size == 1  # longest first
    # the grid axes are not part of the settings a finished cell is matched on
    other = St.StudyConfig(algos=("bp-adam",), lrs=(3,), batch_sizes=(64,), seeds=(5,))
    assert other.settings_hash() == cfg.settings_hash()
    assert St.StudyConfig(epochs=3).settings_hash() != cfg.settings_hash()


def test_every_algorithm_and_optimizer_is_a_run_label():
    for algo in MLP_ALGORITHMS:
        if algo in St.OWN_STEP:  # ilprox: its own step, no optimizer
            assert St.parse_run(algo) == (algo, "own") and St.run_label(algo, "own") == algo
            for opt in St.STUDY_OPTIMIZERS:
                with pytest.raises(ValueError, match="no optimizer applies"):
                    St.parse_run(f"{algo}-{opt}")
            continue
        assert St.parse_run(algo) == (algo, "sgd")
        for opt in St.STUDY_OPTIMIZERS:
            assert St.parse_run(f"{algo}-{opt}") == (algo, opt)
            assert St.run_label(algo, opt) == f"{algo}-{opt}"
    # the grid trains MLPs: algorithms of other models (gpc) are no run label
    others = tuple(sorted(set(ALGORITHMS) - set(MLP_ALGORITHMS)))
    for bad in ("nope", "bp-rmsprop", "-sgd", "") + others:
        with pytest.raises(ValueError, match="unknown run"):
            St.parse_run(bad)
    with pytest.raises(S.SweepError, match="lrs"):
        St.StudyConfig(lrs=(0.1, -1))
    result = run_cli("study", "--out", "unused", "--algo", "bp-sgd,bp-rmsprop")
    assert result.exit_code == 2 and "unknown run 'bp-rmsprop'" in result.output
    result = run_cli("study", "--out", "unused", "--lr", "0.1,-1")
    assert result.exit_code == 2 and "--lr: every value must be > 0" in result.output


# ----------------------------------------------------------------------------- outputs

def test_csv_one_row_per_cell_with_divergence_recorded(tiny):
    out, result = tiny
    rows = read_csv(out / "results.csv")
    assert list(rows[0]) == list(St.STUDY_COLUMNS)
    assert len(rows) == N_CELLS
    assert "diverged (4)" in result.output
    for r in rows:
        assert r["grid"] == "lr-batch"
        by_epoch = [float(v) for v in r["test_accuracy_by_epoch"].split(";") if v]
        assert int(r["epochs_completed"]) == len(by_epoch)
        if float(r["lr"]) == 1e4:
            # a row, not a crash: the grid went on
            assert r["status"] == "diverged" and r["final_test_accuracy"] == ""
            assert int(r["diverged_epoch"]) == int(r["epochs_completed"]) + 1
            assert "loss" in r["error"] or "non-finite" in r["error"]
        else:
            assert r["status"] == "completed" and r["diverged_epoch"] == r["error"] == ""
            assert len(by_epoch) == 2
            assert float(r["final_test_accuracy"]) == pytest.approx(by_epoch[-1], abs=1e-4)
            assert float(r["best_test_accuracy"]) == pytest.approx(max(by_epoch), abs=1e-4)
        assert r["momentum"] == ("" if r["optimizer"] == "adam" else "0.0")
    meta = json.loads((out / "results.json").read_text())
    assert meta["grid"] == "lr-batch" and meta["run"]["status"] == "completed"
    assert meta["config"]["algos"] == ["bp-sgd", "bp-adam"]


def test_divergence_of_the_training_is_caught_per_cell(monkeypatch, tmp_path):
    calls = []

    def diverging(*args, **kwargs):
        calls.append(kwargs["lr"])
        if kwargs["lr"] > 1:
            raise St.DivergenceError("loss became nan at epoch 1, batch 1")
        return St.train(*args, **kwargs)
    monkeypatch.setattr(St, "_train", diverging)
    cfg = St.StudyConfig(algos=("bp-sgd",), lrs=(0.1, 2.0), batch_sizes=(64,), depth=1,
                         width=4, epochs=1)
    run = S.run_sweep(cfg, tmp_path)
    assert sorted(calls) == [0.1, 2.0] and run.status == "completed"
    status = {c.lr: r["status"] for c, r in run.records.items()}
    assert status == {0.1: "completed", 2.0: "diverged"}


# ----------------------------------------------------------------------------- resumption

def test_rerun_skips_finished_cells_and_force_adds_new_ones(tiny, tmp_path, monkeypatch):
    import shutil
    out = tmp_path / "copy"
    shutil.copytree(tiny[0], out)
    calls = []
    real = St._train
    monkeypatch.setattr(St, "_train", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = run_cli("study", "--out", str(out), *TINY)
    assert result.exit_code == 0, result.output
    assert calls == [] and f"{N_CELLS} finished, 0 to run" in result.output
    # another learning rate: a different grid, refused without --force; with it, only the
    # new cells train
    more = [a if a != "0.1,1e4" else "0.1,0.3,1e4" for a in TINY]
    result = run_cli("study", "--out", str(out), *more)
    assert result.exit_code == 1 and "different configuration" in result.output
    result = run_cli("study", "--out", str(out), *more, "--force")
    assert result.exit_code == 0, result.output
    assert len(calls) == 4 and len(read_csv(out / "results.csv")) == N_CELLS + 4


def test_a_sweep_folder_is_not_resumed_as_a_study(tmp_path):
    S.run_sweep(S.SweepConfig(algo="bp", depths=(1,), epochs=1, width=4), tmp_path)
    with pytest.raises(S.SweepError, match="grid depth-steps -> lr-batch"):
        S.run_sweep(St.StudyConfig(algos=("bp",), lrs=(0.1,), batch_sizes=(64,), depth=1,
                                   width=4, epochs=1), tmp_path)


# ----------------------------------------------------------------------------- heatmaps

def _write_study_csv(path):
    """A generated lr-batch CSV: two runs, 2 lrs x 2 batch sizes x 2 seeds; one cell
    diverged for both seeds, one for a single seed."""
    rows = []
    for run in ("bp-sgd", "vpc-sgd"):
        for bs in (1, 64):
            for lr in (0.01, 10.0):
                for seed in (0, 1):
                    div = lr == 10 and (run == "bp-sgd" or seed == 1) and bs == 1
                    acc = 0.5 + 0.1 * seed + (0.2 if bs == 1 else 0.0)
                    row = {k: "" for k in St.STUDY_COLUMNS}
                    row.update(grid="lr-batch", run=run, lr=repr(lr), batch_size=str(bs),
                               seed=str(seed), status="diverged" if div else "completed",
                               diverged_epoch="3" if div else "",
                               final_test_accuracy="" if div else repr(acc),
                               best_test_accuracy=repr(0.4 if div else acc + 0.05))
                    rows.append(row)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(St.STUDY_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


def test_heatmap_summary_marks_divergence(tmp_path):
    from pckernels.heatmap import csv_grid_kind, load_study, summarise_study
    path = tmp_path / "results.csv"
    _write_study_csv(path)
    assert csv_grid_kind(path) == "lr-batch"
    summary = summarise_study(load_study(path), "final_test_accuracy")
    assert summary[("bp-sgd", 1, 10.0)][1:] == (2, 2, 3)          # both seeds diverged
    assert summary[("bp-sgd", 1, 10.0)][0] != summary[("bp-sgd", 1, 10.0)][0]  # NaN
    mean, n, n_div, epoch = summary[("vpc-sgd", 1, 10.0)]          # seed 1 diverged
    assert (n, n_div, epoch) == (2, 1, 3) and mean == pytest.approx(0.7)
    assert summary[("vpc-sgd", 64, 0.01)] == (pytest.approx(0.55), 2, 0, None)
    best = summarise_study(load_study(path), "best_test_accuracy")
    assert best[("vpc-sgd", 1, 10.0)][0] == pytest.approx(0.75)   # survivors only


@needs_mpl
def test_plot_dispatches_on_the_csv_kind(tmp_path):
    path = tmp_path / "results.csv"
    _write_study_csv(path)
    out = tmp_path / "figs"
    result = run_cli("plot", str(path), "--out", str(out), "--formats", "png,svg")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{s}.{e}" for s in ("lr_batch_final_acc", "lr_batch_best_acc") for e in ("png", "svg"))
    for p in out.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
    svg = (out / "lr_batch_final_acc.svg").read_text()  # matplotlib keeps texts as comments
    assert svg.count("<!-- div -->") == 1 and "<!-- e3 -->" in svg   # both seeds diverged
    assert "<!-- 1/2 div -->" in svg                                  # one seed of two
    # a study CSV cut short is one clean line
    text = path.read_text()
    path.write_text(text[: text.rindex("\n", 0, len(text) - 1) - 5] + "\n")
    result = run_cli("plot", str(path), "--out", str(out))
    assert result.exit_code == 1 and "lr_batch_final_acc.png exists" in result.output
    result = run_cli("plot", str(path), "--out", str(out), "--force")
    assert result.exit_code == 1 and "wrong number of fields" in result.output


@needs_mpl
def test_plot_draws_a_real_study(tiny, tmp_path):
    result = run_cli("plot", str(tiny[0] / "results.csv"), "--out", str(tmp_path),
                     "--format", "svg")
    assert result.exit_code == 0, result.output
    svg = (tmp_path / "lr_batch_final_acc.svg").read_text()
    # lr 1e4 diverged for both runs at both batch sizes: four hatched cells
    assert svg.count("<!-- div -->") == 4 and "bp + Adam" in svg
