"""``pck``: train, time and compare backprop and predictive coding on the CPU."""
import importlib
import os
import shlex
import signal
import sys
import threading
import time


def _interrupted_while_importing(signum, frame):
    # Exit at once: a KeyboardInterrupt raised inside a library's import can be swallowed
    # by a bare except there, and the command would then run as if never interrupted.
    sys.stderr.write("Error: interrupted\n")
    sys.stderr.flush()
    os._exit(130)


#: Whether a Ctrl-C arrived while the command ran (see :func:`main`).
_sigint_seen = False


def _note_sigint(signum, frame):
    # Python's own handler (KeyboardInterrupt), remembering that the user interrupted:
    # an extension module imported lazily during a command (scipy's, via scikit-learn) can
    # turn the KeyboardInterrupt into an ImportError.
    global _sigint_seen
    _sigint_seen = True
    signal.default_int_handler(signum, frame)


_own_sigint = (threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
if _own_sigint:
    signal.signal(signal.SIGINT, _interrupted_while_importing)
try:  # Ctrl-C during the (slow) imports: one line, not a traceback from deep in NumPy
    import click
    import numpy as np

    import pckernels
    from pckernels.config import get_threads, set_threads
    from pckernels.data import DataError, load_dataset, train_val_split
    from pckernels.io import atomic_write_json, environment
    from pckernels.memory import (MemoryLimitError, check_memory, describe_sizes,
                                  training_bytes)
    from pckernels.checkpoint import save_checkpoint
    from pckernels.feedback import FEEDBACK_ALGOS, feedback_settings
    from pckernels.model import MLP, check_init
    from pckernels.training import (LATENT_ALGOS, DivergenceError, History, Optimizer,
                                    PCSettings, default_batch_size, default_lr, train)

    from .gpc import label_energy_option, train_gpc, warn_label_energy
    from .common import (check_writable, count, data_options, download_allowed,
                         feedback_option, finite, is_tty, memory_option, model_options,
                         optimizer_options, parse_hidden, pc_options, seed_range, split_init,
                         warn_unused)
    from .resume import check_resume, resume_option, run_settings
except KeyboardInterrupt:
    sys.stderr.write("Error: interrupted\n")
    sys.exit(130)
finally:
    if _own_sigint:
        signal.signal(signal.SIGINT, _note_sigint)

#: Datasets read from IDX files, the only ones --data-dir applies to.
IDX_DATASETS = ("mnist", "fashion-mnist", "fashionmnist")


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand is used."""

    lazy = {
        "bench": ("pckernels_cli.bench", "bench"),
        "complexity": ("pckernels_cli.bench", "complexity"),
        "eval": ("pckernels_cli.evaluate", "eval_cmd"),
        "generate": ("pckernels_cli.gpc", "generate"),
        "predict": ("pckernels_cli.evaluate", "predict_cmd"),
        "study": ("pckernels_cli.study", "study"),
        "sweep": ("pckernels_cli.sweep", "sweep"),
        "plot": ("pckernels_cli.sweep", "plot"),
        "theory": ("pckernels_cli.theory", "theory"),
    }

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx, name):
        if name in self.lazy:
            module, attr = self.lazy[name]
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(pckernels.__version__, prog_name="pck")
def cli():
    """Backpropagation and predictive coding on the CPU with hand-written Numba kernels."""


def load_split(dataset, data_dir, val_fraction, seed, dtype="float64"):
    """Dataset (features in ``dtype``) plus a validation split carved from its training
    set, or a click error. ``ds.X_train``/``ds.y_train`` become the training part, so the
    unsplit copy is freed."""
    try:
        ds = load_dataset(dataset, data_dir=data_dir, dtype=dtype,
                          download=download_allowed())
    except DataError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--dataset") from None
    n = len(ds.y_train)
    if val_fraction > 0 and n < 2:
        raise click.ClickException(f"{ds.name}: its {n} training sample cannot also give a "
                                   "validation set; use --val-fraction 0")
    try:
        X_tr, y_tr, X_val, y_val = train_val_split(ds.X_train, ds.y_train, val_fraction,
                                                   seed, copy=False)
    except DataError as exc:
        raise click.ClickException(f"{ds.name}: {exc}") from None
    ds.X_train, ds.y_train = X_tr, y_tr
    return ds, X_tr, y_tr, X_val, y_val


def same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file (existing or not)."""
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


#: Epochs shorter than this show the running mean throughput (``~``) instead of their own.
SHORT_EPOCH_S = 0.1


def _seconds(t):
    """Seconds with three significant digits (``0.00712``, ``1.35``, ``12.4``)."""
    return f"{t:.3g}" if t < 100 else f"{t:.0f}"


def _row(cells, widths):
    return "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))


def finish_training(history, status, error, config, wall, json_path, save, write_model,
                    timing=None, note=None, say=click.echo):
    """End of ``pck train`` (any ``--algo``, gpc included): save the model, write the
    summary and print the test accuracy, or fail with one line.

    The model first (``write_model(save)``, only after a completed run): if that fails,
    the JSON says ``failed`` instead of ``completed``. Then the ``--json`` summary (status,
    config, per-epoch metrics, timing with ``timing`` added, environment). A run that did
    not complete is then a :class:`click.ClickException` (exit 1; 130 when interrupted);
    a completed one prints
    ``note`` (through ``say``, if given) and the test accuracy line.
    """
    final = history.final
    summary = {"status": status, "error": error, "config": config,
               "epochs": history.as_dicts(),
               "final_test_accuracy": final.test_accuracy if final else None,
               "final_val_accuracy": final.val_accuracy if final else None,
               "warnings": history.warnings,
               "timing": {"wall_seconds": wall,
                          "compile_seconds": history.compile_seconds,
                          "train_seconds": sum(e.seconds for e in history.epochs),
                          **(timing or {})},
               "environment": environment()}
    if save and status == "completed":
        try:
            os.makedirs(os.path.dirname(os.path.abspath(save)), exist_ok=True)
            write_model(save)
        except OSError as exc:
            status, error = "failed", f"cannot write {save}: {exc.strerror or exc}"
            summary.update(status=status, error=error)
    try:
        if json_path:
            atomic_write_json(json_path, summary)
    except OSError as exc:
        raise click.ClickException(f"cannot write {json_path}: {exc.strerror or exc}") \
            from None
    if status != "completed":
        exc = click.ClickException(error + (f" (partial results in {json_path})"
                                            if json_path and final else ""))
        if status == "interrupted":
            exc.exit_code = 130  # as for a Ctrl-C anywhere else (README)
        raise exc
    if note:
        say(note)
    click.echo(f"test accuracy: {final.test_accuracy:.4f}  "
               f"({_seconds(sum(e.seconds for e in history.epochs))} s training, "
               f"{_seconds(history.compile_seconds)} s compiling or loading kernels before it)")


@cli.command("train")
@data_options
@model_options
@pc_options
@feedback_option
@optimizer_options
@click.option("--batch-size", type=click.IntRange(min=1), default=64,
              help="Samples per mini-batch (one parameter update each) [default: 64; "
                   "ilprox 8].")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True,
              help="Passes over the training set.")
