"""Output losses: value and per-sample gradient dloss_b/dh_N (ALGORITHMS.md, network section).

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
    """Sum over the batch of -log_softmax(logits)[y_b]; grad = softmax - onehot per sample."""
    batch, n_out = logits.shape
    total = 0.0
    for b in range(batch):
        row = logits[b]
        m = row[0]
        for j in range(1, n_out):
            if row[j] > m:
                m = row[j]
        s = row.dtype.type(0.0)
        for j in range(n_out):
            e = np.exp(row[j] - m)
            grad[b, j] = e
            s += e
        inv = row.dtype.type(1.0) / s
        for j in range(n_out):
            grad[b, j] *= inv
        y = labels[b]
        grad[b, y] -= row.dtype.type(1.0)
        total += np.log(s) + m - row[y]
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
