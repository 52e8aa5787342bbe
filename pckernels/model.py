"""The multilayer perceptron: parameters in one flat buffer, layers as views into it."""
import os

import numpy as np

from .config import ensure_blas_serial
from .io import atomic_write
from .kernels.activations import ACTIVATIONS, IDENTITY
from .kernels.losses import LOSSES, _log_softmax
from .kernels.network import _forward_net, _layer
from .memory import MAX_WIDTH, check_memory

DTYPES = ("float32", "float64")


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


def _check_name(kind, name, registry):
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; choose from {', '.join(sorted(registry))}")
    return registry[name]


class MLP:
    """A fully connected network ``h_{l+1} = g_l(h_l W_l + b_l)`` (ALGORITHMS.md).

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
        Seed of the initialisation ``U(-1/sqrt(n_l), 1/sqrt(n_l))`` for W_l and b_l, as
        PyTorch's ``nn.Linear``.

    Attributes
    ----------
    weights : list of arrays, ``weights[l]`` of shape (n_l, n_{l+1})
    biases : list of arrays, ``biases[l]`` of shape (n_{l+1},)
        Writable views into the flat buffer ``params``.
    """

    def __init__(self, sizes, activation="tanh", loss="nll", dtype="float32", seed=0):
        sizes = check_sizes(sizes)
        self.activation_code = _check_name("activation", activation, ACTIVATIONS)
        self.loss_code = _check_name("loss", loss, LOSSES)
        dtype = check_dtype(dtype)
        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        check_memory(n_params * dtype.itemsize, f"an MLP {'-'.join(map(str, sizes))}")
        self.sizes = np.array(sizes, dtype=np.int64)
        self.activation = activation
        self.loss = loss
        self.dtype = np.dtype(dtype)
        self.seed = seed
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
        self.reset(seed)
        self._workspaces = {}
        ensure_blas_serial()

    def __getstate__(self):
        return {"config": self.config(), "params": self.params}

    def __setstate__(self, state):
        cfg = state["config"]
        self.__init__(cfg["sizes"], cfg["activation"], cfg["loss"], cfg["dtype"], cfg["seed"])
        self.params[...] = state["params"]

    @property
    def n_layers(self):
        """Number of weight layers N (= hidden layers L + 1)."""
        return len(self.sizes) - 1

    @property
    def n_params(self):
        s = self.sizes
        return int(np.sum(s[:-1] * s[1:] + s[1:]))

    def reset(self, seed=0):
        """Re-draw all parameters from ``U(-1/sqrt(n_l), 1/sqrt(n_l))``."""
        rng = np.random.default_rng(seed)
        for W, b in zip(self.weights, self.biases):
            bound = 1.0 / np.sqrt(W.shape[0])
            W[...] = rng.uniform(-bound, bound, size=W.shape)
            b[...] = rng.uniform(-bound, bound, size=b.shape)

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
        ws = self._workspaces.get(batch)
        if ws is None:
            n = batch * int(np.sum(self.sizes[1:]))
            ws = {"h": np.zeros(n, dtype=self.dtype), "d": np.zeros(n, dtype=self.dtype)}
            if len(self._workspaces) > 8:
                self._workspaces.clear()
            self._workspaces[batch] = ws
        return ws

    def check_input(self, X):
        """Validate and convert inputs to a C-contiguous (batch, n_0) array of the model dtype."""
        X = np.asarray(X)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"X must have shape (batch, {self.sizes[0]}), got {X.shape}")
        if X.shape[0] < 1:
            raise ValueError("X is empty")
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X must be real numbers, got dtype {X.dtype}")
        original = X
        with np.errstate(over="ignore", invalid="ignore"):
            X = np.ascontiguousarray(X, dtype=self.dtype)
        finite = np.isfinite(X)
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            value = original[row, col]
            if np.isfinite(value):
                raise ValueError(f"X[{row}, {col}] = {value:g} overflows {self.dtype.name}")
            raise ValueError(f"X contains NaN or infinite values (first at row {row}, "
                             f"column {col})")
        return X

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
        if y.ndim != 1 or y.shape[0] != batch:
            raise ValueError(f"y must have shape ({batch},), got {y.shape}")
        if y.dtype.kind == "f":
            if not np.isfinite(y).all() or np.any(y != np.round(y)):
                raise ValueError("labels must be integers")
        elif y.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers, got dtype {y.dtype}")
        labels = y.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= n_out):
            raise ValueError(f"labels must lie in [0, {n_out - 1}], got range "
                             f"[{labels.min()}, {labels.max()}]")
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
                "loss": self.loss, "dtype": str(self.dtype), "seed": self.seed}

    def save(self, path, **extra):
        """Write the architecture and parameters to an ``.npz`` file, atomically.

        ``extra`` arrays are stored beside them (a training checkpoint's state);
        :meth:`load` ignores them.
        """
        def write(f):
            np.savez(f, params=self.params, sizes=self.sizes,
                     activation=np.array(self.activation), loss=np.array(self.loss),
                     dtype=np.array(str(self.dtype)), seed=np.array(self.seed),
                     format=np.array("pckernels-mlp-1"), **extra)
        atomic_write(path, write, binary=True)

    @classmethod
    def load(cls, path):
        """Read a network written by :meth:`save`.

        Everything is checked before anything large is allocated: the architecture
        (widths, activation, loss, dtype), the parameter count it implies against the
        stored array's header, the memory that needs, and the finiteness of the values.

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
                            dtype=str(f["dtype"]), seed=int(seed))
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
        return f"MLP({arch}, activation={self.activation!r}, loss={self.loss!r}, dtype={self.dtype})"
