"""Grid sweeps of inference length and step size against depth (paper section 3.4, Figs. 3-5).

A sweep trains one MLP per *cell*: a depth ``L`` (hidden layers), a number of inference
steps ``T``, a step size ``gamma`` and a seed, plus one backprop baseline per depth and seed.
Every cell records, per epoch, the mean cosine similarity of its update with backprop's
gradient (same weights, before the update), the per-layer cosines, the training loss and the
validation accuracy, and at the end the test accuracy and its wall time.

The grid is given as ratios ``T / L``; a ratio becomes ``T = max(1, round_half_up(ratio * L))``
(computed on the decimal value of the ratio, so ``0.25 * 10 = 2.5`` gives 3, not Python's
banker's 2). Two ratios that give the same ``T`` at some depth share one training run; the
results keep both the requested ratio and the ``T`` that ran.

Results live in one folder::

    DIR/cells/<cell>.json   one finished cell, written atomically when it finishes
    DIR/results.csv         tidy table rebuilt (atomically) from the cells, see CSV_COLUMNS
    DIR/results.json        the full configuration, environment and run facts

Rerunning the same sweep skips the finished cells, so an interruption loses at most the cells
in flight. Cells run serially, in parallel with joblib, or on a Dask cluster through joblib's
``dask`` backend; the numbers do not depend on which, nor on the thread count: inference uses
the serial schedule (``schedule="serial"``, also the fastest on one thread), and the
parallelism of a sweep is over its cells.

The folder, the resumption and the backends serve any *grid kind*: a configuration class
with ``GRID`` (its name, stored as ``"grid"`` in ``results.json``), ``cells()``,
``settings_hash()``, ``comparable()``, ``to_dict()``/``from_dict()``, ``train_cell(cell,
threads)``, ``csv_columns`` and ``csv_rows(records)``, whose cells are frozen dataclasses
with a unique ``name``. :class:`SweepConfig` is the ``depth-steps`` grid of Figs. 3-5;
:class:`pckernels.study.StudyConfig` the ``lr-batch`` grid of section 3.6. Both derive
from :class:`GridConfig` (validation and identity) and train a cell with the helpers
:func:`cell_threads`, :func:`cell_model`, :func:`train_cell_model` and :func:`cell_record`.
"""
import csv
import hashlib
import io
import json
import math
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path

from .config import get_threads, set_threads
from .data import load_dataset, train_val_split
from .io import atomic_write_json, atomic_write_text, environment
from .kernels import ACTIVATIONS, LOSSES
from .model import DTYPES, MLP, check_init, resolve_gain
from .pc import SCHEDULES, PCRunner
from .training import (MLP_ALGORITHMS as ALGORITHMS, OPTIMIZERS, DivergenceError, History,
                       PCSettings, train)

#: Columns of ``results.csv``, one row per grid cell (depth, ratio, step size, seed) and
#: epoch, with what each holds.
CSV_COLUMNS = {
    "cell": "name of the training run (its file in DIR/cells/)",
    "algo": "algorithm of the run; 'bp' on the backprop baseline rows",
    "depth": "L, number of hidden layers",
    "ratio": "requested T/L (empty for backprop)",
    "steps": "T = max(1, round_half_up(ratio * L)) inference steps that ran (empty for backprop)",
    "step_size": "inference step size gamma (empty for backprop)",
    "seed": "seed of initialisation, shuffling and the validation split",
    "init": "weight initialisation (pytorch, xavier, orthogonal)",
    "param": "parameterisation (standard, mupc)",
    "gain": "gain of the xavier or orthogonal initialisation (empty for the others)",
    "epoch": "epoch, 1-based",
    "train_loss": "mean training loss over the epoch's batches",
    "cosine": "mean over the epoch's batches of cosine(update, backprop gradient) at the same "
              "weights before the update (1 for backprop)",
    "layer_cosine": "the same per weight layer, input layer first, ';'-separated",
    "val_accuracy": "validation accuracy after the epoch",
    "test_accuracy": "test accuracy after the epoch (the last epoch's is the final one)",
    "epoch_seconds": "training time of the epoch",
    "wall_seconds": "wall time of the whole cell (training and evaluation)",
    "status": "completed, or diverged (rows for the epochs finished before)",
}

