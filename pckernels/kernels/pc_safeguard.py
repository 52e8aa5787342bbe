"""Safeguarded energy descent on the latents (docs/algorithms.md: "Inference step from curvature").

The energy-descent variants (vpc, scaled, ipc) move every latent along -dF/dx_l with a
per-layer step ``gamma_l`` (from a curvature bound, computed per batch by the API) times a
per-sample factor ``scale_b`` in (0, 1]:

    g_l      = dF/dx_l = pi_l e_l - (pi_{l+1} e_{l+1} * g_l'(x_l W_l + b_l)) W_l^T
    gd:        x_l <- x_l - gamma_l scale_b g_l
    momentum:  m_l <- beta1 m_l + g_l;  x_l <- x_l - gamma_l scale_b m_l   (heavy ball)
    adam:      m_l <- beta1 m_l + (1 - beta1) g_l;  v_l <- beta2 v_l + (1 - beta2) g_l^2
               x_l <- x_l - gamma_l scale_b mhat / (sqrt(vhat) + eps),
               mhat = m_l / (1 - beta1^k),  vhat = v_l / (1 - beta2^k)

with k = t + 1 at step t (Kingma & Ba 2015). All layers move synchronously (Jacobi), as in
``pc.py``. After the step the predictions, errors and the *per-sample* energy

    F_b = sum_l pi_l/2 ||e_l[b]||^2 + pi_N loss_b

are recomputed. Safeguard (per sample, so that results do not depend on how the batch is
cut into chunks or on the thread count): a step that raised F_b is undone (that row's
latents and Adam moments restored from copies taken before the step, momentum's velocity
zeroed, an adaptive restart; then the chunk's predictions, errors and losses recomputed,
which gives the undone rows their earlier values bit for bit, since a row of a matrix
product depends only on that row) and ``scale_b`` halves; an accepted step doubles
``scale_b`` back towards 1. Convergence stop: a sample whose accepted step changed F_b by
at most ``rtol |F_b|`` (or whose scale fell below ``min_scale``) stops; ``stop[b]`` records
the step count at which it stopped (-1: still running). A chunk whose rows have all
stopped ends its loop early. With ``opts.skip``, layers ahead of the error front
(Theorem 1) are skipped as in ``pc.py`` (bit-identical).

The per-layer steps come from ``_auto_gammas``: ||W_l||_2 by power iteration (a vector
per layer kept across batches), then the block-Gershgorin bound of
``pckernels.pc.curvature_steps``.

Buffers in the activation layout (layers 1..N of (batch, n_l)) and per-row arrays live in
:data:`SafeState`; the layer-parallel build runs each phase with ``prange`` over layers
(each iteration writes only its own layer), the row phase serially.
"""
from collections import namedtuple

import numpy as np
from numba import prange

from ..config import jit, jit_pair
from .activations import _activate, _grad_from_output
from .dense import _affine, _vjp_dense_input
from .elementwise import _count_nonzero, _negate, _scaled_product
from .losses import NLL, _loss_grad
from .network import _bias, _layer, _n_blocks, _sum_chunks, _weight
from .pc import (I_FIRST, I_FWD, I_FWD_SKIPPED, I_NONZERO, I_VJP, I_VJP_SKIPPED, I_XCHANGED,
                 _chunk_bounds, _pc_gradient_rows, _pc_init_rows, _rows)

GD, MOMENTUM, ADAM = 0, 1, 2

#: Buffers of the safeguarded loop. Activation layout: the latents before a step (xb),
#: optimizer moments m1, m2 and their copies m1b, m2b. Per row (batch,): loss, energy at
#: the last accepted state, energy after the step, step factor
#: ``scale``, ``stop`` step (-1 running) and rejected-step count. ``row_sq`` (N+1, batch):
#: ||e_l[b]||^2 of the hidden errors (rows 1..L), computed where an error is computed.
#: ``gammas`` (N+1,): per-latent base steps (index 1..L). ``active`` (chunks,): rows still
#: running per chunk.
SafeState = namedtuple("SafeState", ["xb", "m1", "m2", "m1b", "m2b", "row_loss", "energy",
                                     "energy_new", "scale", "stop", "rejects", "row_sq",
                                     "gammas", "active"])
#: optimizer code, safeguard flag, relative energy tolerance of the stop (< 0: never stop),
#: beta1, beta2, eps of the latent optimizer, smallest step factor before a row stops.
SafeOpts = namedtuple("SafeOpts", ["optimizer", "safeguard", "rtol", "beta1", "beta2", "eps",
                                   "min_scale"])


