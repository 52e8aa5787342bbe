"""Output losses: value and per-sample gradient dloss_b/dh_N (docs/algorithms.md, network section).

``LOSSES`` maps names to codes. Both kernels take the same arguments so that fused kernels
can dispatch on the code: integer ``labels`` of shape (batch,) serve ``nll``; float
``targets`` of shape (batch, n_out) serve ``mse`` (a (0, 0) array when unused).
"""
import numpy as np

from ..config import jit

NLL, MSE = 0, 1
LOSSES = {"nll": NLL, "mse": MSE}


@jit
def _nll(logits, labels, grad):
    """Sum over the batch of -log_softmax(logits)[y_b]; grad = softmax - onehot per sample.

    The true class's entry p_y - 1 is formed as -(sum of the other classes' p_j), and the
    loss as log1p(others / e_y) when y is the top class: both subtract nothing, so a
    confident prediction keeps its relative precision (p_y - 1 in float32 rounds to a few
    digits, or to exactly 0, once p_y is within 1e-7 of 1).
    """
    batch, n_out = logits.shape
    total = 0.0
    one = logits.dtype.type(1.0)
    for b in range(batch):
        row = logits[b]
        m = row[0]
        for j in range(1, n_out):
            if row[j] > m:
                m = row[j]
        y = labels[b]
        s = row.dtype.type(0.0)
        others = row.dtype.type(0.0)
        for j in range(n_out):
            e = np.exp(row[j] - m)
            grad[b, j] = e
            s += e
            if j != y:
                others += e
        inv = one / s
        for j in range(n_out):
            grad[b, j] *= inv
        grad[b, y] = -others * inv
        e_y = np.exp(np.float64(row[y]) - np.float64(m))
        if e_y >= 0.5:
            total += np.log1p(np.float64(others) / e_y)
        else:
            total += np.log(np.float64(s)) + np.float64(m) - np.float64(row[y])
    return total


@jit
def _mse(out, targets, grad):
    """Sum over the batch of 1/2 ||y_b - h_N||^2; grad = h_N - y per sample."""
    batch, n_out = out.shape
    total = 0.0
    for b in range(batch):
        for j in range(n_out):
            r = out[b, j] - targets[b, j]
            grad[b, j] = r
            total += 0.5 * r * r
    return total


@jit
def _loss_grad(out, labels, targets, code, grad):
    """Dispatch on the loss code; returns the batch *sum* of the loss."""
    if code == NLL:
        return _nll(out, labels, grad)
    return _mse(out, targets, grad)


@jit
def _log_softmax(logits, out):
    """out = log_softmax(logits) row by row."""
    batch, n_out = logits.shape
    for b in range(batch):
        m = logits[b, 0]
        for j in range(1, n_out):
            if logits[b, j] > m:
                m = logits[b, j]
        s = logits.dtype.type(0.0)
        for j in range(n_out):
            s += np.exp(logits[b, j] - m)
        lse = m + np.log(s)
        for j in range(n_out):
            out[b, j] = logits[b, j] - lse
