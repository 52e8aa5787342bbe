"""Learning rate x batch size x algorithm grid (paper section 3.6, the open question).

Section 3.6 of the paper asks whether the reported robustness of PC-style learning (G-IL,
IL-prox; Alonso et al., 2022) to large learning rates and to online learning (batch size 1)
survives when backprop uses SGD with momentum or Adam, or small batches. This grid trains
one MLP per *cell*: a run label, a learning rate, a batch size and a seed, with all other
settings shared, and records per cell the final and best accuracies and whether (and in
which epoch) training diverged.

A run label is ``ALGO-OPT``: ``ALGO`` one of :data:`pckernels.training.MLP_ALGORITHMS`
(the update: backprop or a PC variant with its default inference settings, see
:class:`pckernels.training.PCSettings`) and ``OPT`` the optimizer applied to it:

    sgd       plain SGD (momentum 0)
    momentum  SGD with heavy-ball momentum ``StudyConfig.momentum`` (PyTorch semantics)
    adam      Adam (betas 0.9, 0.999, eps 1e-8)

A bare ``ALGO`` means ``ALGO-sgd``, except for the algorithms in :data:`OWN_STEP`, which
take their own weight step so that no optimizer applies: their label is the bare ``ALGO``
(``ilprox``: the proximal step of implicit SGD with step ``lr``, Alonso et al. 2022;
docs/algorithms.md). Divergence is :class:`pckernels.DivergenceError`
(a non-finite loss or parameters, or an epoch's mean loss above
``DIVERGENCE_FACTOR`` = 100 times the first batch's); it ends the cell, which is recorded
with ``status = diverged`` instead of stopping the grid.

The cells run on the sweep machinery of :mod:`pckernels.sweep` (one folder, resumable,
joblib or Dask): ``run_sweep(StudyConfig(...), DIR)``. ``DIR/results.csv`` has one row per
cell, see :data:`STUDY_COLUMNS`.
"""
import math
import time
from dataclasses import asdict, dataclass

from .sweep import (GridConfig, SweepError, cell_model, cell_record, cell_threads,
                    train_cell_model)
from .training import DivergenceError  # noqa: F401  (what a cell records as diverged)
from .training import MLP_ALGORITHMS, History, PCSettings, train

#: Optimizers of a run label, ``ALGO-OPT``.
STUDY_OPTIMIZERS = ("sgd", "momentum", "adam")
#: Algorithms that move the weights themselves, with ``lr`` as their step: no optimizer
#: applies (``optimizer`` ``own`` in the CSV).
OWN_STEP = tuple(a for a in ("ilprox",) if a in MLP_ALGORITHMS)

#: Columns of the ``lr-batch`` grid's ``results.csv``, one row per cell.
STUDY_COLUMNS = {
    "grid": "grid kind: lr-batch",
    "cell": "name of the training run (its file in DIR/cells/)",
    "run": "run label ALGO-OPT",
    "algo": "update: bp or a PC variant (default inference settings)",
    "optimizer": "sgd (plain), momentum (SGD with momentum), adam, or own (ilprox's own "
                 "proximal step)",
    "momentum": "momentum coefficient (0 for sgd, empty for adam)",
    "lr": "learning rate",
    "batch_size": "samples per update (1: online learning)",
    "seed": "seed of initialisation, shuffling and the validation split",
    "depth": "hidden layers",
    "width": "units per hidden layer",
    "epochs": "epochs requested",
    "epochs_completed": "epochs finished before the end (or the divergence)",
    "status": "completed or diverged",
    "diverged_epoch": "epoch in which training diverged (empty if it did not)",
    "final_test_accuracy": "test accuracy after the last epoch (empty if diverged)",
    "final_val_accuracy": "validation accuracy after the last epoch (empty if diverged)",
    "best_test_accuracy": "highest test accuracy after any finished epoch",
    "best_val_accuracy": "highest validation accuracy after any finished epoch",
    "final_train_loss": "mean training loss of the last finished epoch",
    "test_accuracy_by_epoch": "test accuracy after each finished epoch, ';'-separated",
    "wall_seconds": "wall time of the cell (training and evaluation)",
    "error": "the divergence message (empty if completed)",
}

