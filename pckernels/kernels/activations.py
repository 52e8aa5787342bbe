"""Elementwise activations and their derivatives (ALGORITHMS.md: g_l, g_l').

Activations are identified by integer codes so that compiled kernels can branch on them
once per layer; ``ACTIVATIONS`` is the one registry that maps names to codes (the CLI's
choices come from its keys). Every derivative is computed from the activation's *output*
``h = g(z)``, which is what the forward pass stores.
"""
import numpy as np

from ..config import jit

IDENTITY, TANH, RELU, SIGMOID, LEAKY_RELU = 0, 1, 2, 3, 4

ACTIVATIONS = {
    "tanh": TANH,
    "relu": RELU,
    "sigmoid": SIGMOID,
    "identity": IDENTITY,
    "leaky_relu": LEAKY_RELU,
}

#: Negative-side slope of ``leaky_relu``.
LEAKY_SLOPE = 0.01


@jit
def _activate(z, code):
    """Apply activation ``code`` in place to a contiguous array ``z``; h = g(z)."""
    flat = z.reshape(-1)
    one = z.dtype.type(1.0)
    zero = z.dtype.type(0.0)
    if code == TANH:
        for i in range(flat.size):
            flat[i] = np.tanh(flat[i])
    elif code == RELU:
        for i in range(flat.size):
            if flat[i] < zero:
                flat[i] = zero
    elif code == SIGMOID:
        for i in range(flat.size):
            flat[i] = one / (one + np.exp(-flat[i]))
    elif code == LEAKY_RELU:
        slope = z.dtype.type(LEAKY_SLOPE)
        for i in range(flat.size):
            if flat[i] < zero:
                flat[i] = slope * flat[i]


@jit
def _mul_grad_from_output(d, h, code):
    """d *= g'(z) in place, with g'(z) written in terms of the output h = g(z)."""
    fd = d.reshape(-1)
    fh = h.reshape(-1)
    one = d.dtype.type(1.0)
    zero = d.dtype.type(0.0)
    if code == TANH:
        for i in range(fd.size):
            fd[i] *= one - fh[i] * fh[i]
    elif code == RELU:
        for i in range(fd.size):
            if fh[i] <= zero:
                fd[i] = zero
    elif code == SIGMOID:
        for i in range(fd.size):
            fd[i] *= fh[i] * (one - fh[i])
    elif code == LEAKY_RELU:
        slope = d.dtype.type(LEAKY_SLOPE)
        for i in range(fd.size):
            if fh[i] <= zero:
                fd[i] *= slope


@jit
def _grad_from_output(h, out, code):
    """out = g'(z) from h = g(z) (the fixed derivative factors gp_l of fpa)."""
    fo = out.reshape(-1)
    fo[:] = out.dtype.type(1.0)
    _mul_grad_from_output(out, h, code)
