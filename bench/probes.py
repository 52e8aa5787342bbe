"""Compiled probes the harness times that the library has no public entry point for."""
import numpy as np

from pckernels.config import jit
from pckernels.kernels.dense import _vjp_dense_input
from pckernels.kernels.network import _layer, _weight


@jit
def input_vjps(dbuf, params, sizes, batch):
    """The input-side VJPs ``d_l = delta_l W_l^T`` of one backward pass, l = N-1..1 (eq. 2.4)."""
    n_layers = sizes.shape[0] - 1
    for l in range(n_layers - 1, 0, -1):
        _vjp_dense_input(_layer(dbuf, sizes, batch, l + 1), _weight(params, sizes, l),
                         _layer(dbuf, sizes, batch, l))


@jit
def one_input_vjp(dbuf, params, sizes, batch, l):
    """The input-side VJP of weight layer ``l`` alone (what latent l's inference step costs)."""
    _vjp_dense_input(_layer(dbuf, sizes, batch, l + 1), _weight(params, sizes, l),
                     _layer(dbuf, sizes, batch, l))


@jit
def gemm_chain(As, Bs, outs):
    """``outs[i] = As[i] @ Bs[i]`` for every i, through the BLAS the kernels call."""
    for i in range(len(As)):
        np.dot(As[i], Bs[i], outs[i])