GRID_KEYS = ("algos", "lrs", "batch_sizes", "seeds")


def parse_run(label):
    """``(algo, optimizer)`` of a run label ``ALGO-OPT`` or ``ALGO`` (meaning ``ALGO-sgd``;
    for the algorithms of :data:`OWN_STEP`, only ``ALGO``, whose optimizer is ``"own"``).

    Raises
    ------
    ValueError
        When ALGO is not in :data:`pckernels.training.MLP_ALGORITHMS`, OPT not in
        :data:`STUDY_OPTIMIZERS`, or an optimizer is given to an :data:`OWN_STEP` algorithm.
    """
    label = str(label).strip().lower()
    algo, _, opt = label.rpartition("-")
    if not algo or opt not in STUDY_OPTIMIZERS:
        algo, opt = label, None
    if algo not in MLP_ALGORITHMS:
        raise ValueError(f"unknown run {label!r}: use ALGO or ALGO-OPT with ALGO one of "
                         f"{', '.join(MLP_ALGORITHMS)} and OPT one of "
                         f"{', '.join(STUDY_OPTIMIZERS)}")
    if algo in OWN_STEP:
        if opt is not None:
            raise ValueError(f"run {label!r}: {algo} takes its own weight step with the "
                             f"learning rate as its step, no optimizer applies; use {algo}")
        return algo, "own"
    return algo, opt or "sgd"


def run_label(algo, optimizer):
    """The canonical label of ``(algo, optimizer)``: ``ALGO-OPT``, or ``ALGO`` for
    :data:`OWN_STEP`."""
    return algo if optimizer == "own" else f"{algo}-{optimizer}"


@dataclass(frozen=True)
class StudyCell:
    """One training run of the ``lr-batch`` grid; ``run`` is a canonical ``ALGO-OPT``."""
    run: str
    lr: float
    batch_size: int
    seed: int = 0

    @property
    def name(self):
        return f"{self.run}-lr{self.lr:g}-bs{self.batch_size}-seed{self.seed}"

    @property
    def work(self):
        """Relative cost, for running the longest cells first: PC inference costs ~20
        backprops per batch, and a batch has a fixed overhead besides its samples."""
        per_batch = 1 if parse_run(self.run)[0] == "bp" else 20
        return per_batch * (50 + self.batch_size) / self.batch_size


