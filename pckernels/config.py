"""The one place for Numba settings and thread control.

Every kernel decorator reads from here, so the fastmath flags, on-disk caching and the
parallel switch are set once. Nothing here changes global Numba state at import time.
"""
import os

import numba

#: Fast-math flags. ``nnan``/``ninf`` are left out on purpose so that NaN and infinity
#: checks (divergence detection) keep working inside compiled code.
FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

#: Cache compiled kernels on disk next to the sources (``__pycache__``).
CACHE = True

#: NumPy's error model: float division by zero gives inf/nan instead of raising. Python's
#: model puts a zero check in front of every division, which stops LLVM from vectorising
#: any loop that divides.
ERROR_MODEL = "numpy"


def jit(fn=None, *, parallel=False, ordered=False):
    """Compile ``fn`` with the project's Numba settings (usable bare or with arguments).

    ``ordered=True`` drops ``reassoc`` for kernels whose rounding must follow the written
    order of operations (the batch-mean scaling that makes fpa reproduce backprop).
    """
    flags = set(FASTMATH) - {"reassoc"} if ordered else set(FASTMATH)

    def wrap(f):
        return numba.njit(f, cache=CACHE, fastmath=flags, parallel=parallel,
                          error_model=ERROR_MODEL)
    return wrap(fn) if fn is not None else wrap


def jit_pair(fn):
    """Compile one kernel body twice: ``(serial, parallel)``.

    The body uses ``numba.prange``; in the serial build it runs as ``range``.
    """
    return jit(fn), jit(fn, parallel=True)


def set_threads(n):
    """Use ``n`` threads for Numba's parallel kernels; return the previous count.

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
    ensure_blas_serial()
    return previous


def get_threads():
    """Number of threads Numba's parallel kernels currently use."""
    return numba.get_num_threads()


_blas_serial = False


def ensure_blas_serial():
    """Make the BLAS that Numba's ``np.dot`` calls single-threaded (once per process).

    pckernels' matrix products are small (a 64-row batch); a multi-threaded BLAS gains
    little there, and under the ``layers``/``batch`` schedules it would start threads of
    its own inside Numba's worker threads. On a loaded machine a BLAS call that waits for
    a descheduled helper thread costs a whole time slice (tens of milliseconds). So
    pckernels' parallelism comes from ``prange`` only. Only the BLAS library that SciPy
    ships (the one Numba links against) is limited; NumPy's own BLAS is left alone.
    """
    global _blas_serial
    if _blas_serial:
        return
    _blas_serial = True
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the library Numba calls)
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return
    for lib in ThreadpoolController().lib_controllers:
        if lib.user_api == "blas" and "scipy" in os.path.basename(os.path.dirname(lib.filepath)):
            lib.set_num_threads(1)
