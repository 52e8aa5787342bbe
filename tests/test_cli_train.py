"""``pck train`` through click's CliRunner: outputs, and one clear error line per bad input."""
import json
import os

import numpy as np
import pytest

from pckernels import MLP, __version__
from pckernels.data import IDX_FILES, load_dataset, write_idx

try:  # tests/ is a plain directory on sys.path, or a package if someone adds __init__.py
    from cli_checks import clean_error
except ImportError:
    from tests.cli_checks import clean_error

FAST = ["--epochs", "1", "--hidden", "8x1", "--no-progress"]



def test_version(run):
    result = run("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"pck, version {__version__}"


def test_train_writes_json_and_checkpoint(run, tmp_path):
    result = run("train", "--epochs", "2", "--hidden", "8x1", "--no-progress", "--seed", "3",
                 "--json", "out/summary.json", "--save", "net.npz")
    assert result.exit_code == 0, result.output
    assert "test accuracy:" in result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {"status", "config", "epochs", "final_test_accuracy", "timing",
            "environment"} <= set(summary)
    assert summary["status"] == "completed" and summary["error"] is None
    config = summary["config"]
    assert config["sizes"] == [64, 8, 10] and config["epochs"] == 2 and config["seed"] == 3
    assert config["algo"] == "bp" and config["dataset"] == "digits"
    assert config["n_train"] + config["n_val"] == 1347 and config["n_test"] == 450
    assert [e["epoch"] for e in summary["epochs"]] == [1, 2]
    assert summary["final_test_accuracy"] == summary["epochs"][-1]["test_accuracy"]
    assert 0.3 < summary["final_test_accuracy"] <= 1.0
    assert summary["timing"]["train_seconds"] > 0
    assert summary["environment"]["pckernels"] == __version__

    net = MLP.load(tmp_path / "net.npz")
    assert list(net.sizes) == [64, 8, 10] and net.activation == "tanh"
    ds = load_dataset("digits")
    accuracy = float(np.mean(net.predict(ds.X_test) == ds.y_test))
    assert accuracy == pytest.approx(summary["final_test_accuracy"], abs=1e-12)
    assert sorted(os.listdir(tmp_path)) == ["net.npz", "out"]  # no temporaries left


@pytest.mark.slow  # fast once Numba's cache holds the PC kernels; compiling them takes ~1 min
def test_train_fpa_runs(run, tmp_path):
    result = run("train", "--algo", "fpa", "--epochs", "1", "--hidden", "16x2", "--no-progress",
                 "--json", "fpa.json")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "fpa.json").read_text())
    assert summary["config"]["algo"] == "fpa" and summary["config"]["pc"]["steps"] == 2
    assert summary["final_test_accuracy"] > 0.2


