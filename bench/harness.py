"""Timing harness: compile first, interleave what is compared, summarise robustly.

Every measurement is a :class:`Timing`: the first call (compilation for Numba/JAX, lazy
initialisation elsewhere) is timed on its own as ``first_call_s``; then ``warmup`` more
calls are discarded; then ``repeats`` samples, each the mean over ``number`` back-to-back
calls (``number`` is calibrated so that a sample lasts at least ``min_sample_s``).

Things that are compared are timed together by :func:`time_interleaved`: every callable is
compiled and warmed before the first sample of any of them, and the samples alternate
(A B C, B C A, C A B, ...), so a burst of load from another process hits all of them
alike instead of one whole block. A ratio of two operations is then summarised from the
*paired* per-repeat ratios ``a_i / b_i`` (:func:`paired_ratio`), with a distribution-free
interval for its median, and compared with a line only when that interval lies on one
side of it (:func:`against_line`). :func:`noise_report` says whether the machine was
loaded or the samples noisy while measuring.
"""
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

#: Paired samples a ratio needs before it may be called conclusive. With n independent
#: samples the widest order-statistic interval [min, max] covers the median with
#: probability 1 - 2 * 0.5**n: 75% for n = 3, 87.5% for n = 4, 93.75% for n = 5, so five
#: is the least that reaches the 90% the intervals are quoted at.
MIN_CONCLUSIVE_REPEATS = 5

#: Nominal coverage of the intervals :func:`paired_ratio` reports.
COVERAGE = 0.90

#: Relative interquartile range of a timing's samples above which the samples are noisy.
NOISY_SPREAD = 0.10

#: A sample whose CPU/wall ratio is below this fraction of the best one of the same
#: callable lost CPU time to other processes (it was descheduled part of the time).
DESCHEDULED_FRACTION = 0.8

#: Run-queue wait (seconds the process's threads were runnable but had no core, summed
#: over threads) per wall second above which a sample counts as descheduled. CPU/wall
#: cannot see a thread that spins while it waits for a descheduled sibling (BLAS and
#: Numba's pools do), the scheduler's own account can.
WAITING_FRACTION = 0.1


@dataclass
class Timing:
    """Per-call seconds of one measured operation.

    Attributes
    ----------
    median_s, q1_s, q3_s, min_s, max_s : float
        Over the repeat samples (each a mean over ``number`` calls), seconds per call.
    first_call_s : float
        The first call alone, seconds (includes JIT compilation or lazy set-up).
    repeats, number : int
    samples_s : list of float
        Wall seconds per call of each sample, in measuring order.
    cpu_samples_s : list of float
        Process CPU seconds (all threads) per call of each sample; empty if not recorded.
    wait_samples_s : list of float
        Seconds per call the process's threads waited in the run queue (runnable, no
        core free), summed over threads, from /proc/self/task/*/schedstat; empty where
        the kernel does not report it.
    """
    median_s: float
    q1_s: float
    q3_s: float
    min_s: float
    max_s: float
    first_call_s: float
    repeats: int
    number: int
    samples_s: list = field(default_factory=list, repr=False)
    cpu_samples_s: list = field(default_factory=list, repr=False)
    wait_samples_s: list = field(default_factory=list, repr=False)

    @property
    def median_us(self):
        return self.median_s * 1e6

    @property
    def iqr_rel(self):
        """Interquartile range relative to the median (spread, dimensionless)."""
        return (self.q3_s - self.q1_s) / self.median_s if self.median_s > 0 else 0.0

    @property
    def cpu_over_wall(self):
        """Median over samples of process CPU time / wall time (None if not recorded).

        About the number of busy threads when nothing else competes for the cores; a
        lower value means the process waited for a core.
        """
        ratios = _cpu_over_wall(self)
        return float(np.median(ratios)) if ratios.size else None

    def as_dict(self):
        d = asdict(self)
        d["median_us"] = self.median_us
        d["iqr_rel"] = self.iqr_rel
        d["cpu_over_wall"] = self.cpu_over_wall
        return d


def _per_wall(t, samples):
    """Per-sample ``samples / wall time`` (empty when the samples were not recorded)."""
    wall = np.asarray(t.samples_s, dtype=np.float64)
    other = np.asarray(samples, dtype=np.float64)
    if other.size != wall.size or wall.size == 0:
        return np.zeros(0)
    return other / np.maximum(wall, 1e-12)


