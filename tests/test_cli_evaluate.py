"""``pck eval`` and ``pck predict`` through click's CliRunner: results, and one clear error
line per bad input."""
import json
import os

import numpy as np
import pytest

from pckernels import MLP, load_dataset
from pckernels.evaluation import evaluate

try:  # tests/ is a plain directory on sys.path, or a package if someone adds __init__.py
    from cli_checks import clean_error
except ImportError:
    from tests.cli_checks import clean_error



@pytest.fixture
def model(tmp_path):
    """A digits network trained a little (so that its predictions are not all one class)."""
    from pckernels import train
    ds = load_dataset("digits", dtype="float32")
    net = MLP([64, 8, 10], seed=1)
    train(net, ds.X_train, ds.y_train, epochs=1, batch_size=32, lr=0.05)
    net.save(tmp_path / "net.npz")
    return net


def test_eval_reports_accuracy_loss_and_confusion(run, tmp_path, model):
    ds = load_dataset("digits", dtype="float32")
    result = run("eval", "net.npz", "--json", "out/eval.json")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "eval.json").read_text())
    accuracy = float(np.mean(model.predict(ds.X_test) == ds.y_test))
    assert summary["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert f"accuracy {accuracy:.4f}" in result.output
    log_p = model.forward(ds.X_test).astype(np.float64)
    nll = -np.mean(log_p[np.arange(len(ds.y_test)), ds.y_test])
    assert summary["loss"] == pytest.approx(nll, rel=1e-9)
    confusion = np.array(summary["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == len(ds.y_test)
    assert confusion[3].sum() == np.sum(ds.y_test == 3)
    assert confusion[3, 5] == np.sum((ds.y_test == 3) & (model.predict(ds.X_test) == 5))
    assert summary["split"] == "test" and summary["n_samples"] == 450

    train_split = run("eval", "net.npz", "--split", "train", "--json", "-")
    assert train_split.exit_code == 0, train_split.output
    assert json.loads(train_split.output)["n_samples"] == len(ds.y_train)


def test_evaluate_mse_loss():
    net = MLP([3, 2], loss="mse", dtype="float64", seed=0)
    X = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    y = np.array([1, 0])
    out = net.forward(X)
    onehot = np.eye(2)[y]
    result = evaluate(net, X, y)
    assert result.loss == pytest.approx(0.5 * np.sum((out - onehot) ** 2) / 2, rel=1e-12)
    assert result.accuracy == np.mean(out.argmax(1) == y)


def test_predict_writes_classes_and_probabilities(run, tmp_path, model):
    ds = load_dataset("digits", dtype="float32")
    np.savez(tmp_path / "in.npz", X=ds.X_test[:20])
    np.save(tmp_path / "in.npy", ds.X_test[:20].reshape(20, 8, 8))   # images: flattened
    for name in ("in.npz", "in.npy"):
        result = run("predict", "net.npz", name, "--out", f"pred-{name}.npz")
        assert result.exit_code == 0, result.output
        with np.load(tmp_path / f"pred-{name}.npz") as out:
            assert sorted(out.files) == ["classes", "probabilities"]
            np.testing.assert_array_equal(out["classes"], model.predict(ds.X_test[:20]))
            np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, atol=1e-12)
            np.testing.assert_allclose(np.log(out["probabilities"]),
                                       model.forward(ds.X_test[:20]), atol=1e-5)


@pytest.mark.parametrize("args,fragment,code", [
    (["eval", "missing.npz"], "missing.npz", 1),
    (["eval", "garbage.npz"], "garbage.npz", 1),
    (["eval", "net.npz", "--dataset", "nosuch"], "unknown dataset", 1),
    (["eval", "net.npz", "--dataset", "wide.npz"], "takes 64 inputs", 1),
    (["eval", "net.npz", "--split", "val"], "--split", 2),
    (["eval", "net.npz", "--json", "blocker/x.json"], "--json", 2),
    (["predict", "net.npz", "missing.npz", "--out", "o.npz"], "missing.npz", 1),
    (["predict", "net.npz", "garbage.npz", "--out", "o.npz"], "garbage.npz", 1),
    (["predict", "net.npz", "wide.npz", "--out", "o.npz"], "takes 64 inputs", 1),
    (["predict", "net.npz", "nan.npz", "--out", "o.npz"], "non-finite", 1),
    (["predict", "net.npz", "two.npz", "--out", "o.npz"], "no array X", 1),
    (["predict", "net.npz", "wide.npz"], "--out", 2),
    (["predict", "net.npz", "wide.npz", "--out", "wide.npz"], "INPUT", 2),
    (["predict", "net.npz", "wide.npz", "--out", "blocker/o.npz"], "--out", 2),
])
def test_bad_input_gives_one_line(run, tmp_path, model, args, fragment, code):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04 not a zip")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "wide.npz", X=rng.random((30, 5)), y=np.arange(30) % 2)
    bad = rng.random((4, 64))
    bad[2, 7] = np.nan
    np.savez(tmp_path / "nan.npz", X=bad)
    np.savez(tmp_path / "two.npz", A=bad, B=bad)
    before = sorted(os.listdir(tmp_path))
    line = clean_error(run(*args), code)
    assert fragment in line
    assert sorted(os.listdir(tmp_path)) == before           # nothing written
