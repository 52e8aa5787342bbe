"""The inference step rule of vpc: fixed step vs the ``auto`` rule (curvature step, energy
safeguard, convergence stop).

Two reports, printed as tables (and written as JSON with ``--json``):

- ``table``: test accuracy of vpc on a dataset across hidden widths, trained with the
  fixed step (the former default: gamma = 1, T = L) and with the default ``auto`` rule,
  each with the same optimizer settings (vpc's default learning rate unless ``--lr``);
  per run the final and best test accuracy, the largest drop below the best, and the
  epochs in which inference raised the energy.
- ``timing``: what the rule costs. Per training step (inference, update and SGD step) on
  random data: vpc with the fixed step, the ``auto`` rule with the stop disabled (same T:
  the cost of the curvature estimate, the copies and the per-sample energies) and the
  ``auto`` rule with its stop. Interleaved samples, paired ratios (bench/harness.py).

Usage::

    python -m pckernels_bench.step_rule table --widths 16,64,256,1024 --epochs 10
    python -m pckernels_bench.step_rule timing --depth 5 --width 64 --steps 20
    python -m pckernels_bench.step_rule timing --depth 5 --width 64 --inputs 784 --steps 20
"""
import argparse
import json
import sys

import numpy as np

from pckernels.data import load_dataset, train_val_split
from pckernels.model import MLP
from pckernels.training import DivergenceError, Optimizer, PCSettings, train

from .harness import paired_ratio, time_interleaved


def _accuracy_run(ds, X_tr, y_tr, width, depth, settings, epochs, seed, lr):
    net = MLP([ds.n_features] + [width] * depth + [ds.n_classes], seed=seed)
    warnings = []
    try:
        hist = train(net, X_tr, y_tr, X_test=ds.X_test, y_test=ds.y_test, algo="vpc",
                     pc=settings, epochs=epochs, lr=lr, seed=seed,
                     on_warning=warnings.append)
        status = "completed"
    except DivergenceError as exc:
        hist, status = None, f"diverged: {exc}"
    accs = [m.test_accuracy for m in hist.epochs] if hist else []
    best = max(accs) if accs else float("nan")
    return {"width": width, "rule": settings.step_rule or "auto", "status": status,
            "accuracy": accs, "final": accs[-1] if accs else float("nan"), "best": best,
            "max_drop": max((max(accs[:i + 1]) - a for i, a in enumerate(accs)), default=0.0),
            "energy_rise_epochs": sum(1 for m in hist.epochs if m.energy_rises) if hist
            else None}


def table(widths, depth=2, epochs=10, dataset="digits", seed=0, lr=None):
    """Rows of the fixed-vs-auto accuracy table (see the module docstring)."""
    ds = load_dataset(dataset, dtype="float32")
    X_tr, y_tr, _, _ = train_val_split(ds.X_train, ds.y_train, 0.1, seed)
    rows = []
    for width in widths:
        for settings in (PCSettings(step_rule="fixed"), PCSettings()):
            rows.append(_accuracy_run(ds, X_tr, y_tr, width, depth, settings, epochs, seed, lr))
            r = rows[-1]
            print(f"{r['width']:>6}  {r['rule']:>5}  final {r['final']:.4f}  best "
                  f"{r['best']:.4f}  max drop {r['max_drop']:.4f}  energy-rise epochs "
                  f"{r['energy_rise_epochs']}  {r['status'] if r['status'] != 'completed' else ''}",
                  flush=True)
    return rows


def timing(width=64, depth=5, batch=64, steps=20, repeats=7, fixed_step=0.1, seed=0,
           inputs=None):
    """Seconds per vpc training step: fixed step, auto without stop, auto with stop.

    ``inputs``: width of the input layer (default ``width``; 784 is Fashion-MNIST's)."""
    n_in = width if inputs is None else inputs
    sizes = [n_in] + [width] * depth + [10]
    net = MLP(sizes, seed=seed)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(batch, n_in)).astype(net.dtype)
    labels, targets = net.check_targets(rng.integers(0, 10, batch), batch)
    grad = net.zeros_like_params()
    opt = Optimizer(net, "sgd", lr=1e-12)  # a real SGD step that leaves the weights alone
    configs = {
        "fixed": PCSettings(steps=steps, step_size=fixed_step, step_rule="fixed"),
        "auto_no_stop": PCSettings(steps=steps, step_rule="auto", energy_tol=0.0),
        "auto": PCSettings(steps=steps, step_rule="auto"),
    }
    fns = {}
    for name, s in configs.items():
        runner = s.resolved("vpc", depth).runner(net, "vpc")

        def step(runner=runner):
            runner.run(X, labels, targets, grad)
            opt.step(grad)
        fns[name] = step
    times = time_interleaved(fns, repeats=repeats)
    base = times["fixed"]
    out = {"sizes": sizes, "batch": batch, "steps": steps, "seconds": {}, "ratio": {}}
    for name, t in times.items():
        out["seconds"][name] = t.median_s
        out["ratio"][name] = paired_ratio(t, base)
        r = out["ratio"][name]
        print(f"{name:>13}  {t.median_s * 1e3:8.3f} ms/step  x{r['median']:.3f} of fixed "
              f"[{r['lo']:.3f}, {r['hi']:.3f}]", flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pckernels_bench.step_rule",
                                description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("table", help="accuracy of vpc, fixed step vs auto, across widths")
    t.add_argument("--widths", default="16,64,256,1024")
    t.add_argument("--depth", type=int, default=2)
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--dataset", default="digits")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--lr", type=float, default=None,
                   help="SGD learning rate of both rules (default: vpc's, as pck train)")
    t.add_argument("--json", default=None)
    m = sub.add_parser("timing", help="cost of the auto rule per vpc training step")
    m.add_argument("--width", type=int, default=64)
    m.add_argument("--inputs", type=int, default=None,
                   help="width of the input layer (default: --width; 784 as Fashion-MNIST)")
    m.add_argument("--depth", type=int, default=5)
    m.add_argument("--batch", type=int, default=64)
    m.add_argument("--steps", type=int, default=20)
    m.add_argument("--repeats", type=int, default=7)
    m.add_argument("--json", default=None)
    a = p.parse_args(argv)
    if a.what == "table":
        out = table([int(w) for w in a.widths.split(",")], a.depth, a.epochs, a.dataset,
                    a.seed, a.lr)
    else:
        out = timing(a.width, a.depth, a.batch, a.steps, a.repeats, inputs=a.inputs)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
