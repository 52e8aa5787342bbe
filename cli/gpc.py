"""``pck train --algo gpc`` and ``pck generate``: the generative PC classifier."""
import os
import time

import click

from pckernels.gpc import LABEL_ENERGIES, GenerativePC, generation_grid, is_gpc_file
from pckernels.memory import MemoryLimitError, check_memory, describe_sizes

from .common import check_writable, parse_hidden, warn_unused

#: Options of ``pck train`` that do not apply to gpc (name, option text).
_NOT_GPC = (("loss", "--loss"), ("step_rule", "--step-rule"),
            ("latent_optimizer", "--latent-optimizer"), ("precision_ratio", "--precision-ratio"),
            ("pc_init", "--latent-init"), ("schedule", "--schedule"), ("no_skip", "--no-skip"),
            ("tol", "--tol"), ("progress", "--progress"), ("feedback", "--feedback"))


def _store_label_energy(ctx, param, value):
    ctx.meta["pck_label_energy"] = value
    return value


def label_energy_option(f):
    """--label-energy (read by :func:`train_gpc`; warned about for other algorithms)."""
    return click.option(
        "--label-energy", type=click.Choice(LABEL_ENERGIES), default="gaussian",
        show_default=True, expose_value=False, callback=_store_label_energy,
        help="gpc: energy tying the label node to the label: gaussian (1/2 ||x0 - "
             "onehot||^2, the traditional supervision) or categorical (cross-entropy of "
             "softmax(x0)).")(f)


def warn_label_energy(ctx):
    """Warn when --label-energy is given to an algorithm other than gpc."""
    warn_unused(ctx, [("label_energy", "--label-energy", False,
                       f"to --algo {ctx.params['algo']} (only to gpc)")])


def train_gpc(ctx):
    """``pck train --algo gpc``: train, report and save a :class:`GenerativePC`."""
    from .main import _row, _seconds, finish_training, load_split, same_file
    from pckernels.config import set_threads
    from pckernels.training import DivergenceError, History, Optimizer, PCSettings, train

    p = ctx.params
    if p["resume"] is not None:
        raise click.UsageError("--resume does not apply to --algo gpc (its --save holds "
                               "the model, not the training state)")
    if p["cosine"]:
        raise click.UsageError("--cosine compares with backprop's gradient of an MLP; "
                               "--algo gpc has none")
    if p["param"] != "standard":
        raise click.UsageError(f"--param {p['param']} does not apply to --algo gpc")
    warn_unused(ctx, [(name, option, False, "to --algo gpc") for name, option in _NOT_GPC])
    if p["init"] in ("forward", "zeros"):
        raise click.UsageError(f"--init {p['init']} (latent initialisation) does not apply "
                               "to --algo gpc")
    if p["threads"]:
        try:
            set_threads(p["threads"])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--threads") from None
    widths = parse_hidden(p["hidden"])
    json_path, save = p["json_path"], p["save"]
    check_writable(json_path, "--json")
    check_writable(save, "--save")
    if json_path and save and same_file(json_path, save):
        raise click.BadParameter(f"{save} is also the --json file; give two different files",
                                 param_hint="--save")
    label_energy = ctx.meta.get("pck_label_energy", "gaussian")
    ds, X_tr, y_tr, X_val, y_val = load_split(p["dataset"], p["data_dir"], p["val_fraction"],
                                              p["seed"], p["dtype"])
    sizes = [ds.n_features] + widths + [ds.n_classes]
    item = 4 if p["dtype"] == "float32" else 8
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    # parameters, gradient and optimizer state; about a dozen state-sized arrays per
    # inference chunk (states, proposals, predictions, errors)
    rows = max(p["batch_size"], 1024)
    try:
        check_memory((5 * n_params + 12 * rows * sum(sizes)) * item,
                     f"training a generative PC model {describe_sizes(sizes)}",
                     p["max_memory"])
    except MemoryLimitError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        net = GenerativePC(sizes, activation=p["activation"], label_energy=label_energy,
                           dtype=p["dtype"], seed=p["seed"], init=p["init"], gain=p["gain"])
        pc = PCSettings(steps=p["steps"], step_size=p["step_size"],
                        energy_tol=p["energy_tol"])
        net.set_inference(steps=pc.steps, step_size=pc.step_size, energy_tol=pc.energy_tol)
        Optimizer(net, p["optimizer"], p["lr"], p["momentum"], p["weight_decay"])
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    quiet, verbose = p["verbosity"] == "quiet", p["verbosity"] == "verbose"
    say = (lambda *a, **k: None) if quiet else click.echo
    config = {"dataset": ds.name, "source": ds.source, "algo": "gpc", **net.config(),
              "optimizer": p["optimizer"], "lr": p["lr"], "momentum": p["momentum"],
              "weight_decay": p["weight_decay"], "batch_size": p["batch_size"],
              "epochs": p["epochs"], "val_fraction": p["val_fraction"], "seed": p["seed"],
              "n_train": int(len(y_tr)), "n_val": int(len(y_val)),
              "n_test": int(len(ds.y_test))}
    say(f"{ds.name}: {len(y_tr)} train / {len(y_val)} val / {len(ds.y_test)} test, "
        f"generative PC {'-'.join(map(str, sizes[::-1]))} (label to image) "
        f"{p['activation']}, {label_energy} label energy, T<={net.steps} "
        f"step={net.step_size:g}, {p['dtype']}")
    cols, widths_ = ["epoch", "energy", "val_acc", "test_acc", "seconds", "samples/s"], \
        [5, 9, 8, 8, 8, 10]
    say(_row(cols, widths_))

    def on_epoch(m):
        say(_row([m.epoch, f"{m.train_loss:.4f}", f"{m.val_accuracy:.4f}",
                  f"{m.test_accuracy:.4f}", _seconds(m.seconds), f"{m.samples_per_s:,.0f}"],
                 widths_))
        if verbose:
            say(f"      inference: {m.inference_steps:.1f} steps per sample on average, "
                f"{m.rejected_steps} rejected")

    history = History()
    status, error = "completed", None
    start = time.perf_counter()
    try:
        train(net, X_tr, y_tr, X_val, y_val, ds.X_test, ds.y_test, algo="gpc", pc=pc,
              epochs=p["epochs"], batch_size=p["batch_size"], optimizer=p["optimizer"],
              lr=p["lr"], momentum=p["momentum"], weight_decay=p["weight_decay"],
              seed=p["seed"], history=history, on_epoch=on_epoch,
              on_warning=lambda message: click.echo(f"warning: {message}", err=True))
    except DivergenceError as exc:
        status, error = "diverged", str(exc)
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted by the user"
    finish_training(history, status, error, config, time.perf_counter() - start, json_path,
                    save, net.save)


