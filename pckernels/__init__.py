"""pckernels: backpropagation and predictive coding on the CPU with hand-written Numba kernels.

The public API: :class:`MLP`, :func:`backprop`, :func:`pc_infer`, :func:`train`,
:class:`PCClassifier`, :class:`PCRegressor`, :func:`load_dataset`,
:class:`GenerativePC` (the generative PC classifier, ``algo="gpc"``).
"""
__version__ = "0.1.0"

from .model import MLP
from .backprop import backprop, GradientResult
from .config import set_threads, get_threads

__all__ = ["MLP", "backprop", "GradientResult", "set_threads", "get_threads", "__version__"]

from .pc import pc_infer, PCResult, PCTrace, VARIANTS
from .training import train, History, PCSettings, DivergenceError
from .data import load_dataset, Dataset, DataError
from .gpc import GenerativePC

__all__ += ["pc_infer", "PCResult", "PCTrace", "VARIANTS", "train", "History", "PCSettings",
            "DivergenceError", "load_dataset", "Dataset", "DataError", "GenerativePC"]

__all__ += ["PCClassifier", "PCRegressor"]


def __getattr__(name):
    # scikit-learn's estimator machinery takes seconds to import; load it on first use.
    if name in ("PCClassifier", "PCRegressor"):
        from . import estimator
        return getattr(estimator, name)
    raise AttributeError(f"module 'pckernels' has no attribute {name!r}")
