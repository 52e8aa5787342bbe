"""The one place for Numba settings and thread control.

Every kernel decorator reads from here, so the fastmath flags, on-disk caching and the
parallel switch are set once. Nothing here changes global Numba state at import time.
"""
import numba

#: Fast-math flags. ``nnan``/``ninf`` are left out on purpose so that NaN and infinity
#: checks (divergence detection) keep working inside compiled code.
FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

#: Cache compiled kernels on disk next to the sources (``__pycache__``).
CACHE = True


def jit(fn=None, *, parallel=False):
    """Compile ``fn`` with the project's Numba settings (usable bare or with arguments)."""
    def wrap(f):
        return numba.njit(f, cache=CACHE, fastmath=set(FASTMATH), parallel=parallel)
    return wrap(fn) if fn is not None else wrap


def jit_pair(fn):
    """Compile one kernel body twice: ``(serial, parallel)``.

    The body uses ``numba.prange``; in the serial build it runs as ``range``.
    """
    return jit(fn), jit(fn, parallel=True)


def set_threads(n):
    """Use ``n`` threads for Numba's parallel kernels and for BLAS; return the previous count.

    ``n=None`` or ``0`` leaves the current setting. Raises ``ValueError`` if ``n`` exceeds
    the number of threads Numba was started with.
    """
    previous = numba.get_num_threads()
    if not n:
        return previous
    n = int(n)
    if n < 1 or n > numba.config.NUMBA_NUM_THREADS:
        raise ValueError(
            f"threads must be between 1 and {numba.config.NUMBA_NUM_THREADS}, got {n}")
    numba.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n, user_api="blas")
    except ImportError:  # threadpoolctl comes with scikit-learn; tolerate its absence
        pass
    return previous


def get_threads():
    """Number of threads Numba's parallel kernels currently use."""
    return numba.get_num_threads()


_blas_serial = False


def ensure_blas_serial():
    """Make BLAS single-threaded (once per process) before a parallel schedule runs.

    The ``layers`` and ``batch`` schedules call BLAS from inside Numba's worker threads;
    a multi-threaded BLAS there would start threads of its own on the same cores. The
    setting is process-wide and stays: pckernels' parallelism then comes from ``prange``.
    """
    global _blas_serial
    if _blas_serial:
        return
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1, user_api="blas")
    except ImportError:
        pass
    _blas_serial = True
