"""The one place for Numba settings, the compiled-kernel cache and thread control.

Every kernel decorator reads from here, so the fastmath flags, on-disk caching and the
parallel switch are set once. Nothing here changes global Numba state at import time.

Compiled kernels are cached on disk in a per-user folder, never inside the installed
package (a read-only or later uninstalled ``site-packages`` must not matter):
``$PCK_CACHE_DIR``, else ``$XDG_CACHE_HOME/pckernels/numba``, else
``~/.cache/pckernels/numba``. Inside it, one subfolder per *build key*: a hash of the
pckernels sources, the package location and the Numba, llvmlite and Python versions, so a
changed kernel in any module (Numba itself only checks the caller's own file) or another
checkout never loads a stale build. Each build of a function (serial, parallel, ordered
rounding) has its own cache entry: Numba keys its cache by the Python function, not by
the compile options, so one body compiled twice would otherwise share one entry.
"""
import functools
import hashlib
import os
import sys
import types
import warnings

import numba
from numba.core.caching import (CompileResultCacheImpl, FunctionCache, _CacheLocator,
                                _SourceFileBackedLocatorMixin)
from numba.core.cpu_options import ParallelOptions

#: Fast-math flags. ``nnan``/``ninf`` are left out on purpose so that NaN and infinity
#: checks (divergence detection) keep working inside compiled code.
FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

#: Cache compiled kernels on disk (see :func:`kernel_cache_dir`).
CACHE = True

#: Environment variable that overrides the cache folder.
CACHE_ENV = "PCK_CACHE_DIR"

#: NumPy's error model: float division by zero gives inf/nan instead of raising. Python's
#: model puts a zero check in front of every division, which stops LLVM from vectorising
#: any loop that divides.
ERROR_MODEL = "numpy"

#: Options of the parallel builds. Loop fusion is off: Numba fuses two consecutive
#: ``prange`` loops of equal length when it sees no dependence between them, and it sees
#: none through calls that write shared buffers, so two phases of a synchronous inference
#: step (one reads what the other writes) became one loop and raced. (An options object,
#: not a dict: Numba empties a dict as it reads it, so a second signature compiled by the
#: same dispatcher would silently get the defaults back.)
PARALLEL = ParallelOptions({"fusion": False})


def cache_root():
    """The folder under which compiled kernels are cached (not created here)."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return os.path.abspath(os.path.expanduser(root))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pckernels", "numba")


@functools.lru_cache(maxsize=None)
def _build_key(package_dir):
    h = hashlib.sha256()
    h.update(repr((package_dir, numba.__version__, sys.version, sys.platform)).encode())
    try:
        import llvmlite
        h.update(llvmlite.__version__.encode())
    except ImportError:  # pragma: no cover - numba requires llvmlite
        pass
    for folder, dirs, files in sorted(os.walk(package_dir)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                h.update(os.path.relpath(path, package_dir).encode())
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()[:16]


def kernel_cache_dir():
    """This build's cache folder: ``cache_root()/<build key>`` (see the module docstring)."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(cache_root(), _build_key(package_dir))


class _KernelCacheLocator(_SourceFileBackedLocatorMixin, _CacheLocator):
    """Numba cache locator: the per-user folder, one entry per function *and build*."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._build = getattr(py_func, "_pck_build", "")
        self._cache_path = os.path.join(kernel_cache_dir(),
                                        self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self):
        return self._cache_path

    def get_disambiguator(self):
        return f"{self._lineno}-{self._build}" if self._build else str(self._lineno)


class _KernelCacheImpl(CompileResultCacheImpl):
    _locator_classes = [_KernelCacheLocator]


class _KernelCache(FunctionCache):
    _impl_class = _KernelCacheImpl


_cache_warned = False


def _enable_cache(dispatcher):
    global _cache_warned
    try:
        dispatcher._cache = _KernelCache(dispatcher.py_func)
    except RuntimeError:
        # no writable cache folder: compile every run rather than fail
        if not _cache_warned:
            _cache_warned = True
            warnings.warn(f"pckernels: cannot write the kernel cache under {cache_root()} "
                          f"(set {CACHE_ENV}); kernels are compiled on every run",
                          RuntimeWarning, stacklevel=3)


def _build_copy(fn, build):
    """A copy of ``fn`` tagged with its build, so each build gets its own cache entry."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__,
                              fn.__closure__)
    copy.__qualname__ = fn.__qualname__
    copy.__doc__ = fn.__doc__
    copy.__module__ = fn.__module__
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy._pck_build = build
    return copy


def jit(fn=None, *, parallel=False, ordered=False):
    """Compile ``fn`` with the project's Numba settings (usable bare or with arguments).

    ``parallel=True`` runs ``numba.prange`` loops on threads (with :data:`PARALLEL`'s
    options). ``ordered=True`` drops ``reassoc`` for kernels whose rounding must follow
    the written order of operations (the batch-mean scaling that makes fpa reproduce
    backprop).
    """
    flags = set(FASTMATH) - {"reassoc"} if ordered else set(FASTMATH)
    build = ("parallel" if parallel else "") + ("ordered" if ordered else "")

    def wrap(f):
        g = _build_copy(f, build) if build else f
        dispatcher = numba.njit(g, cache=False, fastmath=flags,
                                parallel=PARALLEL if parallel else False,
                                error_model=ERROR_MODEL)
        if CACHE:
            _enable_cache(dispatcher)
        return dispatcher
    return wrap(fn) if fn is not None else wrap


def jit_pair(fn):
    """Compile one kernel body twice: ``(serial, parallel)``, each with its own cache entry.

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


def ensure_blas_serial(force=False):
    """Make the BLAS that Numba's ``np.dot`` calls single-threaded (once per process).

    pckernels' matrix products are small (a 64-row batch); a multi-threaded BLAS gains
    little there, and under the ``layers``/``batch`` schedules it would start threads of
    its own inside Numba's worker threads. On a loaded machine a BLAS call that waits for
    a descheduled helper thread costs a whole time slice (tens of milliseconds). So
    pckernels' parallelism comes from ``prange`` only. Only the BLAS library that SciPy
    ships (the one Numba links against) is limited; NumPy's own BLAS is left alone.
    ``force=True`` applies the limit again (after something else, such as a benchmark's
    ``threadpool_limits``, changed it).
    """
    global _blas_serial
    if _blas_serial and not force:
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