def load_gpc(path):
    """The generative PC model at ``path``, or a one-line error (exit 1)."""
    if not os.path.isfile(path):
        raise click.ClickException(f"{path}: no such file")
    if not is_gpc_file(path):
        raise click.ClickException(f"{path} is not a generative PC model; pck generate "
                                   "needs one saved by pck train --algo gpc --save")
    try:
        return GenerativePC.load(path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("generate")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="Image to write (png, svg, pdf, ... by its extension).")
@click.option("--samples", type=click.IntRange(1, 50), default=8, show_default=True,
              help="Images per class: the noiseless top-down image, then samples.")
@click.option("--noise", type=click.FloatRange(min=0), default=0.1, show_default=True,
              help="Standard deviation of the noise added to each hidden latent on the "
                   "way down (ancestral sampling; 0: every column is the MAP image).")
@click.option("--seed", type=click.IntRange(0, 2 ** 32 - 1), default=0, show_default=True,
              help="Seed of the noise.")
@click.option("--label-node", type=click.Choice(("mean", "onehot")), default="mean",
              show_default=True,
              help="Clamp the label node to the mean value training inference gave it for "
                   "the class, or to the one-hot (the categorical label energy's mean "
                   "values sit far from it).")
def generate(model, out_path, samples, noise, seed, label_node):
    """Write a grid of images generated by the generative PC model in MODEL (a file saved by
    pck train --algo gpc --save): one row per class, the label clamped at the top."""
    check_writable(out_path, "--out")
    if os.path.exists(out_path) and os.path.exists(model) and \
            os.path.samefile(out_path, model):
        raise click.BadParameter(f"{out_path} is also the MODEL file", param_hint="--out")
    net = load_gpc(model)
    try:
        from pckernels.plot import supported_formats
        formats = supported_formats()
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    ext = os.path.splitext(out_path)[1][1:].lower()
    if ext not in formats:
        raise click.BadParameter(f"{out_path!r}: the extension names the image format; "
                                 f"choose from {', '.join(formats)}", param_hint="--out")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        generation_grid(net, out_path, samples=samples, noise=noise, seed=seed,
                        label_node=label_node)
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.ClickException(f"{model}: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {out_path}: {exc.strerror or exc}") \
            from None
    click.echo(f"{net.n_classes} classes x {samples} images written to {out_path}")
