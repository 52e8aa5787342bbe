"""scikit-learn estimators over :class:`pckernels.MLP` trained by backprop or a PC variant.

:class:`PCClassifier` and :class:`PCRegressor` take the parameters of scikit-learn's
``MLPClassifier`` / ``MLPRegressor`` (same names, meanings and defaults, for the
stochastic solvers) plus pckernels' own (``algorithm``, ``steps``, ``step_size``,
``precision_ratio``, ``dtype``), so that one can replace the other in a pipeline or a
grid search. ``fit`` runs :func:`pckernels.training.train`; ``partial_fit`` runs the same
checked :class:`~pckernels.training.BatchUpdate`.
"""
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .feedback import check_feedback
from .kernels.activations import ACTIVATIONS
from .gpc import LABEL_ENERGIES, GenerativePC
from .model import MLP, check_init
from .training import (ALGORITHMS, OPTIMIZERS, BatchUpdate, PCSettings, default_batch_size,
                       default_lr, train)

#: Old parameter name -> its scikit-learn name (the old names still work, with a
#: FutureWarning).
RENAMED = {"hidden": "hidden_layer_sizes", "lr": "learning_rate_init", "epochs": "max_iter",
           "optimizer": "solver"}

#: scikit-learn's activation names that pckernels spells differently.
ACTIVATION_ALIASES = {"logistic": "sigmoid"}

_INT32_MAX = np.iinfo(np.int32).max


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and np.isfinite(value))


def _string_hidden_message(text):
    """The error for ``hidden_layer_sizes`` given as a string, naming the tuple to give.

    A string is refused rather than parsed: scikit-learn's ``MLPClassifier`` takes only
    ints, so a value it cannot take would make a pipeline or grid written for these
    estimators fail on it, and ``get_params`` would hold two spellings of one network.
    """
    words = str(text).strip().lower()
    tuple_text = None
    try:
        if words == "none":
            tuple_text = "()"
        elif "x" in words:
            width, depth = (int(w) for w in words.split("x"))
            if width >= 1 and depth >= 1:
                tuple_text = (f"{(width,) * depth}" if depth <= 4
                              else f"({width},) * {depth}")
        elif words:
            widths = tuple(int(w) for w in words.split(","))
            if all(w >= 1 for w in widths):
                tuple_text = f"{widths}"
    except ValueError:
        tuple_text = None
    if tuple_text is not None:
        return (f"hidden_layer_sizes={text!r} is pck's --hidden spelling; give the widths "
                f"as scikit-learn does: hidden_layer_sizes={tuple_text}")
    return ("hidden_layer_sizes must be an int or a sequence of ints (layer widths, e.g. "
            f"(64, 64)), got {text!r}")