def _cpu_over_wall(t):
    return _per_wall(t, t.cpu_samples_s)


def _wait_over_wall(t):
    return _per_wall(t, t.wait_samples_s)


def _timing(samples, cpu_samples, first, number, wait_samples=()):
    a = np.asarray(samples, dtype=np.float64)
    return Timing(median_s=float(np.median(a)), q1_s=float(np.percentile(a, 25)),
                  q3_s=float(np.percentile(a, 75)), min_s=float(a.min()), max_s=float(a.max()),
                  first_call_s=first, repeats=int(a.size), number=int(number),
                  samples_s=[float(s) for s in a], cpu_samples_s=[float(c) for c in cpu_samples],
                  wait_samples_s=[float(w) for w in wait_samples])


def runqueue_wait_s():
    """Seconds all threads of this process have spent runnable but not running, or None.

    The second field of Linux's ``/proc/<pid>/task/<tid>/schedstat`` (nanoseconds), summed
    over the threads alive now; None where the file does not exist (other systems, or a
    kernel without scheduler statistics).
    """
    total = 0
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    found = False
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
            found = True
        except (OSError, IndexError, ValueError):
            continue   # a thread that just ended
    return total * 1e-9 if found else None


def _calibrate(fn, min_sample_s, max_number):
    number = 1
    while number < max_number:
        # best of three, so one descheduling on a loaded machine does not freeze
        # ``number`` at a value whose samples are dominated by such stalls
        trials = []
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            trials.append(time.perf_counter() - t0)
        if min(trials) >= min_sample_s:
            break
        number *= 2
    return number


def _sample(fn, number):
    w0 = runqueue_wait_s()
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(number):
        fn()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    w1 = runqueue_wait_s()
    wait = None if w0 is None or w1 is None else max(w1 - w0, 0.0) / number
    return wall / number, cpu / number, wait


def time_interleaved(fns, repeats=7, warmup=2, min_sample_s=0.02, number=None,
                     max_number=10000, on_call=None):
    """Time several no-argument callables with their samples interleaved.

    Phases, in this order for *all* callables before the next phase starts: one first
    call each (timed alone: JIT compilation, lazy set-up), ``warmup`` discarded calls
    each, calibration of each callable's ``number`` (calls per sample), then ``repeats``
    rounds. Round ``i`` takes one sample of every callable, in the order of ``fns``
    rotated by ``i`` (A B C, B C A, C A B, ...), so each callable is measured in every
    position and next to the others, and a change of machine load during the run affects
    all of them alike instead of one block of samples. Samples of the same round are
    paired: see :func:`paired_ratio`.

    Parameters
    ----------
    fns : dict of str -> callable
        What to time; the dict order is round 0's order.
    repeats : int
        Rounds (samples per callable), at least 1.
    warmup : int
        Discarded calls per callable after the first one.
    min_sample_s : float
        Seconds a sample should last at least; sets each callable's ``number``.
    number : int or dict of str -> int, optional
        Calls per sample, instead of calibrating.
    max_number : int
        Upper bound of the calibrated ``number``.
    on_call : callable, optional
        ``on_call(phase, name)`` before each sample (phase "first", "warmup",
        "calibrate" or "sample"); for tests that check the order.

    Returns
    -------
    dict of str -> Timing
        In the order of ``fns``; ``samples_s[i]`` / ``cpu_samples_s[i]`` come from round i.
    """
    names = list(fns)
    if not names:
        return {}
    first = {}
    for name in names:
        if on_call:
            on_call("first", name)
        t0 = time.perf_counter()
        fns[name]()
        first[name] = time.perf_counter() - t0
    for name in names:
        for _ in range(int(warmup)):
            if on_call:
                on_call("warmup", name)
            fns[name]()
    numbers = {}
    for name in names:
        if isinstance(number, dict) and name in number:
            numbers[name] = int(number[name])
        elif number is not None and not isinstance(number, dict):
            numbers[name] = int(number)
        else:
            if on_call:
                on_call("calibrate", name)
            numbers[name] = _calibrate(fns[name], min_sample_s, max_number)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    wait = {name: [] for name in names}
    for i in range(max(int(repeats), 1)):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            if on_call:
                on_call("sample", name)
            w, c, q = _sample(fns[name], numbers[name])
            wall[name].append(w)
            cpu[name].append(c)
            if q is not None:
                wait[name].append(q)
    return {name: _timing(wall[name], cpu[name], first[name], numbers[name], wait[name])
            for name in names}


