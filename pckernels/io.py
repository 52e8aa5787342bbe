"""Atomic file writes: a reader never sees a half-written result or checkpoint."""
import json
import math
import os
import tempfile


def _umask_mode():
    """The mode a plain ``open(path, "w")`` would give (mkstemp uses 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path, write, binary=False):
    """Call ``write(file)`` on a temporary file in the target folder, then rename it.

    A reader sees the old file or the complete new one, never a partial write; on any
    error (or interruption) the temporary file is removed and the target is untouched.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.chmod(tmp, _umask_mode())
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(text))


def atomic_write_json(path, obj):
    """Write ``obj`` as indented JSON, atomically (NaN and infinities written as null)."""
    atomic_write_text(path, json.dumps(_clean(obj), indent=2) + "\n")


def _clean(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # json.dumps would write NaN/Infinity, which is not JSON
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        return _clean(obj.item())
    return obj


def environment():
    """Versions and machine facts recorded with every results file."""
    import platform

    import numba
    import numpy

    from . import __version__
    from .config import get_threads
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"pckernels": __version__, "numpy": numpy.__version__, "numba": numba.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "cpu": cpu, "cpu_count": os.cpu_count(), "threads": get_threads()}
