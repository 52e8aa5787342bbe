"""Resuming a run: 2 epochs, a checkpoint and 2 more equal 4 epochs in one go."""
import json

import numpy as np
import pytest

from pckernels import MLP, train
from pckernels.checkpoint import load_checkpoint, save_checkpoint

try:  # tests/ is a plain directory on sys.path, or a package if someone adds __init__.py
    from cli_checks import clean_error
except ImportError:
    from tests.cli_checks import clean_error


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_train_resumed_from_a_checkpoint_equals_one_run(digits, tmp_path, optimizer):
    X, y = digits.X_train[:300], digits.y_train[:300]
    kw = dict(batch_size=32, optimizer=optimizer, lr=0.01, weight_decay=1e-3)
    whole = MLP([64, 8, 10], seed=1)
    train(whole, X, y, epochs=4, seed=7, **kw)

    first = MLP([64, 8, 10], seed=1)
    rng = np.random.default_rng(7)
    history = train(first, X, y, epochs=2, seed=rng, **kw)
    save_checkpoint(tmp_path / "ck.npz", first, 2, rng, history.optimizer, {"lr": 0.01})
    ck = load_checkpoint(tmp_path / "ck.npz")
    assert ck.epoch == 2 and ck.settings == {"lr": 0.01}
    np.testing.assert_array_equal(ck.net.params, first.params)
    second = train(ck.net, X, y, epochs=4, seed=ck.generator(), start_epoch=3,
                   optimizer_state=ck.optimizer_state, **kw)
    assert [m.epoch for m in second.epochs] == [3, 4]
    np.testing.assert_array_equal(ck.net.params, whole.params)


def test_start_epoch_must_lie_within_epochs(digits):
    with pytest.raises(ValueError, match="start_epoch"):
        train(MLP([64, 4, 10]), digits.X_train[:10], digits.y_train[:10], epochs=2,
              start_epoch=3)



def test_pck_train_resume_continues_exactly(run, tmp_path):
    args = ["--hidden", "8x1", "--optimizer", "adam", "--lr", "0.01", "--seed", "5",
            "--no-progress"]
    assert run("train", *args, "--epochs", "4", "--save", "whole.npz").exit_code == 0
    assert run("train", *args, "--epochs", "2", "--save", "half.npz").exit_code == 0
    result = run("train", "--resume", "half.npz", "--epochs", "4", "--save", "resumed.npz",
                 "--json", "resumed.json")
    assert result.exit_code == 0, result.output
    whole, resumed = MLP.load(tmp_path / "whole.npz"), MLP.load(tmp_path / "resumed.npz")
    np.testing.assert_array_equal(resumed.params, whole.params)
    summary = json.loads((tmp_path / "resumed.json").read_text())
    assert [e["epoch"] for e in summary["epochs"]] == [3, 4]
    assert summary["config"]["optimizer"] == "adam" and summary["config"]["seed"] == 5
    assert summary["config"]["resumed_from"] == {"checkpoint": "half.npz", "epoch": 2}

    line = clean_error(run("train", "--resume", "half.npz", "--epochs", "4", "--lr",
                              "0.1"), 2)
    assert "--lr" in line and "0.01" in line
    line = clean_error(run("train", "--resume", "half.npz", "--epochs", "2"), 2)
    assert "--epochs" in line
    MLP([64, 8, 10]).save(tmp_path / "plain.npz")
    line = clean_error(run("train", "--resume", "plain.npz", "--epochs", "4"), 1)
    assert "plain.npz" in line and "training state" in line
    line = clean_error(run("train", "--resume", "missing.npz", "--epochs", "4"), 1)
    assert "missing.npz" in line


@pytest.mark.parametrize("algo_args", [
    ("--optimizer", "adam", "--lr", "0.01", "--feedback", "kp", "--weight-decay", "0.001"),
    ("--algo", "vpc"),     # the auto step rule's warm-started power iteration
    ("--algo", "ilprox"),
    ("--algo", "ipc", "--optimizer", "adam", "--lr", "0.01"),
], ids=["bp-kp-adam", "vpc", "ilprox", "ipc-adam"])
def test_interrupted_run_saves_its_last_epoch_and_resumes_exactly(run, tmp_path, monkeypatch,
                                                                   algo_args):
    """Ctrl-C in epoch 3 of a --save run writes epoch 2's checkpoint (optimizer state, kp
    feedback, PC inference's power-iteration vectors); resuming it to 4 epochs equals 4
    epochs in one go, bit for bit."""
    import pckernels_cli.main as cli_main
    args = ["--hidden", "8x1", "--seed", "3", "--no-progress", *algo_args]
    real_train = cli_main.train

    def interrupted_after(epochs):
        def interrupted(*a, **k):
            inner, seen = k["on_batch"], []

            def on_batch(n):
                inner(n)
                seen.append(n)
                if sum(seen) > epochs * len(a[2]):  # a[2]: y_train
                    raise KeyboardInterrupt
            k["on_batch"] = on_batch
            return real_train(*a, **k)
        return interrupted

    monkeypatch.setattr(cli_main, "train", interrupted_after(2.5))
    line = clean_error(run("train", *args, "--epochs", "4", "--save", "cut.npz"), 130)
    assert "interrupted" in line and "after epoch 2 is saved in cut.npz" in line
    assert "--resume cut.npz --epochs 4 --save cut.npz" in line
    monkeypatch.setattr(cli_main, "train", real_train)
    assert load_checkpoint(tmp_path / "cut.npz").epoch == 2
    result = run("train", "--resume", "cut.npz", "--epochs", "4", "--save", "resumed.npz")
    assert result.exit_code == 0, result.output
    result = run("train", *args, "--epochs", "4", "--save", "whole.npz")
    assert result.exit_code == 0, result.output
    whole = load_checkpoint(tmp_path / "whole.npz")
    resumed = load_checkpoint(tmp_path / "resumed.npz")
    np.testing.assert_array_equal(resumed.net.params, whole.net.params)
    if whole.net.feedback is not None:
        np.testing.assert_array_equal(resumed.net.feedback.params, whole.net.feedback.params)
    if "vpc" in algo_args or "ilprox" in algo_args:
        assert "power_vecs" in whole.inference_state
    # interrupted in its first epoch: nothing finished, nothing written
    monkeypatch.setattr(cli_main, "train", interrupted_after(0.5))
    line = clean_error(run("train", *args, "--epochs", "2", "--save", "none.npz"), 130)
    assert "interrupted" in line and "nothing was saved" in line
    assert not (tmp_path / "none.npz").exists()