def progress(log, label, repeats):
    """An ``on_call`` for :func:`time_interleaved` that reports each phase through ``log``.

    ``log(message)`` gets one line when compiling starts, when calibration starts, and at
    the start of each round (``label: round 3/7``), so a long measurement is never silent.
    """
    seen = {"phase": None, "fns": 0, "samples": 0}

    def on_call(phase, name):
        if phase == "first":
            seen["fns"] += 1
        if phase != seen["phase"]:
            seen["phase"] = phase
            if phase == "first":
                log(f"{label}: compiling and warming up")
            elif phase == "calibrate":
                log(f"{label}: calibrating")
        if phase == "sample":
            if seen["samples"] % max(seen["fns"], 1) == 0:
                log(f"{label}: round {seen['samples'] // max(seen['fns'], 1) + 1}/{repeats}")
            seen["samples"] += 1
    return on_call


def time_call(fn, repeats=5, warmup=2, min_sample_s=0.02, number=None, max_number=10000):
    """Time ``fn()`` (no arguments) alone and return a :class:`Timing`."""
    return time_interleaved({"fn": fn}, repeats, warmup, min_sample_s, number,
                            max_number)["fn"]


def _median_interval(values, coverage=COVERAGE):
    """Order-statistic interval for the median of ``values`` (distribution-free).

    The pair ``(x_(k), x_(n+1-k))`` covers the population median with probability
    ``1 - 2 P(Binomial(n, 1/2) < k)``; the largest ``k`` still reaching ``coverage`` is
    taken, or ``k = 1`` (min, max) when none does (n < 5 at 90%).

    Returns
    -------
    lo, hi, achieved coverage
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    best_k, best_cov = 1, 1.0 - 2.0 * 0.5 ** n
    for k in range(2, n // 2 + 1):
        tail = sum(math.comb(n, j) for j in range(k)) * 0.5 ** n
        cov = 1.0 - 2.0 * tail
        if cov < coverage:
            break
        best_k, best_cov = k, cov
    return float(x[best_k - 1]), float(x[n - best_k]), float(best_cov)


def ratio_interval(ratios, coverage=COVERAGE):
    """Median and interval of per-repeat ratios (dimensionless).

    Returns
    -------
    dict
        ``median``, ``lo``, ``hi`` (interval of the median, see :func:`_median_interval`),
        ``n`` (ratios), ``coverage`` (achieved probability that [lo, hi] holds the
        median; below ``COVERAGE`` when n < ``MIN_CONCLUSIVE_REPEATS``), ``q1``, ``q3``.
    """
    r = np.asarray(ratios, dtype=np.float64)
    if r.size == 0:
        raise ValueError("ratio_interval needs at least one ratio")
    lo, hi, cov = _median_interval(r, coverage)
    return {"median": float(np.median(r)), "lo": lo, "hi": hi, "n": int(r.size),
            "coverage": cov, "q1": float(np.percentile(r, 25)),
            "q3": float(np.percentile(r, 75))}


def paired_ratio(a, b, coverage=COVERAGE):
    """Ratio ``a / b`` of two interleaved timings, from their paired samples.

    Parameters
    ----------
    a, b : Timing or sequence of float
        Per-call seconds of the same rounds of :func:`time_interleaved` (a sequence is
        taken as the samples).

    Returns
    -------
    dict
        As :func:`ratio_interval` of ``a_i / b_i``; with samples of different lengths
        (not from one interleaved run) the ratio of medians with ``lo = hi = median``
        and ``n = 1``, which never counts as conclusive.
    """
    sa = np.asarray(a.samples_s if isinstance(a, Timing) else a, dtype=np.float64)
    sb = np.asarray(b.samples_s if isinstance(b, Timing) else b, dtype=np.float64)
    if sa.size != sb.size or sa.size == 0:
        m = float(np.median(sa) / np.median(sb))
        return {"median": m, "lo": m, "hi": m, "n": 1, "coverage": 0.0, "q1": m, "q3": m}
    return ratio_interval(sa / sb, coverage)


def against_line(interval, line, min_n=MIN_CONCLUSIVE_REPEATS):
    """Which side of ``line`` a ratio lies on, if its interval says so.

    Parameters
    ----------
    interval : dict
        From :func:`paired_ratio` / :func:`ratio_interval`.
    line : float
        The value compared with (a target's limit, 1.0 = as fast as backprop, a model).

    Returns
    -------
    dict
        ``line``; ``below`` (True: the whole interval is at or below the line, False: all
        above it, None: inconclusive); ``conclusive`` (False also when fewer than
        ``min_n`` paired samples: no interval of the quoted coverage exists); ``reason``
        (None, "interval crosses the line" or "fewer than 5 repeats").
    """
    line = float(line)
    if interval["n"] < min_n:
        return {"line": line, "below": None, "conclusive": False,
                "reason": f"fewer than {min_n} repeats"}
    if interval["hi"] <= line:
        below = True
    elif interval["lo"] > line:
        below = False
    else:
        return {"line": line, "below": None, "conclusive": False,
                "reason": "interval crosses the line"}
    return {"line": line, "below": below, "conclusive": True, "reason": None}


def load_average():
    """``os.getloadavg()`` as a list [1, 5, 15 min], or None where it does not exist."""
    try:
        return [float(v) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def noise_report(timings, load=None, cpu_count=None, threads=None,
                 min_n=MIN_CONCLUSIVE_REPEATS):
    """Was the machine loaded or were the samples noisy while ``timings`` were taken?

    Parameters
    ----------
    timings : dict of str -> Timing
    load : list of float, optional
        Load averages [1, 5, 15 min]; read now when None.
    cpu_count : int, optional
        Cores; ``os.cpu_count()`` when None.
    threads : int, optional
        The thread setting, reported only: a serial callable uses one core whatever
        it is, so the CPU/wall check compares each callable with its own best sample.

    Returns
    -------
    dict
        ``load_average`` (list or None), ``cpu_count``, ``threads``, ``cpu_over_wall``
        (median over all samples of process CPU seconds / wall seconds),
        ``runqueue_wait`` (median over samples of run-queue seconds, summed over threads,
        per wall second; None where not reported), ``descheduled`` (fraction of samples
        whose CPU/wall fell below ``DESCHEDULED_FRACTION`` of the best sample of the same
        callable - or of 1 for callables that never used more than one core - or whose
        run-queue wait exceeded ``WAITING_FRACTION`` of the wall time), ``spread``
        (largest relative interquartile range of any callable's samples), ``repeats``
        (fewest samples of any callable),
        ``noisy`` (bool) and ``reasons`` (list of str, empty when not noisy).
    """
    load = load_average() if load is None else load
    cpu_count = int(cpu_count or os.cpu_count() or 1)
    all_ratios, all_waits, n_desched, n_samples, spread, reps = [], [], 0, 0, 0.0, None
    for t in timings.values():
        spread = max(spread, t.iqr_rel)
        reps = t.repeats if reps is None else min(reps, t.repeats)
        r = _cpu_over_wall(t)
        if r.size == 0:
            continue
        all_ratios.append(r)
        # a serial callable should use one full core; a parallel one as much as its best
        # sample shows it can
        best = max(float(r.max()), 1.0)
        bad = r < DESCHEDULED_FRACTION * best
        q = _wait_over_wall(t)
        if q.size == r.size:
            all_waits.append(q)
            bad |= q > WAITING_FRACTION
        n_desched += int(np.sum(bad))
        n_samples += r.size
    cpu_over_wall = float(np.median(np.concatenate(all_ratios))) if all_ratios else None
    waiting = float(np.median(np.concatenate(all_waits))) if all_waits else None
    return _with_reasons({"load_average": load, "cpu_count": cpu_count, "threads": threads,
                          "cpu_over_wall": cpu_over_wall, "runqueue_wait": waiting,
                          "descheduled": n_desched / n_samples if n_samples else 0.0,
                          "spread": spread, "repeats": reps}, min_n)


def _with_reasons(rec, min_n=MIN_CONCLUSIVE_REPEATS):
    """``rec`` with ``noisy`` and ``reasons`` derived from its measured fields."""
    reasons = []
    load = rec["load_average"]
    if load is not None and load[0] > rec["cpu_count"]:
        reasons.append(f"machine loaded (load {load[0]:.1f} on {rec['cpu_count']} cores)")
    if rec["descheduled"] > 0.1:
        reasons.append(f"process descheduled in {100 * rec['descheduled']:.0f}% of samples "
                       f"(CPU time well below wall time, or threads waiting for a core)")
    if rec["spread"] > NOISY_SPREAD:
        reasons.append(f"samples spread by up to {100 * rec['spread']:.0f}% (IQR / median)")
    if rec["repeats"] is not None and rec["repeats"] < min_n:
        reasons.append(f"{rec['repeats']} repeats: fewer than {min_n}, no ratio is "
                       f"conclusive")
    return dict(rec, noisy=bool(reasons), reasons=reasons)


def merge_noise(records):
    """One noise record for several measurements: the worst of each field, and the
    reasons those worst values give."""
    records = [r for r in records if r]
    if not records:
        return None
    loads = [r["load_average"] for r in records if r["load_average"] is not None]
    cows = [r["cpu_over_wall"] for r in records if r["cpu_over_wall"] is not None]
    reps = [r["repeats"] for r in records if r["repeats"] is not None]
    return _with_reasons({
        "load_average": max(loads, key=lambda v: v[0]) if loads else None,
        "cpu_count": records[0]["cpu_count"], "threads": records[0]["threads"],
        "cpu_over_wall": min(cows) if cows else None,
        "runqueue_wait": max((r["runqueue_wait"] for r in records
                              if r.get("runqueue_wait") is not None), default=None),
        "descheduled": max(r["descheduled"] for r in records),
        "spread": max(r["spread"] for r in records),
        "repeats": min(reps) if reps else None})


def gemm_shapes(sizes, batch, which="backprop"):
    """The (m, k, n) GEMMs of an MLP step: ``A (m, k) @ B (k, n)``.

    ``forward``: ``h_l W_l`` per layer; ``input_vjps``: ``delta_l W_l^T`` for layers 1..N-1;
    ``backprop``: forward + parameter side ``h_l^T delta_l`` + input VJPs.
    """
    s = [int(v) for v in sizes]
    B = int(batch)
    fwd = [(B, s[l], s[l + 1]) for l in range(len(s) - 1)]
    inp = [(B, s[l + 1], s[l]) for l in range(1, len(s) - 1)]
    par = [(s[l], B, s[l + 1]) for l in range(len(s) - 1)]
    if which == "forward":
        return fwd
    if which == "input_vjps":
        return inp
    if which == "backprop":
        return fwd + par + inp
    raise ValueError(which)


def gemm_runner(shapes, dtype="float32", seed=0):
    """A no-argument callable doing the list of GEMMs (``out = A @ B``, no allocation).

    This is the GEMM-bound limit of a step: a kernel that only did these products, at BLAS
    speed, with nothing else. The products run through the same BLAS, with the same single
    thread, as pckernels' kernels (SciPy's, called from compiled code), not NumPy's
    multi-threaded one, whose idle threads would also spin and take a core from whatever
    is timed next. Time it interleaved with the step it bounds (:func:`time_interleaved`).
    """
    from numba.typed import List

    from .probes import gemm_chain
    rng = np.random.default_rng(seed)
    As, Bs, outs = List(), List(), List()
    for m, k, n in shapes:
        As.append(np.ascontiguousarray(rng.standard_normal((m, k)).astype(dtype)))
        Bs.append(np.ascontiguousarray(rng.standard_normal((k, n)).astype(dtype)))
        outs.append(np.empty((m, n), dtype=dtype))

    def run():
        gemm_chain(As, Bs, outs)
    return run


def gemm_time(shapes, dtype="float32", repeats=5, seed=0):
    """:class:`Timing` of :func:`gemm_runner` alone (seconds per call)."""
    return time_call(gemm_runner(shapes, dtype, seed), repeats=repeats)


def gflops(flops, seconds):
    return flops / seconds / 1e9 if seconds > 0 else float("nan")


def set_all_threads(n):
    """One thread count for Numba, NumPy's BLAS and, if already imported, torch.

    The BLAS that pckernels' kernels call (SciPy's, through Numba) stays single-threaded,
    as in training (``pckernels.config.ensure_blas_serial``): timing it multi-threaded
    would measure a configuration pckernels never runs, and one that stalls for a whole
    time slice whenever a BLAS helper thread has no free core.
    """
    import sys

    from pckernels import set_threads
    from pckernels.config import ensure_blas_serial
    set_threads(n)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n)
    except ImportError:
        pass
    ensure_blas_serial(force=True)
    if sys.modules.get("torch") is not None:
        sys.modules["torch"].set_num_threads(n)
