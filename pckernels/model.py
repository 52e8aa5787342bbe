"""The multilayer perceptron: parameters in one flat buffer, layers as views into it."""
import os

import numpy as np

from .config import ensure_blas_serial
from .io import atomic_write
from .kernels.activations import ACTIVATIONS, IDENTITY, LEAKY_SLOPE
from .kernels.losses import LOSSES, _log_softmax
from .kernels.network import _forward_net, _layer
from .memory import MAX_WIDTH, check_memory

DTYPES = ("float32", "float64")

#: Weight initialisations (``MLP(init=...)``, ``--init``); "pytorch" is the paper's.
WEIGHT_INITS = ("pytorch", "xavier", "orthogonal")

#: Parameterisations (``MLP(param=...)``, ``--param``).
PARAMETERISATIONS = ("standard", "mupc")

#: Gain of each activation for "xavier" and "orthogonal", as ``torch.nn.init.calculate_gain``
#: (5/3 for tanh, sqrt(2) for relu): the factor that keeps the variance of the activities
#: from shrinking layer after layer through ``g``.
GAINS = {"tanh": 5.0 / 3.0, "relu": float(np.sqrt(2.0)),
         "leaky_relu": float(np.sqrt(2.0 / (1.0 + LEAKY_SLOPE ** 2))), "sigmoid": 1.0,
         "identity": 1.0}


def mupc_multipliers(sizes):
    """Per-weight-layer multipliers ``a_l`` of muPC for a network without skip connections.

    ``a_0 = 1/sqrt(n_0)`` (input layer), ``a_l = 1/sqrt(n_l)`` (hidden layers, fan-in
    ``n_l``), ``a_{N-1} = 1/n_{N-1}`` (output layer, muP's 1/width). One weight layer gets the
    input layer's ``1/sqrt(n_0)``. See :class:`MLP` for what differs from the paper.
    """
    sizes = [int(s) for s in sizes]
    n_layers = len(sizes) - 1
    out = [1.0 / np.sqrt(sizes[l]) for l in range(n_layers)]
    if n_layers >= 2:
        out[-1] = 1.0 / sizes[-2]
    return out


class _ParamList(list):
    """A list of views into the flat buffer; assigning ``lst[l] = a`` copies into the view."""

    def __setitem__(self, index, value):
        view = list.__getitem__(self, index)
        value = np.asarray(value)
        try:
            value = np.broadcast_to(value, view.shape)
        except ValueError:
            raise ValueError(f"expected shape {view.shape}, got {value.shape}") from None
        view[...] = value


def check_sizes(sizes):
    """``sizes`` as a list of Python ints: at least two, integral, in ``1 .. MAX_WIDTH``."""
    try:
        values = list(sizes)
    except TypeError:
        raise ValueError(f"sizes must be a sequence of layer widths, got {sizes!r}") from None
    out = []
    for s in values:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer, float,
                                                                 np.floating)):
            raise ValueError(f"layer widths must be integers, got {s!r} in {values}")
        if s != s or s in (float("inf"), float("-inf")) or int(s) != s:
            raise ValueError(f"layer widths must be integers, got {s!r} in {values}")
        out.append(int(s))
    if len(out) < 2:
        raise ValueError("sizes needs at least an input and an output width")
    if min(out) < 1:
        raise ValueError(f"every layer width must be >= 1, got {out}")
    if max(out) > MAX_WIDTH:
        raise ValueError(f"layer width {max(out)} is larger than the maximum {MAX_WIDTH}")
    return out


