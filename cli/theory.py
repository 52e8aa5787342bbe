"""``pck theory``: the paper's Results 1 and 2, measured. No numerics here."""
import click

from .common import RenamedOption, count, data_options


def _floats(text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: a comma-separated list of numbers",
                                 param_hint="--precision-ratio") from None
    if not values or any(not v > 0 or v == float("inf") for v in values):
        raise click.BadParameter(f"{text!r}: numbers > 0", param_hint="--precision-ratio")
    return values


def _table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(r, widths))
                     for r in [header] + rows)


@click.command("theory")
@data_options
@click.option("--hidden", default="32x3", show_default=True,
              help="Hidden widths: WIDTHxDEPTH or a list (see pck train).")
@click.option("--train-epochs", type=click.IntRange(min=0), default=2, show_default=True,
              help="Backprop epochs before measuring (0: the initial weights).")
@click.option("--batch-size", "batch", type=click.IntRange(min=1), default=64,
              show_default=True, cls=RenamedOption, old=("--batch",),
              help="Test samples the measurements use (one batch).")
@click.option("--precision-ratio", "ks", default="1,10,100,1000,10000", show_default=True,
              cls=RenamedOption, old=("--ks",),
              help="Result 1: the hidden precisions k of scaled (pck train's "
                   "--precision-ratio), comma-separated.")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Result 1: inference steps of scaled (enough to converge).")
@click.option("--seed", type=click.IntRange(0, 2 ** 32 - 1), default=0, show_default=True,
              help="Seed of the initialisation and the training.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write both tables here.")
def theory(dataset, data_dir, hidden, train_epochs, batch, ks, steps, seed, json_path):
    """Measure the paper's Results 1 and 2 (section 4) on a float64 MLP.

    Result 1: as the hidden precision k of the infinite-variance limit grows, inference
    leaves the latents at their feedforward values (max |x - mu| falls like 1/k) and the
    update tends to backprop's: the limit is a model with deterministic latents.

    Result 2: FPA-PC's and Z-IL's inference steps and updates do not follow the gradient
    of the free energy F of standard PC (cosines with -dF/dx and dF/dtheta below 1),
    while standard PC's do (cosine 1); yet they match backprop (cosine 1).

    \b
    JSON (--json): {"config", "result1": [{"k", "step_size", "max_abs_shift",
    "relative_shift", "last_step_change", "cosine_bp"}], "result2": [{"variant", "steps",
    "step_size", "inference_cosine", "update_cosine", "cosine_bp"}]}
    """
    from pckernels import theory as TH
    from pckernels.io import atomic_write_json
    from pckernels.model import MLP
    from pckernels.training import train

    from .common import check_writable, parse_hidden
    from .main import load_split

    k_values = _floats(ks)
    widths = parse_hidden(hidden)
    if not widths:
        raise click.BadParameter("needs at least one hidden layer", param_hint="--hidden")
    check_writable(json_path, "--json")
    ds, X_tr, y_tr, _, _ = load_split(dataset, data_dir, 0.0, seed)
    net = MLP([ds.n_features] + widths + [ds.n_classes], dtype="float64", seed=seed)
    if train_epochs:
        train(net, X_tr, y_tr, epochs=train_epochs, seed=seed)
    X, y = ds.X_test[:batch], ds.y_test[:batch]
    r1 = TH.result1(net, X, y, ks=k_values, steps=steps)
    r2 = TH.result2(net, X, y)
    click.echo(f"{ds.name}: MLP {'-'.join(map(str, net.sizes))} tanh, float64, "
               f"{count(train_epochs, 'backprop epoch')}, {count(len(y), 'test sample')}\n")
    click.echo("Result 1: scaled (hidden precision k) keeps the latents at their "
               "feedforward values")
    click.echo(_table(["k", "step", "max|x-mu|", "relative", "last step change",
                       "cosine with bp"],
                      [[f"{r['k']:g}", f"{r['step_size']:.3g}", f"{r['max_abs_shift']:.3e}",
                        f"{r['relative_shift']:.3e}", f"{r['last_step_change']:.1e}",
                        f"{r['cosine_bp']:.6f}"] for r in r1]))
    click.echo("\nResult 2: fpa and zil do not follow the free energy's gradient")
    click.echo(_table(["variant", "T", "step", "cos(step, -dF/dx)", "cos(update, dF/dtheta)",
                       "cos(update, bp)"],
                      [[r["variant"], r["steps"], f"{r['step_size']:g}",
                        f"{r['inference_cosine']:.4f}", f"{r['update_cosine']:.4f}",
                        f"{r['cosine_bp']:.4f}"] for r in r2]))
    if json_path:
        atomic_write_json(json_path, {
            "config": {"dataset": ds.name, "sizes": [int(s) for s in net.sizes],
                       "train_epochs": train_epochs, "batch": len(y), "ks": k_values,
                       "steps": steps, "seed": seed},
            "result1": r1, "result2": r2})
