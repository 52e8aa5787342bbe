"""Whole-network kernels on flat buffers: forward pass and backpropagation (section 2).

State layout (shared by every kernel that touches a network):

- ``params``: one flat buffer; for each weight layer ``l`` the weights ``W_l`` (row-major,
  shape (n_l, n_{l+1})) followed by the bias ``b_l`` (n_{l+1},). Gradients, momenta and PC
  updates use the same layout, so an optimizer step is one loop and a cosine is one dot.
- ``sizes``: int64 array (n_0, ..., n_N). ``codes``: int64 activation codes, one per layer.
- activation-shaped buffers (``hbuf``, ``dbuf``): layers 1..N, each (batch, n_l), stacked
  flat; ``_layer(buf, sizes, batch, l)`` returns layer ``l``'s view.
"""
import numpy as np

from ..config import jit
from .dense import _backprop_through_activation, _dense_forward, _vjp_dense_input, _vjp_dense_params
from .elementwise import _scaled_copy
from .losses import _loss_grad


@jit
def _param_offset(sizes, l):
    """Offset of W_l in the flat parameter buffer."""
    off = 0
    for k in range(l):
        off += sizes[k] * sizes[k + 1] + sizes[k + 1]
    return off


@jit
def _weight(params, sizes, l):
    """View of W_l, shape (n_l, n_{l+1})."""
    off = _param_offset(sizes, l)
    return params[off:off + sizes[l] * sizes[l + 1]].reshape((sizes[l], sizes[l + 1]))


@jit
def _bias(params, sizes, l):
    """View of b_l, shape (n_{l+1},)."""
    off = _param_offset(sizes, l) + sizes[l] * sizes[l + 1]
    return params[off:off + sizes[l + 1]]


@jit
def _layer(buf, sizes, batch, l):
    """View of layer ``l`` (1..N) in an activation-shaped buffer, shape (batch, n_l)."""
    off = 0
    for k in range(1, l):
        off += batch * sizes[k]
    return buf[off:off + batch * sizes[l]].reshape((batch, sizes[l]))


@jit
def _forward_net(X, params, sizes, codes, hbuf):
    """h_{l+1} = g_l(h_l W_l + b_l) for all layers, stored in hbuf (eq. 2.2)."""
    batch = X.shape[0]
    n_layers = sizes.shape[0] - 1
    h = X
    for l in range(n_layers):
        out = _layer(hbuf, sizes, batch, l + 1)
        _dense_forward(h, _weight(params, sizes, l), _bias(params, sizes, l), codes[l], out)
        h = out


@jit
def _backprop_net(X, labels, targets, loss_code, params, sizes, codes, hbuf, dbuf, grad):
    """Forward, loss and backward for a batch; returns the batch-mean loss (section 2).

    Eq. 2.2-2.5: delta_l = d_{l+1} * g_l', d_l = delta_l W_l^T, dW_l = h_l^T delta_l / B.
    The 1/B of the mean is applied to delta_l just before its parameter product, after
    d_l has been formed, exactly where and how the PC kernels apply it, so that fpa with
    step size 1 reproduces backprop bit for bit. dbuf ends up holding delta_l / B; d_0 is
    never computed.
    """
    batch = X.shape[0]
    n_layers = sizes.shape[0] - 1
    _forward_net(X, params, sizes, codes, hbuf)
    total = _loss_grad(_layer(hbuf, sizes, batch, n_layers), labels, targets, loss_code,
                       _layer(dbuf, sizes, batch, n_layers))
    inv_batch = 1.0 / batch
    for l in range(n_layers - 1, -1, -1):
        delta = _layer(dbuf, sizes, batch, l + 1)
        _backprop_through_activation(delta, _layer(hbuf, sizes, batch, l + 1), codes[l])
        if l > 0:
            _vjp_dense_input(delta, _weight(params, sizes, l), _layer(dbuf, sizes, batch, l))
        _scaled_copy(delta, delta, inv_batch)
        hin = X if l == 0 else _layer(hbuf, sizes, batch, l)
        _vjp_dense_params(hin, delta, _weight(grad, sizes, l), _bias(grad, sizes, l))
    return total / batch


_SUM_BLOCK = 4096


@jit
def _n_blocks(grad):
    """Number of blocks ``_sum_chunks`` splits a flat buffer into."""
    return (grad.size + _SUM_BLOCK - 1) // _SUM_BLOCK


@jit
def _sum_chunks(partial, grad, k):
    """Block k of grad = sum over c of partial[c], summed in chunk order (deterministic)."""
    i0 = k * _SUM_BLOCK
    i1 = min(grad.size, i0 + _SUM_BLOCK)
    for i in range(i0, i1):
        grad[i] = partial[0, i]
    for c in range(1, partial.shape[0]):
        for i in range(i0, i1):
            grad[i] += partial[c, i]




@jit
def _dot_and_norms(a, b, lo, hi):
    """(a.b, a.a, b.b) over the slots lo:hi, summed in float64."""
    dot = 0.0
    na = 0.0
    nb = 0.0
    for i in range(lo, hi):
        ai = np.float64(a[i])
        bi = np.float64(b[i])
        dot += ai * bi
        na += ai * ai
        nb += bi * bi
    return dot, na, nb


@jit
def _layer_cosines(a, b, sizes, out):
    """Cosine of a and b (flat parameter layout) per weight layer into out[l]; returns the global one.

    A zero vector has cosine 0 with anything (an update that moves nothing is not aligned).
    """
    n_layers = sizes.shape[0] - 1
    dot_all = 0.0
    na_all = 0.0
    nb_all = 0.0
    off = 0
    for l in range(n_layers):
        size = sizes[l] * sizes[l + 1] + sizes[l + 1]
        dot, na, nb = _dot_and_norms(a, b, off, off + size)
        out[l] = dot / np.sqrt(na * nb) if na > 0 and nb > 0 else 0.0
        dot_all += dot
        na_all += na
        nb_all += nb
        off += size
    return dot_all / np.sqrt(na_all * nb_all) if na_all > 0 and nb_all > 0 else 0.0