def check_dtype(dtype):
    """``dtype`` as a NumPy dtype if it is float32 or float64, else a ValueError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or str(dt) not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


def _npz_member_header(archive, key):
    """Shape and dtype of array ``key`` of an open .npz, read from its header only."""
    with archive.zip.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"unsupported .npy version {version} of {key!r}")
    return tuple(shape), np.dtype(dtype)


def check_init(init, param, gain=None):
    """ValueError unless ``init``, ``param`` and ``gain`` are known and go together."""
    if init not in WEIGHT_INITS:
        raise ValueError(f"unknown init {init!r}; choose from {', '.join(WEIGHT_INITS)}")
    if param not in PARAMETERISATIONS:
        raise ValueError(f"unknown param {param!r}; choose from "
                         f"{', '.join(PARAMETERISATIONS)}")
    if param == "mupc" and init != "pytorch":
        raise ValueError(f"param='mupc' sets its own initialisation (V ~ N(0, 1)); "
                         f"init={init!r} cannot be combined with it")
    if gain is not None:
        if isinstance(gain, (bool, np.bool_)) or not isinstance(gain, (int, float, np.integer,
                                                                        np.floating)):
            raise ValueError(f"gain must be a number, got {gain!r}")
        if not (np.isfinite(gain) and gain > 0):
            raise ValueError(f"gain must be finite and > 0, got {gain!r}")
        if init not in ("xavier", "orthogonal"):
            raise ValueError(f"gain applies to init='xavier' or 'orthogonal', not to "
                             f"init={init!r}" + (" with param='mupc'" if param == "mupc"
                                                 else ""))


def resolve_gain(init, activation, gain=None):
    """The gain ``init`` uses: ``gain``, else ``GAINS[activation]``; None for "pytorch"."""
    if init not in ("xavier", "orthogonal"):
        return None
    return float(GAINS[activation] if gain is None else gain)


def orthogonal(rng, n_in, n_out):
    """A float64 (n_in, n_out) matrix with orthonormal columns (n_in >= n_out) or rows.

    The Q of the QR decomposition of a standard Gaussian matrix, each column multiplied by
    the sign of R's diagonal so that the result is uniform (Haar) and fixed by ``rng``.
    """
    a = rng.standard_normal(size=(max(n_in, n_out), min(n_in, n_out)))
    q, r = np.linalg.qr(a)
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)
    return q if n_in >= n_out else q.T


def _check_name(kind, name, registry):
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; choose from {', '.join(sorted(registry))}")
    return registry[name]



def check_input_array(X, n_in, dtype):
    """Inputs as a C-contiguous array of shape (batch, n_in) and type ``dtype``; a 1-D
    ``X`` is one row.

    Raises
    ------
    ValueError
        For a wrong shape, an empty batch, non-numbers, NaN/inf, or a value that
        overflows ``dtype`` (naming the first such entry).
    """
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != n_in:
        raise ValueError(f"X must have shape (batch, {n_in}), got {X.shape}")
    if X.shape[0] < 1:
        raise ValueError("X is empty")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must be real numbers, got dtype {X.dtype}")
    original = X
    with np.errstate(over="ignore", invalid="ignore"):
        X = np.ascontiguousarray(X, dtype=dtype)
    finite = np.isfinite(X)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        value = original[row, col]
        if np.isfinite(value):
            raise ValueError(f"X[{row}, {col}] = {value:g} overflows {X.dtype.name}")
        raise ValueError(f"X contains NaN or infinite values (first at row {row}, "
                         f"column {col})")
    return X


def check_labels(y, batch, n_classes):
    """Integer class labels of shape (batch,) in ``[0, n_classes)`` as int64.

    Raises
    ------
    ValueError
        For a wrong shape, non-integers (floats with a fraction count), or a label out of
        range.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != batch:
        raise ValueError(f"y must have shape ({batch},), got {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or np.any(y != np.round(y)):
            raise ValueError("labels must be integers")
    elif y.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    labels = y.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes - 1}], got range "
                         f"[{labels.min()}, {labels.max()}]")
    return labels


