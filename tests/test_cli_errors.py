"""Bad input, big input: every case is one clear line and the right exit code.

Exit 2 for usage errors (a bad option), 1 for runtime failures (bad data, too little
memory, a folder that cannot be written); never a traceback, and nothing written first.
"""
import gzip
import json
import os

import numpy as np
import pytest

from pckernels import MLP
from pckernels.data import IDX_FILES, DataError, load_dataset, read_idx, write_idx
from pckernels.memory import parse_bytes, training_bytes

try:  # tests/ is a plain directory on sys.path, or a package if someone adds __init__.py
    from cli_checks import clean_error
except ImportError:
    from tests.cli_checks import clean_error

FAST = ["--epochs", "1", "--hidden", "4x1", "--no-progress"]
SWEEP = ["--depth", "1", "--ratio", "1", "--step-size", "0.5", "--epochs", "1",
         "--width", "4", "--no-progress"]



def small(n=30, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, features)), np.arange(n) % classes


# ------------------------------------------------------------------ 1. dtype overflow

@pytest.mark.parametrize("array", ["X", "X_test"])
def test_value_beyond_float32_is_named_at_load_time(run, tmp_path, array):
    X, y = small()
    arrays = {"X": X, "y": y, "X_test": X[:6].copy(), "y_test": y[:6]}
    arrays[array][4, 2] = 1e39
    np.savez(tmp_path / "big.npz", **arrays)
    clean_error(run("train", "--dataset", "big.npz", *FAST), 1,
                f"{array}[4, 2] = 1e+39 overflows float32")
    # the same file is fine in float64
    assert run("train", "--dataset", "big.npz", "--dtype", "float64", *FAST).exit_code == 0


def test_load_dataset_converts_to_the_asked_dtype(tmp_path):
    X, y = small()
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ds = load_dataset(tmp_path / "d.npz", dtype="float32")
    assert ds.X_train.dtype == np.float32 and ds.X_test.dtype == np.float32
    assert ds.X_train.flags.c_contiguous


# ------------------------------------------------------------------ 2. tiny datasets

def test_two_samples_without_test_set(run, tmp_path):
    X, y = small(2, classes=2)
    np.savez(tmp_path / "two.npz", X=X, y=y)
    clean_error(run("train", "--dataset", "two.npz", *FAST), 1, "two.npz")


def test_one_sample_with_a_test_set(run, tmp_path):
    X, y = small(4, classes=2)
    np.savez(tmp_path / "one.npz", X=X[:1], y=y[:1], X_test=X, y_test=y)
    clean_error(run("train", "--dataset", "one.npz", *FAST), 1, "one.npz")


def test_single_training_sample_cannot_give_a_validation_set(run, monkeypatch):
    from pckernels.data import Dataset
    X, y = small(4, classes=2)
    tiny = Dataset("tiny", X[:1], y[:1], X, y, 2, "memory")
    monkeypatch.setattr("pckernels_cli.main.load_dataset", lambda *a, **k: tiny)
    clean_error(run("train", *FAST), 1, "--val-fraction 0")


def test_all_one_class_is_a_data_error(run, tmp_path):
    X, _ = small()
    np.savez(tmp_path / "same.npz", X=X, y=np.zeros(len(X), dtype=int))
    clean_error(run("train", "--dataset", "same.npz", *FAST), 1, "at least 2 classes")


# ------------------------------------------------------------------ 3. memory bounded

@pytest.mark.parametrize("hidden, code, fragment", [
    ("100000x3", 1, "needs about"),
    ("9223372036854775808", 2, "--hidden"),
    ("64x0", 2, "depth must be >= 1"),
    ("64x-1", 2, "depth must be >= 1"),
])
def test_huge_or_empty_networks_are_refused_before_allocation(run, hidden, code, fragment):
    clean_error(run("train", "--hidden", hidden, "--epochs", "1", "--no-progress"), code,
                fragment)


@pytest.mark.parametrize("label", [10 ** 10, 2 ** 63 - 1, 100_000])
def test_absurd_labels_are_a_data_error(run, tmp_path, label):
    X, y = small()
    y = y.astype(np.int64)
    y[3] = label
    np.savez(tmp_path / "labels.npz", X=X, y=y)
    clean_error(run("train", "--dataset", "labels.npz", *FAST), 1, "too large")


