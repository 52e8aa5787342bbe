"""Every option and argument of every ``pck`` command has a help text."""
import click
import pytest

from pckernels_cli.main import cli


def all_commands():
    """``(full name, command)`` of ``pck`` and every command under it, nested groups too."""
    found = []

    def walk(name, command):
        found.append((name, command))
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for sub in command.list_commands(ctx):
                walk(f"{name} {sub}", command.get_command(ctx, sub))
    walk("pck", cli)
    return found


@pytest.mark.parametrize("name,command", all_commands(), ids=lambda c: getattr(c, "name", c))
def test_every_option_has_help(name, command):
    missing = [param.opts[0] for param in command.params
               if isinstance(param, click.Option) and not param.hidden
               and not (param.help or "").strip()]
    assert missing == [], f"{name}: options without help: {missing}"
    assert (command.help or "").strip(), f"{name} has no help text"


@pytest.mark.parametrize("name,command", all_commands(), ids=lambda c: getattr(c, "name", c))
def test_every_argument_is_explained_in_the_command_help(name, command):
    # click arguments take no help text; the command's help must name them (MODEL, ...)
    ctx = click.Context(command, info_name=name)
    unexplained = [param.make_metavar(ctx) for param in command.params
                   if isinstance(param, click.Argument)
                   and param.make_metavar(ctx).strip(".[]") not in (command.help or "")]
    assert unexplained == [], f"{name}: arguments its help does not name: {unexplained}"


def test_all_commands_are_walked():
    names = {name for name, _ in all_commands()}
    assert {"pck train", "pck bench", "pck complexity", "pck eval", "pck predict",
            "pck sweep", "pck plot", "pck theory"} <= names
