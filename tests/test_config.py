"""Thread settings: the BLAS that Numba calls stays single-threaded once pckernels runs."""
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