def test_max_memory_option_and_env(run, monkeypatch):
    clean_error(run("train", *FAST, "--max-memory", "10K"), 1, "10.0 KiB (--max-memory)")
    monkeypatch.setenv("PCK_MAX_MEMORY", "10K")
    clean_error(run("train", *FAST), 1, "PCK_MAX_MEMORY")
    monkeypatch.setenv("PCK_MAX_MEMORY", "lots")
    clean_error(run("train", *FAST), 2, "PCK_MAX_MEMORY")
    monkeypatch.delenv("PCK_MAX_MEMORY")
    clean_error(run("train", *FAST, "--max-memory", "-5G"), 2, "--max-memory")
    assert run("train", *FAST, "--max-memory", "1G").exit_code == 0


def test_sweep_width_refused_before_anything_is_written(run, tmp_path):
    clean_error(run("sweep", "--out", "out", "--width", "1000000", "--epochs", "1"), 1,
                "needs about")
    assert not (tmp_path / "out").exists()


def test_memory_estimate_counts_what_training_allocates():
    sizes = [64, 100000, 100000, 100000, 10]
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    bp = training_bytes(sizes, 64)
    assert bp > 5 * params * 4                       # params, gradient, backups, momentum
    assert training_bytes(sizes, 64, optimizer="adam") > bp
    assert training_bytes(sizes, 64, algo="fpa") > bp + 8 * 64 * 300010 * 4
    assert training_bytes(sizes, 64, dtype="float64") > 1.9 * bp
    # --save keeps the last epoch's parameters and optimizer state for an interruption
    assert training_bytes(sizes, 64, save=True) - bp == 2 * params * 4
    assert parse_bytes("1.5G") == 3 * 2 ** 29 and parse_bytes("512") == 512


# ------------------------------------------------------------------ 4. seeds

@pytest.mark.parametrize("cmd", [["train", *FAST, "--seed", "-1"],
                                 ["sweep", "--out", "out", *SWEEP, "--seed", "-1"],
                                 ["sweep", "--out", "out", *SWEEP, "--seed", "0,-3"]])
def test_negative_seed_is_a_usage_error(run, tmp_path, cmd):
    clean_error(run(*cmd), 2, "seed")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ 5. sweep --out

def test_sweep_out_under_a_regular_file(run, tmp_path):
    (tmp_path / "file").write_text("x")
    clean_error(run("sweep", "--out", "file/sub", *SWEEP), 2, "--out")
    clean_error(run("sweep", "--out", "file", *SWEEP), 2, "--out")


@pytest.mark.parametrize("errno, text", [(30, "Read-only file system"),
                                         (28, "No space left on device")])
def test_sweep_write_failure_is_one_line(run, monkeypatch, errno, text):
    import pckernels.sweep as S

    def fail(*args, **kwargs):
        raise OSError(errno, os.strerror(errno))
    monkeypatch.setattr(S, "atomic_write_json", fail)
    clean_error(run("sweep", "--out", "out", *SWEEP), 1, "cannot write", text)


# ------------------------------------------------------------------ 6. IDX size bounds

def test_gzip_bomb_stops_at_the_header_size(tmp_path, monkeypatch):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (120, 28, 28))
    with gzip.open(path, "wb") as f:
        f.write(header)
        zeros = bytes(1 << 20)
        for _ in range(64):                                   # 64 MiB of zeros, ~65 KB
            f.write(zeros)
    read = []
    real = gzip.GzipFile.read

    def counting(self, *args):
        out = real(self, *args)
        read.append(len(out))
        return out
    monkeypatch.setattr(gzip.GzipFile, "read", counting)
    with pytest.raises(DataError, match="too long"):
        read_idx(path)
    assert sum(read) < 1 << 20                       # stopped right after the payload


def test_idx_header_larger_than_the_file_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.gz"
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (2 ** 31, 2 ** 15, 4))
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(100))
    with pytest.raises(DataError, match="more than the file's"):
        read_idx(path)


def test_idx_dataset_is_converted_without_float64_copies(tmp_path):
    rng = np.random.default_rng(0)
    for stem in IDX_FILES:
        n = 50 if stem.startswith("train") else 10
        array = (rng.integers(0, 256, (n, 4, 4)) if "images" in stem
                 else rng.integers(0, 10, n)).astype(np.uint8)
        write_idx(tmp_path / stem, array)
    ds = load_dataset("mnist", data_dir=tmp_path, download=False, dtype="float32")
    assert ds.X_train.dtype == np.float32
    expected = read_idx(tmp_path / IDX_FILES[0]).reshape(50, -1) / np.float32(255)
    np.testing.assert_array_equal(ds.X_train, expected.astype(np.float32))


# ------------------------------------------------------------------ 7. checkpoints