class MLP:
    """A fully connected network ``h_{l+1} = g_l(h_l W_l + b_l)`` (docs/algorithms.md).

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``(n_0, ..., n_N)``: inputs, hidden layers, outputs. At least two.
    activation : str
        Hidden activation, a key of ``pckernels.kernels.ACTIVATIONS``; the output layer is
        always the identity.
    loss : {"nll", "mse"}
        ``nll``: log-softmax + negative log-likelihood over integer labels; ``mse``: 1/2
        squared error (Gaussian output with unit variance).
    dtype : {"float32", "float64"}
    seed : int
        Seed of the initialisation (the same seed always gives the same parameters).
    init : {"pytorch", "xavier", "orthogonal"}
        Weight initialisation (drawn in float64 from ``numpy.random.default_rng(seed)``, then
        cast to ``dtype``):

        - ``"pytorch"`` (default, the paper's, section 3.4.2): ``W_l, b_l ~ U(-1/sqrt(n_l),
          1/sqrt(n_l))``, as PyTorch's ``nn.Linear``. Its weight variance ``1/(3 n_l)``
          is a third of the critical ``1/n_l`` of tanh, so the input's signal fades layer
          by layer: a tanh network of 20 hidden layers stays at chance.
        - ``"xavier"``: Glorot uniform, ``W_l ~ U(-a, a)`` with ``a = gain *
          sqrt(6 / (n_l + n_{l+1}))`` (variance ``gain^2 * 2 / (n_l + n_{l+1})``), biases 0.
        - ``"orthogonal"``: ``W_l = gain * Q`` with ``Q`` from the QR decomposition of a
          standard Gaussian matrix, signs fixed by ``diag(R)`` (as
          ``torch.nn.init.orthogonal_``): ``Q^T Q = I`` when ``n_l >= n_{l+1}``, else
          ``Q Q^T = I``. Biases 0.

        ``gain`` (default ``GAINS[activation]``, PyTorch's ``calculate_gain``: 5/3 for
        tanh) multiplies every weight layer, the output layer included.
    gain : float, optional
        Gain of ``"xavier"`` and ``"orthogonal"`` (an error with the other inits). For
        predictive coding a smaller gain (1) makes inference better conditioned: the energy's
        Hessian block of a latent grows with ``||W||^2``.
    param : {"standard", "mupc"}
        ``"standard"``: the parameters are the weights. ``"mupc"``: muPC (Innocenti,
        Achour & Buckley 2025, "muPC: Scaling Predictive Coding to 100+ Layer Networks"),
        the Depth-muP parameterisation: the trainable parameters are ``V_l ~ N(0, 1)`` and
        the layer computes ``g(a_l h_l V_l + b_l)`` with the multipliers of
        :func:`mupc_multipliers` (``1/sqrt(n_0)`` input, ``1/sqrt(width)`` hidden,
        ``1/width`` output). The multiplier is folded into the stored weights, ``W_l = a_l
        V_l``, so every kernel (forward, backprop, every PC variant, evaluation) runs
        unchanged; the :class:`pckernels.training.Optimizer` steps in the ``V`` coordinates
        (``multipliers``), which makes SGD, momentum, Adam and weight decay act on ``V``
        exactly as in the paper's parameterisation. ``init`` must be left at its default.
        What differs from the paper: its networks are residual (``z_l = z_{l-1} + a_l
        V_l phi(z_{l-1})``) with the depth-dependent hidden multiplier ``1/sqrt(width *
        depth)``; this MLP has no skip connections, so it takes the rule the paper's code
        (jpc) uses for networks without skips, ``1/sqrt(width)``, and nothing depends on
        depth; the paper's layers have no biases, here the biases start at 0 and are
        trained with multiplier 1; the latents of PC are the post-activation values
        ``h_l`` here, pre-activations in the paper. Without the skips this is LeCun-normal
        scaling (gain 1) with a ``1/width`` read-out, and it does not make a deep tanh MLP
        trainable the way ``"xavier"`` or ``"orthogonal"`` do.

    Attributes
    ----------
    weights : list of arrays, ``weights[l]`` of shape (n_l, n_{l+1})
    biases : list of arrays, ``biases[l]`` of shape (n_{l+1},)
        Writable views into the flat buffer ``params``.
    multipliers : array of shape (n_params,) or None
        ``param="mupc"``: the multiplier of every parameter in the layout of ``params``
        (``a_l`` for the entries of ``W_l``, 1 for biases); None for ``"standard"``.
    feedback : pckernels.feedback.Feedback or None
        Feedback weights ``B_l`` of fa / kp training (docs/algorithms.md, "Weight
        symmetry"); None (the default) for symmetric feedback.
    """

    def __init__(self, sizes, activation="tanh", loss="nll", dtype="float32", seed=0,
                 init="pytorch", param="standard", gain=None):
        sizes = check_sizes(sizes)
        self.activation_code = _check_name("activation", activation, ACTIVATIONS)
        self.loss_code = _check_name("loss", loss, LOSSES)
        dtype = check_dtype(dtype)
        check_init(init, param, gain)
        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        check_memory(n_params * dtype.itemsize, f"an MLP {'-'.join(map(str, sizes))}")
        self.sizes = np.array(sizes, dtype=np.int64)
        self.activation = activation
        self.loss = loss
        self.dtype = np.dtype(dtype)
        self.seed = seed
        self.init = init
        self.param = param
        self.gain = resolve_gain(init, activation, gain)
        n_layers = len(sizes) - 1
        self.codes = np.full(n_layers, self.activation_code, dtype=np.int64)
        self.codes[-1] = IDENTITY
        self.params = np.zeros(self.n_params, dtype=self.dtype)
        self.weights = _ParamList()
        self.biases = _ParamList()
        off = 0
        for l in range(n_layers):
            n_in, n_out = sizes[l], sizes[l + 1]
            list.append(self.weights, self.params[off:off + n_in * n_out].reshape(n_in, n_out))
            off += n_in * n_out
            list.append(self.biases, self.params[off:off + n_out])
            off += n_out
        self.multipliers = None
        if param == "mupc":
            self.multipliers = np.ones(self.n_params, dtype=self.dtype)
            for W, a in zip(self.split(self.multipliers)[0], mupc_multipliers(sizes)):
                W[...] = a
        self.reset(seed)
        #: feedback weights B_l of fa / kp training (:mod:`pckernels.feedback`), or None
        self.feedback = None
        self._workspaces = {}
        ensure_blas_serial()

    def __getstate__(self):
        return {"config": self.config(), "params": self.params, "feedback": self.feedback}

    def __setstate__(self, state):
        cfg = state["config"]
        self.__init__(cfg["sizes"], cfg["activation"], cfg["loss"], cfg["dtype"], cfg["seed"],
                      cfg.get("init", "pytorch"), cfg.get("param", "standard"), cfg.get("gain"))
        self.params[...] = state["params"]
        self.feedback = state.get("feedback")

    @property
    def n_layers(self):
        """Number of weight layers N (= hidden layers L + 1)."""
        return len(self.sizes) - 1

    @property
    def n_params(self):
        s = self.sizes
        return int(np.sum(s[:-1] * s[1:] + s[1:]))

    def reset(self, seed=0):
        """Re-draw all parameters with the network's ``init`` and ``param`` (see the class)."""
        rng = np.random.default_rng(seed)
        if self.param == "mupc":
            for W, b, a in zip(self.weights, self.biases, mupc_multipliers(self.sizes)):
                W[...] = a * rng.standard_normal(size=W.shape)
                b[...] = 0
            return
        gain = self.gain
        for W, b in zip(self.weights, self.biases):
            n_in, n_out = W.shape
            if self.init == "pytorch":
                bound = 1.0 / np.sqrt(n_in)
                W[...] = rng.uniform(-bound, bound, size=W.shape)
                b[...] = rng.uniform(-bound, bound, size=b.shape)
                continue
            if self.init == "xavier":
                bound = gain * np.sqrt(6.0 / (n_in + n_out))
                W[...] = rng.uniform(-bound, bound, size=W.shape)
            else:
                W[...] = gain * orthogonal(rng, n_in, n_out)
            b[...] = 0

    def zeros_like_params(self):
        """A zeroed flat buffer in the parameter layout."""
        return np.zeros_like(self.params)

    def split(self, flat):
        """Views ``(Ws, bs)`` of a flat buffer in the parameter layout."""
        Ws, bs, off = [], [], 0
        for W, b in zip(self.weights, self.biases):
            Ws.append(flat[off:off + W.size].reshape(W.shape))
            off += W.size
            bs.append(flat[off:off + b.size])
            off += b.size
        return Ws, bs

    def workspace(self, batch):
        """Preallocated activation buffers for a batch size (reused across calls)."""
        def make():
            n = batch * int(np.sum(self.sizes[1:]))
            return {"h": np.zeros(n, dtype=self.dtype), "d": np.zeros(n, dtype=self.dtype)}
        return self.cached_workspace(batch, make)

    def cached_workspace(self, key, make):
        """The buffers stored under ``key``, made by ``make()`` on first use (backprop's,
        PC inference's and the feedback kernels' workspaces); at most a few kept."""
        ws = self._workspaces.get(key)
        if ws is None:
            ws = make()
            if len(self._workspaces) > 8:
                self._workspaces.clear()
            self._workspaces[key] = ws
        return ws

    def check_input(self, X):
        """Validate and convert inputs to a C-contiguous (batch, n_0) array of the model dtype."""
        return check_input_array(X, self.sizes[0], self.dtype)

    def check_targets(self, y, batch):
        """Return ``(labels, targets)`` arrays for the loss kernels.

        ``nll`` takes integer labels in ``[0, n_N)``; ``mse`` takes either integer labels
        (one-hot encoded here) or a float array of shape (batch, n_N).
        """
        y = np.asarray(y)
        n_out = int(self.sizes[-1])
        if self.loss == "mse" and y.ndim == 2:
            if y.shape != (batch, n_out):
                raise ValueError(f"targets must have shape ({batch}, {n_out}), got {y.shape}")
            targets = np.ascontiguousarray(y, dtype=self.dtype)
            if not np.isfinite(targets).all():
                raise ValueError("targets contain NaN or infinite values")
            return np.zeros(0, dtype=np.int64), targets
        labels = check_labels(y, batch, n_out)
        if self.loss == "mse":
            targets = np.zeros((batch, n_out), dtype=self.dtype)
            targets[np.arange(batch), labels] = 1
            return labels, targets
        return labels, np.zeros((0, 0), dtype=self.dtype)

    def _forward_raw(self, X):
        ws = self.workspace(X.shape[0])
        _forward_net(X, self.params, self.sizes, self.codes, ws["h"])
        return _layer(ws["h"], self.sizes, X.shape[0], self.n_layers)

    def forward(self, X):
        """Network output for X of shape (batch, n_0).

        Returns an array of shape (batch, n_N): log-probabilities for ``nll``, the output
        (Gaussian mean) for ``mse``.
        """
        X = self.check_input(X)
        out = np.empty((X.shape[0], int(self.sizes[-1])), dtype=self.dtype)
        for start in range(0, X.shape[0], 4096):
            chunk = X[start:start + 4096]
            h = self._forward_raw(chunk)
            if self.loss == "nll":
                _log_softmax(h, out[start:start + chunk.shape[0]])
            else:
                out[start:start + chunk.shape[0]] = h
        return out

    def predict(self, X):
        """Predicted class (argmax of the output) for each row of X, shape (batch,)."""
        return np.argmax(self.forward(X), axis=1)

    def config(self):
        """The architecture as a plain dict (saved with the parameters)."""
        return {"sizes": [int(s) for s in self.sizes], "activation": self.activation,
                "loss": self.loss, "dtype": str(self.dtype), "seed": self.seed,
                "init": self.init, "param": self.param, "gain": self.gain}

    def save(self, path, **extra):
        """Write the architecture and parameters to an ``.npz`` file, atomically.

        ``extra`` arrays are stored beside them (a training checkpoint's state);
        :meth:`load` ignores them.
        """
        def write(f):
            np.savez(f, params=self.params, sizes=self.sizes,
                     activation=np.array(self.activation), loss=np.array(self.loss),
                     dtype=np.array(str(self.dtype)), seed=np.array(self.seed),
                     init=np.array(self.init), param=np.array(self.param),
                     gain=np.array(np.nan if self.gain is None else self.gain),
                     format=np.array("pckernels-mlp-1"), **extra)
        atomic_write(path, write, binary=True)

    @classmethod
    def load(cls, path):
        """Read a network written by :meth:`save`.

        Everything is checked before anything large is allocated: the architecture
        (widths, activation, loss, dtype), the parameter count it implies against the
        stored array's header, the memory that needs, and the finiteness of the values.
        A checkpoint without ``init`` / ``param`` (written before they existed) is a
        ``"pytorch"`` / ``"standard"`` network.

        Raises ``ValueError`` (naming the file) for anything that is not a readable, valid
        pckernels checkpoint: a missing, truncated or corrupt file, another .npz or .npy,
        an inconsistent architecture, or non-finite parameters.
        """
        try:
            f = np.load(os.fspath(path), allow_pickle=False)
            if not isinstance(f, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            with f:
                for key in ("format", "sizes", "activation", "loss", "dtype", "seed",
                            "params"):
                    if key not in f:
                        raise ValueError(f"no {key!r} array" if key != "format"
                                         else "not a pckernels checkpoint")
                if str(f["format"]) != "pckernels-mlp-1":
                    raise ValueError("not a pckernels checkpoint")
                sizes = f["sizes"]
                if sizes.ndim != 1 or sizes.dtype.kind not in "iu" or sizes.size > 10_000:
                    raise ValueError(f"sizes must be a 1-D integer array, got {sizes!r}")
                seed = f["seed"]
                if seed.shape != () or seed.dtype.kind not in "iu":
                    raise ValueError(f"seed must be an integer, got {seed!r}")
                arch = dict(activation=str(f["activation"]), loss=str(f["loss"]),
                            dtype=str(f["dtype"]), seed=int(seed),
                            init=str(f["init"]) if "init" in f else "pytorch",
                            param=str(f["param"]) if "param" in f else "standard")
                gain = f["gain"] if "gain" in f else np.array(np.nan)
                if gain.shape != () or gain.dtype.kind != "f":
                    raise ValueError(f"gain must be a number, got {gain!r}")
                arch["gain"] = None if np.isnan(gain) else float(gain)
                check_init(arch["init"], arch["param"], arch["gain"])
                sizes = check_sizes(sizes.tolist())
                dtype = check_dtype(arch["dtype"])
                _check_name("activation", arch["activation"], ACTIVATIONS)
                _check_name("loss", arch["loss"], LOSSES)
                n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
                shape, stored = _npz_member_header(f, "params")
                if shape != (n_params,):
                    raise ValueError(f"the architecture {'-'.join(map(str, sizes))} has "
                                     f"{n_params} parameters but the file stores an array "
                                     f"of shape {shape}")
                if stored.kind != "f":
                    raise ValueError(f"params must be floating point, got {stored}")
                check_memory(n_params * (dtype.itemsize + stored.itemsize),
                             f"the network {'-'.join(map(str, sizes))}")
                params = f["params"]
        except Exception as exc:  # np.load reports bad files with many exception types
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            reason = reason.splitlines()[0] if reason else type(exc).__name__
            raise ValueError(f"{path}: cannot read checkpoint ({reason})") from None
        if not np.isfinite(params).all():
            bad = int(params.size - np.isfinite(params).sum())
            raise ValueError(f"{path}: invalid checkpoint ({bad} of {params.size} "
                             "parameters are NaN or infinite)")
        try:
            net = cls(sizes, **arch)
        except ValueError as exc:
            raise ValueError(f"{path}: invalid checkpoint ({exc})") from None
        with np.errstate(over="ignore"):
            net.params[...] = params
        if not np.isfinite(net.params).all():
            raise ValueError(f"{path}: invalid checkpoint (parameters overflow {net.dtype})")
        return net

    def __repr__(self):
        arch = "-".join(str(s) for s in self.sizes)
        extra = "".join(f", {k}={v!r}" for k, v, default in
                        (("init", self.init, "pytorch"), ("param", self.param, "standard"),
                         ("gain", self.gain, None))
                        if v != default)
        return (f"MLP({arch}, activation={self.activation!r}, loss={self.loss!r}, "
                f"dtype={self.dtype}{extra})")
