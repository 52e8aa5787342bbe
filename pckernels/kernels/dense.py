"""Dense layer: forward, VJPs with respect to input and parameters (docs/algorithms.md, eq. 2.2-2.6).

Row-vector convention: ``z = h W + b`` with ``W`` of shape (n_in, n_out). Matrix products
go through ``np.dot`` with an ``out`` buffer, which Numba lowers to a BLAS call without
allocating.
"""
import numpy as np

from ..config import jit
from .activations import _activate, _mul_grad_from_output


@jit
def _affine(h, W, b, out):
    """out = h W + b for h (batch, n_in), W (n_in, n_out), b (n_out,)."""
    np.dot(h, W, out)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] += b[j]


@jit
def _dense_forward(h, W, b, code, out):
    """out = g(h W + b) (eq. 2.2)."""
    _affine(h, W, b, out)
    _activate(out, code)


@jit
def _vjp_dense_input(delta, W, out):
    """out = delta W^T: the input-side VJP of z = h W + b (eq. 2.4)."""
    np.dot(delta, W.T, out)


@jit
def _vjp_dense_params(h, delta, dW, db):
    """dW = h^T delta, db = sum_b delta: the parameter-side VJP (eq. 2.5).

    Callers fold the batch-mean factor 1/B into delta beforehand (it is B x n_out, far
    smaller than dW), so no extra pass over dW is needed.
    """
    np.dot(h.T, delta, dW)
    db[:] = 0
    for i in range(delta.shape[0]):
        for j in range(delta.shape[1]):
            db[j] += delta[i, j]


@jit
def _backprop_through_activation(d, h, code):
    """delta = d * g'(z) in place, from the layer's output h = g(z) (eq. 2.3)."""
    _mul_grad_from_output(d, h, code)
