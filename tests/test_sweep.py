"""Tests for pckernels.sweep and ``pck sweep``: grid, CSV, resumption, interruption, backends."""
import csv
import json
import os
import shutil
import sys

import pytest
from click.testing import CliRunner

import pckernels.io
import pckernels.sweep as S
from pckernels_cli.main import cli

TINY = ["--depth", "2,4", "--ratio", "0.5,1", "--step-size", "0.5,1", "--epochs", "1",
        "--width", "16", "--no-progress"]
N_CELLS = 10          # 2 depths x (1 baseline + 2 ratios x 2 step sizes), all distinct T
TIMING = ("epoch_seconds", "wall_seconds")


def run_cli(*args):
    return CliRunner().invoke(cli, ["sweep", *args], catch_exceptions=True)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def numbers(path):
    """The CSV without its timing columns: what must not depend on the backend."""
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_csv(path)]


def count_training(monkeypatch, fail_at=None):
    """Count calls of the sweep's training seam; optionally raise on the ``fail_at``-th."""
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        if fail_at is not None and len(calls) == fail_at:
            raise RuntimeError("simulated crash mid-sweep")
        return real(*args, **kwargs)
    real = S._train
    monkeypatch.setattr(S, "_train", counting)
    return calls


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The tiny grid run serially with the default threads (cores // 1)."""
    out = tmp_path_factory.mktemp("serial") / "sweep"
    result = run_cli("--out", str(out), *TINY)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def copy_of(tmp_path):
    def make(src):
        dst = tmp_path / "copy"
        shutil.copytree(src, dst)
        return dst
    return make


# ----------------------------------------------------------------------------- grid

@pytest.mark.parametrize("ratio, depth, steps", [
    (0.25, 2, 1),     # 0.5 rounds half up
    (0.25, 10, 3),    # 2.5 -> 3, not banker's 2
    (0.35, 10, 4),    # 3.5 in decimal although 0.35 * 10 < 3.5 in binary
    (0.1, 2, 1),      # 0.2 -> 0 -> at least one step
    (0.75, 2, 2),
    (1.5, 5, 8),
    (2, 20, 40),
    (1, 7, 7),
])
def test_steps_for_ratio(ratio, depth, steps):
    assert S.steps_for_ratio(ratio, depth) == steps


def test_ratios_with_equal_steps_share_a_run():
    cfg = S.SweepConfig(depths=(2,), ratios=(0.25, 0.5, 1), step_sizes=(1,), epochs=1)
    rows = cfg.rows()
    assert [(r, c.steps) for r, c in rows] == [(None, None), (0.25, 1), (0.5, 1), (1.0, 2)]
    assert len(cfg.cells()) == 3
    assert cfg.cells()[-1].algo == "bp"          # longest first, backprop cheapest


def test_invalid_grids_are_rejected():
    with pytest.raises(S.SweepError, match="step_size 1"):
        S.SweepConfig(algo="zil", depths=(2,), ratios=(1,), step_sizes=(0.5,))
    with pytest.raises(S.SweepError, match="ratios"):
        S.SweepConfig(ratios=(0.5, -1))
    with pytest.raises(S.SweepError, match="depths"):
        S.SweepConfig(depths=(0,))
    result = run_cli("--out", "unused", "--ratio", "0.5,x")
    assert result.exit_code == 2 and "comma-separated" in result.output


# ----------------------------------------------------------------------------- outputs

def test_csv_columns_rows_and_sidecar(serial):
    rows = read_csv(serial / "results.csv")
    assert list(rows[0]) == list(S.CSV_COLUMNS)
    assert len(rows) == N_CELLS                  # one epoch each
    assert sorted(p.name for p in (serial / "cells").iterdir()) == sorted(
        f"{c.name}.json" for c in S.SweepConfig(depths=(2, 4), ratios=(0.5, 1),
                                                step_sizes=(0.5, 1), epochs=1,
                                                width=16).cells())
    for r in rows:
        assert len(r["layer_cosine"].split(";")) == int(r["depth"]) + 1
        assert r["status"] == "completed" and r["epoch"] == "1"
        assert 0 <= float(r["val_accuracy"]) <= 1 and 0 <= float(r["test_accuracy"]) <= 1
        if r["algo"] == "bp":
            assert r["ratio"] == r["steps"] == r["step_size"] == ""
            assert float(r["cosine"]) == 1.0
        else:
            assert int(r["steps"]) == S.steps_for_ratio(float(r["ratio"]), int(r["depth"]))
    meta = json.loads((serial / "results.json").read_text())
    assert meta["config"]["depths"] == [2, 4] and meta["config"]["width"] == 16
    assert meta["config"]["dataset"] == "digits"
    assert {"numpy", "numba", "pckernels", "cpu"} <= set(meta["environment"])
    assert meta["run"]["status"] == "completed" and meta["run"]["cells"] == N_CELLS
    assert list(meta["csv_columns"]) == list(S.CSV_COLUMNS)


def test_cosine_follows_the_theory(serial):
    """fpa, step size 1: exact (cosine 1) once T >= L; short of it when T <= L/2."""
    rows = [r for r in read_csv(serial / "results.csv")
            if r["algo"] == "fpa" and float(r["step_size"]) == 1.0]
    assert rows
    for r in rows:
        depth, steps, cos = int(r["depth"]), int(r["steps"]), float(r["cosine"])
        if steps >= depth:
            assert cos > 0.9999, r
        if steps <= depth / 2:
            assert cos < 0.99, r
            # Layers the error never reached get no update: their cosine is 0.
            layers = [float(v) for v in r["layer_cosine"].split(";")]
            assert layers[0] == 0.0


# ----------------------------------------------------------------------------- resumption

def test_rerun_skips_finished_cells(serial, copy_of, monkeypatch):
    out = copy_of(serial)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    before = numbers(out / "results.csv")
    calls = count_training(monkeypatch)
    result = run_cli("--out", str(out), *TINY)
    assert result.exit_code == 0, result.output
    assert calls == []
    assert f"{N_CELLS} finished, 0 to run" in result.output
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()} == mtimes
    assert numbers(out / "results.csv") == before


