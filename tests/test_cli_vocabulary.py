"""One spelling per concept across the ``pck`` commands; the old spellings still work.

Each renamed option keeps its old spelling as a :class:`pckernels_cli.common.RenamedOption`
alias: it parses to the same value as the new one and prints one ``warning:`` line naming
the new spelling.
"""
import click
from click.testing import CliRunner
import pytest

from pckernels_cli.common import RenamedOption, count
from pckernels_cli.main import cli

#: (command, old spelling) -> new spelling: every rename, so that dropping one fails.
RENAMES = {
    ("bench", "--depths"): "--depth",
    ("bench", "--algos"): "--algo",
    ("bench", "--batch"): "--batch-size",
    ("complexity", "--batch"): "--batch-size",
    ("complexity", "--count-batch"): "--count-batch-size",
    ("theory", "--batch"): "--batch-size",
    ("theory", "--ks"): "--precision-ratio",
    ("sweep", "--depths"): "--depth",
    ("sweep", "--ratios"): "--ratio",
    ("sweep", "--step-sizes"): "--step-size",
    ("sweep", "--seeds"): "--seed",
    ("plot", "--formats"): "--format",
}

#: A valid value of each renamed option (not its default, so that it shows in params).
VALUES = {"--depth": "3", "--algo": "bp,fpa", "--batch-size": "16",
          "--count-batch-size": "4", "--precision-ratio": "1,10", "--ratio": "0.5",
          "--step-size": "0.5", "--seed": "1,2", "--format": "png"}


def commands():
    ctx = click.Context(cli)
    return {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}


def base_args(name, tmp_path):
    """The required arguments of command ``name``."""
    if name == "sweep":
        return ["--out", str(tmp_path / "out")]
    if name == "plot":
        results = tmp_path / "results.csv"
        results.write_text("cell\n")
        return [str(results), "--out", str(tmp_path / "figs")]
    return []


def parse(name, args):
    """The parameters ``pck NAME ARGS`` would run with, and their sources."""
    command = commands()[name]
    ctx = command.make_context(name, list(args))
    return ctx.params, {p: ctx.get_parameter_source(p) for p in ctx.params}


def test_the_renames_are_the_aliases_the_commands_declare():
    declared = {(name, old): param.opts[0]
                for name, command in commands().items() for param in command.params
                if isinstance(param, RenamedOption) for old in param.old_opts}
    assert declared == RENAMES


@pytest.mark.parametrize("name,old", sorted(RENAMES))
def test_old_spelling_parses_as_the_new_one_with_one_warning(name, old, tmp_path, capsys):
    new = RENAMES[(name, old)]
    base = base_args(name, tmp_path)
    expected, expected_sources = parse(name, base + [new, VALUES[new]])
    assert capsys.readouterr().err == ""
    got, sources = parse(name, base + [old, VALUES[new]])
    assert got == expected
    assert sources == expected_sources  # counts as given, for warn_unused and --resume
    assert capsys.readouterr().err == f"warning: {old} is deprecated; use {new}\n"
    equals, _ = parse(name, base + [f"{old}={VALUES[new]}"])
    assert equals == expected


@pytest.mark.parametrize("name,old", sorted(RENAMES))
def test_both_spellings_at_once_is_a_usage_error(name, old, tmp_path):
    new = RENAMES[(name, old)]
    args = base_args(name, tmp_path) + [new, VALUES[new], old, VALUES[new]]
    result = CliRunner().invoke(cli, [name] + args)
    assert result.exit_code == 2, result.output
    assert f"Error: {new} and {old} are spellings of one option; give only {new}" \
        in result.output


@pytest.mark.parametrize("name", sorted({name for name, _ in RENAMES}))
def test_help_shows_only_the_new_spellings(name):
    text = CliRunner().invoke(cli, [name, "--help"]).output
    for (command, old), new in RENAMES.items():
        if command == name:
            assert f"{new} " in text and f"{old} " not in text and f"{old}," not in text


def test_an_old_spelling_works_end_to_end(run):
    # through the whole command: the warning, then the command's own check of the value
    result = run("theory", "--ks", "0,-1")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "warning: --ks is deprecated; use --precision-ratio"
    assert "Invalid value for --precision-ratio: '0,-1': numbers > 0" in result.stderr


def test_no_command_uses_a_spelling_another_one_retired():
    retired = {old for _, old in RENAMES}
    for name, command in commands().items():
        for param in command.params:
            if isinstance(param, click.Option):
                used = retired.intersection(param.opts + param.secondary_opts)
                assert not used, f"pck {name} still spells {used} (now {param.opts[0]})"


@pytest.mark.parametrize("option", ["--lr", "--batch-size"])
def test_one_default_per_concept(option):
    # pck study's --lr and --batch-size are the grid's axes, so their defaults are grids
    defaults = {name: param.default for name, command in commands().items()
                if name != "study"
                for param in command.params
                if isinstance(param, click.Option) and option in param.opts}
    assert len(defaults) >= 2 and len(set(defaults.values())) == 1, defaults


@pytest.mark.parametrize("option,value", [("--depth", "0"), ("--ratio", "-1"),
                                          ("--step-size", "0")])
def test_sweep_grid_errors_name_the_option(run, option, value):
    result = run("sweep", "--out", "out", option, value)
    assert result.exit_code == 2, result.output
    assert f"Error: {option}: every value must be" in result.output


def test_counts_read_as_english():
    assert [count(1, "batch", "batches"), count(0, "batch", "batches"),
            count(2, "batch", "batches")] == \
        ["1 batch", "0 batches", "2 batches"]
    assert [count(1, "epoch"), count(3, "epoch"), count(2, "test sample")] == \
        ["1 epoch", "3 epochs", "2 test samples"]
