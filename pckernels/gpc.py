"""Generative (non-inverted) predictive coding classifier, ``gpc`` (docs/algorithms.md,
"Generative PC").

The traditional PC model the paper contrasts with the inverted ones (section 3.1.1 and
Point 1 of section 4): the label sits at the top of the hierarchy and predicts the image
through the hidden latents, ``x_{l+1} ~ N(g_l(x_l W_l + b_l), 1)``, from the label node
``x_0`` down to the image ``x_N``. Training clamps the image and the label and infers the
hidden latents (and the label node, tied to the label by the label energy); the weights
then descend the energy at the inferred states. Classification clamps the image only and
infers the label node from a neutral start; generation clamps the label and reads the
image off the top-down prediction.

The parameters live in an :class:`pckernels.MLP` from the label to the image (the
generator, ``sizes`` reversed), so the flat-buffer layout, the initialisations and the
optimizers are the project's. Inference is batched NumPy (matrix products through BLAS)
with the project's activation kernels.
"""
import os

import numpy as np

from .io import atomic_write
from .kernels.activations import ACTIVATIONS, _activate, _mul_grad_from_output
from .model import (MLP, _npz_member_header, check_input_array, check_labels,
                    check_sizes)

#: The label energies E_y(x_0; t) on the label node (docs/algorithms.md).
LABEL_ENERGIES = ("gaussian", "categorical")
#: The MLP loss whose meaning each label energy shares (``forward``/``evaluate``).
_LOSS_OF = {"gaussian": "mse", "categorical": "nll"}
#: Default inference settings: most steps (each sample stops once its energy has
#: converged), multiplier of the curvature step, relative energy change that stops.
DEFAULT_STEPS, DEFAULT_STEP_SIZE, DEFAULT_ENERGY_TOL = 50, 1.0, 1e-4
#: Largest value of the label energy's Hessian in x_0: 1 (Gaussian), 1/2 (softmax).
_LABEL_CURVATURE = {"gaussian": 1.0, "categorical": 0.5}
#: Upper bounds of |g'| per activation name.
_GRAD_BOUND = {"identity": 1.0, "tanh": 1.0, "relu": 1.0, "leaky_relu": 1.0, "sigmoid": 0.25}
#: A sample whose step factor falls below this after rejected steps stops.
MIN_SCALE = 2.0 ** -20
#: Power iterations for ||W_l||_2: on the first call, then per call (warm start).
POWER_ITERS_FIRST, POWER_ITERS = 30, 2
#: Weight of the old value in the moving average of the label codes, per batch.
CODE_MOMENTUM = 0.9
#: Rows per inference chunk in predict / forward (bounds the memory of the states).
CHUNK = 1024
FORMAT = "pckernels-gpc-1"


class GPCInference:
    """What :meth:`GenerativePC.infer` found.

    Attributes
    ----------
    states : list of arrays
        ``states[0]`` the label node x_0, shape (B, n_classes); ``states[l]`` the hidden
        latent x_l, shape (B, n_l), l = 1..L (generative order: top to bottom).
    energy : array of shape (B,)
        Energy F_b per sample after inference.
    energy_start : array of shape (B,)
    trace : list of arrays of shape (B,) or None
        F_b after every step (``trace=True``), starting with ``energy_start``.
    steps_run : int
        Steps run before every sample had stopped.
    rejected : int
        Steps (summed over samples) the energy safeguard rejected.
    layer_energy : array of shape (N + 1,)
        Sums over the batch of the label term and of ``1/2 ||e_l||^2``, l = 1..N.
    layer_step : array of shape (L + 1,)
        Curvature step of x_0 .. x_L.
    """

    def __init__(self, states, energy, energy_start, trace, steps_run, rejected,
                 layer_energy, layer_step):
        self.states, self.energy, self.energy_start = states, energy, energy_start
        self.trace, self.steps_run, self.rejected = trace, steps_run, rejected
        self.layer_energy, self.layer_step = layer_energy, layer_step


