"""``pck train --resume``: continue a run from a checkpoint written by ``pck train --save``."""
import click

from pckernels.checkpoint import load_checkpoint

from .common import given

#: Options of ``pck train`` that may differ in a resumed run; every other option defines
#: the run, is saved with the checkpoint and is taken from it.
FREE_OPTIONS = frozenset({"resume", "epochs", "data_dir", "threads", "cosine", "json_path",
                          "save", "progress", "max_memory", "verbosity"})


def _load(ctx, param, value):
    """Eager callback: read the checkpoint, and make its settings the defaults of the
    options processed after it."""
    if value is None:
        return None
    try:
        checkpoint = load_checkpoint(value)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    ctx.default_map = {**(ctx.default_map or {}), **checkpoint.settings}
    return value, checkpoint


def resume_option(f):
    """--resume."""
    return click.option("--resume", type=click.Path(dir_okay=False), default=None,
                        is_eager=True, callback=_load, metavar="CHECKPOINT",
                        help="Continue the run saved with --save in CHECKPOINT, exactly (its "
                             "optimizer state, epoch and shuffling), up to --epochs in "
                             "total; the run's settings come from the checkpoint.")(f)


def run_settings(ctx):
    """The options that define the run (saved with a checkpoint), as a dict."""
    return {name: value for name, value in ctx.params.items() if name not in FREE_OPTIONS}


def check_resume(ctx, checkpoint, epochs):
    """UsageError if an option given conflicts with the checkpoint's run, or ``epochs``
    (the total) does not go beyond its last epoch."""
    for name, value in run_settings(ctx).items():
        saved = checkpoint.settings.get(name)
        if given(ctx, name) and value != saved:
            option = next(p.opts[0] for p in ctx.command.params if p.name == name)
            raise click.UsageError(f"{option} {value} differs from the resumed run's "
                                   f"{saved}; a resumed run keeps its settings")
    if epochs <= checkpoint.epoch:
        raise click.BadParameter(f"the checkpoint has finished epoch {checkpoint.epoch}; "
                                 f"give the total number of epochs, above it",
                                 param_hint="--epochs")