@click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              show_default=True, callback=finite,
              help="Share of the training set held out for validation.")
@click.option("--seed", type=seed_range(), default=0, show_default=True,
              help="Seed of initialisation, shuffling and the validation split.")
@click.option("--cosine", is_flag=True,
              help="Log the mean cosine similarity of each update with backprop's gradient "
                   "(at the same weights, before the update).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write a machine-readable summary here.")
@click.option("--save", type=click.Path(dir_okay=False), default=None,
              help="Save the trained network (.npz), with the state --resume needs; a run "
                   "stopped by Ctrl-C saves its last finished epoch (not gpc).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar [default: on when stderr is a terminal].")
@click.option("--quiet", "-q", "verbosity", flag_value="quiet",
              help="Print only warnings, errors and the final test accuracy.")
@click.option("--verbose", "-v", "verbosity", flag_value="verbose",
              help="Also print, per epoch, what PC inference did (steps run, steps the "
                   "energy safeguard rejected, batches whose energy rose).")
@memory_option
@resume_option
@label_energy_option
def train_cmd(dataset, data_dir, hidden, activation, loss, dtype, threads, init, gain, param,
              algo, steps, step_size, step_rule, latent_optimizer, energy_tol,
              precision_ratio, pc_init, schedule, no_skip, tol, optimizer, lr, momentum,
              weight_decay, batch_size, epochs, val_fraction, seed, cosine, json_path, save,
              progress, verbosity, max_memory, resume, feedback):
    """Train an MLP with backprop or a predictive-coding variant.

    With no options: a 64x2 tanh MLP trained by backprop on scikit-learn's digits.
    --algo gpc trains a generative PC model instead (label at the top, see pck generate).
    """
    bp = algo == "bp"
    ctx = click.get_current_context()
    if algo == "gpc":
        return train_gpc(ctx)
    warn_label_energy(ctx)
    if ctx.get_parameter_source("lr") is click.core.ParameterSource.DEFAULT:
        lr = ctx.params["lr"] = default_lr(algo, lr, optimizer)  # saved with --save
    if ctx.get_parameter_source("batch_size") is click.core.ParameterSource.DEFAULT:
        batch_size = ctx.params["batch_size"] = default_batch_size(algo, batch_size)
    init, pc_init, latent_given = split_init(ctx, init, pc_init)
    try:
        check_init(init, param, gain)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    latent = algo in LATENT_ALGOS
    if latent_given and not latent:
        click.echo(f"warning: --latent-init does not apply to --algo {algo} (only to "
                   f"{', '.join(LATENT_ALGOS)}); ignored", err=True)
    resume_path, checkpoint = resume if resume is not None else (None, None)
    if checkpoint is not None:
        check_resume(ctx, checkpoint, epochs)
    warn_unused(ctx, [
        ("steps", "--steps", not bp, "to --algo bp"),
        ("step_size", "--step-size", not bp, "to --algo bp"),
        ("step_rule", "--step-rule", latent,
         f"to --algo {algo} (only to {', '.join(LATENT_ALGOS)})"),
        ("latent_optimizer", "--latent-optimizer", latent,
         f"to --algo {algo} (only to {', '.join(LATENT_ALGOS)})"),
        ("energy_tol", "--energy-tol", latent and algo != "ipc",
         f"to --algo {algo} (only to {', '.join(a for a in LATENT_ALGOS if a != 'ipc')})"),
        ("precision_ratio", "--precision-ratio", algo == "scaled",
         f"to --algo {algo} (only to scaled)"),
        ("schedule", "--schedule", not bp, "to --algo bp"),
        ("no_skip", "--no-skip", not bp, "to --algo bp"),
        ("tol", "--tol", not bp, "to --algo bp"),
        ("momentum", "--momentum", optimizer == "sgd" and algo != "ilprox",
         "to --algo ilprox (it takes its own proximal step)" if algo == "ilprox"
         else f"to --optimizer {optimizer}"),
        ("optimizer", "--optimizer", algo != "ilprox",
         "to --algo ilprox (it takes its own proximal step)"),
        ("weight_decay", "--weight-decay", algo != "ilprox",
         "to --algo ilprox (it takes its own proximal step)"),
        ("feedback", "--feedback", algo in FEEDBACK_ALGOS or feedback == "symmetric",
         f"to --algo {algo} (only to {', '.join(FEEDBACK_ALGOS)})"),
        ("data_dir", "--data-dir", dataset.strip().lower().replace("_", "-") in IDX_DATASETS,
         f"to --dataset {dataset} (only to mnist and fashion-mnist)"),
    ])
    if threads:
        try:
            set_threads(threads)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--threads") from None
    widths = parse_hidden(hidden)
    if algo not in FEEDBACK_ALGOS:
        feedback = "symmetric"  # warned above when given
    check_writable(json_path, "--json")
    check_writable(save, "--save")
    if json_path and save and same_file(json_path, save):
        raise click.BadParameter(f"{save} is also the --json file; give two different files",
                                 param_hint="--save")
    try:
        check_memory(0, "training", max_memory)  # an invalid $PCK_MAX_MEMORY fails here
    except MemoryLimitError as exc:
        raise click.UsageError(str(exc)) from None
    ds, X_tr, y_tr, X_val, y_val = load_split(dataset, data_dir, val_fraction, seed, dtype)
    sizes = [ds.n_features] + widths + [ds.n_classes]
    try:
        check_memory(training_bytes(sizes, batch_size, dtype=dtype, algo=algo,
                                    optimizer=optimizer, loss=loss, cosine=cosine,
                                    n_eval=max(len(y_val), len(ds.y_test)),
                                    threads=get_threads(), n_train=len(y_tr),
                                    param=param, save=bool(save)),
                     f"training an MLP {describe_sizes(sizes)} with batches of "
                     f"{batch_size}", max_memory)
    except MemoryLimitError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        net = MLP(sizes, activation=activation, loss=loss, dtype=dtype, seed=seed, init=init,
                  param=param, gain=gain)
        if not latent:
            step_rule, latent_optimizer = None, "gd"  # warned above when given
        pc = PCSettings(steps=steps, step_size=step_size, precision_ratio=precision_ratio,
                        init=pc_init, schedule=schedule, skip=not no_skip, tol=tol,
                        step_rule=step_rule, latent_optimizer=latent_optimizer,
                        energy_tol=energy_tol)
        if feedback != "symmetric" and algo != "bp":
            resolved = feedback_settings(pc, algo, len(widths))
        else:
            resolved = pc.resolved(algo, len(widths)) if algo != "bp" else None
        if resolved is not None:
            resolved.runner(net, algo)
        Optimizer(net, optimizer, lr, momentum, weight_decay)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    rng = np.random.default_rng(seed)  # the shuffling stream, saved with --save
    if checkpoint is not None:
        if list(checkpoint.net.sizes) != sizes:
            raise click.ClickException(f"{resume_path} holds an MLP "
                                       f"{'-'.join(map(str, checkpoint.net.sizes))} but "
                                       f"{ds.name} needs {'-'.join(map(str, sizes))}")
        net.params[...] = checkpoint.net.params
        net.feedback = checkpoint.net.feedback
        rng = checkpoint.generator()

    config = {"dataset": ds.name, "source": ds.source, "sizes": sizes,
              "activation": activation, "loss": loss, "dtype": dtype, "init": init,
              "gain": net.gain, "param": param, "algo": algo,
              "optimizer": optimizer, "lr": lr, "momentum": momentum,
              "weight_decay": weight_decay, "feedback": feedback, "batch_size": batch_size,
              "epochs": epochs,
              "val_fraction": val_fraction, "seed": seed, "cosine": cosine,
              "n_train": int(len(y_tr)), "n_val": int(len(y_val)), "n_test": int(len(ds.y_test))}
    if checkpoint is not None:
        config["resumed_from"] = {"checkpoint": resume_path, "epoch": checkpoint.epoch}
    if resolved is not None:
        config["pc"] = {"steps": resolved.steps, "step_size": resolved.step_size,
                        "precision_ratio": resolved.precision_ratio, "init": resolved.init,
                        "schedule": resolved.schedule, "skip": resolved.skip,
                        "tol": resolved.tol, "step_rule": resolved.step_rule,
                        "latent_optimizer": resolved.latent_optimizer,
                        "energy_tol": resolved.energy_tol}
    desc = f"{algo}" + (f" feedback {feedback}" if feedback != "symmetric" else "")
    desc += (f" T={resolved.steps} step={resolved.step_size:g}"
                        + (f" ({resolved.step_rule})" if latent else "") if resolved else "")
    setup = "".join(f", {v}" for v, default in ((f"init {init}", "init pytorch"),
                                                 (f"gain {net.gain:g}" if net.gain else "", ""),
                                                 (f"param {param}", "param standard"))
                    if v != default)
    quiet, verbose = verbosity == "quiet", verbosity == "verbose"
    say = (lambda *a, **k: None) if quiet else click.echo
    say(f"{ds.name}: {len(y_tr)} train / {len(y_val)} val / {len(ds.y_test)} test, "
        f"MLP {'-'.join(map(str, sizes))} {activation}{setup}, {desc}, {dtype}")
    cols = ["epoch", "loss", "val_acc", "test_acc", "seconds", "samples/s"]
    widths_ = [5, 9, 8, 8, 8, 10]
    if cosine:
        cols.append("cosine")
        widths_.append(8)
    say(_row(cols, widths_))

    show_bar = (is_tty() and not quiet) if progress is None else progress
    bar = None

    def on_batch(n):
        nonlocal bar
        if show_bar and bar is None:
            # created at the first batch, after the kernels compiled, so that its time
            # estimate measures training only
            first = checkpoint.epoch + 1 if checkpoint else 1
            bar = click.progressbar(length=len(y_tr), label=f"epoch {first}",
                                    file=sys.stderr)
        if bar is not None:
            bar.update(n)

    def on_warning(message):
        if bar is not None:
            bar.render_finish()
        click.echo(f"warning: {message}", err=True)

    timed = {"samples": 0, "seconds": 0.0, "averaged": False}
    # with --save, the state at the end of the last finished epoch, kept in memory so that
    # an interrupted run still saves a checkpoint that resumes exactly
    finished = LastEpoch() if save else None

    def on_epoch(m):
        nonlocal bar
        if finished is not None:
            finished.keep(m.epoch, net, rng, history)
        if bar is not None:
            bar.render_finish()
        timed["samples"] += len(y_tr)
        timed["seconds"] += m.seconds
        rate = f"{m.samples_per_s:,.0f}"
        if m.seconds < SHORT_EPOCH_S:
            # a few milliseconds are mostly timer and scheduler noise: show the mean
            # throughput of the epochs so far, marked with ~
            rate = f"~{timed['samples'] / max(timed['seconds'], 1e-9):,.0f}"
            timed["averaged"] = True
        cells = [m.epoch, f"{m.train_loss:.4f}", f"{m.val_accuracy:.4f}",
                 f"{m.test_accuracy:.4f}", _seconds(m.seconds), rate]
        if cosine:
            cells.append(f"{m.cosine:.4f}")
        say(_row(cells, widths_))
        if verbose and m.inference_steps is not None:
            rose = count(m.energy_rises, "batch", "batches")
            say(f"      inference: {m.inference_steps:.1f} steps per sample on average, "
                f"{m.rejected_steps} rejected, energy rose in {rose}")
        elif verbose and algo != "bp":
            say(f"      inference: energy rose in {count(m.energy_rises, 'batch', 'batches')}")
        if show_bar and m.epoch < epochs:
            bar = click.progressbar(length=len(y_tr), label=f"epoch {m.epoch + 1}",
                                    file=sys.stderr)

    history = History()
    status, error = "completed", None
    start = time.perf_counter()
    try:
        train(net, X_tr, y_tr, X_val, y_val, ds.X_test, ds.y_test, algo=algo, pc=pc,
              epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
              momentum=momentum, weight_decay=weight_decay, seed=rng, cosine=cosine,
              history=history, on_batch=on_batch, on_epoch=on_epoch, on_warning=on_warning,
              start_epoch=checkpoint.epoch + 1 if checkpoint else 1,
              optimizer_state=checkpoint.optimizer_state if checkpoint else None,
              inference_state=checkpoint.inference_state if checkpoint else None,
              feedback=feedback)
    except DivergenceError as exc:
        status, error = "diverged", str(exc)
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted by the user"
        if finished is not None:
            error += finished.save(save, net, history, run_settings(ctx), epochs, data_dir)
    finally:
        if bar is not None and status != "completed":
            bar.render_finish()
    finish_training(
        history, status, error, config, time.perf_counter() - start, json_path, save,
        lambda path: save_checkpoint(path, net, history.final.epoch, rng, history.optimizer,
                                     run_settings(ctx), history.update.inference_state()),
        timing={"first_epoch_seconds": history.epochs[0].seconds if history.final else None},
        note=(f"~: an epoch under {SHORT_EPOCH_S:g} s is too short to time alone; samples/s "
              "is the mean of the epochs so far") if timed["averaged"] else None, say=say)


