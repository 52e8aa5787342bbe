"""Elementwise activations and their derivatives (docs/algorithms.md: g_l, g_l').

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
def _tanh_float32(flat):
    """tanh in place for float32, within 4 ulp of the exact value; vectorises.

    libm's scalar ``tanhf`` does not vectorise and cost more than the 64x64x64 product of its layer, so
    float32 uses tanh(|x|) = m / (m + 2) with m = exp(2|x|) - 1, where 2|x| = (k + f) ln 2,
    k = round(2|x| / ln 2), exp(f ln 2) - 1 by its degree-7 Taylor polynomial (|f| <= 1/2,
    truncation < 1e-8) and 2^k by an integer shift. |x| is clamped at 9, where float32
    tanh is exactly 1. float64 keeps libm's tanh (the reference precision).
    """
    two_over_ln2 = np.float32(2.8853900817779268)
    ln2 = np.float32(0.6931471805599453)
    nine = np.float32(9.0)
    half = np.float32(0.5)
    one = np.float32(1.0)
    two = np.float32(2.0)
    c2 = np.float32(1.0 / 2)
    c3 = np.float32(1.0 / 6)
    c4 = np.float32(1.0 / 24)
    c5 = np.float32(1.0 / 120)
    c6 = np.float32(1.0 / 720)
    c7 = np.float32(1.0 / 5040)
    for i in range(flat.size):
        x = flat[i]
        y = min(abs(x), nine) * two_over_ln2
        k = np.int32(y + half)
        g = (y - np.float32(k)) * ln2
        expm1_g = g * (one + g * (c2 + g * (c3 + g * (c4 + g * (c5 + g * (c6 + g * c7))))))
        scale = np.float32(np.int32(1) << k)
        m = expm1_g * scale + (scale - one)
        flat[i] = np.float32(np.copysign(m / (m + two), x))


@jit
def _activate(z, code):
    """Apply activation ``code`` in place to a contiguous array ``z``; h = g(z)."""
    flat = z.reshape(-1)
    one = z.dtype.type(1.0)
    zero = z.dtype.type(0.0)
    if code == TANH:
        if z.itemsize == 4:
            _tanh_float32(flat)
        else:
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
