"""Fuzzing the CLI's options and the file readers (bounded: a few seconds each).

Whatever the input: no traceback, exit code 0, 1 or 2, and nothing half-written (no
temporary files left, every JSON written parses).
"""
import io
import json
import os
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pckernels import MLP
from pckernels.data import DataError, load_dataset, read_idx, write_idx
from pckernels_cli.main import cli

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))

TRAIN_OPTIONS = {
    "--hidden": ["4x1", "3", "none", "0", "4x0", "x", "99999999999", "2,3", "-2", "4x100001"],
    "--activation": ["tanh", "relu", "identity", "bogus"],
    "--loss": ["nll", "mse", "hinge"],
    "--dtype": ["float32", "float64", "float16"],
    "--algo": ["bp", "fpa", "vpc", "zil", "scaled", "pc"],
    "--steps": ["0", "2", "-1", "a"],
    "--step-size": ["0.1", "0", "nan", "-1", "1e400"],
    "--precision-ratio": ["2", "0", "inf"],
    "--optimizer": ["sgd", "adam", "rmsprop"],
    "--lr": ["0.05", "0", "inf", "1e30"],
    "--momentum": ["0.5", "1", "-0.1"],
    "--batch-size": ["1", "7", "0", "100000"],
    "--val-fraction": ["0", "0.5", "1", "nan"],
    "--seed": ["0", "-1", "4294967296", "x"],
    "--json": ["out.json", "", "sub/out.json", "tiny.npz/x.json"],
    "--save": ["net.npz", "sub/net.npz", "tiny.npz/net.npz"],
    "--max-memory": ["1G", "1K", "x", "0"],
    "--dataset": ["tiny.npz", "missing.npz", "tiny.npz", "corrupt.npz", "bogus"],
    "--epochs": ["1", "0"],
    "--schedule": ["serial", "layers", "nope"],
    "--init": ["forward", "zeros", "random", "xavier", "orthogonal"],
    "--latent-init": ["forward", "zeros", "random"],
    "--param": ["standard", "mupc", "mup"],
    "--data-dir": [".", "nowhere"],
}

SWEEP_OPTIONS = {
    "--depth": ["1", "0", "1,2", "x", ""],
    "--ratio": ["1", "0", "-1", "nan", "0.5,1"],
    "--step-size": ["0.5", "0", "x"],
    "--seed": ["0", "-1", "0,1", "4294967296"],
    "--algo": ["fpa", "bp", "zil", "nope"],
    "--activation": ["tanh", "tahn"],
    "--width": ["4", "0", "100000000"],
    "--optimizer": ["sgd", "adam"],
    "--momentum": ["0.5", "2"],
    "--precision-ratio": ["2", "-1"],
    "--jobs": ["1", "0"],
    "--max-memory": ["1G", "1K"],
    "--dataset": ["tiny.npz", "corrupt.npz"],
    "--out": ["out", "tiny.npz/out", ""],
    "--init": ["pytorch", "orthogonal", "forward", "he"],
    "--param": ["standard", "mupc"],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(0)
    np.savez(folder / "tiny.npz", X=rng.random((24, 3)), y=np.arange(24) % 3)
    (folder / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    return folder


def options(table, fixed):
    pairs = st.dictionaries(st.sampled_from(sorted(table)), st.just(None), max_size=6)
    return pairs.flatmap(lambda keys: st.tuples(*[st.tuples(st.just(k), st.sampled_from(table[k]))
                                                 for k in sorted(keys)])) \
        .map(lambda chosen: fixed + [x for pair in chosen for x in pair])


def check_no_traceback(result, folder):
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code:
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, result.output
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            assert not name.startswith(".tmp-"), f"half-written {path}"
            if name.endswith(".json"):
                with open(path) as f:
                    json.load(f)


def run_in(folder, monkeypatch, args):
    monkeypatch.chdir(folder)
    monkeypatch.delenv("PCK_DATA_DIR", raising=False)
    monkeypatch.delenv("PCK_MAX_MEMORY", raising=False)
    return CliRunner().invoke(cli, args, catch_exceptions=True)


@FUZZ
@given(args=options(TRAIN_OPTIONS, ["train", "--no-progress", "--epochs", "1",
                                    "--dataset", "tiny.npz", "--hidden", "4x1"]))
def test_fuzz_train_options(workdir, monkeypatch, args):
    result = run_in(workdir, monkeypatch, args)
    check_no_traceback(result, workdir)


@FUZZ
@given(args=options(SWEEP_OPTIONS, ["sweep", "--no-progress", "--epochs", "1", "--out",
                                    "out", "--dataset", "tiny.npz", "--width", "4",
                                    "--depth", "1", "--ratio", "1", "--step-size", "0.5",
                                    "--force"]))
def test_fuzz_sweep_options(workdir, monkeypatch, args):
    result = run_in(workdir, monkeypatch, args)
    check_no_traceback(result, workdir)


# ------------------------------------------------------------------ readers

def mutations():
    return st.tuples(st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)),
                              max_size=4),
                     st.one_of(st.none(), st.integers(0, 10 ** 6)))