@jit
def _predict(l, r0, r1, chunk, net, data, st, opts, force):
    """pred_{l+1} and gp_l for rows r0:r1 (eq. 3.9-3.10): the prediction half of
    ``pc._predict_errors`` (same skip rule), whose error half ``_predict_rows`` fuses with
    the per-row norms; returns whether the prediction was recomputed. A copy, not a call
    from ``pc._predict_errors``: splitting that kernel into this half and the error half
    made the fixed-step vpc path ~3% slower (the extra calls pass the state tuples)."""
    X = data.X
    batch = X.shape[0]
    sizes = net.sizes
    info = st.info[chunk]
    fresh_input = force or (not opts.skip) or (l > 0 and info[I_XCHANGED, l] != 0)
    if fresh_input:
        pred = _rows(st.pred, sizes, batch, l + 1, r0, r1)
        xin = X[r0:r1] if l == 0 else _rows(st.x, sizes, batch, l, r0, r1)
        _affine(xin, _weight(net.params, sizes, l), _bias(net.params, sizes, l), pred)
        _activate(pred, net.codes[l])
        _grad_from_output(pred, _rows(st.gp, sizes, batch, l + 1, r0, r1), net.codes[l])
        info[I_FWD, l + 1] += 1
    else:
        info[I_FWD_SKIPPED, l + 1] += 1
    return fresh_input


@jit
def _output_error(r0, r1, chunk, net, data, st):
    """e_N = -dloss/dh_N for rows r0:r1 from the current output prediction, and the
    chunk's loss sum (as ``pc._predict_errors`` does)."""
    batch = data.X.shape[0]
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    e = _rows(st.e, sizes, batch, n_layers, r0, r1)
    st.loss[chunk] = _loss_grad(_rows(st.pred, sizes, batch, n_layers, r0, r1),
                                data.labels[r0:r1], data.targets[r0:r1], net.loss_code, e)
    _negate(e)


@jit
def _predict_rows(l, t, r0, r1, chunk, net, data, st, opts, sg, force):
    """pred_{l+1}, g_l' and e_{l+1} for rows r0:r1 (eq. 3.9-3.11), with per-row losses.

    Skips (``opts.skip``, bit-identical) a prediction whose input latent did not change
    in this step, as ``pc._predict_layer`` does; ``force`` recomputes it anyway.
    """
    fresh = _predict(l, r0, r1, chunk, net, data, st, opts, force)
    batch = data.X.shape[0]
    sizes = net.sizes
    info = st.info[chunk]
    pred = _rows(st.pred, sizes, batch, l + 1, r0, r1)
    e = _rows(st.e, sizes, batch, l + 1, r0, r1)
    if l + 1 == sizes.shape[0] - 1:
        if fresh:
            _output_error(r0, r1, chunk, net, data, st)
            _row_losses(pred, e, data.labels, r0, net.loss_code, sg.row_loss)
    elif fresh or info[I_XCHANGED, l + 1] != 0:  # (as _predict_errors)
        _difference_row_squares(e, _rows(st.x, sizes, batch, l + 1, r0, r1), pred, r0,
                                sg.row_sq[l + 1])
    # once nonzero, a layer is treated as nonzero (never skipped) for the rest of the call
    if info[I_NONZERO, l + 1] == 0 and _count_nonzero(e) > 0:
        info[I_NONZERO, l + 1] = 1
        if info[I_FIRST, l + 1] < 0:
            info[I_FIRST, l + 1] = t


@jit
def _row_losses(out, e, labels, r0, code, row_loss):
    """row_loss[r0 + k] = loss of row k of ``out`` (rows r0.., in float64), given the
    output errors e = -dloss/dh_N: nll, log sum_j exp(out_j) - out_y; mse, ||e||^2 / 2."""
    for k in range(out.shape[0]):
        if code == NLL:
            m = np.float64(out[k, 0])
            for j in range(1, out.shape[1]):
                m = max(m, np.float64(out[k, j]))
            s = 0.0
            for j in range(out.shape[1]):
                s += np.exp(np.float64(out[k, j]) - m)
            row_loss[r0 + k] = np.log(s) + m - np.float64(out[k, labels[r0 + k]])
        else:
            s = 0.0
            for j in range(e.shape[1]):
                v = np.float64(e[k, j])
                s += v * v
            row_loss[r0 + k] = 0.5 * s


