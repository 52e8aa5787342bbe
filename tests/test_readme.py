"""The README's quick start is what CI runs: its two set-up commands, in order."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _quick_start_commands():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_quick_start_has_two_commands_that_ci_runs_in_order():
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert commands[0].startswith("pip install . ") and "pck train" in commands[0]
    assert "pytest" in commands[1]
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    lines = [line.strip() for line in ci.splitlines()]
    positions = [lines.index(c) for c in commands]  # each as a command line of its own
    assert positions == sorted(positions)
    assert "venv" in ci and "pck --help" in ci and "pck train --epochs 1" in ci