def mutate(blob, edits):
    changes, cut = edits
    data = bytearray(blob)
    for pos, value in changes:
        data[pos % len(data)] = value
    return bytes(data[:cut % (len(data) + 1)] if cut is not None else data)


def npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    folder = tmp_path_factory.mktemp("samples")
    rng = np.random.default_rng(1)
    X = rng.random((12, 4))
    dataset = npz_bytes(X=X, y=np.arange(12) % 2, X_test=X[:4], y_test=np.arange(4) % 2)
    write_idx(folder / "a.idx.gz", rng.integers(0, 255, (5, 3, 3)).astype(np.uint8),
              compress=True)
    write_idx(folder / "a.idx", rng.integers(0, 255, (5, 3, 3)).astype(np.uint8))
    MLP([4, 3, 2]).save(folder / "net.npz")
    return {"dataset": dataset, "idx.gz": (folder / "a.idx.gz").read_bytes(),
            "idx": (folder / "a.idx").read_bytes(), "net": (folder / "net.npz").read_bytes()}


def write_mutated(path, blob, edits):
    path.write_bytes(mutate(blob, edits))
    return path


@FUZZ
@given(edits=mutations(), dtype=st.sampled_from(["float32", "float64"]))
def test_fuzz_npz_dataset_reader(samples, tmp_path_factory, edits, dtype):
    path = write_mutated(tmp_path_factory.mktemp("npz") / "d.npz", samples["dataset"], edits)
    try:
        ds = load_dataset(path, dtype=dtype)
    except DataError as exc:
        assert str(path) in str(exc) or path.name in str(exc)
    else:
        assert np.isfinite(ds.X_train).all() and ds.n_classes >= 2


@FUZZ
@given(edits=mutations(), kind=st.sampled_from(["idx", "idx.gz"]))
def test_fuzz_idx_reader(samples, tmp_path_factory, edits, kind):
    path = write_mutated(tmp_path_factory.mktemp("idx") / f"f.{kind}", samples[kind], edits)
    try:
        read_idx(path)
    except DataError as exc:
        assert str(path) in str(exc)


@FUZZ
@given(edits=mutations())
def test_fuzz_checkpoint_reader(samples, tmp_path_factory, edits):
    path = write_mutated(tmp_path_factory.mktemp("net") / "net.npz", samples["net"], edits)
    try:
        net = MLP.load(path)
    except ValueError as exc:
        assert str(path) in str(exc)
    else:
        assert np.isfinite(net.params).all()


@FUZZ
@given(sizes=st.lists(st.integers(0, 2 ** 45), min_size=2, max_size=4),
       n_params=st.integers(0, 64))
def test_fuzz_forged_checkpoint_architecture(tmp_path_factory, sizes, n_params):
    # Sizes claim any architecture, the stored array is small: refused before allocating.
    path = tmp_path_factory.mktemp("forged") / "net.npz"
    path.write_bytes(npz_bytes(params=np.zeros(n_params, np.float32), sizes=np.array(sizes),
                               activation=np.array("tanh"), loss=np.array("nll"),
                               dtype=np.array("float32"), seed=np.array(0),
                               format=np.array("pckernels-mlp-1")))
    try:
        MLP.load(path)
    except ValueError as exc:
        assert str(path) in str(exc)