@jit
def _row_squares(e, r0, out):
    """out[r0 + k] = ||row k of e||^2, accumulated in float64."""
    for k in range(e.shape[0]):
        s = 0.0
        for j in range(e.shape[1]):
            v = np.float64(e[k, j])
            s += v * v
        out[r0 + k] = s


@jit
def _difference_row_squares(e, x, pred, r0, out):
    """e = x - pred (as ``_difference``) and out[r0 + k] = ||row k of e||^2 in the same
    pass, accumulated in float64 as ``_row_squares``."""
    n = e.shape[1]
    for k in range(e.shape[0]):
        s = 0.0
        for j in range(n):
            d = x[k, j] - pred[k, j]
            e[k, j] = d
            v = np.float64(d)
            s += v * v
        out[r0 + k] = s


@jit
def _all_row_squares(r0, r1, net, st, sg):
    """sg.row_sq[l, r0:r1] for every hidden error l = 1..L."""
    batch = sg.row_loss.shape[0]
    sizes = net.sizes
    for l in range(1, sizes.shape[0] - 1):
        _row_squares(_rows(st.e, sizes, batch, l, r0, r1), r0, sg.row_sq[l])


@jit
def _row_energies(r0, r1, net, pis, sg, out):
    """out[b] = sum_l pi_l/2 ||e_l[b]||^2 + pi_N loss_b for rows r0:r1 (eq. 3.8, per
    sample), from the squared row norms ``sg.row_sq`` kept up to date by the predictions."""
    n_layers = net.sizes.shape[0] - 1
    for i in range(r0, r1):
        out[i] = pis[n_layers] * sg.row_loss[i]
    for l in range(1, n_layers):
        half_pi = 0.5 * pis[l]
        sq = sg.row_sq[l]
        for i in range(r0, r1):
            out[i] += half_pi * sq[i]


@jit
def _restore_row(i, chunk, net, st, sg, so):
    """Put row i's latents (and moments) back as they were before the step. Its
    predictions, errors and loss are recomputed afterwards from these states by the same
    row-block products, which reproduces them bit for bit."""
    batch = sg.row_loss.shape[0]
    sizes = net.sizes
    info = st.info[chunk]
    for l in range(1, sizes.shape[0] - 1):
        if info[I_XCHANGED, l] == 0:  # skipped in this step: unchanged, and not copied
            continue
        _layer(st.x, sizes, batch, l)[i] = _layer(sg.xb, sizes, batch, l)[i]
        if so.optimizer == MOMENTUM:
            _layer(sg.m1, sizes, batch, l)[i] = 0  # adaptive restart (see _accept_rows)
        elif so.optimizer == ADAM:  # (momentum's copy is never needed)
            _layer(sg.m1, sizes, batch, l)[i] = _layer(sg.m1b, sizes, batch, l)[i]
            _layer(sg.m2, sizes, batch, l)[i] = _layer(sg.m2b, sizes, batch, l)[i]