def test_changed_config_needs_force(serial, copy_of, monkeypatch):
    out = copy_of(serial)
    more = [a if a != "0.5,1" or i != TINY.index("--step-size") + 1 else "0.25,0.5,1"
            for i, a in enumerate(TINY)]
    result = run_cli("--out", str(out), *more)
    assert result.exit_code == 1 and "different configuration" in result.output
    assert "step_sizes" in result.output
    calls = count_training(monkeypatch)
    result = run_cli("--out", str(out), *more, "--force")
    assert result.exit_code == 0, result.output
    assert len(calls) == 4                       # only the new step size's cells
    assert len(read_csv(out / "results.csv")) == N_CELLS + 4
    # Changed training settings: nothing can be reused.
    calls.clear()
    result = run_cli("--out", str(out), *more, "--lr", "0.02", "--force")
    assert result.exit_code == 0, result.output
    assert len(calls) == N_CELLS + 4


def test_interrupted_sweep_leaves_only_whole_files(serial, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    count_training(monkeypatch, fail_at=4)
    result = run_cli("--out", str(out), *TINY)
    assert result.exit_code != 0
    assert isinstance(result.exception, RuntimeError)
    files = list((out / "cells").iterdir())
    assert len(files) == 3                       # the three cells finished before the crash
    for f in files:
        assert json.loads(f.read_text())["status"] == "completed"
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-")]
    assert {r["cell"] for r in read_csv(out / "results.csv")} == {f.stem for f in files}
    assert json.loads((out / "results.json").read_text())["run"]["status"] == "interrupted"
    # Resuming trains only the rest and ends with the same numbers as an uninterrupted run.
    calls = count_training(monkeypatch)
    result = run_cli("--out", str(out), *TINY)
    assert result.exit_code == 0, result.output
    assert len(calls) == N_CELLS - 3
    assert numbers(out / "results.csv") == numbers(serial / "results.csv")


def test_failed_csv_write_keeps_the_previous_file(serial, copy_of, monkeypatch):
    out = copy_of(serial)
    before = (out / "results.csv").read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(pckernels.io.os, "replace", broken_replace)
    cfg = S.SweepConfig.from_dict(json.loads((out / "results.json").read_text())["config"])
    with pytest.raises(OSError, match="disk full"):
        S.write_csv(out, cfg)
    assert (out / "results.csv").read_bytes() == before
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-")]


# ----------------------------------------------------------------------------- backends

def test_joblib_jobs_give_the_serial_numbers(serial, tmp_path):
    """--jobs 2 (one thread each) against the serial run (all cores): same numbers."""
    out = tmp_path / "jobs"
    result = run_cli("--out", str(out), *TINY, "--jobs", "2", "--progress")
    assert result.exit_code == 0, result.output
    assert "on 2 jobs" in result.output
    assert numbers(out / "results.csv") == numbers(serial / "results.csv")


def test_dask_gives_the_serial_numbers(serial, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  host="127.0.0.1", protocol="tcp",
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            assert S.dask_threads(client) == max(1, (os.cpu_count() or 1) // 2)
            out = tmp_path / "dask"
            result = run_cli("--out", str(out), *TINY, "--scheduler",
                             cluster.scheduler_address)
            assert result.exit_code == 0, result.output
            assert "Dask tcp://127.0.0.1" in result.output
    assert numbers(out / "results.csv") == numbers(serial / "results.csv")


def test_missing_dask_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    result = run_cli("--out", str(tmp_path / "x"), *TINY, "--dask-local", "2")
    assert result.exit_code == 1
    assert "Error: --scheduler/--dask-local need dask[distributed]: pip install " \
           "'pckernels[dist]'" in result.output
    assert not (tmp_path / "x").exists()


def test_missing_joblib_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "joblib", None)
    result = run_cli("--out", str(tmp_path / "x"), *TINY, "--jobs", "2")
    assert result.exit_code == 1 and "--jobs needs joblib" in result.output


def test_a_running_sweep_holds_its_folder(tmp_path):
    config = S.SweepConfig(depths=(1,), ratios=(1.0,), step_sizes=(0.5,), epochs=1, width=4)
    with S.folder_lock(tmp_path):
        with pytest.raises(S.SweepError, match=f"in use by another sweep \\(pid {os.getpid()}"):
            S.run_sweep(config, tmp_path)
    assert not (tmp_path / "results.json").exists()
    # released: the next run takes it
    assert S.run_sweep(config, tmp_path).status == "completed"