@dataclass(frozen=True)
class StudyConfig(GridConfig):
    """Everything that determines an ``lr-batch`` grid's numbers.

    The grid is ``algos x lrs x batch_sizes x seeds`` (``algos`` are run labels, see the
    module docstring); the other fields are shared by every cell: an MLP of ``depth``
    hidden layers of ``width`` units trained for ``epochs`` epochs on ``dataset``.
    """
    GRID = "lr-batch"
    GRID_KEYS = GRID_KEYS

    algos: tuple = ("bp-sgd", "bp-momentum", "bp-adam", "vpc-sgd")
    lrs: tuple = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
    batch_sizes: tuple = (1, 8, 64)
    seeds: tuple = (0,)
    dataset: str = "digits"
    data_dir: str = None
    val_fraction: float = 0.1
    depth: int = 2
    width: int = 64
    activation: str = "tanh"
    loss: str = "nll"
    dtype: str = "float32"
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 10
    schedule: str = "serial"
    init: str = "pytorch"
    param: str = "standard"
    gain: float = None

    def __post_init__(self):
        def canonical(label):
            return run_label(*parse_run(label))

        self._norm_axis("algos", self.algos, canonical, lambda v: True, "a run label")
        self._norm_axis("lrs", self.lrs, float, lambda v: math.isfinite(v) and v > 0, "> 0")
        self._norm_axis("batch_sizes", self.batch_sizes, int, lambda v: v >= 1,
                        "an integer >= 1")
        self._norm_axis("seeds", self.seeds, int, lambda v: 0 <= v < 2 ** 32,
                        "an integer in 0 .. 2**32 - 1")
        if not 0 <= self.momentum < 1:
            raise SweepError(f"momentum must lie in [0, 1), got {self.momentum}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise SweepError(f"weight_decay must be finite and >= 0, got {self.weight_decay}")
        self._check_shared(("depth", "width", "epochs"))

    # ------------------------------------------------------------------ grid

    def rows(self):
        """Every cell in grid order: run label, then batch size, learning rate, seed."""
        return [StudyCell(run, lr, bs, seed) for run in self.algos
                for bs in self.batch_sizes for lr in self.lrs for seed in self.seeds]

    def cells(self):
        """The training runs, longest first (a good order for parallel workers)."""
        return sorted(self.rows(), key=lambda c: -c.work)

    # ------------------------------------------------------------------ grid kind

    def train_cell(self, cell, threads=None):
        """:func:`run_study_cell` of this grid."""
        return run_study_cell(cell, self, threads)

    @property
    def csv_columns(self):
        return STUDY_COLUMNS

    def csv_rows(self, records):
        """One row per finished cell (dicts keyed by :data:`STUDY_COLUMNS`), grid order."""
        out = []
        for cell in self.rows():
            rec = records.get(cell)
            if rec is not None:
                out.append(summarise_record(rec, self))
        return out


# ---------------------------------------------------------------------- one cell

def run_study_cell(cell, config, threads=None):
    """Train one cell; return its record (a JSON-ready dict). Runs inside a worker.

    A :class:`pckernels.DivergenceError` ends the run and is recorded (``status``
    ``"diverged"``, ``error``), with the epochs finished before it.

    Parameters
    ----------
    cell : StudyCell
    config : StudyConfig
    threads : int, optional
        Numba threads for this cell; None leaves the worker's setting.
    """
    with cell_threads(threads):
        start = time.perf_counter()
        net, data, sizes, source = cell_model(config, cell.seed, config.depth)
        algo, opt = parse_run(cell.run)
        pc = None
        if algo != "bp":
            pc = PCSettings(schedule=config.schedule).resolved(algo, config.depth)
        # OWN_STEP algorithms ignore the optimizer; "sgd" keeps train()'s checks happy.
        history = History()
        status, error = train_cell_model(
            _train, net, data, algo=algo, pc=pc, epochs=config.epochs,
            batch_size=cell.batch_size, optimizer="adam" if opt == "adam" else "sgd",
            lr=cell.lr, momentum=config.momentum if opt == "momentum" else 0.0,
            weight_decay=config.weight_decay, seed=cell.seed, history=history,
            on_warning=lambda message: None)  # kept in history.warnings
        return cell_record(cell, config, status, error, sizes, source, history, start,
                           pc=None if pc is None else asdict(pc), warnings=history.warnings)


def _train(*args, **kwargs):
    """:func:`pckernels.train`; a seam the tests count calls through."""
    return train(*args, **kwargs)


def summarise_record(rec, config):
    """The CSV row (a dict keyed by :data:`STUDY_COLUMNS`) of one cell's record."""
    cell = StudyCell(**rec["cell"])
    algo, opt = parse_run(cell.run)
    epochs = rec["epochs"]
    done = rec["status"] == "completed"
    last = epochs[-1] if epochs else {}

    def best(key):
        vals = [e[key] for e in epochs if e.get(key) is not None and math.isfinite(e[key])]
        return max(vals) if vals else None

    return {
        "grid": config.GRID, "cell": cell.name, "run": cell.run, "algo": algo,
        "optimizer": opt,
        "momentum": {"sgd": 0.0, "momentum": config.momentum}.get(opt),
        "lr": cell.lr, "batch_size": cell.batch_size, "seed": cell.seed,
        "depth": config.depth, "width": config.width, "epochs": config.epochs,
        "epochs_completed": len(epochs), "status": rec["status"],
        "diverged_epoch": None if done else len(epochs) + 1,
        "final_test_accuracy": last.get("test_accuracy") if done else None,
        "final_val_accuracy": last.get("val_accuracy") if done else None,
        "best_test_accuracy": best("test_accuracy"),
        "best_val_accuracy": best("val_accuracy"),
        "final_train_loss": last.get("train_loss"),
        "test_accuracy_by_epoch": ";".join(f"{e['test_accuracy']:.4f}" for e in epochs),
        "wall_seconds": rec["wall_seconds"], "error": rec["error"]}
