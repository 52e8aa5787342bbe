"""Thread settings (the BLAS that Numba calls stays single-threaded once pckernels runs)
and the compiled-kernel cache."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import pckernels as pk
from pckernels.config import get_threads, set_threads

threadpoolctl = pytest.importorskip("threadpoolctl")


def test_blas_called_by_kernels_is_single_threaded():
    net = pk.MLP([5, 4, 3], dtype="float64")
    pk.backprop(net, np.ones((2, 5)), np.array([0, 1]))
    scipy_blas = [lib for lib in threadpoolctl.threadpool_info()
                  if lib["user_api"] == "blas" and "scipy.libs" in lib["filepath"]]
    assert scipy_blas, "Numba's BLAS (SciPy's OpenBLAS) should be loaded by now"
    assert all(lib["num_threads"] == 1 for lib in scipy_blas)


def test_set_threads_validates_and_restores():
    previous = get_threads()
    with pytest.raises(ValueError, match="threads must be between"):
        set_threads(10_000)
    assert set_threads(1) == previous
    assert get_threads() == 1
    set_threads(previous)
    assert get_threads() == previous


def test_benchmark_thread_setting_keeps_kernel_blas_serial():
    from pckernels_bench.harness import set_all_threads
    previous = get_threads()
    try:
        set_all_threads(2 if previous >= 2 else 1)
        scipy_blas = [lib for lib in threadpoolctl.threadpool_info()
                      if lib["user_api"] == "blas" and "scipy.libs" in lib["filepath"]]
        assert scipy_blas and all(lib["num_threads"] == 1 for lib in scipy_blas)
    finally:
        set_threads(previous)


# ---------------------------------------------------------------------------------------
# The compiled-kernel cache lives per user, outside the package, keyed by the sources
# ---------------------------------------------------------------------------------------

_COMPILE = ("import numpy as np, pckernels as pk; from pckernels.config import kernel_cache_dir; "
            "net = pk.MLP([3, 2, 2], dtype='float64'); "
            "print(pk.backprop(net, np.ones((1, 3)), [0]).loss); print(kernel_cache_dir())")


def _package_cache_files():
    import glob
    package = os.path.dirname(pk.__file__)
    return set(glob.glob(os.path.join(package, "**", "*.nb[ic]"), recursive=True))


def _run_python(code, env_updates, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PCK_CACHE_DIR", "NUMBA_CACHE_DIR")}
    env.update(env_updates)
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, text=True,
                          capture_output=True, timeout=600)


def test_kernel_cache_is_per_user_and_outside_the_package(tmp_path):
    before = _package_cache_files()
    xdg = tmp_path / "xdg"
    p = _run_python(_COMPILE, {"XDG_CACHE_HOME": str(xdg)}, tmp_path)
    assert p.returncode == 0, p.stderr
    loss, folder = p.stdout.split()
    assert folder.startswith(str(xdg / "pckernels" / "numba"))
    assert list((xdg / "pckernels" / "numba").rglob("*.nbi")), "nothing was cached"
    assert _package_cache_files() == before, "compiled kernels were written into the package"
    again = _run_python(_COMPILE, {"XDG_CACHE_HOME": str(xdg)}, tmp_path)
    assert again.stdout.split() == [loss, folder]


def test_unwritable_cache_folder_warns_and_still_computes(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    p = _run_python(_COMPILE, {"PCK_CACHE_DIR": str(blocker / "cache")}, tmp_path)
    assert p.returncode == 0, p.stderr
    assert "cannot write the kernel cache" in p.stderr
    ok = _run_python(_COMPILE, {"PCK_CACHE_DIR": str(tmp_path / "cache")}, tmp_path)
    assert p.stdout.split()[0] == ok.stdout.split()[0]


def test_build_key_follows_every_source_file(tmp_path):
    from pckernels import config
    package = os.path.dirname(pk.__file__)
    copy = tmp_path / "pckernels"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    key = config._build_key(str(copy))
    config._build_key.cache_clear()
    assert config._build_key(str(copy)) == key
    dense = copy / "kernels" / "dense.py"
    dense.write_text(dense.read_text() + "\n# changed\n")
    config._build_key.cache_clear()
    assert config._build_key(str(copy)) != key, "a changed callee must not load old builds"
    config._build_key.cache_clear()
    assert config._build_key(str(tmp_path)) != key  # another checkout: its own folder
