"""scikit-learn ``MLPClassifier`` (sgd, momentum 0.9, batch 64): time per epoch."""
import warnings

import numpy as np

from . import Unavailable


def make(sizes, batch=64, dtype="float32", lr=0.01, momentum=0.9, n_samples=60000, seed=0):
    """Return ``(epoch_fn, n_samples)``: ``epoch_fn()`` runs one ``partial_fit`` epoch.

    ``partial_fit`` on ``n_samples`` random rows is exactly one pass of mini-batches of
    ``batch`` rows. scikit-learn computes in float64 unless the input is float32.
    """
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
    except ImportError as exc:
        raise Unavailable(f"scikit-learn not installed ({exc})") from None
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((int(n_samples), sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], size=int(n_samples))
    clf = MLPClassifier(hidden_layer_sizes=tuple(int(s) for s in sizes[1:-1]),
                        activation="tanh", solver="sgd", momentum=0.9 if momentum is None
                        else momentum, nesterovs_momentum=False, batch_size=int(batch),
                        learning_rate_init=lr, max_iter=1, shuffle=False, random_state=seed)
    classes = np.arange(sizes[-1])

    def epoch():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.partial_fit(X, y, classes=classes)
    return epoch, int(n_samples)