#: Grid axes: a config differing only in these still shares finished cells (with ``force``).
GRID_KEYS = ("depths", "ratios", "step_sizes", "seeds", "baseline")


class SweepError(ValueError):
    """A sweep cannot start: invalid grid, or a changed configuration for an existing folder."""


class GridConfig:
    """Validation and identity shared by the grid kinds (a base of frozen dataclasses).

    A subclass sets ``GRID`` (its name) and ``GRID_KEYS`` (its grid axes: a configuration
    differing only in these still shares finished cells) and has the fields ``data_dir``,
    ``activation``, ``loss``, ``dtype``, ``schedule``, ``init``, ``param``, ``gain`` and
    ``val_fraction``; see the module docstring for the rest of a grid kind.
    """
    GRID = None
    GRID_KEYS = ()

    def _norm_axis(self, name, values, kind, check, what, expected=None):
        """Set the grid axis ``name`` to ``values`` converted by ``kind``, duplicates
        dropped; :class:`SweepError` (``"name: ..."``) for an empty axis or a value that
        does not convert (``expected`` describes the list; None: the conversion's message)
        or fails ``check`` (``what`` says what it must be)."""
        try:
            vals = tuple(kind(v) for v in values)
        except (TypeError, ValueError) as exc:
            detail = str(exc) if expected is None else f"expected {expected}, got {values!r}"
            raise SweepError(f"{name}: {detail}") from None
        if not vals:
            raise SweepError(f"{name}: needs at least one value")
        bad = [v for v in vals if not check(v)]
        if bad:
            raise SweepError(f"{name}: every value must be {what}, got {bad[0]!r}")
        object.__setattr__(self, name, tuple(dict.fromkeys(vals)))

    def _check_shared(self, int_fields):
        """:class:`SweepError` for an invalid model or training setting the grid kinds
        share; ``int_fields`` name the fields that must be integers >= 1."""
        if self.activation not in ACTIVATIONS:
            raise SweepError(f"unknown activation {self.activation!r}; choose from "
                             f"{', '.join(sorted(ACTIVATIONS))}")
        if self.loss not in LOSSES:
            raise SweepError(f"unknown loss {self.loss!r}; choose from "
                             f"{', '.join(sorted(LOSSES))}")
        if self.dtype not in DTYPES:
            raise SweepError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.schedule not in SCHEDULES:
            raise SweepError(f"schedule must be one of {', '.join(SCHEDULES)}")
        try:
            check_init(self.init, self.param, self.gain)
        except ValueError as exc:
            raise SweepError(str(exc)) from None
        if self.gain is not None:
            object.__setattr__(self, "gain", float(self.gain))  # 1 and 1.0: one settings hash
        for name in int_fields:
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise SweepError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not 0 <= self.val_fraction < 1:
            raise SweepError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")

    def to_dict(self):
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def comparable(self):
        """The settings that must match to resume: everything but where the data lives."""
        d = self.to_dict()
        d.pop("data_dir")
        return d

    def settings_hash(self):
        """Hash of the shared training settings (not the grid axes ``GRID_KEYS``): a cell
        file carries it, so a finished cell is reused only by a grid that would compute
        the same numbers."""
        d = self.comparable()
        for k in self.GRID_KEYS:
            d.pop(k)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def steps_for_ratio(ratio, depth):
    """Inference steps ``T = max(1, round_half_up(ratio * depth))`` for a ratio ``T / L``.

    The product is taken on the decimal value of ``ratio`` (``repr``), so ``0.35 * 10`` is 3.5
    and rounds to 4 although ``0.35 * 10 == 3.4999999999999996`` in binary floating point.
    """
    product = Decimal(repr(float(ratio))) * int(depth)
    return max(1, int(product.to_integral_value(rounding=ROUND_HALF_UP)))


