"""Options and parsing shared by the ``pck`` subcommands. No numerics here."""
import math
import os
import sys

import click

from pckernels.feedback import FEEDBACK
from pckernels.kernels import ACTIVATIONS, LOSSES
from pckernels.memory import MAX_WIDTH, parse_bytes
from pckernels.model import DTYPES, PARAMETERISATIONS, WEIGHT_INITS
from pckernels.pc import DEFAULT_ENERGY_TOL, INITS, LATENT_OPTIMIZERS, SCHEDULES, STEP_RULES
from pckernels.training import ALGORITHMS, OPTIMIZERS


def parse_hidden(text):
    """``64x5`` -> [64]*5, ``128,64`` -> [128, 64], ``none`` -> []."""
    text = (text or "").strip().lower()
    if text in ("", "none", "0x0"):
        return []
    try:
        if "x" in text:
            width, depth = text.split("x")
            width, depth = int(width), int(depth)
            if depth < 1:
                raise click.BadParameter(f"{text!r}: the depth must be >= 1 (none for no "
                                         "hidden layer)", param_hint="--hidden")
            if depth > 10_000:
                raise click.BadParameter(f"{text!r}: at most 10000 hidden layers",
                                         param_hint="--hidden")
            widths = [width] * depth
        else:
            widths = [int(w) for w in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r}: use WIDTHxDEPTH (64x5) or a list (128,64)",
                                 param_hint="--hidden") from None
    if any(w < 1 for w in widths):
        raise click.BadParameter(f"{text!r}: every width must be >= 1", param_hint="--hidden")
    if any(w > MAX_WIDTH for w in widths):
        raise click.BadParameter(f"{text!r}: every width must be <= {MAX_WIDTH}",
                                 param_hint="--hidden")
    return widths


def positive(kind=float):
    def check(ctx, param, value):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise click.BadParameter(f"must be a finite number > 0, got {value}")
        return value
    return check


def finite(ctx, param, value):
    """Reject nan and inf, which pass click's FloatRange checks."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"must be a finite number, got {value}")
    return value


def check_writable(path, param_hint):
    """Fail before any work if ``path`` cannot be written: the nearest existing ancestor
    of its folder must be a writable directory (missing folders are created on write)."""
    if path is None:
        return
    if not path.strip():
        raise click.BadParameter("the path is empty", param_hint=param_hint)
    folder = os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise click.BadParameter(f"cannot write to {folder}: {existing} is not a writable "
                                 "directory", param_hint=param_hint)


def check_writable_dir(path, param_hint):
    """Fail before any work if folder ``path`` cannot be created or written."""
    if not path.strip():
        raise click.BadParameter("the path is empty", param_hint=param_hint)
    path = os.path.abspath(path)
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if existing == path and not os.path.isdir(path):
        raise click.BadParameter(f"{path} exists and is not a directory", param_hint=param_hint)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise click.BadParameter(f"cannot create or write {path}: {existing} is not a "
                                 "writable directory", param_hint=param_hint)


def memory_size(ctx, param, value):
    """Parse ``--max-memory`` (``8G``, ``512M``, bytes)."""
    if value is None:
        return None
    try:
        return parse_bytes(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def memory_option(f):
    """--max-memory."""
    return click.option("--max-memory", default=None, callback=memory_size, metavar="SIZE",
                        help="Refuse runs estimated to need more memory than this (512M, "
                             "8G) [default: $PCK_MAX_MEMORY, bounded by the memory "
                             "available].")(f)


def seed_range():
    """Seeds NumPy accepts: 0 .. 2**32 - 1."""
    return click.IntRange(0, 2 ** 32 - 1)


class RenamedOption(click.Option):
    """An option that still accepts its old spellings (``old=("--batch",)``), each with one
    ``warning:`` line on stderr naming the new one. Giving both spellings is a usage error.

    The old spellings are not shown in ``--help``. Each gets a parser destination of its
    own, so that :meth:`consume_value` knows which spelling was used; the value then goes
    through the option's type and callback, and counts as given on the command line.
    """

    def __init__(self, *args, old=(), **kwargs):
        super().__init__(*args, **kwargs)
        if self.is_flag or self.multiple or self.count:
            raise TypeError("RenamedOption supports options that take one value")
        self.old_opts = tuple(old)

    def _old_dest(self, i):
        return f"{self.name}:old{i}"

    def add_to_parser(self, parser, ctx):
        super().add_to_parser(parser, ctx)
        for i, old in enumerate(self.old_opts):
            parser.add_option(obj=self, opts=[old], dest=self._old_dest(i), action="store",
                              nargs=self.nargs)

    def consume_value(self, ctx, opts):
        used = [(old, opts[self._old_dest(i)]) for i, old in enumerate(self.old_opts)
                if self._old_dest(i) in opts]
        if used:
            new = self.opts[0]
            if self.name in opts or len(used) > 1:
                spellings = [new] * (self.name in opts) + [old for old, _ in used]
                raise click.UsageError(f"{' and '.join(spellings)} are spellings of one "
                                       f"option; give only {new}", ctx=ctx)
            old, value = used[0]
            if not ctx.resilient_parsing:
                click.echo(f"warning: {old} is deprecated; use {new}", err=True)
            opts = {**opts, self.name: value}
        return super().consume_value(ctx, opts)


def given(ctx, name):
    """Whether option ``name`` was given on the command line (or from the environment)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source not in (click.core.ParameterSource.DEFAULT,
                                                 click.core.ParameterSource.DEFAULT_MAP)


