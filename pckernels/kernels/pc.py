"""Fused predictive-coding inference (docs/algorithms.md: vpc, scaled, fpa, zil, fazil).

All state lives in preallocated buffers in the activation layout of ``network.py`` (layers
1..N, each (batch, n_l)). Inference is per sample, so rows never interact: a *chunk* is a
range of rows that runs the whole T-step loop on its own (the batch-parallel schedule runs
chunks in parallel). Within a step, layers are updated synchronously (Jacobi) in two
phases separated by a barrier, which is what the layer-parallel schedule parallelises:

- vpc / scaled / zil / fazil: phase "update" moves every latent x_l from step-t values (eq. 3.13),
  phase "predict" recomputes predictions, derivative factors and errors at step t+1
  (eq. 3.9-3.11).
- fpa: phase "vjp" computes v_l = (e_{l+1} * gp_l) W_l^T from step-t errors, phase "update"
  sets e_l(t+1) = e_l + gamma (v_l - e_l) (eq. 3.24); predictions and gp_l stay at the
  feedforward values computed once.

Work that provably changes nothing is skipped with bit-identical results (``skip``): a
layer whose own error and incoming error are exactly zero (ahead of the Theorem 1 front),
a VJP whose incoming error is exactly zero, a prediction whose input state did not change,
and under fpa with step size 1 a layer whose incoming error did not change since the
previous step (its output would be the same again).

Per chunk and layer an int64 ``info`` table records flags and counters (rows ``I_*``).
"""
from collections import namedtuple

import numpy as np
from numba import prange

from ..config import jit, jit_pair
from .activations import _activate, _grad_from_output
from .dense import _affine, _vjp_dense_input, _vjp_dense_params
from .elementwise import (_axpby_tracked, _count_nonzero, _difference, _negate, _relax_tracked,
                          _scaled_copy, _scaled_product, _sum_squares)
from .losses import _loss_grad
from .network import _bias, _layer, _n_blocks, _sum_chunks, _weight

VPC, FPA, ZIL, FAZIL = 0, 1, 2, 3
INIT_FORWARD, INIT_ZEROS = 0, 1

# rows of the info table info[chunk, row, layer]
I_NONZERO = 0     # e_l has a nonzero entry (current step)
I_XCHANGED = 1    # x_l changed in the last update (vpc) / needs a fresh prediction
I_ECHANGED = 2    # e_l changed in the last update (fpa)
I_FIRST = 3       # first step at which e_l had a nonzero entry (-1: never)
I_VJP = 4         # VJPs computed for latent l
I_VJP_SKIPPED = 5 # VJPs skipped for latent l
I_FWD = 6         # predictions computed for layer l
I_FWD_SKIPPED = 7 # predictions skipped for layer l
I_LASTBIG = 8     # last step whose change of layer l was > tol (-1: none)
I_ACTION = 9      # fpa: what the vjp phase decided for the update phase
N_INFO = 10

ACT_KEEP, ACT_DECAY, ACT_FULL = 0, 1, 2

#: The network: flat parameters, layer widths, activation codes, loss code.
PCNet = namedtuple("PCNet", ["params", "sizes", "codes", "loss_code"])
#: The batch: inputs (batch, n_0), integer labels, float targets (see losses.py).
PCData = namedtuple("PCData", ["X", "labels", "targets"])
#: Buffers in the activation layout: states x, errors e, predictions (mu under fpa),
#: derivative factors gp (layer l+1 holds g_l'), scratch q and v, zil snapshots xs and qs;
#: per chunk the int64 info table, the loss sum at the current states and at step 0.
PCState = namedtuple("PCState", ["x", "e", "pred", "gp", "q", "v", "xs", "qs", "info", "loss",
                                 "loss0"])
#: variant code, step size, per-layer precisions (N+1; index 0 unused), tolerance, skip flag.
PCOpts = namedtuple("PCOpts", ["variant", "gamma", "pis", "tol", "skip"])


@jit
def _chunk_bounds(c, chunk_rows, batch):
    """Rows r0:r1 of chunk c."""
    r0 = c * chunk_rows
    return r0, min(batch, r0 + chunk_rows)


