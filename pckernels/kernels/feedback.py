"""Kernels with separate feedback weights B_l (docs/algorithms.md, "Weight symmetry").

The error is carried down layer l through ``B_l`` (same shape as ``W_l``) instead of
``W_l``: backprop's VJP ``d_l = delta_l B_l^T``, and the ``(e_{l+1} * g_l') W_l^T`` term of
the fixed-step vpc and fpa updates becomes ``(e_{l+1} * g_l') B_l^T``. Predictions and
parameter updates still use ``W_l``. With ``B = W`` every kernel here performs the same
floating-point operations in the same order as its symmetric counterpart in
``network.py`` / ``pc.py`` (fixed step rule), so the results are bit-identical.

``feedback`` is a flat buffer in the parameter layout of ``network.py``; only its weight
slots are read (the bias slots stay zero). Buffers are in the activation layout (layers
1..N, each (batch, n_l)). Inference is per sample; the batch is split into chunks of rows
that run the whole T-step loop on their own, in parallel in the ``prange`` build (each
chunk writes only its own rows and its own loss entries).
"""
from collections import namedtuple

import numpy as np
from numba import prange

from ..config import jit, jit_pair
from .activations import _activate, _grad_from_output
from .dense import _affine, _backprop_through_activation, _vjp_dense_input, _vjp_dense_params
from .elementwise import (_axpby_tracked, _difference, _negate, _relax_tracked, _scaled_copy,
                          _scaled_product)
from .losses import _loss_grad
from .network import _bias, _dot_and_norms, _forward_net, _layer, _weight
from .pc import _rows

VPC, FPA = 0, 1
INIT_FORWARD, INIT_ZEROS = 0, 1

#: The network: flat parameters, flat feedback weights (same layout), widths, activation
#: codes, loss code.
FBNet = namedtuple("FBNet", ["params", "feedback", "sizes", "codes", "loss_code"])
#: The batch: inputs (batch, n_0), integer labels, float targets (see losses.py).
FBData = namedtuple("FBData", ["X", "labels", "targets"])
#: Activation-layout buffers: latents x, errors e, predictions (mu_l under fpa), derivative
#: factors gp (layer l+1 holds g_l'), scratch q and v; per chunk the loss sum at the
#: feedforward pass (loss0) and at the current states (loss).
FBState = namedtuple("FBState", ["x", "e", "pred", "gp", "q", "v", "loss", "loss0"])
#: variant code, step size gamma, precisions (N+1; index 0 unused), initial latents.
FBOpts = namedtuple("FBOpts", ["variant", "gamma", "pis", "init"])


@jit
def _backprop_feedback_net(X, labels, targets, net, hbuf, dbuf, grad):
    """Backprop with d_l = delta_l B_l^T (docs/algorithms.md, "Weight symmetry"); returns
    the batch-mean loss. The same operations, in the same order, as ``_backprop_net``."""
    batch = X.shape[0]
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    _forward_net(X, net.params, sizes, net.codes, hbuf)
    total = _loss_grad(_layer(hbuf, sizes, batch, n_layers), labels, targets, net.loss_code,
                       _layer(dbuf, sizes, batch, n_layers))
    inv_batch = 1.0 / batch
    for l in range(n_layers - 1, -1, -1):
        delta = _layer(dbuf, sizes, batch, l + 1)
        _backprop_through_activation(delta, _layer(hbuf, sizes, batch, l + 1), net.codes[l])
        if l > 0:
            _vjp_dense_input(delta, _weight(net.feedback, sizes, l),
                             _layer(dbuf, sizes, batch, l))
        _scaled_copy(delta, delta, inv_batch)
        hin = X if l == 0 else _layer(hbuf, sizes, batch, l)
        _vjp_dense_params(hin, delta, _weight(grad, sizes, l), _bias(grad, sizes, l))
    return total / batch


@jit
def _predict_rows(l, r0, r1, chunk, net, data, st):
    """pred_{l+1} = g_l(x_l W_l + b_l), gp_l and e_{l+1} for rows r0:r1 (eq. 3.9-3.11);
    the output layer's error is -dloss/dh_N and sets the chunk's loss."""
    X = data.X
    batch = X.shape[0]
    sizes = net.sizes
    pred = _rows(st.pred, sizes, batch, l + 1, r0, r1)
    xin = X[r0:r1] if l == 0 else _rows(st.x, sizes, batch, l, r0, r1)
    _affine(xin, _weight(net.params, sizes, l), _bias(net.params, sizes, l), pred)
    _activate(pred, net.codes[l])
    _grad_from_output(pred, _rows(st.gp, sizes, batch, l + 1, r0, r1), net.codes[l])
    e = _rows(st.e, sizes, batch, l + 1, r0, r1)
    if l + 1 == sizes.shape[0] - 1:
        st.loss[chunk] = _loss_grad(pred, data.labels[r0:r1], data.targets[r0:r1],
                                    net.loss_code, e)
        _negate(e)
    else:
        _difference(e, _rows(st.x, sizes, batch, l + 1, r0, r1), pred)


@jit
def _init_rows(c, r0, r1, net, data, st, opts):
    """Step 0 for rows r0:r1: the feedforward pass (:func:`_predict_rows` layer by layer),
    latents at their feedforward values (always for fpa) or zeros, and the errors."""
    batch = data.X.shape[0]
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    for l in range(n_layers):
        _predict_rows(l, r0, r1, c, net, data, st)
        if l + 1 < n_layers:
            # _predict_rows took e_{l+1} against the latent's old value: set it, then e again
            pred = _rows(st.pred, sizes, batch, l + 1, r0, r1)
            x = _rows(st.x, sizes, batch, l + 1, r0, r1)
            if opts.init == INIT_FORWARD or opts.variant == FPA:
                x[:, :] = pred
            else:
                x[:, :] = 0
            _difference(_rows(st.e, sizes, batch, l + 1, r0, r1), x, pred)
    st.loss0[c] = st.loss[c]