def warn_unused(ctx, rules):
    """One ``warning:`` line on stderr per option given that does not apply.

    ``rules`` is a sequence of ``(parameter name, option text, applies, why)``.
    """
    for name, option, applies, why in rules:
        if not applies and given(ctx, name):
            click.echo(f"warning: {option} does not apply {why}; ignored", err=True)


def _store_download(ctx, param, value):
    ctx.meta["pck_download"] = value
    return value


def download_allowed():
    """``--download/--no-download`` of the running command (True outside a command)."""
    ctx = click.get_current_context(silent=True)
    return True if ctx is None else ctx.meta.get("pck_download", True)


def data_options(f):
    """--dataset, --data-dir, --download/--no-download (read with :func:`download_allowed`)."""
    f = click.option("--download/--no-download", default=True, show_default=True,
                     expose_value=False, callback=_store_download,
                     help="Download MNIST or Fashion-MNIST into the user cache when their "
                          "files are found nowhere else; --no-download fails instead.")(f)
    f = click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                     help="Folder with the IDX files (else $PCK_DATA_DIR, "
                          "/usr/share/datasets/NAME, then the user cache).")(f)
    f = click.option("--dataset", default="digits", show_default=True,
                     help="digits, mnist, fashion-mnist, or a path to an .npz with X and y.")(f)
    return f


def weight_init_choice(ctx, param, value):
    """``--init``: a weight initialisation, or (deprecated) a latent initialisation."""
    if value is None or value in WEIGHT_INITS or value in INITS:
        return value
    raise click.BadParameter(f"{value!r} is not one of {', '.join(map(repr, WEIGHT_INITS))}")


def init_option(f):
    """--init (weight initialisation)."""
    return click.option(
        "--init", "init", default="pytorch", show_default=True, callback=weight_init_choice,
        metavar="[" + "|".join(WEIGHT_INITS) + "]",
        help="Weight initialisation: pytorch (U(+-1/sqrt(fan_in)), the paper's), xavier "
             "(Glorot uniform with the activation's gain) or orthogonal (with the gain); "
             "xavier and orthogonal let deep networks learn.")(f)


def gain_option(f):
    """--gain (of the xavier and orthogonal initialisations)."""
    return click.option(
        "--gain", type=float, default=None, callback=positive(),
        help="Gain of --init xavier/orthogonal [default: the activation's, 5/3 for tanh; "
             "1 conditions PC inference better].")(f)


def param_option(f):
    """--param (parameterisation)."""
    return click.option(
        "--param", type=click.Choice(PARAMETERISATIONS), default="standard",
        show_default=True,
        help="mupc: muPC's multipliers (1/sqrt(fan_in), output 1/width) on N(0,1) "
             "parameters, without its residual connections (see MLP's docs).")(f)


def split_init(ctx, init, latent_init):
    """``(weight init, latent init, latent init given)`` from ``--init`` and
    ``--latent-init``: ``--init forward|zeros`` is the deprecated spelling of
    ``--latent-init`` (warned about; the weight initialisation is then the default)."""
    latent_given = given(ctx, "pc_init")
    if init in INITS:
        click.echo(f"warning: --init {init} is deprecated; use --latent-init {init}", err=True)
        if latent_given and latent_init != init:
            raise click.UsageError(f"--init {init} (the old spelling of --latent-init) "
                                   f"contradicts --latent-init {latent_init}")
        return "pytorch", init, True
    return init, latent_init, latent_given


