"""Every option of every ``pck`` command has a help text."""
import click
import pytest

from pckernels_cli.main import cli


def all_commands():
    ctx = click.Context(cli)
    return [("pck", cli)] + [(name, cli.get_command(ctx, name))
                             for name in cli.list_commands(ctx)]


@pytest.mark.parametrize("name,command", all_commands(), ids=lambda c: getattr(c, "name", c))
def test_every_option_has_help(name, command):
    missing = [param.opts[0] for param in command.params
               if isinstance(param, click.Option) and not (param.help or "").strip()]
    assert missing == [], f"pck {name}: options without help: {missing}"
    assert (command.help or "").strip(), f"pck {name} has no help text"


def test_all_commands_are_walked():
    names = {name for name, _ in all_commands()}
    assert {"train", "bench", "complexity", "eval", "predict"} <= names
