"""What only a real process shows: signals, parent death, two sweeps at once.

Each test is bounded (a few seconds) and cleans up the processes it started, by pid.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc and uses Linux signals")

SWEEP = ["--algo", "fpa", "--depth", "2", "--ratio", "1", "--no-baseline", "--width", "16",
         "--no-progress"]


def _interruptible():
    # A shell that starts the suite in the background without job control ignores SIGINT
    # in it, and children inherit that: give pck the disposition of a terminal's command.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def pck(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "pckernels_cli.main", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_interruptible, **kwargs)


def alive(pid):
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                out.append(int(entry))
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def test_killed_sweep_leaves_no_workers(tmp_path):
    proc = pck("sweep", "--out", tmp_path / "out", *SWEEP, "--step-size", "0.1,0.5",
               "--epochs", "3000", "--jobs", "2")
    workers, helpers = [], []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            workers = [p for p in children(proc.pid) if "loky" in cmdline(p)]
            if len(workers) >= 2:
                break
            time.sleep(0.1)
        assert len(workers) >= 2, "the sweep did not start two workers"
        time.sleep(2.0)                                  # let them start training
        descendants = workers + [c for w in workers for c in children(w)]
        helpers = [p for p in children(proc.pid) if p not in workers]
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(p) for p in descendants):
            time.sleep(0.1)
        assert not [p for p in descendants if alive(p)], "workers outlived the sweep"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(p) for p in helpers):
            time.sleep(0.1)
        assert not [p for p in helpers if alive(p)], "helpers outlived the sweep"
    finally:
        kill_all(workers + helpers + [c for w in workers for c in children(w)])
        proc.kill()
        proc.communicate(timeout=30)


def test_two_sweeps_into_one_folder_do_not_mix(tmp_path):
    out = tmp_path / "out"
    args = ["sweep", "--out", out, *SWEEP, "--step-size", "0.5", "--epochs", "400"]
    first = pck(*args, "--lr", "0.05")
    second = pck(*args, "--lr", "0.01")
    try:
        results = [p.communicate(timeout=60) for p in (first, second)]
    finally:
        kill_all([first.pid, second.pid])
    codes = [first.returncode, second.returncode]
    assert sorted(codes) == [0, 1], (codes, results)
    loser = results[codes.index(1)][1]
    assert "Traceback" not in loser
    errors = [line for line in loser.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and ("in use by another sweep" in errors[0]
                                 or "--force" in errors[0]), loser
    winner_lr = (0.05, 0.01)[codes.index(0)]
    meta = json.loads((out / "results.json").read_text())
    assert meta["config"]["lr"] == winner_lr and meta["run"]["status"] == "completed"


def test_ctrl_c_during_imports_is_one_line(tmp_path):
    proc = pck("train", "--epochs", "1", "--no-progress", cwd=tmp_path)
    time.sleep(0.25)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        kill_all([proc.pid])
    assert "Traceback" not in err and "Exception ignored" not in err, err
    # 130 (also when it was already training: train reports "interrupted by the user"),
    # or -SIGINT when Python re-raises the signal at exit (a shell shows 130 for both)
    assert proc.returncode in (130, -signal.SIGINT), (proc.returncode, err)
    assert "interrupted" in err


def test_an_interrupt_another_error_hides_still_reads_interrupted(monkeypatch, capsys):
    """A Ctrl-C during a lazy import inside a command can surface as an ImportError
    (pybind11 modules report "initialization failed"); after a Ctrl-C, that is
    "interrupted" (130), and without one the error is not masked."""
    import pckernels_cli.main as M

    def fails(*args, **kwargs):
        raise ImportError("initialization failed")
    monkeypatch.setattr(M.cli, "main", fails)
    before = signal.getsignal(signal.SIGINT)
    try:
        monkeypatch.setattr(M, "_sigint_seen", True)
        with pytest.raises(SystemExit) as exc:
            M.main()
        assert exc.value.code == 130
        assert "Error: interrupted" in capsys.readouterr().err
        monkeypatch.setattr(M, "_sigint_seen", False)
        with pytest.raises(ImportError):
            M.main()
    finally:
        signal.signal(signal.SIGINT, before)
