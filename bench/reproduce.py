"""Regenerate every figure and table the README quotes, one entry per README item.

Usage (from the repository root)::

    python -m pckernels_bench.reproduce --list             # what the full run would do
    python -m pckernels_bench.reproduce --quick            # tiny settings: a smoke test
    python -m pckernels_bench.reproduce                    # the README's settings (hours)
    python -m pckernels_bench.reproduce --only fig3-5,theory

The full run writes the sweeps' raw results under ``--work`` (default ``results``),
copies each sweep's CSV and JSON to ``docs/results/`` and re-plots ``docs/figures/``;
the tables are printed, to be copied into the README by hand. ``--quick`` runs every
entry at small sizes on scikit-learn's digits and writes only under ``--work`` (default
``reproduce-quick``), never into ``docs/``. Entries marked *machine-dependent* measure
time: their numbers differ from machine to machine and from run to run.

Each entry names what it regenerates in the README (an image path, the header row of a
table, or the first line of a printed output block); ``tests/test_reproduce.py`` checks
that every image, table and output block of the README has an entry.
"""
import argparse
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One README item and the commands that regenerate it.

    ``full`` and ``quick`` are tuples of commands; a command is a tuple of words whose
    first is ``pck`` (the CLI), ``python`` (this interpreter) or ``copy`` (copy a file
    to a path). Words may hold ``{work}`` (the work folder) and ``{docs}`` (``docs`` in a
    full run, ``{work}/docs`` in a quick one).
    """

    name: str
    what: str
    readme: tuple
    full: tuple
    quick: tuple
    machine_dependent: bool = False


def _figures_entry(name, what, stem, sweep_args, quick_args, fig_dir):
    fig_dir = "figures" + (f"/{fig_dir}" if fig_dir else "")
    images = tuple(f"docs/{fig_dir}/{f}.png"
                   for f in ("fig3_cosine", "fig4_val_acc", "fig5_test_acc"))
    plot = ("pck", "plot", f"{{docs}}/results/{stem}.csv", "--out", f"{{docs}}/{fig_dir}",
            "--cosine", "final", "--force")
    publish = (("copy", f"{{work}}/{stem}/results.csv", f"{{docs}}/results/{stem}.csv"),
               ("copy", f"{{work}}/{stem}/results.json", f"{{docs}}/results/{stem}.json"))
    return Entry(
        name, what, images,
        full=(("pck", "sweep", *sweep_args, "--out", f"{{work}}/{stem}"),) + publish + (plot,),
        quick=(("pck", "sweep", *quick_args, "--out", f"{{work}}/{stem}"),) + publish + (plot,))


QUICK_SWEEP = ("--dataset", "digits", "--ratio", "0.5,1", "--step-size", "0.5,1",
               "--epochs", "1", "--width", "16")

ENTRIES = (
    _figures_entry(
        "fig3-5", "Figures 3-5: FPA-PC sweep on Fashion-MNIST, PyTorch init (70 runs)",
        "fashion-mnist",
        ("--dataset", "fashion-mnist", "--lr", "0.01", "--jobs", "2"),
        QUICK_SWEEP + ("--depth", "2,3"), ""),
    _figures_entry(
        "fig3-5-L20-orth", "Figures 3-5 at L = 20 with orthogonal initialisation (19 runs)",
        "fashion-mnist-L20-orth",
        ("--dataset", "fashion-mnist", "--depth", "20", "--init", "orthogonal", "--lr",
         "0.01", "--jobs", "1"),
        QUICK_SWEEP + ("--depth", "4", "--init", "orthogonal"), "fashion-mnist-L20-orth"),
    Entry("lr-batch", "Section 3.6: learning rate x batch size x optimizer heatmaps (digits, "
          "702 runs)",
          ("docs/figures/lr_batch_final_acc.png",),
          full=(("pck", "study", "--algo", "bp-sgd,bp-momentum,bp-adam,ilprox,gil-sgd,vpc",
                 "--lr", "0.0001,0.0003,0.001,0.003,0.01,0.03,0.1,0.3,1,3,10,30,100",
                 "--batch-size", "1,8,64", "--seed", "0,1,2", "--epochs", "10", "--jobs", "2",
                 "--out", "{work}/lr-batch-digits"),
                ("copy", "{work}/lr-batch-digits/results.csv",
                 "{docs}/results/lr-batch-digits.csv"),
                ("copy", "{work}/lr-batch-digits/results.json",
                 "{docs}/results/lr-batch-digits.json"),
                ("pck", "plot", "{docs}/results/lr-batch-digits.csv", "--out",
                 "{docs}/figures", "--force")),
          quick=(("pck", "study", "--algo", "bp-sgd,bp-adam,ilprox,vpc", "--lr", "0.01,10",
                  "--batch-size", "8,64", "--epochs", "1", "--width", "16", "--out",
                  "{work}/lr-batch-digits"),
                 ("copy", "{work}/lr-batch-digits/results.csv",
                  "{docs}/results/lr-batch-digits.csv"),
                 ("copy", "{work}/lr-batch-digits/results.json",
                  "{docs}/results/lr-batch-digits.json"),
                 ("pck", "plot", "{docs}/results/lr-batch-digits.csv", "--out",
                  "{docs}/figures", "--force"))),
    Entry("feedback", "weight symmetry: fa and kp feedback for bp, fpa, vpc (digits; per-layer "
          "cosines in each run's --json, epochs[].layer_cosine)",
          ("| algo | feedback | layer 0 cosine |",),
          full=tuple(("pck", "train", "--algo", a, "--feedback", f, "--cosine", "--json",
                      f"{{work}}/feedback-{a}-{f}.json")
                     for a in ("bp", "fpa", "vpc") for f in ("fa", "kp")),
          quick=tuple(("pck", "train", "--algo", a, "--feedback", f, "--cosine", "--epochs", "1",
                       "--hidden", "16x2", "--json", f"{{work}}/feedback-{a}-{f}.json")
                      for a in ("bp", "vpc") for f in ("fa", "kp"))),
    Entry("gpc", "generative PC classifier, gaussian and categorical label energy",
          ("| dataset, model | gaussian | categorical |",),
          full=tuple(("pck", "train", "--algo", "gpc", "--optimizer", "adam", "--lr", "0.001",
                      "--label-energy", e, *args)
                     for args in (("--epochs", "20", "--batch-size", "32"),
                                  ("--dataset", "fashion-mnist", "--hidden", "64", "--epochs",
                                   "3", "--steps", "10", "--val-fraction", "0.05"),
                                  ("--dataset", "fashion-mnist", "--hidden", "128", "--epochs",
                                   "4", "--steps", "20", "--val-fraction", "0.05"))
                     for e in ("gaussian", "categorical")),
          quick=tuple(("pck", "train", "--algo", "gpc", "--optimizer", "adam", "--lr", "0.001",
                       "--label-energy", e, "--epochs", "1", "--hidden", "16")
                      for e in ("gaussian", "categorical"))),
    Entry("defaults", "every algorithm with pck train's defaults on digits",
          ("| algo | batch size | lr | final test acc |",),
          full=(("python", "-m", "pckernels_bench.defaults"),),
          quick=(("python", "-m", "pckernels_bench.defaults", "--algo", "bp,ilprox", "--",
                  "--epochs", "1", "--hidden", "8"),)),
    Entry("step-rule-table", "vpc fixed step vs the auto rule, by width (digits)",
          ("| width | fixed: final / best test acc |",),
          full=(("python", "-m", "pckernels_bench.step_rule", "table", "--widths",
                 "16,64,256,1024", "--epochs", "10"),),
          quick=(("python", "-m", "pckernels_bench.step_rule", "table", "--widths", "8,16",
                  "--epochs", "1"),)),
    Entry("step-rule-timing", "cost of the auto step rule per vpc training step",
          ("python -m pckernels_bench.step_rule timing",),
          full=(("python", "-m", "pckernels_bench.step_rule", "timing"),
                ("python", "-m", "pckernels_bench.step_rule", "timing", "--width", "256")),
          quick=(("python", "-m", "pckernels_bench.step_rule", "timing", "--width", "16",
                  "--depth", "2", "--steps", "4", "--repeats", "3"),),
          machine_dependent=True),
    Entry("bench", "Performance table: pckernels against NumPy, sklearn, PyTorch, JAX",
          ("| L | bp step (us) |",),
          full=(("pck", "bench", "--threads", "1", "--depth", "2,5,10,20", "--compare",
                 "numpy,sklearn,torch,jax", "--repeats", "7"),),
          quick=(("pck", "bench", "--quick", "--threads", "1", "--compare", "numpy"),),
          machine_dependent=True),
    Entry("bench-two-threads", "fpa inference schedules on two threads",
          ("pck bench --threads 2 --depth 5,20 --algo bp,fpa --repeats 7",),
          full=(("pck", "bench", "--threads", "2", "--depth", "5,20", "--algo", "bp,fpa",
                 "--repeats", "7"),),
          quick=(("pck", "bench", "--quick", "--threads", "2", "--algo", "bp,fpa"),),
          machine_dependent=True),
    Entry("complexity", "the cost model against measured times, Theorem 1's step counts",
          ("pck complexity:",),
          full=(("pck", "complexity", "--depth", "20", "--threads", "2"),),
          quick=(("pck", "complexity", "--depth", "3", "--width", "8", "--inputs", "16",
                  "--batch-size", "8", "--threads", "2", "--repeats", "3"),),
          machine_dependent=True),
    Entry("theory", "Results 1 and 2 of the paper (float64 MLP on digits)",
          ("Result 1:",),
          full=(("pck", "theory"),),
          quick=(("pck", "theory", "--hidden", "16x2", "--train-epochs", "0",
                  "--precision-ratio", "1,10", "--steps", "50"),)),
)


def expand(command, work, docs):
    """A command's words with ``{work}`` and ``{docs}`` filled in."""
    return tuple(w.format(work=work, docs=docs) for w in command)


