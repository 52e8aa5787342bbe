"""Every algorithm of ``pck train`` with its defaults: final and best test accuracy and the
largest drop below the best epoch, as a Markdown table (the README's "every algorithm on
digits" table).

Each run is ``pck train --algo A --json FILE`` plus the extra arguments, in a fresh
process, exactly as a user runs it; the table is computed from the JSON files.

Usage::

    python -m pckernels_bench.defaults                          # digits, 10 epochs
    python -m pckernels_bench.defaults --algo bp,vpc -- --epochs 2 --hidden 16
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from pckernels.training import ALGORITHMS


def summary(epochs):
    """(final, best, largest drop below the best so far) of per-epoch test accuracies."""
    accs = [e["test_accuracy"] for e in epochs]
    drop = max(max(accs[:i + 1]) - a for i, a in enumerate(accs))
    return accs[-1], max(accs), drop


def run(algo, extra, folder):
    """Train ``algo`` with ``pck train`` and return its JSON summary; a run that wrote no
    summary (a usage error, a crash) gives ``{"status": "failed", "error": ...}``."""
    out = Path(folder) / f"{algo}.json"
    argv = [sys.executable, "-m", "pckernels_cli.main", "train", "--algo", algo, "--json",
            str(out), "--quiet", *extra]
    done = subprocess.run(argv, capture_output=True, text=True)
    if out.exists():  # also a run that diverged or was interrupted: its status says so
        return json.loads(out.read_text())
    lines = done.stderr.strip().splitlines()
    return {"status": "failed",
            "error": f"exit {done.returncode}: {lines[-1] if lines else 'no message'}"}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pckernels_bench.defaults",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--algo", default=",".join(ALGORITHMS),
                   help="comma-separated algorithms [default: all]")
    p.add_argument("extra", nargs="*", help="arguments passed on to pck train (after --)")
    args = p.parse_args(argv)
    algos = [a.strip() for a in args.algo.split(",") if a.strip()]
    unknown = [a for a in algos if a not in ALGORITHMS]
    if unknown:
        p.error(f"unknown algorithm {unknown[0]!r}; choose from {', '.join(ALGORITHMS)}")
    print("| algo | batch size | lr | final test acc | best | largest drop below best |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for algo in algos:
            result = run(algo, args.extra, folder)
            if result["status"] != "completed":
                print(f"| {algo} | | | {result['status']}: {result['error']} | | |",
                      flush=True)
                continue
            final, best, drop = summary(result["epochs"])
            cfg = result["config"]
            print(f"| {algo} | {cfg['batch_size']} | {cfg['lr']:g} | {final:.4f} | "
                  f"{best:.4f} | {drop:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