class GenerativePC:
    """Generative PC classifier: label -> hidden latents -> image (docs/algorithms.md,
    "Generative PC"; the paper's section 3.1.1).

    Parameters
    ----------
    sizes : sequence of int
        ``(n_0, n_1, ..., n_classes)`` in the classifier's order, as an MLP's: the image
        width first, the hidden widths from the image upwards, the number of classes
        last. The generator runs the other way: ``generator.sizes == sizes[::-1]``.
    activation : str
        Activation g_l of the hidden predictions (the image prediction is linear).
    label_energy : {"gaussian", "categorical"}
        Energy tying the label node x_0 to a target t (the one-hot label in training,
        the uniform 1/C when classifying): ``"gaussian"`` ``1/2 ||x_0 - t||^2`` (the label
        is one more unit-variance Gaussian layer, the paper's "gaussian-based supervision"),
        ``"categorical"`` the cross-entropy ``-sum_c t_c log softmax(x_0)_c``.
    dtype : {"float32", "float64"}
    seed : int
    init : {"pytorch", "xavier", "orthogonal"}
    gain : float, optional
        As :class:`pckernels.MLP`.
    label_precision : float, default 1
        pi_y, the weight of the label energy (a large value nearly clamps x_0 to the
        one-hot in training).
    steps, step_size, energy_tol : inference settings (see :meth:`infer`), kept with
        the model so that it classifies the way it was trained.

    Attributes
    ----------
    generator : MLP
        Holds the parameters: ``generator.weights[l]`` of shape (m_l, m_{l+1}) maps x_l
        to the prediction of x_{l+1} (m = sizes reversed); ``params`` is its flat buffer.
    loss : str
        ``"mse"`` (gaussian) or ``"nll"`` (categorical): what :meth:`forward` returns,
        with the meaning of an MLP's output of that loss.

    Raises
    ------
    ValueError
        For invalid sizes, names or settings.
    """

    def __init__(self, sizes, activation="tanh", label_energy="gaussian", dtype="float32",
                 seed=0, init="pytorch", gain=None, label_precision=1.0,
                 steps=DEFAULT_STEPS, step_size=DEFAULT_STEP_SIZE,
                 energy_tol=DEFAULT_ENERGY_TOL):
        sizes = check_sizes(sizes)
        if label_energy not in LABEL_ENERGIES:
            raise ValueError(f"unknown label energy {label_energy!r}; choose from "
                             f"{', '.join(LABEL_ENERGIES)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from "
                             f"{', '.join(sorted(ACTIVATIONS))}")
        if sizes[-1] < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {sizes[-1]}")
        self.generator = MLP(sizes[::-1], activation=activation, loss="mse", dtype=dtype,
                             seed=seed, init=init, gain=gain)
        self.sizes = np.array(sizes, dtype=np.int64)
        self.activation, self.label_energy = activation, label_energy
        self.dtype, self.seed, self.init = self.generator.dtype, seed, init
        self.gain = self.generator.gain
        self.set_inference(label_precision, steps, step_size, energy_tol)
        self.params = self.generator.params
        self.weights, self.biases = self.generator.weights, self.generator.biases
        self.multipliers = None
        self._power_vecs = None
        #: label_codes[c]: moving average of the label node x_0 that training inference
        #: found for class c (starts at the one-hot); generation clamps x_0 to it.
        self.label_codes = np.eye(self.n_classes)

    def set_inference(self, label_precision=None, steps=None, step_size=None,
                      energy_tol=None):
        """Change the inference settings (None keeps one); ValueError if invalid."""
        lp = getattr(self, "label_precision", None) if label_precision is None \
            else label_precision
        st = getattr(self, "steps", None) if steps is None else steps
        ss = getattr(self, "step_size", None) if step_size is None else step_size
        et = getattr(self, "energy_tol", None) if energy_tol is None else energy_tol
        if not (np.isfinite(lp) and lp > 0):
            raise ValueError(f"label_precision must be a finite number > 0, got {lp}")
        if isinstance(st, bool) or int(st) != st or st < 0:
            raise ValueError(f"steps must be an integer >= 0, got {st}")
        if not (np.isfinite(ss) and ss > 0):
            raise ValueError(f"step_size must be a finite number > 0, got {ss}")
        if not (np.isfinite(et) and et >= 0):
            raise ValueError(f"energy_tol must be a finite number >= 0, got {et}")
        self.label_precision, self.steps = float(lp), int(st)
        self.step_size, self.energy_tol = float(ss), float(et)

    # -- what training and evaluation expect of a network (as MLP) ---------------------

    @property
    def loss(self):
        return _LOSS_OF[self.label_energy]

    @property
    def n_classes(self):
        return int(self.sizes[-1])

    @property
    def n_layers(self):
        """Number of weight layers N (= hidden layers L + 1)."""
        return len(self.sizes) - 1

    @property
    def n_params(self):
        return self.generator.n_params

    def zeros_like_params(self):
        """A zeroed flat buffer in the parameter layout."""
        return self.generator.zeros_like_params()

    def split(self, flat):
        """Views ``(Ws, bs)`` of a flat buffer in the (generator's) parameter layout."""
        return self.generator.split(flat)

    def check_input(self, X):
        """Images as a C-contiguous (batch, n_0) array of the model dtype.

        Raises ValueError for a wrong shape, an empty batch, non-numbers or NaN/inf.
        """
        return check_input_array(X, self.sizes[0], self.dtype)

    def check_targets(self, y, batch):
        """``(labels, empty targets)``: integer labels in ``[0, n_classes)`` (ValueError)."""
        return check_labels(y, batch, self.n_classes), np.zeros((0, 0), dtype=self.dtype)

    # -- the energy and its gradients ----------------------------------------------------

    def _onehot(self, labels):
        t = np.zeros((len(labels), self.n_classes), dtype=self.dtype)
        t[np.arange(len(labels)), labels] = 1
        return t

    def _uniform(self, batch):
        return np.full((batch, self.n_classes), 1.0 / self.n_classes, dtype=self.dtype)

    def _predict_layers(self, states, X):
        """Predictions p_{l+1} = g_l(x_l W_l + b_l), l = 0..N-1, and errors e_{l+1}."""
        preds, errors = [], []
        for l, (W, b) in enumerate(zip(self.generator.weights, self.generator.biases)):
            p = states[l] @ W
            p += b
            _activate(p, int(self.generator.codes[l]))
            below = states[l + 1] if l + 1 < len(states) else X
            preds.append(p)
            errors.append(below - p)
        return preds, errors

    def _label_energy(self, x0, target):
        """Per-sample E_y(x_0; t) and its gradient r(x_0) - t (r: identity or softmax)."""
        if self.label_energy == "gaussian":
            d = x0 - target
            return 0.5 * np.einsum("ij,ij->i", d, d), d
        m = x0.max(axis=1, keepdims=True)
        ex = np.exp(x0 - m)
        s = ex.sum(axis=1, keepdims=True)
        logp = x0 - m - np.log(s)
        return -np.einsum("ij,ij->i", target, logp), ex / s - target

    def _energy(self, states, X, target):
        """Per-sample energy F_b, its terms per layer (B, N + 1), and the cache."""
        preds, errors = self._predict_layers(states, X)
        label, label_grad = self._label_energy(states[0], target)
        terms = np.empty((X.shape[0], len(errors) + 1), dtype=np.float64)
        terms[:, 0] = self.label_precision * label
        for l, e in enumerate(errors):
            terms[:, l + 1] = 0.5 * np.einsum("ij,ij->i", e, e)
        return terms.sum(axis=1), terms, (preds, errors, label_grad)

    def _deltas(self, cache):
        """delta_l = e_{l+1} * g_l'(z_l), l = 0..N-1."""
        preds, errors, _ = cache
        deltas = []
        for l, (p, e) in enumerate(zip(preds, errors)):
            d = e.copy()
            _mul_grad_from_output(d, p, int(self.generator.codes[l]))
            deltas.append(d)
        return deltas

    def _state_grads(self, states, cache, deltas):
        """dF/dx_l for the free states x_0 .. x_L."""
        _, errors, label_grad = cache
        grads = []
        for l in range(len(states)):
            g = -(deltas[l] @ self.generator.weights[l].T)
            g += errors[l - 1] if l > 0 else self.label_precision * label_grad
            grads.append(g)
        return grads

    def _weight_grad(self, states, deltas, grad):
        """dF/dtheta as a batch mean, written into the flat buffer ``grad``."""
        Ws, bs = self.generator.split(grad)
        B = states[0].shape[0]
        for l, d in enumerate(deltas):
            np.matmul(states[l].T, d, out=Ws[l])
            Ws[l] *= -1.0 / B
            bs[l][:] = d.sum(axis=0) * (-1.0 / B)

    def energy(self, states, X, labels=None):
        """Energy F_b per sample of ``states`` with image X and labels (None: the uniform
        target used when classifying), shape (B,) float64. See :meth:`infer`."""
        X = self.check_input(X)
        target = self._uniform(X.shape[0]) if labels is None else \
            self._onehot(self.check_targets(labels, X.shape[0])[0])
        states = [np.ascontiguousarray(s, dtype=self.dtype) for s in states]
        return self._energy(states, X, target)[0]

    def weight_gradient(self, states, X, labels=None):
        """dF/dtheta (batch mean, flat parameter layout) at ``states``: the PC weight rule.

        The update training applies is ``-lr`` times it (through the optimizer).
        """
        X = self.check_input(X)
        target = self._uniform(X.shape[0]) if labels is None else \
            self._onehot(self.check_targets(labels, X.shape[0])[0])
        states = [np.ascontiguousarray(s, dtype=self.dtype) for s in states]
        _, _, cache = self._energy(states, X, target)
        grad = self.zeros_like_params()
        self._weight_grad(states, self._deltas(cache), grad)
        return grad

    # -- inference -----------------------------------------------------------------------

    def _norms(self):
        """Estimates of ||W_l||_2 by power iteration, warm-started from the last call."""
        first = self._power_vecs is None
        if first:
            rng = np.random.default_rng(0)
            self._power_vecs = [rng.standard_normal(W.shape[1]) for W in self.weights]
        norms = []
        for l, W in enumerate(self.weights):
            W64 = np.asarray(W, dtype=np.float64)
            v = self._power_vecs[l]
            sigma = 0.0
            for _ in range(POWER_ITERS_FIRST if first else POWER_ITERS):
                u = W64 @ v
                sigma = np.linalg.norm(u)
                if sigma == 0 or not np.isfinite(sigma):
                    break
                v = W64.T @ (u / sigma)
                nv = np.linalg.norm(v)
                if nv == 0:
                    break
                v /= nv
            self._power_vecs[l] = v
            # the estimate is a lower bound: the energy safeguard covers the shortfall
            norms.append(float(np.linalg.norm(W64 @ v)) if np.isfinite(sigma) else np.inf)
        return norms

    def curvature_steps(self):
        """Step gamma_l of x_0 .. x_L: ``step_size / R_l`` with R_l the Gershgorin bound
        on the energy Hessian's block row l (docs/algorithms.md, "Generative PC")."""
        bound = _GRAD_BOUND.get(self.activation, 1.0)
        n = self.n_layers
        a = [nrm * (bound if l < n - 1 else 1.0) for l, nrm in enumerate(self._norms())]
        L = n - 1
        rows = []
        for l in range(L + 1):
            own = self.label_precision * _LABEL_CURVATURE[self.label_energy] if l == 0 \
                else 1.0 + a[l - 1]
            rows.append(own + a[l] ** 2 + (a[l] if l < L else 0.0))
        return np.array([self.step_size / r for r in rows])

    def infer(self, X, labels=None, steps=None, trace=False):
        """MAP inference of the label node and hidden latents with the image clamped.

        Energy (docs/algorithms.md, "Generative PC")::

            F_b = pi_y E_y(x_0; t) + sum_{l=1..N} 1/2 ||x_l - g_{l-1}(x_{l-1} W_{l-1}
                  + b_{l-1})||^2,   x_N = X

        with t = onehot(label) (training) or the uniform 1/C (classifying, ``labels=None``).
        x_0 starts at t (onehot(label) in training, the neutral 1/C when classifying),
        the hidden latents at the top-down prediction from x_0. Each
        step moves every latent by ``-scale_b gamma_l dF/dx_l`` (:meth:`curvature_steps`);
        a step that raises F_b is undone for that sample and its ``scale_b`` halves, an
        accepted one doubles it back towards 1; a sample stops once an accepted step
        changes F_b by at most ``energy_tol`` (relative). So F_b never rises.

        Parameters
        ----------
        X : array of shape (B, n_0)
        labels : array of shape (B,), optional
        steps : int, optional
            Most steps (default ``self.steps``).
        trace : bool
            Record F_b after every step.

        Returns
        -------
        GPCInference
        """
        X = self.check_input(X)
        B = X.shape[0]
        target = self._uniform(B) if labels is None else \
            self._onehot(self.check_targets(labels, B)[0])
        steps = self.steps if steps is None else int(steps)
        return self._infer(X, target, target.copy(), steps, trace)

    def _top_down(self, x0, noise=0.0, rng=None):
        """States x_0 .. x_L of the top-down pass, and the image prediction."""
        states = [x0]
        h = x0
        for l, (W, b) in enumerate(zip(self.generator.weights, self.generator.biases)):
            h = h @ W
            h += b
            _activate(h, int(self.generator.codes[l]))
            if l < self.n_layers - 1:
                if noise > 0:
                    h += (noise * rng.standard_normal(h.shape)).astype(self.dtype)
                states.append(h)
        return states, h

    def _infer(self, X, target, x0, steps, trace):
        B = X.shape[0]
        states, _ = self._top_down(np.ascontiguousarray(x0, dtype=self.dtype))
        F, terms, cache = self._energy(states, X, target)
        F_start = F.copy()
        record = [F.copy()] if trace else None
        layer_step = self.curvature_steps()
        gamma = layer_step.astype(self.dtype)  # a float64 factor would promote the states
        scale = np.ones(B)
        active = np.ones(B, dtype=bool)
        rejected, steps_run = 0, 0
        for _ in range(steps):
            if not active.any():
                break
            steps_run += 1
            deltas = self._deltas(cache)
            grads = self._state_grads(states, cache, deltas)
            move = (scale * active).astype(self.dtype)[:, None]
            proposal = [x - (gamma[l] * move) * g for l, (x, g) in enumerate(zip(states,
                                                                                   grads))]
            with np.errstate(over="ignore", invalid="ignore"):
                F_new, terms_new, cache_new = self._energy(proposal, X, target)
            ok = active & np.isfinite(F_new) & (F_new <= F)
            bad = active & ~ok
            rejected += int(bad.sum())
            small = np.abs(F - F_new) <= self.energy_tol * np.maximum(np.abs(F), 1e-30)
            rows = ok[:, None]
            states = [np.where(rows, p, x) for p, x in zip(proposal, states)]
            preds = [np.where(rows, p, q) for p, q in zip(cache_new[0], cache[0])]
            errors = [np.where(rows, p, q) for p, q in zip(cache_new[1], cache[1])]
            cache = (preds, errors, np.where(rows, cache_new[2], cache[2]))
            F = np.where(ok, F_new, F)
            terms = np.where(rows, terms_new, terms)
            scale = np.where(ok, np.minimum(1.0, 2.0 * scale), np.where(bad, scale / 2, scale))
            active &= ~(ok & small) & (scale >= MIN_SCALE)
            if trace:
                record.append(F.copy())
        result = GPCInference(states, F, F_start, record, steps_run, rejected,
                              terms.sum(axis=0), layer_step)
        result._cache = cache  # predictions and errors at the final states
        return result

    def train_gradient(self, X, labels, grad):
        """Infer with image and label clamped, then write the weight gradient dF/dtheta
        (batch mean) into ``grad``; returns ``(mean energy after inference, GPCInference)``.
        """
        result = self.infer(X, labels)
        self._weight_grad(result.states, self._deltas(result._cache), grad)
        return float(np.mean(result.energy)), result

    # -- classification and generation -----------------------------------------------

    def label_node(self, X):
        """The inferred label node x_0 for images X (labels unknown), shape (B, n_classes)."""
        X = self.check_input(X)
        out = np.empty((X.shape[0], self.n_classes), dtype=self.dtype)
        for start in range(0, X.shape[0], CHUNK):
            chunk = X[start:start + CHUNK]
            out[start:start + chunk.shape[0]] = self.infer(chunk).states[0]
        return out

    def forward(self, X):
        """Class scores for X of shape (batch, n_0), shape (batch, n_classes).

        ``categorical``: log softmax of the inferred label node (log-probabilities, as an
        ``nll`` MLP's output); ``gaussian``: the inferred label node itself (the mean of
        the one-hot, as an ``mse`` MLP's output).
        """
        x0 = self.label_node(X)
        if self.label_energy == "gaussian":
            return x0
        z = x0 - x0.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def predict(self, X):
        """Predicted class (argmax of the inferred label node) per row of X, shape (batch,)."""
        return np.argmax(self.label_node(X), axis=1)

    def update_label_codes(self, x0, labels):
        """Move ``label_codes[c]`` towards the mean of the rows of x0 (B, n_classes) of
        class c: an exponential moving average, weight :data:`CODE_MOMENTUM` per batch."""
        for c in np.unique(labels):
            mean = np.asarray(x0[labels == c], dtype=np.float64).mean(axis=0)
            self.label_codes[c] += (1.0 - CODE_MOMENTUM) * (mean - self.label_codes[c])

    def generate(self, labels, noise=0.0, seed=0, label_node="mean"):
        """Images generated for ``labels``: shape (len(labels), n_0).

        The label node is clamped (``label_node="mean"``) to ``label_codes[label]``, the
        value training inference gave it for that class on average, or (``"onehot"``) to
        onehot(label). The one-hot is the Gaussian label energy's minimum, and training
        leaves the Gaussian codes near it; the categorical energy has no finite minimum
        (the cross-entropy keeps widening the margin), its codes sit far from the one-hot
        (about +4 / -0.4 on digits), and the one-hot gives one blurred average image
        for every class. The image is then the top-down prediction. With the image free,
        the hidden latents' MAP given the label is that top-down pass (every error can be
        zero), so inference has nothing to do;
        ``noise > 0`` instead samples the hidden latents ancestrally,
        ``x_{l+1} = g_l(x_l W_l + b_l) + noise * N(0, I)`` (unit variance is ``noise=1``),
        and returns the image's mean given them.
        """
        labels, _ = self.check_targets(np.asarray(labels), len(labels))
        if not (np.isfinite(noise) and noise >= 0):
            raise ValueError(f"noise must be a finite number >= 0, got {noise}")
        if label_node not in ("mean", "onehot"):
            raise ValueError(f"label_node must be 'mean' or 'onehot', got {label_node!r}")
        rng = np.random.default_rng(seed)
        x0 = self._onehot(labels) if label_node == "onehot" else \
            self.label_codes[labels].astype(self.dtype)
        return self._top_down(x0, noise, rng)[1]

    # -- persistence ---------------------------------------------------------------------

    def config(self):
        """The model as a plain dict (saved with the parameters)."""
        return {"kind": "gpc", "sizes": [int(s) for s in self.sizes],
                "activation": self.activation, "label_energy": self.label_energy,
                "loss": self.loss, "dtype": str(self.dtype), "seed": self.seed,
                "init": self.init, "gain": self.gain,
                "label_precision": self.label_precision, "steps": self.steps,
                "step_size": self.step_size, "energy_tol": self.energy_tol,
                "label_codes": self.label_codes.tolist()}

    @classmethod
    def from_config(cls, config):
        """A model built from :meth:`config` (parameters freshly initialised)."""
        keys = ("activation", "label_energy", "dtype", "seed", "init", "gain",
                "label_precision", "steps", "step_size", "energy_tol")
        model = cls(config["sizes"], **{k: config[k] for k in keys if k in config})
        if "label_codes" in config:
            codes = np.asarray(config["label_codes"], dtype=np.float64)
            if codes.shape != model.label_codes.shape or not np.isfinite(codes).all():
                raise ValueError(f"label_codes must be finite with shape "
                                 f"{model.label_codes.shape}")
            model.label_codes[...] = codes
        return model

    def __getstate__(self):
        return {"config": self.config(), "params": self.params}

    def __setstate__(self, state):
        other = GenerativePC.from_config(state["config"])
        self.__dict__.update(other.__dict__)
        self.params[...] = state["params"]

    def save(self, path, **extra):
        """Write the model and its parameters to an ``.npz`` file, atomically."""
        import json

        def write(f):
            np.savez(f, params=self.params, config=np.array(json.dumps(self.config())),
                     format=np.array(FORMAT), **extra)
        atomic_write(path, write, binary=True)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`.

        Raises ``ValueError`` naming the file for anything else (another pckernels
        checkpoint, a corrupt file, an inconsistent architecture, non-finite values).
        """
        import json
        try:
            with np.load(os.fspath(path), allow_pickle=False) as f:
                if "format" not in f or str(f["format"]) != FORMAT:
                    raise ValueError("not a generative PC model (pck train --algo gpc "
                                     "--save)")
                config = json.loads(str(f["config"]))
                if not isinstance(config, dict):
                    raise ValueError("config must be a mapping")
                model = cls.from_config(config)
                shape, stored = _npz_member_header(f, "params")
                if shape != (model.n_params,) or stored.kind != "f":
                    raise ValueError(f"expected {model.n_params} floating-point "
                                     f"parameters, the file stores {shape} {stored}")
                params = f["params"]
        except Exception as exc:  # np.load signals bad files with many exception types
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if isinstance(exc, KeyError):
                reason = f"no {exc} entry"
            raise ValueError(f"{path}: cannot read a generative PC model ({reason})") \
                from None
        if not np.isfinite(params).all():
            raise ValueError(f"{path}: invalid model (non-finite parameters)")
        model.params[...] = params
        return model

    def __repr__(self):
        return (f"GenerativePC({'-'.join(str(s) for s in self.sizes)}, activation="
                f"{self.activation!r}, label_energy={self.label_energy!r}, "
                f"dtype={self.dtype})")


def is_gpc_file(path):
    """Whether ``path`` is an .npz written by :meth:`GenerativePC.save` (False for
    anything unreadable)."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as f:
            return "format" in f.files and str(f["format"]) == FORMAT
    except Exception:  # any unreadable file is simply not one
        return False


class GPCRunner:
    """The per-batch update of ``algo="gpc"`` for :class:`pckernels.training.GradientFn`.

    ``run(X, labels, targets, grad)`` infers with image and label clamped and writes the
    weight gradient; ``stats`` and ``energy_rose`` as :class:`pckernels.pc.PCRunner`'s.
    """

    def __init__(self, net, steps=None, step_size=None, energy_tol=None):
        if not isinstance(net, GenerativePC):
            raise ValueError("algo 'gpc' trains a pckernels.GenerativePC, not "
                             f"{type(net).__name__}")
        net.set_inference(steps=steps, step_size=step_size, energy_tol=energy_tol)
        self.net = net
        self.energy_rose = False
        self.stats = None
        self.step_size = net.step_size

    @property
    def _power_vecs(self):
        return self.net._power_vecs

    @_power_vecs.setter
    def _power_vecs(self, value):
        self.net._power_vecs = value

    def run(self, X, labels, targets, grad, weight_step=None):
        """Returns ``(mean energy after inference, GPCInference)``."""
        loss, result = self.net.train_gradient(X, labels, grad)
        self.energy_rose = bool(np.any(result.energy > result.energy_start))
        self.net.update_label_codes(result.states[0], labels)
        self.stats = {"steps_run": result.steps_run, "rejected": result.rejected,
                      "layer_energy": result.layer_energy, "layer_step": result.layer_step}
        return loss, result


def generation_grid(model, path, samples=8, noise=0.1, seed=0, image_shape=None,
                    label_node="mean"):
    """Write a labelled grid of generated images: one row per class, ``samples`` columns.

    Column 0 is the noiseless top-down prediction (the MAP image given the label); the
    other columns sample the hidden latents ancestrally with ``noise`` (see
    :meth:`GenerativePC.generate`), each column with its own draw.

    Parameters
    ----------
    model : GenerativePC
    path : str
        Image file; the format follows the extension (png, svg, pdf, ...).
    samples : int
        Images per class (>= 1).
    noise : float
        Standard deviation of the hidden-latent noise of columns 1.. (>= 0).
    image_shape : (height, width), optional
        Default: square ``sqrt(n_0)`` (8x8 digits, 28x28 MNIST).
    label_node : {"mean", "onehot"}
        What the label node is clamped to (:meth:`GenerativePC.generate`).

    Raises
    ------
    ImportError
        Without matplotlib.
    ValueError
        For a non-square image without ``image_shape``, or invalid arguments.
    """
    from .plot import _pyplot
    if isinstance(samples, bool) or int(samples) != samples or samples < 1:
        raise ValueError(f"samples must be an integer >= 1, got {samples}")
    n = int(model.sizes[0])
    if image_shape is None:
        side = int(round(np.sqrt(n)))
        if side * side != n:
            raise ValueError(f"the model's {n} image values do not form a square image")
        image_shape = (side, side)
    C = model.n_classes
    columns = [model.generate(np.arange(C), 0.0, label_node=label_node)]
    columns += [model.generate(np.arange(C), noise, seed=seed + j, label_node=label_node)
                for j in range(1, int(samples))]
    plt = _pyplot()
    width = max(0.9 * samples + 0.8, 4.2)  # room for the two-line title
    fig, axes = plt.subplots(C, int(samples), figsize=(width, 0.9 * C + 0.8),
                             squeeze=False)
    for c in range(C):
        for j, images in enumerate(columns):
            ax = axes[c][j]
            ax.imshow(np.clip(images[c].reshape(image_shape), 0, 1), cmap="gray_r",
                      vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"class {c}", rotation=0, ha="right", va="center")
    axes[0][0].set_title("no noise", fontsize=9)
    for j in range(1, int(samples)):
        axes[0][j].set_title(f"noise {j}", fontsize=9)
    node = "its class mean" if label_node == "mean" else "the one-hot"
    fig.suptitle(f"generative PC, {model.label_energy} label energy\nlabel node clamped to "
                 f"{node}, hidden noise {noise:g}", fontsize=9)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