@jit
def _update_layer(l, t, r0, r1, chunk, net, st, opts, sg, so):
    """Move latent l of the running rows r0:r1 against g_l with the latent optimizer.

    Skipped (``opts.skip``) while e_l and e_{l+1} are exactly zero in the whole chunk
    (ahead of the Theorem 1 front): then g_l = 0 and the moments are zero, so x_l would
    not change.
    """
    batch = sg.row_loss.shape[0]
    sizes = net.sizes
    info = st.info[chunk]
    if opts.skip and info[I_NONZERO, l] == 0 and info[I_NONZERO, l + 1] == 0:
        info[I_XCHANGED, l] = 0
        info[I_VJP_SKIPPED, l] += 1
        return
    info[I_XCHANGED, l] = 1
    q = _rows(st.q, sizes, batch, l + 1, r0, r1)
    _scaled_product(q, _rows(st.e, sizes, batch, l + 1, r0, r1),
                    _rows(st.gp, sizes, batch, l + 1, r0, r1), opts.pis[l + 1])
    v = _rows(st.v, sizes, batch, l, r0, r1)
    _vjp_dense_input(q, _weight(net.params, sizes, l), v)
    info[I_VJP, l] += 1
    x = _rows(st.x, sizes, batch, l, r0, r1)
    e = _rows(st.e, sizes, batch, l, r0, r1)
    m1 = _rows(sg.m1, sizes, batch, l, r0, r1)
    m2 = _rows(sg.m2, sizes, batch, l, r0, r1)
    ty = x.dtype.type
    pi = ty(opts.pis[l])
    b1, b2, eps = ty(so.beta1), ty(so.beta2), ty(so.eps)
    c1, c2 = ty(1.0 - so.beta1), ty(1.0 - so.beta2)
    k = t + 1
    inv_bc1 = ty(1.0 / (1.0 - so.beta1 ** k))
    inv_bc2 = ty(1.0 / (1.0 - so.beta2 ** k))
    xb = _rows(sg.xb, sizes, batch, l, r0, r1)
    m1b = _rows(sg.m1b, sizes, batch, l, r0, r1)
    m2b = _rows(sg.m2b, sizes, batch, l, r0, r1)
    n = x.shape[1]
    # Each loop also keeps the values it overwrites in xb (m1b, m2b): the copies a
    # rejected step is undone from (_restore_row), taken as the row is read for the
    # update instead of in a pass of their own; unused without the safeguard.
    for r in range(r1 - r0):
        if sg.stop[r0 + r] >= 0:  # (a stopped row is never restored, so not copied)
            continue
        s = ty(sg.gammas[l] * sg.scale[r0 + r])
        if so.optimizer == GD:
            for j in range(n):
                xj = x[r, j]
                xb[r, j] = xj
                x[r, j] = xj - s * (pi * e[r, j] - v[r, j])
        elif so.optimizer == MOMENTUM:  # (the velocity is zeroed on undo, not copied)
            for j in range(n):
                xj = x[r, j]
                xb[r, j] = xj
                m = b1 * m1[r, j] + (pi * e[r, j] - v[r, j])
                m1[r, j] = m
                x[r, j] = xj - s * m
        else:
            for j in range(n):
                xj = x[r, j]
                xb[r, j] = xj
                g = pi * e[r, j] - v[r, j]
                m_old, w_old = m1[r, j], m2[r, j]
                m1b[r, j] = m_old
                m2b[r, j] = w_old
                m = b1 * m_old + c1 * g
                w = b2 * w_old + c2 * g * g
                m1[r, j] = m
                m2[r, j] = w
                x[r, j] = xj - s * (m * inv_bc1) / (np.sqrt(w * inv_bc2) + eps)


@jit
def _accept_rows(t, r0, r1, chunk, net, st, opts, sg, so):
    """Keep or undo the step of each running row (safeguard) and apply the stop rule.

    Sets the number of rows of the chunk still running and returns the number of rows
    whose step was undone (their predictions must then be recomputed).
    """
    _row_energies(r0, r1, net, opts.pis, sg, sg.energy_new)
    active = 0
    rejected = 0
    for i in range(r0, r1):
        if sg.stop[i] >= 0:
            continue
        old, new = sg.energy[i], sg.energy_new[i]
        if so.safeguard and not new <= old:  # also rejects NaN
            # momentum's velocity is zeroed, an adaptive restart (O'Donoghue & Candes
            # 2015): the velocity that overshot would push the retry the same way
            _restore_row(i, chunk, net, st, sg, so)
            rejected += 1
            sg.scale[i] *= 0.5
            sg.rejects[i] += 1
            if sg.scale[i] < so.min_scale:
                sg.stop[i] = t + 1
        else:
            sg.energy[i] = new
            sg.scale[i] = min(1.0, 2.0 * sg.scale[i])
            if so.rtol >= 0 and abs(old - new) <= so.rtol * abs(old):
                sg.stop[i] = t + 1
        if sg.stop[i] < 0:
            active += 1
    sg.active[chunk] = active
    return rejected




def _safe_steps_body(t0, t1, r0, r1, chunk, net, data, st, opts, sg, so):
    """Steps t0..t1-1 for rows r0:r1; each layer phase loops over layers with ``prange``."""
    n_layers = net.sizes.shape[0] - 1
    for t in range(t0, t1):
        if sg.active[chunk] == 0:
            break
        for k in prange(n_layers - 1):
            _update_layer(k + 1, t, r0, r1, chunk, net, st, opts, sg, so)
        for l in prange(n_layers):
            _predict_rows(l, t + 1, r0, r1, chunk, net, data, st, opts, sg, False)
        if _accept_rows(t, r0, r1, chunk, net, st, opts, sg, so) > 0:
            for l in prange(n_layers):
                _predict_rows(l, t + 1, r0, r1, chunk, net, data, st, opts, sg, True)


_safe_steps_serial, _safe_steps_layer_parallel = jit_pair(_safe_steps_body)


