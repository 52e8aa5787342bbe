"""Tests for bench/reproduce.py: every README figure and table has a command that remakes it."""
import re
from pathlib import Path

import pytest

from pckernels_bench import reproduce as R

README = Path(__file__).resolve().parents[1] / "README.md"
# Tables that describe the package rather than report a measurement.
DESCRIPTIVE_TABLES = ("| algorithm | `--algo` | what it is |",
                      "| `pck train` | `PCClassifier` / `PCRegressor` |")


def readme_items(text):
    """Images, table header rows and first lines of output blocks (fences without a
    language) of a Markdown text."""
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
    lines = text.splitlines()
    tables, outputs = [], []
    in_fence, fence_lang, first = False, "", None
    for i, line in enumerate(lines):
        if line.startswith("```"):
            if not in_fence:
                in_fence, fence_lang, first = True, line[3:].strip(), None
            else:
                if not fence_lang and first is not None:
                    outputs.append(first)
                in_fence = False
            continue
        if in_fence:
            if first is None and line.strip():
                first = line.strip()
            continue
        if (line.startswith("|") and i + 1 < len(lines)
                and re.fullmatch(r"\|[\s:|-]+\|", lines[i + 1].strip())):
            tables.append(line.strip())
    return images, tables, outputs


def test_readme_parser_finds_images_tables_and_outputs():
    text = ("x\n![a](docs/a.png)\n\n| h | i |\n|---|---|\n| 1 | 2 |\n\n```bash\npck x\n```\n"
            "```\nResult 9: y\nz\n```\n| not | a table |\n")
    assert readme_items(text) == (["docs/a.png"], ["| h | i |"], ["Result 9: y"])


def test_every_readme_figure_and_table_has_an_entry():
    text = README.read_text(encoding="utf-8")
    images, tables, outputs = readme_items(text)
    anchors = [a for e in R.ENTRIES for a in e.readme]
    assert images and tables and outputs
    for image in images:
        assert image in anchors, f"README image {image} has no entry in bench/reproduce.py"
    for header in tables:
        if header in DESCRIPTIVE_TABLES:
            continue
        assert any(header.startswith(a) for a in anchors), (
            f"README table {header!r} has no entry in bench/reproduce.py")
    for first in outputs:
        assert any(first.startswith(a) for a in anchors), (
            f"README output block {first!r} has no entry in bench/reproduce.py")
    # And no entry points at something the README no longer shows.
    for e in R.ENTRIES:
        for a in e.readme:
            assert a in text, f"entry {e.name}: {a!r} is not in the README"


def test_list_names_every_entry_and_marks_timings(capsys):
    for quick in (False, True):
        assert R.main(["--list"] + (["--quick"] if quick else [])) == 0
        out = capsys.readouterr().out
        for e in R.ENTRIES:
            assert f"# {e.name}: " in out
            for c in (e.quick if quick else e.full):
                assert R.shell_text(R.expand(c, "reproduce-quick" if quick else "results",
                                             "reproduce-quick/docs" if quick else "docs")) in out
        timed = [line for line in out.splitlines() if "[machine-dependent" in line]
        assert len(timed) == sum(e.machine_dependent for e in R.ENTRIES) >= 3
    names = {e.name for e in R.ENTRIES}
    assert len(names) == len(R.ENTRIES)
    assert {"fig3-5", "fig3-5-L20-orth", "step-rule-table", "bench", "complexity",
            "theory"} <= names


def test_quick_mode_never_writes_into_docs():
    for e in R.ENTRIES:
        assert e.quick, e.name
        for c in e.quick:
            for w in R.expand(c, "W", "W/docs"):
                assert not re.match(r"(\./)?docs(/|$)", w), (e.name, w)


def test_unknown_entry_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        R.main(["--only", "nope"])
    assert info.value.code == 2 and "unknown entry 'nope'" in capsys.readouterr().err


def test_quick_theory_runs(tmp_path, capfd):
    assert R.main(["--quick", "--only", "theory", "--work", str(tmp_path)]) == 0
    out = capfd.readouterr().out
    assert "=== theory (quick)" in out and "Result 1:" in out and "Result 2:" in out


def test_defaults_table_summary_and_one_run(capsys):
    """bench/defaults.py: final, best and largest drop; one real pck train run."""
    from pckernels_bench import defaults
    epochs = [{"test_accuracy": a} for a in (0.5, 0.9, 0.8, 0.85)]
    assert defaults.summary(epochs) == (0.85, 0.9, pytest.approx(0.1))
    assert defaults.main(["--algo", "ilprox", "--", "--epochs", "1", "--hidden", "4"]) == 0
    row = capsys.readouterr().out.splitlines()[-1]
    assert row.startswith("| ilprox | 8 | 10 | 0.")
    assert defaults.main(["--algo", "bp", "--", "--epochs", "1", "--hidden", "4",
                          "--activation", "nope"]) == 0
    row = capsys.readouterr().out.splitlines()[-1]
    assert row.startswith("| bp | | | failed: exit 2: ") and "nope" in row
    with pytest.raises(SystemExit):
        defaults.main(["--algo", "nope"])