@jit
def _rows(buf, sizes, batch, l, r0, r1):
    """Rows r0:r1 of layer l in an activation-shaped buffer."""
    return _layer(buf, sizes, batch, l)[r0:r1]


@jit
def _predict_errors(l, r0, r1, chunk, net, data, st, opts, force):
    """pred_{l+1}, gp_l and e_{l+1} for rows r0:r1 (eq. 3.9-3.11); returns whether the
    prediction was recomputed (skipped, bit-identically, when its input latent did not
    change; ``force`` recomputes it anyway). The output layer also sets the chunk's loss."""
    X = data.X
    batch = X.shape[0]
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    info = st.info[chunk]
    fresh_input = force or (not opts.skip) or (l > 0 and info[I_XCHANGED, l] != 0)
    pred = _rows(st.pred, sizes, batch, l + 1, r0, r1)
    if fresh_input:
        xin = X[r0:r1] if l == 0 else _rows(st.x, sizes, batch, l, r0, r1)
        _affine(xin, _weight(net.params, sizes, l), _bias(net.params, sizes, l), pred)
        _activate(pred, net.codes[l])
        _grad_from_output(pred, _rows(st.gp, sizes, batch, l + 1, r0, r1), net.codes[l])
        info[I_FWD, l + 1] += 1
    else:
        info[I_FWD_SKIPPED, l + 1] += 1
    e = _rows(st.e, sizes, batch, l + 1, r0, r1)
    if l + 1 == n_layers:
        if fresh_input:
            st.loss[chunk] = _loss_grad(pred, data.labels[r0:r1], data.targets[r0:r1],
                                        net.loss_code, e)
            _negate(e)
    elif fresh_input or info[I_XCHANGED, l + 1] != 0:
        _difference(e, _rows(st.x, sizes, batch, l + 1, r0, r1), pred)
    return fresh_input


@jit
def _predict_layer(l, t, r0, r1, chunk, net, data, st, opts, force):
    """Phase "predict" for weight layer l: pred_{l+1}, gp_l and e_{l+1} at step t (eq. 3.9-3.11)."""
    _predict_errors(l, r0, r1, chunk, net, data, st, opts, force)
    batch = data.X.shape[0]
    n_layers = net.sizes.shape[0] - 1
    info = st.info[chunk]
    e = _rows(st.e, net.sizes, batch, l + 1, r0, r1)
    nonzero = _count_nonzero(e) > 0
    info[I_NONZERO, l + 1] = nonzero
    if nonzero and info[I_FIRST, l + 1] < 0:
        info[I_FIRST, l + 1] = t
        if opts.variant == FAZIL:
            # the autonomous trigger: layer l learns when its output error first appears
            _snapshot(l, r0, r1, net, data, st)
    if opts.variant == ZIL and t == n_layers - 1 - l:
        _snapshot(l, r0, r1, net, data, st)


@jit
def _snapshot(l, r0, r1, net, data, st):
    """Z-IL, Requirement 3: keep x_l and e_{l+1} * g_l' of the step at which layer l learns
    (zil: t = N-1-l by the step counter; fazil: the step at which e_{l+1} first has a
    nonzero entry in this chunk, Salvatori et al. 2021's autonomous trigger)."""
    batch = data.X.shape[0]
    sizes = net.sizes
    e = _rows(st.e, sizes, batch, l + 1, r0, r1)
    gp = _rows(st.gp, sizes, batch, l + 1, r0, r1)
    _scaled_product(_rows(st.qs, sizes, batch, l + 1, r0, r1), e, gp, 1.0)
    if l > 0:
        _rows(st.xs, sizes, batch, l, r0, r1)[:, :] = _rows(st.x, sizes, batch, l, r0, r1)


