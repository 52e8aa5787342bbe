"""Backpropagation through the public API (ALGORITHMS.md, section 2)."""
from dataclasses import dataclass, field

import numpy as np

from .config import get_threads
from .kernels.network import _backprop_chunks_parallel, _backprop_chunks_serial, _backprop_net


@dataclass
class GradientResult:
    """A parameter update expressed as a gradient of the batch-mean loss.

    Attributes
    ----------
    loss : float
        Batch-mean loss at the feedforward pass.
    grad : array of shape (n_params,)
        The update in the flat parameter layout of the network.
    dW, db : lists of arrays
        Views of ``grad`` shaped like ``net.weights`` and ``net.biases``.
    """
    loss: float
    grad: np.ndarray
    dW: list = field(repr=False)
    db: list = field(repr=False)


#: Rows per chunk of backprop's batch split. Batches of up to this many rows run as one
#: piece; larger ones are cut into fixed chunks that run in parallel when threads allow.
#: Fixed (not derived from the thread count) so results never depend on the thread count.
CHUNK_ROWS = 32


def backprop_into(net, X, labels, targets, grad):
    """Kernel-level backprop on already validated arrays; writes ``grad``, returns the loss."""
    batch = X.shape[0]
    ws = net.workspace(batch)
    if batch <= CHUNK_ROWS:
        return _backprop_net(X, labels, targets, net.loss_code, net.params, net.sizes,
                             net.codes, ws["h"], ws["d"], grad)
    partial = ws.get("partial")
    if partial is None:
        n_chunks = (batch + CHUNK_ROWS - 1) // CHUNK_ROWS
        partial = ws["partial"] = np.zeros((n_chunks, net.n_params), dtype=net.dtype)
        ws["losses"] = np.zeros(n_chunks, dtype=np.float64)
    kernel = _backprop_chunks_parallel if get_threads() > 1 else _backprop_chunks_serial
    return kernel(CHUNK_ROWS, X, labels, targets, net.loss_code, net.params, net.sizes,
                  net.codes, ws["h"], ws["d"], partial, ws["losses"], grad)


def backprop(net, X, y):
    """Gradients of the batch-mean loss by backpropagation.

    Parameters
    ----------
    net : MLP
    X : array of shape (batch, n_0)
    y : array of shape (batch,) of integer labels, or (batch, n_N) float targets (``mse``)

    Returns
    -------
    GradientResult
        ``.loss`` (batch mean), ``.dW``/``.db`` matching ``net.weights``/``net.biases``.
    """
    X = net.check_input(X)
    labels, targets = net.check_targets(y, X.shape[0])
    grad = net.zeros_like_params()
    loss = backprop_into(net, X, labels, targets, grad)
    dW, db = net.split(grad)
    return GradientResult(loss=float(loss), grad=grad, dW=dW, db=db)
