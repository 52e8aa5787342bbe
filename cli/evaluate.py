"""``pck eval`` and ``pck predict``: use a network saved by ``pck train --save``."""
import json
import os

import click
import numpy as np

from pckernels.data import DataError, load_dataset
from pckernels.evaluation import evaluate, load_inputs, predict
from pckernels.gpc import GenerativePC, is_gpc_file
from pckernels.io import atomic_write, atomic_write_json
from pckernels.model import MLP

from .common import check_writable, count, data_options, download_allowed


def load_model(path):
    """The network saved at ``path`` (an MLP or a generative PC model), or a one-line
    error (exit 1) naming the file."""
    try:
        return GenerativePC.load(path) if is_gpc_file(path) else MLP.load(path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _same_file(a, b):
    a, b = os.path.realpath(a), os.path.realpath(b)
    return a == b or (os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b))


def format_confusion(confusion):
    """The confusion matrix as text: a header of predicted classes, a row per true class."""
    width = max(4, len(str(int(confusion.max(initial=0)))) + 1)
    n = confusion.shape[0]
    lines = ["true\\pred " + "".join(str(j).rjust(width) for j in range(n))]
    for i in range(n):
        lines.append(str(i).rjust(9) + " " + "".join(str(int(c)).rjust(width)
                                                     for c in confusion[i]))
    return "\n".join(lines)


@click.command("eval")
@click.argument("model", type=click.Path(dir_okay=False))
@data_options
@click.option("--split", type=click.Choice(("test", "train")), default="test",
              show_default=True, help="Which part of the dataset to evaluate on.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True),
              default=None, help="Also write the results as JSON to this file (- for "
                                 "stdout, instead of the text report).")
def eval_cmd(model, dataset, data_dir, split, json_path):
    """Accuracy, loss and confusion matrix of the network in MODEL (saved by pck train
    --save) on a dataset."""
    if json_path != "-":
        check_writable(json_path, "--json")
    net = load_model(model)
    try:
        ds = load_dataset(dataset, data_dir=data_dir, dtype=str(net.dtype),
                          download=download_allowed())
    except DataError as exc:
        raise click.ClickException(str(exc)) from None
    X, y = (ds.X_test, ds.y_test) if split == "test" else (ds.X_train, ds.y_train)
    if X.shape[1] != net.sizes[0]:
        raise click.ClickException(f"{model} takes {net.sizes[0]} inputs but {ds.name} has "
                                   f"{X.shape[1]} features")
    if y.max() >= net.sizes[-1]:
        raise click.ClickException(f"{ds.name} has label {y.max()} but {model} has only "
                                   f"{net.sizes[-1]} outputs")
    result = evaluate(net, X, y)
    summary = {"model": os.fspath(model), "dataset": ds.name, "source": ds.source,
               "split": split, "network": net.config(), **result.as_dict()}
    if json_path == "-":
        click.echo(json.dumps(summary, indent=2))
        return
    kind = "MLP" if isinstance(net, MLP) else f"generative PC ({net.label_energy} label)"
    click.echo(f"{ds.name} {split} set, {count(result.n_samples, 'sample')}, {kind} "
               f"{'-'.join(map(str, net.sizes))} {net.activation} ({net.loss}):")
    click.echo(f"accuracy {result.accuracy:.4f}  loss {result.loss:.4f}")
    click.echo("confusion matrix (rows: true class, columns: predicted class):")
    click.echo(format_confusion(result.confusion))
    if json_path:
        try:
            atomic_write_json(json_path, summary)
        except OSError as exc:
            raise click.ClickException(f"cannot write {json_path}: {exc.strerror or exc}") \
                from None


@click.command("predict")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("inputs", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="The .npz to write: classes (int64) and probabilities (nll networks) or "
                   "outputs (mse networks).")
def predict_cmd(model, inputs, out_path):
    """Predict the classes of the rows of X in INPUT (.npz with X, or .npy) with the
    network in MODEL (saved by pck train --save)."""
    check_writable(out_path, "--out")
    for other, name in ((model, "MODEL"), (inputs, "INPUT")):
        if _same_file(out_path, other):
            raise click.BadParameter(f"{out_path} is also the {name} file; give another "
                                     "file", param_hint="--out")
    net = load_model(model)
    try:
        X = load_inputs(inputs, dtype=net.dtype)
    except DataError as exc:
        raise click.ClickException(str(exc)) from None
    if X.shape[1] != net.sizes[0]:
        raise click.ClickException(f"{model} takes {net.sizes[0]} inputs but X in {inputs} "
                                   f"has {X.shape[1]} features")
    result = predict(net, X)
    try:
        atomic_write(out_path, lambda f: np.savez(f, **result), binary=True)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out_path}: {exc.strerror or exc}") \
            from None
    click.echo(f"{len(X)} predictions written to {out_path} "
               f"({', '.join(sorted(result))})")