@jit
def _carry_down(l, r0, r1, batch, net, st, scale):
    """v_l = (scale * e_{l+1} * g_l') B_l^T for rows r0:r1: the error carried down layer l."""
    sizes = net.sizes
    q = _rows(st.q, sizes, batch, l + 1, r0, r1)
    _scaled_product(q, _rows(st.e, sizes, batch, l + 1, r0, r1),
                    _rows(st.gp, sizes, batch, l + 1, r0, r1), scale)
    _vjp_dense_input(q, _weight(net.feedback, sizes, l), _rows(st.v, sizes, batch, l, r0, r1))


@jit
def _infer_rows(steps, c, r0, r1, net, data, st, opts):
    """T fixed steps for rows r0:r1 (docs/algorithms.md, "Weight symmetry").

    vpc (eq. 3.13 with B_l): x_l += gamma (-pi_l e_l + (pi_{l+1} e_{l+1} * g_l') B_l^T) for
    every latent from step-t values, then predictions and errors at step t+1. fpa (eq. 3.24
    with B_l): v_l = (e_{l+1} * gp_l) B_l^T from step-t errors, then e_l += gamma (v_l - e_l).
    """
    batch = data.X.shape[0]
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    _init_rows(c, r0, r1, net, data, st, opts)
    for t in range(steps):
        if opts.variant == FPA:
            for l in range(1, n_layers):
                _carry_down(l, r0, r1, batch, net, st, 1.0)
            for l in range(1, n_layers):
                _relax_tracked(_rows(st.e, sizes, batch, l, r0, r1),
                               _rows(st.v, sizes, batch, l, r0, r1), opts.gamma, 0.0)
        else:
            for l in range(1, n_layers):
                _carry_down(l, r0, r1, batch, net, st, opts.pis[l + 1])
                _axpby_tracked(_rows(st.x, sizes, batch, l, r0, r1),
                               _rows(st.v, sizes, batch, l, r0, r1),
                               _rows(st.e, sizes, batch, l, r0, r1), opts.gamma,
                               -opts.gamma * opts.pis[l], 0.0)
            for l in range(n_layers):
                _predict_rows(l, r0, r1, c, net, data, st)


def _infer_body(steps, chunk_rows, net, data, st, opts):
    """Inference for every chunk of rows (``prange`` over chunks); returns the batch-mean
    loss at the feedforward pass."""
    batch = data.X.shape[0]
    n_chunks = (batch + chunk_rows - 1) // chunk_rows
    for c in prange(n_chunks):
        r0 = c * chunk_rows
        r1 = min(batch, r0 + chunk_rows)
        _infer_rows(steps, c, r0, r1, net, data, st, opts)
    total = 0.0
    for c in range(n_chunks):
        total += st.loss0[c]
    return total / batch


_infer_serial, _infer_parallel = jit_pair(_infer_body)


@jit
def _gradient_layer(l, net, data, st, opts, grad):
    """dW_l = -x_l^T (pi_{l+1} e_{l+1} * g_l') / B and db_l, over the whole batch; x_l is the
    final latent (vpc) or the feedforward value mu_l (fpa). As ``pc.py``'s update."""
    X = data.X
    batch = X.shape[0]
    sizes = net.sizes
    q = _layer(st.q, sizes, batch, l + 1)
    scale = -1.0 / batch
    _scaled_product(q, _layer(st.e, sizes, batch, l + 1), _layer(st.gp, sizes, batch, l + 1),
                    scale * opts.pis[l + 1])
    if l == 0:
        xin = X
    elif opts.variant == FPA:
        xin = _layer(st.pred, sizes, batch, l)
    else:
        xin = _layer(st.x, sizes, batch, l)
    _vjp_dense_params(xin, q, _weight(grad, sizes, l), _bias(grad, sizes, l))


def _gradient_body(net, data, st, opts, grad):
    """The parameter update of every layer (``prange`` over layers: each writes its own
    slice of ``grad`` and its own layer of ``q``)."""
    for l in prange(net.sizes.shape[0] - 1):
        _gradient_layer(l, net, data, st, opts, grad)


_gradient_serial, _gradient_parallel = jit_pair(_gradient_body)


@jit
def _kp_track(feedback, params, old, sizes, decay):
    """Kolen-Pollack: B_l += (W_l - W_l^old) - decay (B_l - W_l^old) on the weight slots.

    ``old`` holds the parameters before the optimizer step, ``params`` after it, ``decay``
    is lr * weight_decay; then B - W shrinks by the factor (1 - decay) per step.
    """
    d = feedback.dtype.type(decay)
    off = 0
    for l in range(sizes.shape[0] - 1):
        n_w = sizes[l] * sizes[l + 1]
        for i in range(off, off + n_w):
            b = feedback[i]
            w0 = old[i]
            feedback[i] = b + (params[i] - w0) - d * (b - w0)
        off += n_w + sizes[l + 1]


@jit
def _weight_cosines(a, b, sizes, out):
    """out[l] = cosine of the weight slots of layer l of a and b (float64 sums); 0 if either
    is zero."""
    off = 0
    for l in range(sizes.shape[0] - 1):
        n_w = sizes[l] * sizes[l + 1]
        dot, na, nb = _dot_and_norms(a, b, off, off + n_w)
        out[l] = dot / np.sqrt(na * nb) if na > 0 and nb > 0 else 0.0
        off += n_w + sizes[l + 1]