class _BaseMLP(BaseEstimator):
    """What :class:`PCClassifier` and :class:`PCRegressor` share (see their docstrings)."""

    #: The network's loss: ``"nll"`` (classifier) or ``"mse"`` (regressor).
    _loss = None

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate_init=None, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, algorithm="bp", steps=None, step_size=None,
                 precision_ratio=1.0, dtype="float32", init="pytorch", param="standard",
                 gain=None, step_rule=None, latent_optimizer="gd", hidden=None, lr=None,
                 epochs=None, optimizer=None, feedback="symmetric", label_energy="gaussian"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.algorithm = algorithm
        self.steps = steps
        self.step_size = step_size
        self.precision_ratio = precision_ratio
        self.dtype = dtype
        self.init = init
        self.param = param
        self.gain = gain
        self.step_rule = step_rule
        self.latent_optimizer = latent_optimizer
        self.hidden = hidden
        self.lr = lr
        self.epochs = epochs
        self.optimizer = optimizer
        self.feedback = feedback
        self.label_energy = label_energy

    # -- parameters --------------------------------------------------------------------

    def _param(self, name):
        """The value of scikit-learn parameter ``name``, or of its deprecated old name.

        The old name, when set, wins with a FutureWarning; setting both to different
        values is an error.
        """
        value = getattr(self, name)
        old = next((o for o, new in RENAMED.items() if new == name), None)
        if old is None or getattr(self, old) is None:
            return value
        old_value = getattr(self, old)
        warnings.warn(f"{type(self).__name__}: '{old}' is deprecated; use '{name}' (the "
                      "scikit-learn name) instead", FutureWarning, stacklevel=4)
        default = type(self)().get_params()[name]
        if value != default and value != old_value:
            raise ValueError(f"give {name}={value!r} or its deprecated name {old}="
                             f"{old_value!r}, not both")
        return old_value

    def _hidden_sizes(self, hidden):
        if isinstance(hidden, str):
            raise ValueError(_string_hidden_message(hidden))
        if _is_int(hidden):
            hidden = (hidden,)
        try:
            sizes = list(hidden)
        except TypeError:
            raise ValueError("hidden_layer_sizes must be an int or a sequence of ints, got "
                             f"{hidden!r}") from None
        if isinstance(hidden, str) or not all(_is_int(s) and s >= 1 for s in sizes):
            raise ValueError("hidden_layer_sizes must be positive integers (layer widths), "
                             f"got {hidden!r}")
        return [int(s) for s in sizes]

    def _settings(self):
        """All parameters checked, as a dict of the values training uses.

        Raises ValueError naming the parameter for any invalid value (the ones checked
        deeper, such as ``dtype``, ``steps`` and ``step_size``, are named there).
        """
        s = {"hidden": self._hidden_sizes(self._param("hidden_layer_sizes")),
             "solver": self._param("solver"), "lr": self._param("learning_rate_init"),
             "max_iter": self._param("max_iter")}
        activation = ACTIVATION_ALIASES.get(self.activation, self.activation)
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(sorted(ACTIVATIONS))} "
                             f"or logistic, got {self.activation!r}")
        s["activation"] = activation
        if s["solver"] not in OPTIMIZERS:
            raise ValueError(f"solver must be one of {', '.join(OPTIMIZERS)}, got "
                             f"{s['solver']!r} (lbfgs is not offered)")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; choose from "
                             f"{', '.join(ALGORITHMS)}")
        for name, value in (("max_iter", s["max_iter"]),
                            ("n_iter_no_change", self.n_iter_no_change)):
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if s["lr"] is None:
            s["lr"] = default_lr(self.algorithm, 0.001, s["solver"])
        if not (_is_real(s["lr"]) and s["lr"] > 0):
            raise ValueError(f"learning_rate_init must be a finite number > 0, got "
                             f"{s['lr']!r}")
        for name in ("alpha", "tol"):
            value = getattr(self, name)
            if not (_is_real(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (_is_real(self.momentum) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if not (_is_real(self.validation_fraction) and 0 < self.validation_fraction < 1):
            raise ValueError(f"validation_fraction must lie in (0, 1), got "
                             f"{self.validation_fraction!r}")
        for name in ("shuffle", "verbose", "warm_start", "early_stopping"):
            if not isinstance(getattr(self, name), (bool, np.bool_, numbers.Integral)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        batch = self.batch_size
        if not (batch == "auto" if isinstance(batch, str) else _is_int(batch) and batch >= 1):
            raise ValueError(f"batch_size must be 'auto' or an integer >= 1, got {batch!r}")
        check_init(self.init, self.param, self.gain)
        check_feedback(self.feedback, self.algorithm)
        s["pc"] = PCSettings(steps=self.steps, step_size=self.step_size,
                             precision_ratio=self.precision_ratio, step_rule=self.step_rule,
                             latent_optimizer=self.latent_optimizer)
        return s

    def _batching(self, s, n_samples, warn=True):
        """Add the batch size and weight decay for ``n_samples`` training rows to ``s``
        (a batch size above ``n_samples`` is clipped, with a warning if ``warn``)."""
        batch = self.batch_size
        if batch == "auto":
            batch = min(default_batch_size(self.algorithm, 200), n_samples)
        elif batch > n_samples and not warn:
            batch = n_samples
        elif batch > n_samples:
            warnings.warn(f"batch_size={batch} is larger than the {n_samples} training "
                          "samples; it is clipped", UserWarning, stacklevel=3)
            batch = n_samples
        s["batch_size"] = int(batch)
        # scikit-learn adds alpha * W / batch to the batch-mean gradient
        s["weight_decay"] = float(self.alpha) / int(batch)
        return s

    # -- hooks of the subclasses ---------------------------------------------------------

    def _prepare_targets(self, y, first, classes=None):
        """``(targets for the network, n_outputs)``; sets ``classes_`` on a first fit."""
        raise NotImplementedError

    def _validation_score(self, X, y):
        """The early-stopping score of the network on (X, y), higher is better."""
        raise NotImplementedError

    def _split(self, X, y, rng):
        raise NotImplementedError

    # -- fitting -------------------------------------------------------------------------

    def _new_network(self, n_inputs, n_outputs, s, rng):
        if self.algorithm == "gpc":
            self._new_gpc(n_inputs, n_outputs, s, rng)
            return
        self.net_ = MLP([n_inputs] + s["hidden"] + [n_outputs], activation=s["activation"],
                        loss=self._loss, dtype=self.dtype,
                        seed=int(rng.randint(_INT32_MAX)), init=self.init,
                        param=self.param, gain=self.gain)
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(s["hidden"]) + 2
        self.out_activation_ = "softmax" if self._loss == "nll" else "identity"

    def _new_gpc(self, n_inputs, n_outputs, s, rng):
        """algorithm="gpc": a :class:`pckernels.GenerativePC` (label at the top)."""
        if self._loss != "nll":
            raise ValueError("algorithm 'gpc' is a classifier; use PCClassifier")
        if self.param != "standard":
            raise ValueError(f"param {self.param!r} does not apply to algorithm 'gpc'")
        if self.label_energy not in LABEL_ENERGIES:
            raise ValueError(f"label_energy must be one of {', '.join(LABEL_ENERGIES)}, got "
                             f"{self.label_energy!r}")
        self.net_ = GenerativePC([n_inputs] + s["hidden"] + [n_outputs],
                                 activation=s["activation"], label_energy=self.label_energy,
                                 dtype=self.dtype, seed=int(rng.randint(_INT32_MAX)),
                                 init=self.init, gain=self.gain)
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(s["hidden"]) + 2
        self.out_activation_ = "generative"

    def _as_input(self, X):
        """X as a writable C-contiguous array of the network's dtype (Numba needs writable)."""
        X = np.ascontiguousarray(X, dtype=self.net_.dtype)
        return X if X.flags.writeable else X.copy()

    def fit(self, X, y):
        """Train on (X, y) for up to ``max_iter`` epochs.

        A fresh network unless ``warm_start`` and already fitted. Stops early when the
        training loss (or, with ``early_stopping``, the validation score) has not improved
        by ``tol`` for ``n_iter_no_change`` epochs; with ``early_stopping`` the parameters
        of the best validation score are kept.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (classifier), or target values (regressor).

        Returns
        -------
        self

        Warns
        -----
        ConvergenceWarning
            When ``max_iter`` epochs ran and the stopping rule was not met.
        """
        warm = bool(self.warm_start) and hasattr(self, "net_")
        X, y = self._validate_xy(X, y, reset=not warm)
        s = self._settings()
        rng = check_random_state(self.random_state)
        targets, n_outputs = self._prepare_targets(y, first=not warm)
        if not warm:
            self._new_network(X.shape[1], n_outputs, s, rng)
            self.loss_curve_ = []
        mode_changed = warm and (self.validation_scores_ is None) == bool(self.early_stopping)
        if not warm or mode_changed:
            # a fresh stopping state (also when warm_start switches early_stopping)
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_, self.best_validation_score_ = [], -np.inf
                self.best_loss_ = None
            else:
                self.validation_scores_ = self.best_validation_score_ = None
                self.best_loss_ = np.inf
        X_val = y_val = None
        if self.early_stopping:
            X, X_val, targets, y_val = self._split(X, targets, rng)
            if X_val.shape[0] < 2:
                raise ValueError("the validation set is too small; increase "
                                 "validation_fraction or the size of the data")
        self._batching(s, X.shape[0])
        best_params = self.net_.params.copy()
        self.n_iter_ = 0

        def on_epoch(m):
            self.n_iter_ += 1
            self.loss_curve_.append(m.train_loss)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {m.train_loss:.8f}")
            if self.early_stopping:
                score = self._validation_score(X_val, y_val)
                self.validation_scores_.append(score)
                if self.verbose:
                    print(f"Validation score: {score:f}")
                better = score >= self.best_validation_score_ + self.tol
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best_params[:] = self.net_.params
            else:
                better = m.train_loss <= self.best_loss_ - self.tol
                self.best_loss_ = min(self.best_loss_, m.train_loss)
            self._no_improvement_count = 0 if better else self._no_improvement_count + 1
            stop = self._no_improvement_count > self.n_iter_no_change
            if stop and self.verbose:
                what = "Validation score" if self.early_stopping else "Training loss"
                print(f"{what} did not improve more than tol={self.tol:f} for "
                      f"{self.n_iter_no_change} consecutive epochs. Stopping.")
            return stop

        update, shuffle = self._new_trainer(s, rng)
        history = train(self.net_, self._as_input(X), targets, algo=self.algorithm,
                        pc=s["pc"], epochs=s["max_iter"], batch_size=s["batch_size"],
                        optimizer=s["solver"], lr=s["lr"], momentum=self.momentum,
                        weight_decay=s["weight_decay"], seed=shuffle,
                        shuffle=bool(self.shuffle), on_epoch=on_epoch,
                        feedback=self.feedback)
        # partial_fit continues with this run's optimizer state and shuffling, as
        # scikit-learn's does
        update.opt.load_state_dict(history.optimizer.state_dict())
        self._trainer = update, shuffle
        converged = self._no_improvement_count > self.n_iter_no_change
        if self.early_stopping:
            self.net_.params[:] = best_params
        if not converged and self.n_iter_ == s["max_iter"]:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({s['max_iter']}) "
                          "reached and the optimization hasn't converged yet.",
                          ConvergenceWarning, stacklevel=2)
        return self

    def _partial_fit(self, X, y, classes=None):
        first = not hasattr(self, "net_")
        if self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        X, y = self._validate_xy(X, y, reset=first)
        s = self._batching(self._settings(), X.shape[0], warn=False)
        targets, n_outputs = self._prepare_targets(y, first, classes)
        if first:
            rng = check_random_state(self.random_state)
            self._new_network(X.shape[1], n_outputs, s, rng)
            self._trainer = self._new_trainer(s, rng)
            self.loss_curve_, self.best_loss_ = [], np.inf
            self.validation_scores_ = self.best_validation_score_ = None
            self.n_iter_ = 0
        if getattr(self, "_trainer", None) is None:
            # after unpickling: a fresh optimizer state
            self._trainer = self._new_trainer(s, check_random_state(self.random_state))
        update, shuffle = self._trainer
        net = self.net_
        X = net.check_input(self._as_input(X))
        labels, targets = net.check_targets(targets, X.shape[0])
        if self.shuffle:
            perm = shuffle.permutation(X.shape[0])
            X = X[perm]
            labels = labels[perm] if labels.size else labels
            targets = targets[perm] if targets.size else targets
        total, batch, call = 0.0, s["batch_size"], self.n_iter_ + 1
        for b0 in range(0, X.shape[0], batch):
            b1 = min(X.shape[0], b0 + batch)
            total += update(X[b0:b1], labels[b0:b1] if labels.size else labels,
                            targets[b0:b1] if targets.size else targets,
                            f"partial_fit call {call}, batch {b0 // batch + 1}") * (b1 - b0)
        update.check_parameters()
        self.loss_curve_.append(total / X.shape[0])
        self.best_loss_ = min(self.best_loss_ if self.best_loss_ is not None else np.inf,
                              self.loss_curve_[-1])
        self.n_iter_ += 1
        return self

    def _new_trainer(self, s, rng):
        """(update function, shuffling generator) for partial_fit and fit.

        Called after the network drew its seed from ``rng``, so that a first partial_fit
        shuffles exactly as a one-epoch fit does.
        """
        shuffle = np.random.default_rng(int(rng.randint(_INT32_MAX)))
        return (BatchUpdate(self.net_, self.algorithm, s["pc"], s["solver"], s["lr"],
                            self.momentum, s["weight_decay"], self.feedback), shuffle)

    # -- fitted attributes ---------------------------------------------------------------

    @property
    def coefs_(self):
        """list of arrays, ``coefs_[l]`` of shape (n_l, n_{l+1}): the weights (views into
        the network's parameters, as scikit-learn's are the model's own arrays)."""
        return list(self.net_.weights)

    @property
    def intercepts_(self):
        """list of arrays, ``intercepts_[l]`` of shape (n_{l+1},): the biases (views)."""
        return list(self.net_.biases)

    # -- pickling ------------------------------------------------------------------------

    def __getstate__(self):
        # An MLP's weights are views into its flat buffer, which pickle does not preserve:
        # store the architecture and the parameters and rebuild the network on load. The
        # optimizer state is not kept (a partial_fit after loading starts a fresh one).
        state = dict(super().__getstate__())
        state.pop("_trainer", None)
        net = state.pop("net_", None)
        if net is not None:
            state["_net_state"] = (net.config(), np.array(net.params))
            state["_net_feedback"] = getattr(net, "feedback", None)
        return state

    def __setstate__(self, state):
        state = dict(state)
        net_state = state.pop("_net_state", None)
        net_feedback = state.pop("_net_feedback", None)
        super().__setstate__(state)
        self._trainer = None
        if net_state is not None:
            config, params = net_state
            if config.get("kind") == "gpc":
                net = GenerativePC.from_config(config)
                net.params[...] = params
                self.net_ = net
                return
            net = MLP(config["sizes"], activation=config["activation"], loss=config["loss"],
                      dtype=config["dtype"], seed=config["seed"],
                      init=config.get("init", "pytorch"), param=config.get("param", "standard"),
                      gain=config.get("gain"))
            net.params[...] = params
            net.feedback = net_feedback
            self.net_ = net

    def _forward(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self.net_.forward(self._as_input(X))


_PARAMETERS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (100,)
        Widths of the hidden layers (L = ``len(hidden_layer_sizes)``); ``()`` gives a
        linear model. ``pck train --hidden 64x2`` is ``(64, 64)`` here; a string is a
        ValueError that names the tuple, as scikit-learn takes no string either.
    activation : {"relu", "tanh", "logistic", "identity", "sigmoid", "leaky_relu"}, \
default "relu"
        Hidden activation (``logistic`` is ``sigmoid``).
    solver : {"adam", "sgd"}, default "adam"
        The optimizer (PyTorch's semantics; ``sgd`` has heavy-ball momentum, not
        scikit-learn's default Nesterov momentum). ``lbfgs`` is not offered.
    alpha : float, default 0.0001
        L2 penalty as in scikit-learn: ``alpha / batch_size`` times the parameters is added
        to the batch-mean gradient (here the biases are penalised too).
    batch_size : int or "auto", default "auto"
        Mini-batch size; ``"auto"`` is ``min(200, n_samples)`` (scikit-learn's), for
        ``algorithm="ilprox"`` ``min(8, n_samples)`` (its per-batch proximal step learns
        slowly on large batches, docs/algorithms.md); larger than n_samples is clipped
        with a warning.
    learning_rate_init : float, optional
        The (constant) learning rate; default 0.001, for ``algorithm="ilprox"`` 10 (its
        implicit-SGD step) and for gil with sgd 1 (``pckernels.training.default_lr``).
    max_iter : int, default 200
        Most epochs of :meth:`fit`.
    shuffle : bool, default True
        Shuffle the samples every epoch.
    random_state : int, RandomState instance or None, default None
        Seeds the initialisation, the validation split and the shuffling.
    tol : float, default 1e-4
        Stop when the training loss (validation score with ``early_stopping``) has not
        improved by at least ``tol`` for ``n_iter_no_change`` consecutive epochs.
    verbose : bool, default False
        Print the loss (and validation score) of every epoch to stdout.
    warm_start : bool, default False
        :meth:`fit` continues from the fitted network (with a fresh optimizer state).
    momentum : float, default 0.9
        SGD momentum, in [0, 1) (ignored by adam).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data (stratified for a
        classifier), stop on its score and keep the parameters of its best epoch.
    validation_fraction : float, default 0.1
    n_iter_no_change : int, default 10
    algorithm : {"bp", "vpc", "scaled", "fpa", "zil", "fazil", "ipc", "ilprox", "gil", "gpc"}, \
default "bp"
        How the per-batch update is computed (docs/algorithms.md). ilprox takes its own
        proximal step (``solver`` and ``momentum`` do not apply to it). ``gpc`` (classifier
        only) trains a generative PC model, :class:`pckernels.GenerativePC`, instead of an
        MLP: ``net_`` is then that model, ``predict`` infers its label node,
        ``predict_proba`` is the softmax of that node, and ``coefs_`` are the generator's
        weights, from the label down to the image.
    steps : int, optional
        Inference steps T of a PC algorithm; default L.
    step_size : float, optional
        Inference step size; default 1, or 0.1 / precision_ratio for ``scaled``.
    precision_ratio : float, default 1.0
        k, the hidden precisions of ``scaled``.
    dtype : {"float32", "float64"}, default "float32"
        The network's floating-point type.
    init : {"pytorch", "xavier", "orthogonal"}, default "pytorch"
        Weight initialisation (:class:`pckernels.MLP`); xavier or orthogonal let deep
        networks learn.
    param : {"standard", "mupc"}, default "standard"
        Parameterisation (:class:`pckernels.MLP`): muPC's multipliers, without its residual
        connections.
    gain : float, optional
        Gain of the xavier and orthogonal initialisations [default: the activation's].
    step_rule : {"auto", "fixed"}, optional
        Inference step rule of vpc, scaled and ipc (default ``auto``: a per-layer curvature
        step with a per-sample energy safeguard; see :func:`pckernels.pc_infer`).
    latent_optimizer : {"gd", "momentum", "adam"}, default "gd"
        Optimizer of the latents (vpc, scaled, ipc).
    feedback : {"symmetric", "fa", "kp"}, default "symmetric"
        Weights that carry the error down under bp, fpa and vpc (docs/algorithms.md,
        "Weight symmetry"): ``W^T``, a fixed random ``B`` (feedback alignment) or a ``B``
        that receives ``W``'s updates and its own weight decay (Kolen-Pollack). The
        matrices are kept in ``net_.feedback``. Under fa/kp, vpc uses the fixed step rule.
    label_energy : {"gaussian", "categorical"}, default "gaussian"
        ``algorithm="gpc"`` only: the energy tying its label node to the label.
    hidden, lr, epochs, optimizer : deprecated
        Old names of ``hidden_layer_sizes``, ``learning_rate_init``, ``max_iter`` and
        ``solver``; when set they are used, with a FutureWarning.
"""

_ATTRIBUTES_DOC = """
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X had string column names.
    net_ : MLP
        The trained network, sizes ``(n_features_in_, *hidden_layer_sizes, n_outputs_)``.
    coefs_ : list of ndarray
        ``coefs_[l]`` of shape (n_l, n_{l+1}), views into ``net_.params``.
    intercepts_ : list of ndarray
        ``intercepts_[l]`` of shape (n_{l+1},), views into ``net_.params``.
    n_iter_ : int
        Epochs run by the last :meth:`fit`, plus one per :meth:`partial_fit` call since.
    n_layers_, n_outputs_ : int
    out_activation_ : str
    loss_curve_ : list of float
        Mean training loss of each epoch or partial_fit call (without the L2 term).
    best_loss_ : float or None
        The smallest of ``loss_curve_``; None with ``early_stopping``.
    validation_scores_ : list of float or None
        The validation score of each epoch with ``early_stopping``, else None.
    best_validation_score_ : float or None
"""


class PCClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = f"""Multilayer perceptron classifier trained with backprop or predictive coding.

    Takes the parameters of scikit-learn's ``MLPClassifier`` (solvers sgd and adam) and
    pckernels' own. A log-softmax output with the negative log-likelihood loss; labels of
    any type are mapped to output units through ``classes_``.
    {_PARAMETERS_DOC}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    {_ATTRIBUTES_DOC}"""

    _loss = "nll"

    def _validate_xy(self, X, y, reset):
        X, y = validate_data(self, X, y, reset=reset, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        return X, y

    def _prepare_targets(self, y, first, classes=None):
        if first:
            classes = np.unique(y if classes is None else np.asarray(classes))
            if len(classes) < 2:
                raise ValueError(f"PCClassifier needs samples of at least 2 classes, got "
                                 f"{len(classes)} class")
            self.classes_ = classes
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes {np.unique(classes)!r} differ from the classes of the "
                             f"first call {self.classes_!r}")
        return self._encode(self.classes_, y), len(self.classes_)

    @staticmethod
    def _encode(classes, y):
        """Indices of y's labels in sorted ``classes``; ValueError for a label not among them."""
        idx = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
        bad = classes[idx] != y
        if np.any(bad):
            raise ValueError(f"y contains labels not in classes: {np.unique(y[bad])!r}")
        return idx.astype(np.int64)

    def _split(self, X, y, rng):
        return train_test_split(X, y, test_size=self.validation_fraction, stratify=y,
                                random_state=rng)

    def _validation_score(self, X, y):
        return float(np.mean(self.net_.predict(X) == y))

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
        if not hasattr(self, "net_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._partial_fit(X, y, classes)

    def predict_log_proba(self, X):
        """Log class probabilities (the log-softmax of the output, in float64: finite where
        the probability underflows), shape (n_samples, n_classes), columns as ``classes_``."""
        z = self._forward(X).astype(np.float64)
        top = z.max(axis=1, keepdims=True)
        return z - (top + np.log(np.exp(z - top).sum(axis=1, keepdims=True)))

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns as ``classes_``."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """The most probable label for each row of X, shape (n_samples,)."""
        out = self._forward(X)
        return self.classes_[np.argmax(out, axis=1)]


class PCRegressor(RegressorMixin, _BaseMLP):
    __doc__ = f"""Multilayer perceptron regressor trained with backprop or predictive coding.

    Takes the parameters of scikit-learn's ``MLPRegressor`` (solvers sgd and adam) and
    pckernels' own. An identity output with the loss ``1/2 ||y - output||^2`` per sample
    (scikit-learn's squared error for one output); y of shape (n_samples,) or
    (n_samples, n_outputs).
    {_PARAMETERS_DOC}
    Attributes
    ----------
    {_ATTRIBUTES_DOC}"""

    _loss = "mse"

    def _validate_xy(self, X, y, reset):
        return validate_data(self, X, y, reset=reset, dtype=(np.float64, np.float32),
                             multi_output=True, y_numeric=True)

    def _prepare_targets(self, y, first, classes=None):
        y = np.asarray(y, dtype=np.float64)
        y = y.reshape(-1, 1) if y.ndim == 1 else y
        if not first and y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y.shape[1]} outputs but the network was fitted with "
                             f"{self.n_outputs_}")
        return y, y.shape[1]

    def _split(self, X, y, rng):
        return train_test_split(X, y, test_size=self.validation_fraction, random_state=rng)

    def _validation_score(self, X, y):
        from sklearn.metrics import r2_score
        return float(r2_score(y, self.net_.forward(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def partial_fit(self, X, y):
        """One pass over (X, y), continuing from the current network and optimizer state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        return self._partial_fit(X, y)

    def predict(self, X):
        """The network's output in float64, shape (n_samples,) for one output, else
        (n_samples, n_outputs)."""
        out = self._forward(X).astype(np.float64)
        return out.ravel() if out.shape[1] == 1 else out
