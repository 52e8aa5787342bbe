"""A scikit-learn classifier over :class:`pckernels.MLP` trained by backprop or a PC variant."""
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .model import MLP
from .training import ALGORITHMS, BatchUpdate, PCSettings, train


class PCClassifier(ClassifierMixin, BaseEstimator):
    """Multilayer perceptron classifier trained with backprop or predictive coding.

    A log-softmax output with the negative log-likelihood loss; labels of any type are
    mapped to output units through ``classes_``.

    Parameters
    ----------
    hidden : int or sequence of int, default (64, 64)
        Widths of the hidden layers (L = ``len(hidden)``); ``()`` gives a linear model.
    activation : str, default "tanh"
        Hidden activation, a key of ``pckernels.kernels.ACTIVATIONS``.
    algorithm : {"bp", "vpc", "scaled", "fpa", "zil", "ipc"}, default "bp"
        How the per-batch update is computed (ALGORITHMS.md).
    steps : int, optional
        Inference steps T of a PC algorithm; default as :class:`pckernels.PCSettings`.
    step_size : float, optional
        Inference step size; default as :class:`pckernels.PCSettings` (under the ``auto``
        rule, the multiplier of the curvature step).
    precision_ratio : float, default 1.0
        k, the hidden precisions of ``scaled``.
    optimizer : {"sgd", "adam"}, default "sgd"
    lr : float, default 0.05
    momentum : float, default 0.9
        SGD momentum (ignored by adam).
    batch_size : int, default 64
    epochs : int, default 10
        Passes over the data in :meth:`fit`; :meth:`partial_fit` makes one pass per call.
    dtype : {"float32", "float64"}, default "float32"
    random_state : int, RandomState instance or None, default 0
        Seeds the initialisation and the shuffling.
    step_rule : {"auto", "fixed"}, optional
        Inference step rule of vpc, scaled and ipc (default ``auto``; see
        :func:`pckernels.pc_infer`).
    latent_optimizer : {"gd", "momentum", "adam"}, default "gd"
        Optimizer of the latents (vpc, scaled, ipc).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X had string column names.
    net_ : MLP
        The trained network, sizes ``(n_features_in_, *hidden, n_classes)``.
    n_iter_ : int
        Epochs run (fit) or passes made (partial_fit) so far.
    loss_curve_ : list of float
        Mean training loss of each epoch or pass.
    """

    def __init__(self, hidden=(64, 64), activation="tanh", algorithm="bp", steps=None,
                 step_size=None, precision_ratio=1.0, optimizer="sgd", lr=0.05, momentum=0.9,
                 batch_size=64, epochs=10, dtype="float32", random_state=0, step_rule=None,
                 latent_optimizer="gd"):
        self.hidden = hidden
        self.activation = activation
        self.algorithm = algorithm
        self.steps = steps
        self.step_size = step_size
        self.precision_ratio = precision_ratio
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.epochs = epochs
        self.dtype = dtype
        self.random_state = random_state
        self.step_rule = step_rule
        self.latent_optimizer = latent_optimizer

    # -- helpers ---------------------------------------------------------------------

    def _hidden_sizes(self):
        hidden = self.hidden
        if isinstance(hidden, numbers.Integral):
            hidden = (hidden,)
        try:
            sizes = list(hidden)
        except TypeError:
            raise ValueError(f"hidden must be an int or a sequence of ints, got {hidden!r}")
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
                raise ValueError(f"hidden layer widths must be integers >= 1, got {hidden!r}")
        return [int(s) for s in sizes]

    def _pc_settings(self):
        return PCSettings(steps=self.steps, step_size=self.step_size,
                          precision_ratio=self.precision_ratio, step_rule=self.step_rule,
                          latent_optimizer=self.latent_optimizer)

    def _check_params(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; choose from "
                             f"{', '.join(ALGORITHMS)}")
        for name in ("batch_size", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        return self._hidden_sizes()

    def _new_network(self, n_features, n_classes, rng):
        sizes = [n_features] + self._check_params() + [n_classes]
        return MLP(sizes, activation=self.activation, loss="nll", dtype=self.dtype,
                   seed=int(rng.randint(np.iinfo(np.int32).max)))

    def _new_trainer(self, rng):
        """(update function, optimizer, shuffling generator) for partial_fit.

        Called after the network drew its seed from ``rng``, so that a first partial_fit
        shuffles exactly as a one-epoch fit does.
        """
        shuffle = np.random.default_rng(int(rng.randint(np.iinfo(np.int32).max)))
        return (BatchUpdate(self.net_, self.algorithm, self._pc_settings(), self.optimizer,
                            self.lr, self.momentum), shuffle)

    def _as_input(self, X):
        """X as a writable C-contiguous array of the network's dtype (Numba needs writable)."""
        X = np.ascontiguousarray(X, dtype=self.net_.dtype)
        return X if X.flags.writeable else X.copy()

    @staticmethod
    def _encode(classes, y):
        """Indices of y's labels in sorted ``classes``; ValueError for a label not among them."""
        idx = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
        bad = classes[idx] != y
        if np.any(bad):
            raise ValueError(f"y contains labels not in classes: {np.unique(y[bad])!r}")
        return idx.astype(np.int64)

    # -- fitting ---------------------------------------------------------------------

    def fit(self, X, y):
        """Train a fresh network for ``epochs`` passes over (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, reset=True, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        self._check_params()
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"PCClassifier needs samples of at least 2 classes, got "
                             f"{len(classes)} class")
        rng = check_random_state(self.random_state)
        self.classes_ = classes
        self.net_ = self._new_network(X.shape[1], len(classes), rng)
        self._trainer = None
        history = train(self.net_, self._as_input(X), y_idx.astype(np.int64),
                        algo=self.algorithm, pc=self._pc_settings(), epochs=self.epochs,
                        batch_size=self.batch_size, optimizer=self.optimizer, lr=self.lr,
                        momentum=self.momentum, seed=int(rng.randint(np.iinfo(np.int32).max)))
        self.loss_curve_ = [m.train_loss for m in history.epochs]
        self.n_iter_ = len(history.epochs)
        return self

    def partial_fit(self, X, y, classes=None):
        """One pass over (X, y), continuing from the current network and optimizer state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), optional
            All labels that will ever occur; required on the first call.

        Returns
        -------
        self
        """
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        X, y = validate_data(self, X, y, reset=first, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        if first:
            classes = np.unique(np.asarray(classes))
            if len(classes) < 2:
                raise ValueError("PCClassifier needs at least 2 classes, got "
                                 f"{len(classes)}")
            labels = self._encode(classes, y)
            rng = check_random_state(self.random_state)
            net = self._new_network(X.shape[1], len(classes), rng)
            self.classes_, self.net_ = classes, net
            self._trainer = self._new_trainer(rng)
            self.loss_curve_ = []
            self.n_iter_ = 0
        else:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(f"classes {np.unique(classes)!r} differ from the classes "
                                 f"of the first call {self.classes_!r}")
            self._check_params()
            labels = self._encode(self.classes_, y)
        if getattr(self, "_trainer", None) is None:
            # after fit() or unpickling: a fresh optimizer state
            self._trainer = self._new_trainer(check_random_state(self.random_state))
        update, shuffle = self._trainer
        net = self.net_
        X = net.check_input(self._as_input(X))
        labels, targets = net.check_targets(labels, X.shape[0])
        perm = shuffle.permutation(X.shape[0])
        X, labels = X[perm], labels[perm]
        total = 0.0
        call = self.n_iter_ + 1
        for b0 in range(0, X.shape[0], self.batch_size):
            b1 = min(X.shape[0], b0 + self.batch_size)
            total += update(X[b0:b1], labels[b0:b1], targets,
                            f"partial_fit call {call}, batch {b0 // self.batch_size + 1}"
                            ) * (b1 - b0)
        update.check_parameters()
        self.loss_curve_.append(total / X.shape[0])
        self.n_iter_ += 1
        return self

    # -- pickling --------------------------------------------------------------------

    def __getstate__(self):
        # An MLP's weights are views into its flat buffer, which pickle does not preserve:
        # store the architecture and the parameters and rebuild the network on load. The
        # optimizer state of partial_fit is not kept (the next call starts a fresh one).
        state = dict(super().__getstate__())
        state.pop("_trainer", None)
        net = state.pop("net_", None)
        if net is not None:
            state["_net_state"] = (net.config(), np.array(net.params))
        return state

    def __setstate__(self, state):
        state = dict(state)
        net_state = state.pop("_net_state", None)
        super().__setstate__(state)
        self._trainer = None
        if net_state is not None:
            config, params = net_state
            net = MLP(config["sizes"], activation=config["activation"], loss=config["loss"],
                      dtype=config["dtype"], seed=config["seed"])
            net.params[...] = params
            self.net_ = net

    # -- prediction ------------------------------------------------------------------

    def _log_proba(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self.net_.forward(self._as_input(X))

    def predict_log_proba(self, X):
        """Log class probabilities (the log-softmax of the output, in float64: finite where
        the probability underflows), shape (n_samples, n_classes), columns as ``classes_``."""
        z = self._log_proba(X).astype(np.float64)
        top = z.max(axis=1, keepdims=True)
        return z - (top + np.log(np.exp(z - top).sum(axis=1, keepdims=True)))

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns as ``classes_``."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """The most probable label for each row of X, shape (n_samples,)."""
        log_proba = self._log_proba(X)
        return self.classes_[np.argmax(log_proba, axis=1)]