def model_options(f):
    """Architecture and numerics options."""
    f = param_option(f)
    f = gain_option(f)
    f = init_option(f)
    f = click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="Threads for Numba kernels and BLAS (default: all cores).")(f)
    f = click.option("--dtype", type=click.Choice(DTYPES), default="float32",
                     show_default=True,
                     help="Floating-point type of the parameters, activations and data.")(f)
    f = click.option("--loss", type=click.Choice(sorted(LOSSES)), default="nll",
                     show_default=True, help="nll: log-softmax + NLL; mse: 1/2 squared error.")(f)
    f = click.option("--activation", type=click.Choice(sorted(ACTIVATIONS)), default="tanh",
                     show_default=True, help="Hidden-layer activation.")(f)
    f = click.option("--hidden", default="64x2", show_default=True,
                     help="Hidden widths: WIDTHxDEPTH (64x5), a list (128,64) or none.")(f)
    return f


def pc_options(f):
    """The algorithm and its inference settings."""
    opts = [
        click.option("--tol", type=float, default=1e-6, show_default=True, callback=finite,
                     help="Convergence tolerance of inference (reported, not a stop rule)."),
        click.option("--no-skip", is_flag=True,
                     help="Run every layer at every step (no skipping of provably "
                          "unchanged work): the full cost of the paper's model."),
        click.option("--schedule", type=click.Choice(SCHEDULES), default="auto",
                     show_default=True,
                     help="Parallel schedule of inference: over layers, over chunks of "
                          "the batch, or serial."),
        click.option("--latent-init", "pc_init", type=click.Choice(sorted(INITS)),
                     default="forward", show_default=True,
                     help="Initial latents (vpc, scaled, ipc): feedforward values or zeros."),
        click.option("--precision-ratio", type=float, default=1.0, show_default=True,
                     callback=positive(), help="scaled: k, the hidden precisions."),
        click.option("--energy-tol", type=float, default=DEFAULT_ENERGY_TOL,
                     show_default=True, callback=finite,
                     help="--step-rule auto: a sample stops inferring once a step changes "
                          "its energy by at most this fraction (vpc, scaled)."),
        click.option("--latent-optimizer", type=click.Choice(list(LATENT_OPTIMIZERS)),
                     default="gd", show_default=True,
                     help="Optimizer of the latents (vpc, scaled, ipc): gradient steps, "
                          "heavy-ball momentum or Adam."),
        click.option("--step-rule", type=click.Choice(STEP_RULES), default=None,
                     help="Inference step of vpc, scaled and ipc: auto (per-layer step from "
                          "a curvature bound, energy safeguard, convergence stop) or fixed "
                          "(--step-size at every step, the paper's setting) [default: auto; "
                          "fpa and zil: fixed]."),
        click.option("--step-size", type=float, default=None, callback=positive(),
                     help="Inference step size gamma [default: 1; 0.1/k for scaled with "
                          "--step-rule fixed; with auto, the multiplier of the curvature "
                          "step (Adam: its step, 0.01)]."),
        click.option("--steps", type=click.IntRange(min=0), default=None,
                     help="Inference steps T (state updates) [default: L, the hidden layers; "
                          "at most max(L, 20) with --step-rule auto; ipc: max(L, 5)]."),
        click.option("--algo", type=click.Choice(ALGORITHMS), default="bp", show_default=True,
                     help="bp (backprop) or a predictive-coding variant (ipc: incremental "
                          "PC, a weight step after every inference step)."),
    ]
    for o in opts:
        f = o(f)
    return f


def feedback_option(f):
    """--feedback (weights that carry the error down: the weight-symmetry problem)."""
    return click.option(
        "--feedback", type=click.Choice(FEEDBACK), default="symmetric", show_default=True,
        help="Weights that carry the error down under bp, fpa and vpc: W^T (symmetric), a "
             "fixed random B (fa, feedback alignment) or a B that gets W's updates and "
             "weight decay (kp, Kolen-Pollack; B approaches W only with --weight-decay).")(f)


def optimizer_options(f):
    opts = [
        click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0,
                     show_default=True, callback=finite,
                     help="L2 penalty: weight_decay * params is added to the gradient "
                          "(PyTorch's weight_decay)."),
        click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.9,
                     show_default=True, callback=finite, help="SGD momentum."),
        click.option("--lr", type=float, default=0.05, show_default=True, callback=positive(),
                     help="Learning rate [pck train: ilprox 10, its implicit-SGD step; gil with "
                          "sgd 1]."),
        click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="sgd",
                     show_default=True,
                     help="sgd (with --momentum) or adam, with PyTorch's semantics."),
    ]
    for o in opts:
        f = o(f)
    return f


def count(n, noun, plural=None):
    """``1 epoch``, ``2 epochs``, ``3 batches``: a number with its noun, singular for one
    (``plural``, default the noun + s, otherwise)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def echo_err(msg):
    click.echo(msg, err=True)


def is_tty():
    return sys.stderr.isatty()
