"""Backpropagation through the public API (docs/algorithms.md, section 2)."""
from dataclasses import dataclass, field

import numpy as np

from .kernels.network import _backprop_net


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


def backprop_into(net, X, labels, targets, grad):
    """Kernel-level backprop on already validated arrays; writes ``grad``, returns the loss.

    Serial on purpose: the products here are small, and concurrent BLAS calls from
    several threads do not scale (``pck bench`` shows it on the batch-parallel PC
    schedule, which splits the batch over threads and runs slower than serial).
    """
    ws = net.workspace(X.shape[0])
    return _backprop_net(X, labels, targets, net.loss_code, net.params, net.sizes, net.codes,
                         ws["h"], ws["d"], grad)


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