def forged(tmp_path, **changes):
    net = MLP([4, 3, 2])
    net.save(tmp_path / "net.npz")
    arrays = dict(np.load(tmp_path / "net.npz"))
    arrays.update(changes)
    np.savez(tmp_path / "forged.npz", **arrays)
    return tmp_path / "forged.npz"


@pytest.mark.parametrize("changes, message", [
    ({"sizes": np.array([100000, 100000, 10])}, "10001100010 parameters"),
    ({"dtype": np.array("garbage")}, "dtype must be float32 or float64"),
    ({"params": np.full(23, np.nan, np.float32)}, "NaN or infinite"),
    ({"params": np.full(23, 1e300)}, "overflow"),
    ({"sizes": np.array([4, 0, 2])}, "width must be >= 1"),
    ({"sizes": np.array([4, 2 ** 40, 2])}, "larger than the maximum"),
    ({"activation": np.array("tahn")}, "unknown activation"),
    ({"seed": np.array("x")}, "seed must be an integer"),
    ({"params": np.zeros(23, complex)}, "floating point"),
])
def test_checkpoint_checked_before_it_is_trusted(tmp_path, changes, message):
    path = forged(tmp_path, **changes)
    with pytest.raises(ValueError, match=message) as info:
        MLP.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("sizes", [[64, 2.5, 10], [64, float("nan"), 10], [64, True, 10],
                                   [64, "8", 10]])
def test_mlp_widths_must_be_integers(sizes):
    with pytest.raises(ValueError, match="integers"):
        MLP(sizes)


def test_complex_inputs_are_rejected():
    net = MLP([3, 2])
    with pytest.raises(ValueError, match="real numbers"):
        net.check_input(np.ones((2, 3), dtype=complex))
    with pytest.raises(ValueError, match="overflows float32"):
        net.check_input(np.full((2, 3), 1e39))


# ------------------------------------------------------------------ 8. plot

def test_plot_binary_cut_and_bogus_formats(run, tmp_path):
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 4)
    clean_error(run("plot", "bin.csv", "--out", "figs"), 1, "not a text CSV")
    header = "algo,depth,ratio,step_size,seed,epoch,cosine,val_accuracy,test_accuracy\n"
    (tmp_path / "cut.csv").write_text(header + "fpa,1,1,0.5,0,1,0.9,0.5,0.5\nfpa,1,1,0.5")
    clean_error(run("plot", "cut.csv", "--out", "figs"), 1, "cut short")
    (tmp_path / "ok.csv").write_text(header + "fpa,1,1,0.5,0,1,0.9,0.5,0.5\n")
    clean_error(run("plot", "ok.csv", "--out", "figs", "--format", "bogus"), 2, "bogus")
    assert not (tmp_path / "figs").exists()


# ------------------------------------------------------------------ option validation

def test_sweep_options_checked_before_anything_is_written(run, tmp_path):
    clean_error(run("sweep", "--out", "out", *SWEEP, "--activation", "tahn"), 2,
                "--activation")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, option", [
    (["--algo", "bp", "--steps", "5"], "--steps"),
    (["--optimizer", "adam", "--momentum", "0.5"], "--momentum"),
    (["--algo", "vpc", "--precision-ratio", "10"], "--precision-ratio"),
    (["--data-dir", "."], "--data-dir"),
])
def test_options_that_do_not_apply_warn(run, args, option):
    result = run("train", *FAST, *args)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and option in warnings[0], result.output


def test_no_warning_for_defaults(run):
    result = run("train", *FAST)
    assert "warning:" not in result.output


def test_force_is_named_in_the_conflict_message(run):
    assert run("sweep", "--out", "out", *SWEEP).exit_code == 0
    clean_error(run("sweep", "--out", "out", *SWEEP, "--lr", "0.01"), 1, "--force")


# ------------------------------------------------------------------ minor cases

def test_empty_json_path(run):
    clean_error(run("train", *FAST, "--json", ""), 2, "--json")


def test_json_and_save_must_differ(run, tmp_path):
    clean_error(run("train", *FAST, "--json", "x", "--save", "./x"), 2, "--save")
    assert not (tmp_path / "x").exists()


def test_failed_save_is_recorded_in_the_json(run, tmp_path, monkeypatch):
    def fail(self, path, **extra):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(MLP, "save", fail)
    clean_error(run("train", *FAST, "--json", "s.json", "--save", "net.npz"), 1,
                "cannot write net.npz")
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["status"] == "failed" and "net.npz" in summary["error"]