@dataclass(frozen=True)
class Cell:
    """One training run: ``steps`` and ``step_size`` are None for backprop."""
    algo: str
    depth: int
    steps: int = None
    step_size: float = None
    seed: int = 0

    @property
    def name(self):
        if self.algo == "bp":
            return f"bp-L{self.depth}-seed{self.seed}"
        return f"{self.algo}-L{self.depth}-T{self.steps}-ss{self.step_size:g}-seed{self.seed}"

    @property
    def work(self):
        """Relative cost, for running the longest cells first: forward + backward of every
        layer, plus T inference VJPs and the backprop gradient for the cosine (PC only)."""
        per_layer = 3 if self.algo == "bp" else 6 + 2 * self.steps
        return (self.depth + 1) * per_layer


@dataclass(frozen=True)
class SweepConfig(GridConfig):
    """Everything that determines a sweep's numbers.

    The grid is ``depths x ratios x step_sizes x seeds`` for ``algo``, plus (``baseline``) a
    backprop run per depth and seed. The remaining fields are the shared training settings,
    as in :func:`pckernels.train`; every hidden layer has ``width`` units.
    """
    #: Name of this grid kind in ``results.json`` (see the module docstring).
    GRID = "depth-steps"
    GRID_KEYS = GRID_KEYS
    depths: tuple = (2, 5, 10, 20)
    ratios: tuple = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
    step_sizes: tuple = (0.1, 0.5, 1.0)
    seeds: tuple = (0,)
    algo: str = "fpa"
    baseline: bool = True
    dataset: str = "digits"
    data_dir: str = None
    val_fraction: float = 0.1
    width: int = 64
    activation: str = "tanh"
    loss: str = "nll"
    dtype: str = "float32"
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 10
    precision_ratio: float = 1.0
    schedule: str = "serial"
    init: str = "pytorch"
    param: str = "standard"
    gain: float = None

    def __post_init__(self):
        finite = math.isfinite
        numbers = "a list of numbers"
        self._norm_axis("depths", self.depths, int, lambda v: v >= 1, "an integer >= 1",
                        numbers)
        self._norm_axis("ratios", self.ratios, float, lambda v: finite(v) and v > 0, "> 0",
                        numbers)
        self._norm_axis("step_sizes", self.step_sizes, float,
                        lambda v: finite(v) and v > 0, "> 0", numbers)
        self._norm_axis("seeds", self.seeds, int, lambda v: 0 <= v < 2 ** 32,
                        "an integer in 0 .. 2**32 - 1", numbers)
        if self.algo not in ALGORITHMS:
            raise SweepError(f"unknown algorithm {self.algo!r}; choose from "
                             f"{', '.join(ALGORITHMS)}")
        if self.optimizer not in OPTIMIZERS:
            raise SweepError(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        self._check_shared(("width", "batch_size", "epochs"))
        # Every cell's inference settings are valid (zil's step size, scaled's k, ...).
        for cell in self.cells():
            if cell.algo != "bp":
                net = MLP([1] + [1] * cell.depth + [1], dtype=self.dtype)
                try:
                    PCRunner(net, cell.algo, cell.steps, cell.step_size, self.precision_ratio,
                             schedule=self.schedule)
                except ValueError as exc:
                    raise SweepError(f"cell {cell.name}: {exc}") from None

    # ------------------------------------------------------------------ grid

    def rows(self):
        """``(ratio, Cell)`` for every grid cell, ratio None on baseline rows, in grid order."""
        out = []
        for depth in self.depths:
            for seed in self.seeds:
                if self.baseline or self.algo == "bp":
                    out.append((None, Cell("bp", depth, seed=seed)))
                if self.algo == "bp":
                    continue
                for ratio in self.ratios:
                    steps = steps_for_ratio(ratio, depth)
                    for step_size in self.step_sizes:
                        out.append((ratio, Cell(self.algo, depth, steps, step_size, seed)))
        return out

    def cells(self):
        """The distinct training runs, longest first (a good order for parallel workers)."""
        unique = list(dict.fromkeys(cell for _, cell in self.rows()))
        return sorted(unique, key=lambda c: -c.work)

    # ------------------------------------------------------------------ identity

    def comparable(self):
        """The settings that must match to resume: everything but where the data lives.

        ``init``, ``param`` and ``gain`` appear only when not at their defaults, so that a
        folder written before they existed (which used the defaults) still resumes, with its
        cells.
        """
        d = super().comparable()
        for name, default in (("init", "pytorch"), ("param", "standard"), ("gain", None)):
            if d[name] == default:
                d.pop(name)
        return d

    # ------------------------------------------------------------------ grid kind

    def train_cell(self, cell, threads=None):
        """:func:`run_cell` of this grid."""
        return run_cell(cell, self, threads)

    @property
    def csv_columns(self):
        return CSV_COLUMNS

    def csv_rows(self, records):
        return build_rows(self, records)


# ---------------------------------------------------------------------- one cell

@lru_cache(maxsize=2)
def _split(dataset, data_dir, val_fraction, seed, dtype):
    """The training/validation/test arrays of a seed, in the model dtype (cached per worker)."""
    import numpy as np
    ds = load_dataset(dataset, data_dir=data_dir, progress=False, dtype=dtype)
    X_tr, y_tr, X_val, y_val = train_val_split(ds.X_train, ds.y_train, val_fraction, seed,
                                               copy=False)
    return (np.ascontiguousarray(X_tr), y_tr, np.ascontiguousarray(X_val), y_val,
            ds.X_test, ds.y_test, ds.n_classes, ds.source)


@contextmanager
def cell_threads(threads):
    """Run the block with ``threads`` Numba/BLAS threads (clamped to what this machine's
    Numba allows; None or 0: the current setting), restoring the setting afterwards."""
    import numba
    previous = get_threads()
    if threads:
        set_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        set_threads(previous)


def cell_model(config, seed, depth):
    """The data of a cell and its freshly initialised MLP of ``depth`` hidden layers.

    Returns
    -------
    net : MLP
    data : tuple ``(X_train, y_train, X_val, y_val, X_test, y_test)``, the validation
        arrays None under ``val_fraction`` 0
    sizes : list of int
    source : str, where the data came from
    """
    X_tr, y_tr, X_val, y_val, X_te, y_te, n_classes, source = _split(
        config.dataset, config.data_dir, config.val_fraction, seed, config.dtype)
    sizes = [X_tr.shape[1]] + [config.width] * depth + [n_classes]
    net = MLP(sizes, activation=config.activation, loss=config.loss, dtype=config.dtype,
              seed=seed, init=config.init, param=config.param, gain=config.gain)
    data = (X_tr, y_tr, X_val if len(y_val) else None, y_val if len(y_val) else None,
            X_te, y_te)
    return net, data, sizes, source


def train_cell_model(train_fn, net, data, **kwargs):
    """``train_fn(net, *data, **kwargs)``; return ``(status, error)``: ``("completed",
    None)``, or ``("diverged", message)`` for a :class:`pckernels.DivergenceError`."""
    try:
        train_fn(net, *data, **kwargs)
    except DivergenceError as exc:
        return "diverged", str(exc)
    return "completed", None


def cell_record(cell, config, status, error, sizes, source, history, start, **extra):
    """The JSON-ready record of a finished cell (``extra`` after its data source)."""
    rec = {"cell": asdict(cell), "name": cell.name, "settings": config.settings_hash(),
           "status": status, "error": error, "sizes": sizes, "data_source": source}
    rec.update(extra)
    rec.update(epochs=history.as_dicts(), wall_seconds=time.perf_counter() - start,
               threads=get_threads(), host=os.uname().nodename)
    return rec


def run_cell(cell, config, threads=None):
    """Train one cell; return its record (a JSON-ready dict). Runs inside a worker.

    Parameters
    ----------
    cell : Cell
    config : SweepConfig
    threads : int, optional
        Numba/BLAS threads for this cell (clamped to what this machine's Numba allows);
        None leaves the worker's setting.
    """
    with cell_threads(threads):
        start = time.perf_counter()
        net, data, sizes, source = cell_model(config, cell.seed, cell.depth)
        pc = None
        if cell.algo != "bp":
            # the grid is over step sizes: the fixed rule, as in the paper's figures
            pc = PCSettings(steps=cell.steps, step_size=cell.step_size,
                            precision_ratio=config.precision_ratio, schedule=config.schedule,
                            step_rule="fixed")
        history = History()
        status, error = train_cell_model(
            _train, net, data, algo=cell.algo, pc=pc, epochs=config.epochs,
            batch_size=config.batch_size, optimizer=config.optimizer, lr=config.lr,
            momentum=config.momentum, weight_decay=config.weight_decay, seed=cell.seed,
            cosine=True, history=history)
        return cell_record(cell, config, status, error, sizes, source, history, start)


def _train(*args, **kwargs):
    """:func:`pckernels.train`; a seam the tests count calls through."""
    return train(*args, **kwargs)


# ---------------------------------------------------------------------- the folder

def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def cell_path(out_dir, cell):
    return Path(out_dir) / "cells" / f"{cell.name}.json"


def finished_cells(out_dir, config):
    """``{cell: record}`` of the cells of ``config`` already stored in ``out_dir``."""
    done = {}
    for cell in config.cells():
        rec = _read_json(cell_path(out_dir, cell))
        if rec is not None and rec.get("settings") == config.settings_hash() \
                and rec.get("cell") == asdict(cell):
            done[cell] = rec
    return done


def prepare(out_dir, config, force=False):
    """Check ``out_dir`` against ``config`` before a run.

    A folder holding a different sweep is an error unless ``force``; then its cells that
    ``config`` also contains, with the same training settings, are kept and the others
    deleted.
    """
    out = Path(out_dir)
    meta = _read_json(out / "results.json")
    if meta is not None and "config" in meta:
        kind = meta.get("grid", SweepConfig.GRID)  # folders from before grid kinds
        same_kind = kind == config.GRID
        old = (type(config).from_dict(meta["config"]).comparable()
               if same_kind and _loadable(meta, type(config)) else None)
        new = config.comparable()
        if old != new:
            if not force:
                changed = sorted(k for k in set(new) | set(old or {})
                                 if old is None or old.get(k) != new.get(k))
                if not same_kind:
                    changed = [f"grid {kind} -> {config.GRID}"]
                raise SweepError(
                    f"{out} holds a sweep with a different configuration (changed: "
                    f"{', '.join(changed) or 'unreadable'}); use another folder, or reuse "
                    "it with --force (force=True), which keeps only the finished cells the "
                    "new grid shares")
            keep = {c.name for c in config.cells()}
            for path in (out / "cells").glob("*.json"):
                rec = _read_json(path)
                if path.stem not in keep or rec is None \
                        or rec.get("settings") != config.settings_hash():
                    path.unlink()
    (out / "cells").mkdir(parents=True, exist_ok=True)


def _loadable(meta, kind=None):
    try:
        (kind or SweepConfig).from_dict(meta["config"])
        return True
    except (SweepError, TypeError, ValueError):
        return False


def _fmt(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return repr(v) if isinstance(v, float) else str(v)


def build_rows(config, records):
    """Tidy rows (dicts keyed by CSV_COLUMNS) for the grid cells whose run is in ``records``."""
    rows = []
    for ratio, cell in config.rows():
        rec = records.get(cell)
        if rec is None:
            continue
        epochs = rec["epochs"] or [{"epoch": 0}]
        for e in epochs:
            layer = e.get("layer_cosine")
            rows.append({
                "cell": cell.name, "algo": cell.algo, "depth": cell.depth, "ratio": ratio,
                "steps": cell.steps, "step_size": cell.step_size, "seed": cell.seed,
                "init": config.init, "param": config.param,
                "gain": resolve_gain(config.init, config.activation, config.gain),
                "epoch": e.get("epoch"), "train_loss": e.get("train_loss"),
                "cosine": e.get("cosine"),
                "layer_cosine": ";".join(_fmt(v) for v in layer) if layer else "",
                "val_accuracy": e.get("val_accuracy"), "test_accuracy": e.get("test_accuracy"),
                "epoch_seconds": e.get("seconds"), "wall_seconds": rec["wall_seconds"],
                "status": rec["status"]})
    return rows


def write_csv(out_dir, config, records=None):
    """Rebuild ``DIR/results.csv`` atomically from the finished cells; return its path."""
    if records is None:
        records = finished_cells(out_dir, config)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(config.csv_columns), lineterminator="\n")
    writer.writeheader()
    for row in config.csv_rows(records):
        writer.writerow({k: _fmt(v) for k, v in row.items()})
    path = Path(out_dir) / "results.csv"
    atomic_write_text(path, buf.getvalue())
    return path


def _write_meta(out_dir, config, run):
    env = environment()
    for mod in ("joblib", "dask", "distributed"):
        try:
            env[mod] = __import__(mod).__version__
        except ImportError:
            pass
    atomic_write_json(Path(out_dir) / "results.json", {
        "grid": config.GRID, "config": config.to_dict(), "run": run,
        "csv_columns": config.csv_columns,
        "environment": env})


# ---------------------------------------------------------------------- execution

@dataclass
class SweepRun:
    """What :func:`run_sweep` did."""
    out_dir: Path
    records: dict = field(default_factory=dict)
    trained: list = field(default_factory=list)     # cells trained by this call
    skipped: list = field(default_factory=list)     # cells found finished
    seconds: float = 0.0
    status: str = "completed"


def default_threads(jobs):
    """Threads per job so that ``jobs x threads <= cores``: ``max(1, cores // jobs)``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, jobs))


def dask_threads(client):
    """Threads per task on a Dask cluster: on every host, cores // task slots (the minimum)."""
    cores = client.run(os.cpu_count)
    per_host_slots, per_host_cores = {}, {}
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # distributed < 2025 lists every worker without being asked
        workers = client.scheduler_info()["workers"]
    for addr, info in workers.items():
        host = info.get("host", addr)
        per_host_slots[host] = per_host_slots.get(host, 0) + info["nthreads"]
        per_host_cores[host] = cores.get(addr) or 1
    if not per_host_slots:
        raise SweepError("the Dask cluster has no workers")
    return max(1, min(per_host_cores[h] // per_host_slots[h] for h in per_host_slots))


def _joblib():
    try:
        import joblib
    except ImportError:
        raise ImportError("parallel sweeps need joblib: pip install 'pckernels[dist]'") from None
    return joblib


def run_sweep(config, out_dir, *, jobs=1, threads=None, backend=None, force=False,
              on_start=None, on_result=None):
    """Run the cells of ``config`` not yet finished in ``out_dir``; rebuild the CSV.

    Parameters
    ----------
    config : SweepConfig
    out_dir : path
    jobs : int
        Cells in parallel (joblib ``loky`` processes); 1 runs them in this process.
    threads : int, optional
        Numba/BLAS threads per cell [default: ``default_threads(jobs)``].
    backend : {None, "loky", "threading", "dask"}
        joblib backend; ``"dask"`` runs on the current ``distributed.Client`` with one cell per
        worker thread (``jobs`` is then ignored).
    force : bool
        Accept a folder that holds a different configuration (see :func:`prepare`).
    on_start : callable(todo: list of Cell, skipped: list of Cell), optional
    on_result : callable(record), optional
        Called as each cell finishes (after its file is written).

    Returns
    -------
    SweepRun

    Raises
    ------
    SweepError
        When ``out_dir`` holds another sweep and not ``force``, or another sweep is
        running in it (see :class:`folder_lock`).
    OSError
        When ``out_dir`` cannot be created or written.
    ImportError
        When joblib (or, for ``"dask"``, distributed) is missing.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out):
        return _run_locked(out, config, jobs, threads, backend, force, on_start, on_result)


class folder_lock:
    """Hold ``DIR/.lock`` (``flock``) for a run: a second sweep into the same folder stops
    with a :class:`SweepError` instead of mixing or overwriting the first one's results.
    The kernel drops the lock when the process ends, however it ends."""

    def __init__(self, out_dir):
        self.path = Path(out_dir) / ".lock"
        self.fd = None

    def __enter__(self):
        import fcntl
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(fd, 64).decode(errors="replace").strip()
            except OSError:
                holder = ""
            os.close(fd)
            raise SweepError(f"{self.path.parent} is in use by another sweep"
                             + (f" (pid {holder})" if holder.isdigit() else "")
                             + "; wait for it to finish or use another folder") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def __exit__(self, *exc_info):
        os.close(self.fd)  # closing releases the flock
        self.fd = None
        return False


def _run_locked(out, config, jobs, threads, backend, force, on_start, on_result):
    prepare(out, config, force)
    result = SweepRun(out)
    result.records = finished_cells(out, config)
    cells = config.cells()
    todo = [c for c in cells if c not in result.records]
    result.skipped = [c for c in cells if c in result.records]
    if threads is None and todo:
        if backend == "dask":
            from distributed import get_client
            threads = dask_threads(get_client())
        else:
            threads = default_threads(jobs)
    run_facts = {"status": "running", "jobs": jobs, "backend": backend or
                 ("serial" if jobs == 1 else "loky"), "threads_per_job": threads,
                 "cells": len(cells), "cells_skipped": len(result.skipped),
                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _write_meta(out, config, run_facts)
    if on_start is not None:
        on_start(todo, result.skipped)
    start = time.perf_counter()
    by_name = {c.name: c for c in todo}
    try:
        for rec in _execute(todo, config, jobs, threads, backend):
            cell = by_name[rec["name"]]
            atomic_write_json(cell_path(out, cell), rec)
            result.records[cell] = rec
            result.trained.append(cell)
            if on_result is not None:
                on_result(rec)
    except BaseException:
        result.status = "interrupted"
        raise
    finally:
        result.seconds = time.perf_counter() - start
        write_csv(out, config, result.records)
        run_facts.update(status=result.status, cells_trained=len(result.trained),
                         seconds=result.seconds,
                         finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        _write_meta(out, config, run_facts)
    return result


def watch_parent(parent_pid, interval=0.5):
    """In a worker process: exit as soon as process ``parent_pid`` is no longer the parent.

    On Linux the kernel also sends SIGKILL on the parent's death (``PR_SET_PDEATHSIG``);
    a daemon thread polling ``os.getppid()`` covers the other systems and the window
    before the signal was armed.
    """
    if os.getppid() != parent_pid:
        os._exit(1)
    try:
        import ctypes
        import signal
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def poll():
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=poll, name="pck-watch-parent", daemon=True).start()


def _execute(todo, config, jobs, threads, backend):
    """Yield cell records as they finish, in any order."""
    if not todo:
        return
    if backend is None and jobs == 1:
        for cell in todo:
            yield config.train_cell(cell, threads)
        return
    joblib = _joblib()
    if backend == "dask":
        try:
            import distributed  # noqa: F401  (joblib's dask backend needs it)
        except ImportError:
            raise ImportError("Dask sweeps need dask[distributed]: "
                              "pip install 'pckernels[dist]'") from None
        context, n_jobs = joblib.parallel_backend("dask"), -1
    else:
        context, n_jobs = joblib.parallel_backend(backend or "loky"), jobs
    if backend in (None, "loky"):
        # Workers exit when this process dies (kill -9 included) instead of running on
        # and holding its terminal for minutes.
        context = joblib.parallel_backend("loky", initializer=watch_parent,
                                          initargs=(os.getpid(),))
    with context:
        # One cell per task, dispatched as workers free up: an interruption loses only the
        # cells in flight.
        parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered",
                                   batch_size=1, pre_dispatch="n_jobs")
        yield from parallel(joblib.delayed(_train_cell)(c, config, threads) for c in todo)


def _train_cell(cell, config, threads):
    """One cell of any grid kind, in a worker."""
    return config.train_cell(cell, threads)