@jit
def _safe_reset_rows(r0, r1, chunk, net, data, st, opts, sg):
    """Predictions, per-row losses and energies of rows r0:r1 at the current states and
    weights (after the initialisation, or after a weight step of iPC); moments kept."""
    for l in range(net.sizes.shape[0] - 1):
        _predict_rows(l, 0, r0, r1, chunk, net, data, st, opts, sg, True)
    _row_energies(r0, r1, net, opts.pis, sg, sg.energy)
    active = 0
    for i in range(r0, r1):
        active += sg.stop[i] < 0
    sg.active[chunk] = active


@jit
def _safe_init_rows(r0, r1, chunk, net, data, st, opts, sg, so):
    """Per-row state of the safeguarded loop at step 0 (after ``_pc_init_rows``): scale
    1, running, moments zero (momentum, Adam; plain steps never read them), per-row
    losses and energies."""
    batch = data.X.shape[0]
    sizes = net.sizes
    if so.optimizer != GD:
        for l in range(1, sizes.shape[0] - 1):
            _rows(sg.m1, sizes, batch, l, r0, r1)[:, :] = 0
            _rows(sg.m2, sizes, batch, l, r0, r1)[:, :] = 0
    for i in range(r0, r1):
        sg.scale[i] = 1.0
        sg.stop[i] = -1
        sg.rejects[i] = 0
    n_layers = sizes.shape[0] - 1
    _row_losses(_rows(st.pred, sizes, batch, n_layers, r0, r1),
                _rows(st.e, sizes, batch, n_layers, r0, r1), data.labels, r0, net.loss_code,
                sg.row_loss)
    _all_row_squares(r0, r1, net, st, sg)
    _row_energies(r0, r1, net, opts.pis, sg, sg.energy)
    sg.active[chunk] = r1 - r0


def _safe_init_body(init, chunk_rows, net, data, st, opts, sg, so):
    """Step 0 of the safeguarded loop for every chunk: ``_pc_init_rows`` (states,
    predictions, errors), then the per-row state; one call. Returns the batch-mean loss."""
    batch = data.X.shape[0]
    for c in prange(st.info.shape[0]):
        r0, r1 = _chunk_bounds(c, chunk_rows, batch)
        _pc_init_rows(init, c, r0, r1, net, data, st, opts)
        _safe_init_rows(r0, r1, c, net, data, st, opts, sg, so)
    return st.loss0.sum() / batch


_safe_init_serial, _safe_init_parallel = jit_pair(_safe_init_body)


def _safe_reset_body(chunk_rows, net, data, st, opts, sg):
    """Recompute predictions and energies of every chunk (iPC, after a weight step)."""
    batch = data.X.shape[0]
    for c in prange(st.info.shape[0]):
        r0, r1 = _chunk_bounds(c, chunk_rows, batch)
        _safe_reset_rows(r0, r1, c, net, data, st, opts, sg)


_safe_reset_serial, _safe_reset_parallel = jit_pair(_safe_reset_body)


def _safe_steps_batch_body(t0, t1, chunk_rows, net, data, st, opts, sg, so):
    """Batch-parallel schedule: chunks of rows run their safeguarded steps independently."""
    batch = data.X.shape[0]
    for c in prange(st.info.shape[0]):
        r0, r1 = _chunk_bounds(c, chunk_rows, batch)
        _safe_steps_serial(t0, t1, r0, r1, c, net, data, st, opts, sg, so)


_safe_steps_batch_serial, _safe_steps_batch_parallel = jit_pair(_safe_steps_batch_body)


def _safe_fused_batch_body(init, n_updates, chunk_rows, net, data, st, opts, sg, so, partial,
                           grad):
    """Batch schedule in one parallel region: init, safeguarded steps and each chunk's
    share of the update, then an ordered sum (as ``_pc_fused_batch_body``)."""
    batch = data.X.shape[0]
    for c in prange(partial.shape[0]):
        r0, r1 = _chunk_bounds(c, chunk_rows, batch)
        _pc_init_rows(init, c, r0, r1, net, data, st, opts)
        _safe_init_rows(r0, r1, c, net, data, st, opts, sg, so)
        _safe_steps_serial(0, n_updates, r0, r1, c, net, data, st, opts, sg, so)
        _pc_gradient_rows(r0, r1, net, data, st, opts, partial[c])
    for k in prange(_n_blocks(grad)):
        _sum_chunks(partial, grad, k)
    return st.loss0.sum() / batch


_safe_fused_batch_serial, _safe_fused_batch_parallel = jit_pair(_safe_fused_batch_body)


