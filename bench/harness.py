"""Timing harness: warm-up and JIT compile excluded, median and spread over repeats.

Every measurement is a :class:`Timing`: the first call (compilation for Numba/JAX, lazy
initialisation elsewhere) is timed on its own as ``first_call_s``; then ``warmup`` more
calls are discarded; then ``repeats`` samples, each the mean over ``number`` back-to-back
calls (``number`` is calibrated so that a sample lasts at least ``min_sample_s``).
"""
import time
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class Timing:
    """Per-call seconds of one measured operation.

    Attributes
    ----------
    median_s, q1_s, q3_s, min_s, max_s : float
        Over the repeat samples (each a mean over ``number`` calls).
    first_call_s : float
        The first call alone (includes JIT compilation or lazy set-up).
    repeats, number : int
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

    @property
    def median_us(self):
        return self.median_s * 1e6

    @property
    def iqr_rel(self):
        """Interquartile range relative to the median (spread)."""
        return (self.q3_s - self.q1_s) / self.median_s if self.median_s > 0 else 0.0

    def as_dict(self):
        d = asdict(self)
        d["median_us"] = self.median_us
        d["iqr_rel"] = self.iqr_rel
        return d


def time_call(fn, repeats=5, warmup=2, min_sample_s=0.02, number=None, max_number=10000):
    """Time ``fn()`` (no arguments) and return a :class:`Timing`."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        fn()
    if number is None:
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
    samples = []
    for _ in range(max(int(repeats), 1)):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    a = np.array(samples)
    return Timing(median_s=float(np.median(a)), q1_s=float(np.percentile(a, 25)),
                  q3_s=float(np.percentile(a, 75)), min_s=float(a.min()), max_s=float(a.max()),
                  first_call_s=first, repeats=len(samples), number=number,
                  samples_s=[float(s) for s in samples])


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


def gemm_time(shapes, dtype="float32", repeats=5, seed=0):
    """Seconds numpy.dot needs for the list of GEMMs (with ``out``, no allocation).

    This is the GEMM-bound limit of a step at the current BLAS thread count: a kernel that
    only did these products, at BLAS speed, with nothing else.
    """
    rng = np.random.default_rng(seed)
    ops = []
    for m, k, n in shapes:
        A = np.ascontiguousarray(rng.standard_normal((m, k)).astype(dtype))
        Bm = np.ascontiguousarray(rng.standard_normal((k, n)).astype(dtype))
        ops.append((A, Bm, np.empty((m, n), dtype=dtype)))

    def run():
        for A, Bm, out in ops:
            np.dot(A, Bm, out)
    return time_call(run, repeats=repeats)


def gflops(flops, seconds):
    return flops / seconds / 1e9 if seconds > 0 else float("nan")


def set_all_threads(n):
    """One thread count for Numba, BLAS (threadpoolctl) and, if already imported, torch."""
    import sys

    from pckernels import set_threads
    try:
        # Numba's np.dot calls scipy's BLAS, which is loaded lazily; load it now so that
        # threadpoolctl limits it too (else it keeps one thread per core)
        import scipy.linalg.cython_blas  # noqa: F401
    except ImportError:
        pass
    set_threads(n)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n)
    except ImportError:
        pass
    if sys.modules.get("torch") is not None:
        sys.modules["torch"].set_num_threads(n)
