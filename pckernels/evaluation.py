"""A trained network on a labelled set (accuracy, loss, confusion) and on new inputs."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import DataError, _check_features, _flatten

#: Rows per forward pass, so that a large set is not held twice at once in the outputs.
CHUNK = 4096


@dataclass
class Evaluation:
    """How a network does on a labelled set.

    Attributes
    ----------
    n_samples : int
    accuracy : float
        Share of rows whose most probable (largest) output is the label.
    loss : float
        Mean loss of the network's own kind: negative log-likelihood for ``nll``,
        ``1/2 ||onehot(y) - output||^2`` for ``mse``.
    confusion : ndarray of shape (n_outputs, n_outputs), int64
        ``confusion[i, j]`` counts rows of label i predicted as j (scikit-learn's
        ``confusion_matrix`` layout).
    """

    n_samples: int
    accuracy: float
    loss: float
    confusion: np.ndarray

    def as_dict(self):
        """Plain Python values (the confusion matrix as nested lists)."""
        return {"n_samples": self.n_samples, "accuracy": self.accuracy, "loss": self.loss,
                "confusion": self.confusion.tolist()}


def evaluate(net, X, y):
    """Accuracy, mean loss and confusion matrix of ``net`` on (X, y).

    Parameters
    ----------
    net : MLP
    X : array of shape (n_samples, n_0)
    y : array of shape (n_samples,)
        Integer labels in ``0 .. n_N - 1``.

    Returns
    -------
    Evaluation

    Raises
    ------
    ValueError
        If X does not fit the network or a label is not one of its outputs.
    """
    X = net.check_input(X)
    labels, _ = net.check_targets(y, X.shape[0])
    n_out = int(net.sizes[-1])
    confusion = np.zeros((n_out, n_out), dtype=np.int64)
    total = 0.0
    for start in range(0, X.shape[0], CHUNK):
        out = net.forward(X[start:start + CHUNK]).astype(np.float64)
        lab = labels[start:start + CHUNK]
        rows = np.arange(len(lab))
        if net.loss == "nll":
            total -= out[rows, lab].sum()
        else:
            out[rows, lab] -= 1.0
            total += 0.5 * np.square(out).sum()
            out[rows, lab] += 1.0
        np.add.at(confusion, (lab, np.argmax(out, axis=1)), 1)
    n = X.shape[0]
    return Evaluation(n, float(np.trace(confusion) / n), float(total / n), confusion)


def predict(net, X):
    """Predicted classes and the network's outputs for X.

    Parameters
    ----------
    net : MLP
    X : array of shape (n_samples, n_0)

    Returns
    -------
    dict
        ``classes``: int64 array of shape (n_samples,), the argmax of the output; and
        ``probabilities`` (``nll`` networks: the softmax, float64) or ``outputs``
        (``mse`` networks: the raw output), of shape (n_samples, n_N).
    """
    out = net.forward(X)
    result = {"classes": np.argmax(out, axis=1).astype(np.int64)}
    if net.loss == "nll":
        # renormalised in float64, so that each row sums to 1 to double precision
        z = out.astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        result["probabilities"] = p / p.sum(axis=1, keepdims=True)
    else:
        result["outputs"] = out
    return result


def load_inputs(path, dtype="float64"):
    """The inputs X stored in an .npz (array ``X``, or its only array) or a .npy file.

    Inputs with more than two dimensions are flattened per sample; a 1-D array is one
    sample.

    Returns
    -------
    ndarray of shape (n_samples, n_features), ``dtype``, C-contiguous

    Raises
    ------
    DataError
        Naming the file: missing, unreadable, without X, or not numeric and finite.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                names = sorted(loaded.files)
                if "X" in names or len(names) == 1:
                    X = loaded["X" if "X" in names else names[0]]
                else:
                    raise DataError(f"{path}: no array X (found: "
                                    f"{', '.join(names) or 'nothing'})")
        else:
            X = loaded
    except DataError:
        raise
    except Exception as exc:  # np.load signals a bad file with many exception types
        raise DataError(f"{path}: cannot read as .npz or .npy ({type(exc).__name__}: "
                        f"{exc})") from None
    X = np.asarray(X)
    X = X[None, :] if X.ndim == 1 else _flatten(X)
    return _check_features(X, str(path), "X", dtype)