@jit
def _vpc_update_layer(l, t, r0, r1, chunk, net, data, st, opts):
    """Phase "update" for latent l (eq. 3.13): x += gamma (-pi_l e_l + (pi_{l+1} e_{l+1} g_l') W_l^T)."""
    batch = data.X.shape[0]
    sizes = net.sizes
    info = st.info[chunk]
    x = _rows(st.x, sizes, batch, l, r0, r1)
    e = _rows(st.e, sizes, batch, l, r0, r1)
    own = info[I_NONZERO, l] != 0
    incoming = info[I_NONZERO, l + 1] != 0
    if opts.skip and not own and not incoming:
        info[I_XCHANGED, l] = 0
        info[I_VJP_SKIPPED, l] += 1
        return
    v = _rows(st.v, sizes, batch, l, r0, r1)
    if incoming or not opts.skip:
        q = _rows(st.q, sizes, batch, l + 1, r0, r1)
        _scaled_product(q, _rows(st.e, sizes, batch, l + 1, r0, r1),
                        _rows(st.gp, sizes, batch, l + 1, r0, r1), opts.pis[l + 1])
        _vjp_dense_input(q, _weight(net.params, sizes, l), v)
        info[I_VJP, l] += 1
    else:
        v[:, :] = 0
        info[I_VJP_SKIPPED, l] += 1
    changed, big = _axpby_tracked(x, v, e, opts.gamma, -opts.gamma * opts.pis[l], opts.tol)
    info[I_XCHANGED, l] = changed > 0
    if big > 0:
        info[I_LASTBIG, l] = t


@jit
def _fpa_vjp_layer(l, t, r0, r1, chunk, net, data, st, opts):
    """Phase "vjp" for latent l under fpa: v_l = (e_{l+1} * gp_l) W_l^T, or a skip decision."""
    batch = data.X.shape[0]
    sizes = net.sizes
    info = st.info[chunk]
    own = info[I_NONZERO, l] != 0
    incoming = info[I_NONZERO, l + 1] != 0
    if opts.skip and not own and not incoming:
        info[I_ACTION, l] = ACT_KEEP
    elif opts.skip and opts.gamma == 1.0 and t >= 1 and info[I_ECHANGED, l + 1] == 0:
        info[I_ACTION, l] = ACT_KEEP
    elif opts.skip and not incoming:
        info[I_ACTION, l] = ACT_DECAY
    else:
        info[I_ACTION, l] = ACT_FULL
    if info[I_ACTION, l] != ACT_FULL:
        info[I_VJP_SKIPPED, l] += 1
        return
    q = _rows(st.q, sizes, batch, l + 1, r0, r1)
    _scaled_product(q, _rows(st.e, sizes, batch, l + 1, r0, r1),
                    _rows(st.gp, sizes, batch, l + 1, r0, r1), 1.0)
    _vjp_dense_input(q, _weight(net.params, sizes, l), _rows(st.v, sizes, batch, l, r0, r1))
    info[I_VJP, l] += 1


@jit
def _fpa_update_layer(l, t, r0, r1, chunk, net, data, st, opts):
    """Phase "update" for latent l under fpa (eq. 3.24); with gamma = 1, e_l(t+1) = v_l exactly."""
    batch = data.X.shape[0]
    sizes = net.sizes
    info = st.info[chunk]
    action = info[I_ACTION, l]
    if action == ACT_KEEP:
        info[I_ECHANGED, l] = 0
        return
    v = _rows(st.v, sizes, batch, l, r0, r1)
    if action == ACT_DECAY:
        v[:, :] = 0
    changed, big, nonzero = _relax_tracked(_rows(st.e, sizes, batch, l, r0, r1), v,
                                           opts.gamma, opts.tol)
    info[I_ECHANGED, l] = changed > 0
    info[I_NONZERO, l] = nonzero > 0
    if nonzero > 0 and info[I_FIRST, l] < 0:
        info[I_FIRST, l] = t + 1
    if big > 0:
        info[I_LASTBIG, l] = t


def _steps_body(t0, t1, r0, r1, chunk, net, data, st, opts):
    """Steps t0..t1-1 for rows r0:r1; each phase loops over layers with ``prange``."""
    n_layers = net.sizes.shape[0] - 1
    n_latent = n_layers - 1
    for t in range(t0, t1):
        if opts.variant == FPA:
            for k in prange(n_latent):
                _fpa_vjp_layer(k + 1, t, r0, r1, chunk, net, data, st, opts)
            for k in prange(n_latent):
                _fpa_update_layer(k + 1, t, r0, r1, chunk, net, data, st, opts)
        else:
            for k in prange(n_latent):
                _vpc_update_layer(k + 1, t, r0, r1, chunk, net, data, st, opts)
            for l in prange(n_layers):
                _predict_layer(l, t + 1, r0, r1, chunk, net, data, st, opts, False)