def shell_text(words):
    """How a command reads on a shell (``copy`` as ``cp``)."""
    words = ("cp",) + tuple(words[1:]) if words[0] == "copy" else words
    return " ".join(shlex.quote(w) for w in words)


def _argv(words):
    if words[0] == "pck":
        return [sys.executable, "-m", "pckernels_cli.main", *words[1:]]
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    raise ValueError(f"unknown command {words[0]!r}")


def select(only):
    """The entries named in ``only`` (comma-separated), all of them for None."""
    if not only:
        return list(ENTRIES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {e.name: e for e in ENTRIES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown entry {unknown[0]!r}; choose from {', '.join(known)}")
    return [known[n] for n in names]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pckernels_bench.reproduce",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny settings on digits, written under --work only (a smoke test)")
    p.add_argument("--list", action="store_true", help="print the commands, run nothing")
    p.add_argument("--only", default=None, help="comma-separated entry names")
    p.add_argument("--work", default=None,
                   help="folder for raw results [default: results, or reproduce-quick "
                        "with --quick]")
    args = p.parse_args(argv)
    try:
        entries = select(args.only)
    except ValueError as exc:
        p.error(str(exc))
    work = args.work or ("reproduce-quick" if args.quick else "results")
    docs = f"{work}/docs" if args.quick else "docs"
    mode = "quick" if args.quick else "full"
    if args.list:
        for e in entries:
            tag = "  [machine-dependent: timings]" if e.machine_dependent else ""
            print(f"# {e.name}: {e.what}{tag}")
            print(f"#   README: {'; '.join(e.readme)}")
            for c in (e.quick if args.quick else e.full):
                print(shell_text(expand(c, work, docs)))
            print()
        return 0
    if not args.quick and not (Path("README.md").is_file() and Path("docs").is_dir()):
        sys.stderr.write("error: run the full mode from the repository root (README.md and "
                         "docs/ here), or use --quick\n")
        return 2
    for e in entries:
        tag = " [machine-dependent: timings]" if e.machine_dependent else ""
        print(f"=== {e.name} ({mode}): {e.what}{tag}", flush=True)
        start = time.perf_counter()
        for c in (e.quick if args.quick else e.full):
            words = expand(c, work, docs)
            print(f"$ {shell_text(words)}", flush=True)
            if words[0] == "copy":
                Path(words[2]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(words[1], words[2])
                continue
            rc = subprocess.call(_argv(words))
            if rc != 0:
                sys.stderr.write(f"error: {e.name}: `{shell_text(words)}` exited with {rc}\n")
                return 1
        print(f"=== {e.name}: done in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