class LastEpoch:
    """The training state at the end of the last finished epoch (parameters, optimizer
    state, shuffling state, kp feedback matrices, PC inference's warm-started state),
    copied into buffers allocated once, so that ``pck train --save`` stopped by Ctrl-C
    still writes a checkpoint that resumes exactly."""

    def __init__(self):
        self.epoch = None

    def keep(self, epoch, net, rng, history):
        """Copy the state after ``epoch`` (called at the end of each epoch)."""
        opt = history.optimizer
        if self.epoch is None:
            self.params = np.empty_like(net.params)
            self.state1 = np.empty_like(opt.state1)
            self.state2 = None if opt.state2 is None else np.empty_like(opt.state2)
            kp = net.feedback is not None and net.feedback.kind == "kp"
            self.feedback = np.empty_like(net.feedback.params) if kp else None
        self.epoch = None  # an interruption while copying leaves no half-copied state
        np.copyto(self.params, net.params)
        np.copyto(self.state1, opt.state1)
        if self.state2 is not None:
            np.copyto(self.state2, opt.state2)
        if self.feedback is not None:
            np.copyto(self.feedback, net.feedback.params)
        self.t = opt.t
        self.rng = rng.bit_generator.state  # a new dict
        self.inference = history.update.inference_state()
        self.epoch = epoch

    def save(self, path, net, history, settings, epochs, data_dir):
        """Write the kept state to ``path`` as a checkpoint; return the clause the
        interruption's error message adds."""
        if self.epoch is None:
            return f"; nothing was saved in {path} (no epoch had finished)"
        try:
            net.params[...] = self.params
            if self.feedback is not None:
                net.feedback.params[...] = self.feedback
            opt = history.optimizer
            opt.load_state_dict({"t": self.t, "state1": self.state1, "state2": self.state2})
            rng = np.random.default_rng()
            rng.bit_generator.state = self.rng
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            save_checkpoint(path, net, self.epoch, rng, opt, settings, self.inference)
        except OSError as exc:
            return f"; cannot write {path}: {exc.strerror or exc}"
        except KeyboardInterrupt:
            return f"; interrupted again while saving {path}, which may hold an older model"
        saved = f"; the model after epoch {self.epoch} is saved in {path}"
        if self.epoch >= epochs:
            return saved
        more = f" --data-dir {shlex.quote(data_dir)}" if data_dir else ""
        return (f"{saved} (continue with pck train --resume {shlex.quote(path)} --epochs "
                f"{epochs} --save {shlex.quote(path)}{more})")


def main():
    """The ``pck`` entry point: every failure is one line and an exit code (2 usage, 1
    runtime, 130 interrupted), never a traceback."""
    try:
        code = cli.main(prog_name="pck", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("Error: interrupted", err=True)
        code = 130
    except MemoryError:
        click.echo("Error: out of memory; use smaller layers, batches or data", err=True)
        code = 1
    except Exception:
        if not _sigint_seen:
            raise
        click.echo("Error: interrupted", err=True)
        code = 130
    # The command is over: a Ctrl-C while worker threads and processes shut down ends the
    # process quietly instead of printing "Exception ignored in threading".
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