_steps_serial, _steps_layer_parallel = jit_pair(_steps_body)


def _steps_batch_body(t0, t1, chunk_rows, net, data, st, opts):
    """Batch-parallel schedule: chunks of rows run their steps independently."""
    batch = data.X.shape[0]
    n_chunks = (batch + chunk_rows - 1) // chunk_rows
    for c in prange(n_chunks):
        r0, r1 = _chunk_bounds(c, chunk_rows, batch)
        _steps_serial(t0, t1, r0, r1, c, net, data, st, opts)


_steps_batch_serial, _steps_batch_parallel = jit_pair(_steps_batch_body)


@jit
def _pc_init_rows(init, c, r0, r1, net, data, st, opts):
    """Step 0 for chunk c (rows r0:r1): states, predictions, derivative factors and errors.

    ``INIT_FORWARD`` puts every latent at its feedforward value (Requirement 1), which is
    one forward pass; fpa always starts there and keeps the predictions as mu_l. Done with
    the same row ranges the steps use, so that skipping a recomputation is bit-identical
    to doing it. Returns the chunk's loss sum at the initial states.
    """
    X = data.X
    batch = X.shape[0]
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    info = st.info[c]
    info[:, :] = 0
    info[I_FIRST, :] = -1
    info[I_LASTBIG, :] = -1
    for l in range(n_layers):
        pred = _rows(st.pred, sizes, batch, l + 1, r0, r1)
        xin = X[r0:r1] if l == 0 else _rows(st.x, sizes, batch, l, r0, r1)
        _affine(xin, _weight(net.params, sizes, l), _bias(net.params, sizes, l), pred)
        _activate(pred, net.codes[l])
        _grad_from_output(pred, _rows(st.gp, sizes, batch, l + 1, r0, r1), net.codes[l])
        info[I_FWD, l + 1] += 1
        e = _rows(st.e, sizes, batch, l + 1, r0, r1)
        _rows(st.qs, sizes, batch, l + 1, r0, r1)[:, :] = 0
        if l + 1 == n_layers:
            st.loss[c] = _loss_grad(pred, data.labels[r0:r1], data.targets[r0:r1],
                                    net.loss_code, e)
            st.loss0[c] = st.loss[c]
            _negate(e)
        else:
            x = _rows(st.x, sizes, batch, l + 1, r0, r1)
            _rows(st.xs, sizes, batch, l + 1, r0, r1)[:, :] = 0
            if init == INIT_FORWARD or opts.variant == FPA:
                x[:, :] = pred
            elif init == INIT_ZEROS:
                x[:, :] = 0
            _difference(e, x, pred)
        nonzero = _count_nonzero(e) > 0
        info[I_NONZERO, l + 1] = nonzero
        if nonzero:
            info[I_FIRST, l + 1] = 0
    for l in range(n_layers):
        if opts.variant == FAZIL and info[I_FIRST, l + 1] == 0:
            _snapshot(l, r0, r1, net, data, st)
    if opts.variant == ZIL:
        _snapshot(n_layers - 1, r0, r1, net, data, st)
    return st.loss0[c]


def _pc_init_body(init, chunk_rows, net, data, st, opts):
    """Step 0 for every chunk (in parallel over chunks); returns the batch-mean loss."""
    batch = data.X.shape[0]
    n_chunks = st.info.shape[0]
    for c in prange(n_chunks):
        r0, r1 = _chunk_bounds(c, chunk_rows, batch)
        _pc_init_rows(init, c, r0, r1, net, data, st, opts)
    return st.loss0.sum() / batch


_pc_init_serial, _pc_init_parallel = jit_pair(_pc_init_body)