@jit
def _safe_run_serial(init, n_updates, net, data, st, opts, sg, so, grad):
    """Serial schedule, whole call in one kernel: init, safeguarded steps and the update
    of the whole batch as one chunk (what ``_safe_init_serial``, ``_safe_steps_serial``
    and ``_pc_gradient_serial`` compute one after the other). Returns the batch-mean
    loss at the initial states."""
    batch = data.X.shape[0]
    _pc_init_rows(init, 0, 0, batch, net, data, st, opts)
    _safe_init_rows(0, batch, 0, net, data, st, opts, sg, so)
    _safe_steps_serial(0, n_updates, 0, batch, 0, net, data, st, opts, sg, so)
    _pc_gradient_rows(0, batch, net, data, st, opts, grad)
    return st.loss0.sum() / batch


@jit
def _spectral_norms(params, sizes, vecs, iters, out):
    """out[l] ~ ||W_l||_2 by ``iters`` power iterations on W_l^T W_l per weight layer.

    ``vecs`` holds one unit vector of length n_{l+1} per layer, stacked; it is updated in
    place so that the next call starts from it (warm start across batches). The estimate
    ||W_l v|| with ||v|| = 1 never exceeds the true norm (the safeguard covers the gap).
    The input layer's W_0 is skipped (out[0] = NaN): no latent's step depends on it, as
    its input x_0 = X is clamped, and it is the widest matrix on image data.
    """
    n_layers = sizes.shape[0] - 1
    off = 0
    out[0] = np.nan
    for l in range(n_layers):
        n_in, n_out = sizes[l], sizes[l + 1]
        if l == 0:
            off += n_out
            continue
        W = _weight(params, sizes, l)
        v = vecs[off:off + n_out]
        u = np.zeros(n_in, dtype=np.float64)
        for it in range(iters + 1):
            for a in range(n_in):
                s = 0.0
                for b in range(n_out):
                    s += np.float64(W[a, b]) * v[b]
                u[a] = s
            if it == iters:
                break
            v[:] = 0.0
            for a in range(n_in):
                ua = u[a]
                for b in range(n_out):
                    v[b] += np.float64(W[a, b]) * ua
            norm = 0.0
            for b in range(n_out):
                norm += v[b] * v[b]
            norm = np.sqrt(norm)
            if norm == 0.0:
                break
            for b in range(n_out):
                v[b] /= norm
        s = 0.0
        for a in range(n_in):
            s += u[a] * u[a]
        out[l] = np.sqrt(s)
        off += n_out


@jit
def _curvature_steps(norms, pis, bounds, loss_curvature, step_size, gammas):
    """gammas[l] = step_size / R_l for latents l = 1..L (``pckernels.pc.curvature_steps``):
    R_l = pi_l (1 + a_{l-1} [l >= 2]) + pi_{l+1} (c_{l+1} a_l^2 + a_l [l < L]), a_l =
    norms[l] * bounds[l], c = 1 for hidden layers and ``loss_curvature`` at the output."""
    n = norms.shape[0]
    gammas[0] = 0.0
    gammas[n] = 0.0
    for l in range(1, n):
        a = norms[l] * bounds[l]
        c = loss_curvature if l + 1 == n else 1.0
        r = pis[l] * (1.0 + (norms[l - 1] * bounds[l - 1] if l >= 2 else 0.0))
        r += pis[l + 1] * (c * a * a + (a if l < n - 1 else 0.0))
        gammas[l] = step_size / r


@jit
def _auto_gammas(params, sizes, vecs, iters, pis, bounds, loss_curvature, step_size, norms,
                 gammas):
    """Power iteration for ||W_l|| (warm start from ``vecs``), then the curvature steps."""
    _spectral_norms(params, sizes, vecs, iters, norms)
    _curvature_steps(norms, pis, bounds, loss_curvature, step_size, gammas)


@jit
def _layer_energies(net, data, st, opts, out):
    """out[l-1] = pi_l/2 ||e_l||^2 over the batch for l = 1..L; out[N-1] = pi_N * loss sum."""
    batch = data.X.shape[0]
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    for l in range(1, n_layers):
        e = _layer(st.e, sizes, batch, l)
        s = 0.0
        for i in range(e.shape[0]):
            for j in range(e.shape[1]):
                v = np.float64(e[i, j])
                s += v * v
        out[l - 1] = 0.5 * opts.pis[l] * s
    out[n_layers - 1] = opts.pis[n_layers] * st.loss.sum()