@pytest.mark.parametrize("args,fragment", [
    (["--lr", "0"], "--lr"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--hidden", "0x2"], "--hidden"),
    (["--hidden", "abc"], "--hidden"),
    (["--hidden", "8,-3"], "--hidden"),
    (["--batch-size", "0"], "--batch-size"),
    (["--activation", "swish"], "--activation"),
    (["--epochs", "0"], "--epochs"),
    (["--momentum", "nan"], "--momentum"),
    (["--weight-decay", "inf"], "--weight-decay"),
    (["--val-fraction", "nan"], "--val-fraction"),
    (["--algo", "zil", "--step-size", "0.5"], "step"),
    (["--json", "blocker/out.json"], "--json"),
    (["--save", "blocker/net.npz"], "--save"),
])
def test_bad_usage_gives_one_line_and_exit_2(run, tmp_path, args, fragment):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    result = run("train", *FAST, *args)
    line = clean_error(result, 2)
    assert fragment in line
    assert sorted(os.listdir(tmp_path)) == ["blocker"]


def write_idx_dataset(directory, bad=None):
    """A tiny MNIST-style IDX set (4x4 images); ``bad`` corrupts one file."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 30), ("t10k", 10)):
        arrays[f"{split}-images-idx3-ubyte"] = rng.integers(0, 256, (n, 4, 4), dtype=np.uint8)
        arrays[f"{split}-labels-idx1-ubyte"] = (np.arange(n) % 10).astype(np.uint8)
    if bad == "label":
        arrays["train-labels-idx1-ubyte"][5] = 12
    for stem in IDX_FILES:
        write_idx(directory / stem, arrays[stem])
    if bad == "truncated":
        path = directory / "train-images-idx3-ubyte"
        os.truncate(path, path.stat().st_size - 7)
    if bad == "garbage":
        (directory / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x99\x01 not idx")


def test_idx_dataset_in_data_dir_trains(run, tmp_path):
    write_idx_dataset(tmp_path / "idx")
    result = run("train", *FAST, "--dataset", "mnist", "--data-dir", "idx")
    assert result.exit_code == 0, result.output
    assert "MLP 16-8-10" in result.output


@pytest.mark.parametrize("bad,fragment", [("truncated", "truncated"),
                                          ("garbage", "t10k-labels-idx1-ubyte"),
                                          ("label", "label 12")])
def test_broken_idx_file_gives_one_line_and_exit_1(run, tmp_path, bad, fragment):
    write_idx_dataset(tmp_path / "idx", bad=bad)
    result = run("train", *FAST, "--dataset", "mnist", "--data-dir", "idx",
                 "--json", "out.json", "--save", "net.npz")
    line = clean_error(result, 1)
    assert fragment in line
    assert sorted(os.listdir(tmp_path)) == ["idx"]


@pytest.mark.parametrize("case,fragment", [("nan", "non-finite"), ("negative", "non-negative"),
                                           ("missing_y", "missing array y"),
                                           ("not_npz", "cannot read")])
def test_bad_npz_gives_one_line_and_exit_1(run, tmp_path, case, fragment):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 3)), np.arange(20) % 2
    path = tmp_path / "data.npz"
    if case == "nan":
        X[4, 1] = np.nan
        np.savez(path, X=X, y=y)
    elif case == "negative":
        y[3] = -1
        np.savez(path, X=X, y=y)
    elif case == "missing_y":
        np.savez(path, X=X)
    else:
        path.write_bytes(b"PK\x03\x04 truncated zip")
    result = run("train", *FAST, "--dataset", path, "--json", "out.json", "--save", "net.npz")
    line = clean_error(result, 1)
    assert fragment in line
    assert sorted(os.listdir(tmp_path)) == ["data.npz"]


def test_divergence_gives_one_line_exit_1_and_no_checkpoint(run, tmp_path):
    result = run("train", "--epochs", "2", "--hidden", "16x2", "--activation", "identity",
                 "--lr", "1e6", "--no-progress", "--json", "out.json", "--save", "net.npz")
    line = clean_error(result, 1)
    assert "loss became" in line and "smaller learning rate" in line
    assert not (tmp_path / "net.npz").exists()
    # the summary is complete, valid JSON that records the failure
    summary = json.loads((tmp_path / "out.json").read_text())
    assert summary["status"] == "diverged" and "loss became" in summary["error"]
    assert summary["epochs"] == [] and summary["final_test_accuracy"] is None
    assert sorted(os.listdir(tmp_path)) == ["out.json"]


def test_npz_dataset_trains(run, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    np.savez(tmp_path / "data.npz", X=X, y=(X[:, 0] > 0).astype(int))
    result = run("train", *FAST, "--dataset", "data.npz", "--json", "s.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "s.json").read_text())["config"]["sizes"] == [3, 8, 2]


def test_json_summary_is_strict_json(tmp_path):
    """NaN and infinities (e.g. samples/s of a zero-length epoch) are written as null."""
    from pckernels.io import atomic_write_json
    path = tmp_path / "s.json"
    atomic_write_json(path, {"a": float("nan"), "b": [float("inf"), np.float64(-np.inf)],
                             "c": np.float32(1.5), "d": np.int64(3)})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [None, None], "c": 1.5, "d": 3}


def test_tiny_epochs_show_mean_throughput_not_timer_noise():
    from click.testing import CliRunner

    from pckernels_cli.main import SHORT_EPOCH_S, cli
    result = CliRunner().invoke(cli, ["train", "--epochs", "2", "--hidden", "8x1",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()
            if line.strip()[:1].isdigit() and len(line.split()) == 6]
    assert len(rows) == 2
    for row in rows:
        seconds = float(row[4])
        assert seconds > 0, "seconds keep three significant digits, never 0.00"
        assert row[5].startswith("~") == (seconds < SHORT_EPOCH_S)
    note = [line for line in result.output.splitlines() if line.startswith("~: ")]
    assert len(note) == any(row[5].startswith("~") for row in rows)


def test_quiet_and_verbose(run):
    quiet = run("train", "--quiet", *FAST)
    assert quiet.exit_code == 0, quiet.output
    assert quiet.output.strip().splitlines() == [quiet.output.strip()]
    assert quiet.output.startswith("test accuracy:")
    verbose = run("train", "--verbose", "--algo", "vpc", *FAST)
    assert verbose.exit_code == 0, verbose.output
    assert "inference:" in verbose.output and "rejected" in verbose.output
    plain = run("train", "--algo", "vpc", *FAST)
    assert "inference:" not in plain.output and "epoch" in plain.output