@jit
def _pc_gradient_layer(l, r0, r1, net, data, st, opts, grad):
    """Rows r0:r1's share of dW_l = -x_l^T (pi_{l+1} e_{l+1} * g_l') / B (and db_l).

    x_l is the final state (vpc), the feedforward value mu_l (fpa) or the Requirement-3
    snapshot (zil; fazil: taken when e_{l+1} first became nonzero). The factor -1/B is folded into the (rows, n_{l+1}) factor first.
    """
    X = data.X
    batch = X.shape[0]
    sizes = net.sizes
    q = _rows(st.q, sizes, batch, l + 1, r0, r1)
    scale = -1.0 / batch
    if opts.variant == ZIL or opts.variant == FAZIL:
        _scaled_copy(q, _rows(st.qs, sizes, batch, l + 1, r0, r1), scale)
        xin = X[r0:r1] if l == 0 else _rows(st.xs, sizes, batch, l, r0, r1)
    else:
        _scaled_product(q, _rows(st.e, sizes, batch, l + 1, r0, r1),
                        _rows(st.gp, sizes, batch, l + 1, r0, r1), scale * opts.pis[l + 1])
        if l == 0:
            xin = X[r0:r1]
        elif opts.variant == FPA:
            xin = _rows(st.pred, sizes, batch, l, r0, r1)
        else:
            xin = _rows(st.x, sizes, batch, l, r0, r1)
    _vjp_dense_params(xin, q, _weight(grad, sizes, l), _bias(grad, sizes, l))


@jit
def _pc_gradient_rows(r0, r1, net, data, st, opts, grad):
    """Rows r0:r1's share of the update of every layer."""
    for l in range(net.sizes.shape[0] - 1):
        _pc_gradient_layer(l, r0, r1, net, data, st, opts, grad)


def _pc_gradient_body(net, data, st, opts, grad):
    """The parameter update as a gradient of the mean loss, all rows, ``prange`` over layers."""
    n_layers = net.sizes.shape[0] - 1
    for l in prange(n_layers):
        _pc_gradient_layer(l, 0, data.X.shape[0], net, data, st, opts, grad)


_pc_gradient_serial, _pc_gradient_layer_parallel = jit_pair(_pc_gradient_body)


def _pc_gradient_chunks_body(chunk_rows, net, data, st, opts, partial, grad):
    """The update with the batch in chunks: each chunk's share, then an ordered sum."""
    batch = data.X.shape[0]
    for c in prange(partial.shape[0]):
        r0, r1 = _chunk_bounds(c, chunk_rows, batch)
        _pc_gradient_rows(r0, r1, net, data, st, opts, partial[c])
    for k in prange(_n_blocks(grad)):
        _sum_chunks(partial, grad, k)


_pc_gradient_chunks_serial, _pc_gradient_chunks_parallel = jit_pair(_pc_gradient_chunks_body)


def _pc_fused_batch_body(init, n_updates, chunk_rows, net, data, st, opts, partial, grad):
    """Batch schedule, whole call in one parallel region: every chunk runs init, its
    inference steps and its share of the update on its own rows; then an ordered sum."""
    batch = data.X.shape[0]
    for c in prange(partial.shape[0]):
        r0, r1 = _chunk_bounds(c, chunk_rows, batch)
        _pc_init_rows(init, c, r0, r1, net, data, st, opts)
        _steps_serial(0, n_updates, r0, r1, c, net, data, st, opts)
        _pc_gradient_rows(r0, r1, net, data, st, opts, partial[c])
    for k in prange(_n_blocks(grad)):
        _sum_chunks(partial, grad, k)
    return st.loss0.sum() / batch


_pc_fused_batch_serial, _pc_fused_batch_parallel = jit_pair(_pc_fused_batch_body)


@jit
def _energy(net, data, st, opts):
    """F = sum_b [sum_l pi_l/2 ||e_l||^2 + pi_N loss_b] at the current errors (eq. 3.8)."""
    batch = data.X.shape[0]
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    total = 0.0
    for l in range(1, n_layers):
        total += 0.5 * opts.pis[l] * _sum_squares(_layer(st.e, sizes, batch, l))
    return total + opts.pis[n_layers] * st.loss.sum()


@jit
def _error_norms(net, data, st, out):
    """out[l-1] = ||e_l||_F over the batch, l = 1..N."""
    batch = data.X.shape[0]
    sizes = net.sizes
    for l in range(1, sizes.shape[0]):
        out[l - 1] = np.sqrt(_sum_squares(_layer(st.e, sizes, batch, l)))
