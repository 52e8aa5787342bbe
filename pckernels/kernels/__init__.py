"""Pure Numba kernels: arrays and scalars in, arrays out; no validation, no allocation.

Public names are the registries; kernels are private (``_name``) and assume clean input.
"""
from .activations import ACTIVATIONS
from .losses import LOSSES

__all__ = ["ACTIVATIONS", "LOSSES"]
