"""The training loop shared by the CLI, the sweep and the scikit-learn estimator."""
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .backprop import backprop_into
from .kernels.network import _layer_cosines
from .kernels.optim import _adam_step, _sgd_step
from .pc import VARIANTS, PCRunner, default_step_size

ALGORITHMS = ("bp",) + VARIANTS
OPTIMIZERS = ("sgd", "adam")


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss."""


class Optimizer:
    """SGD with momentum or Adam over the flat parameter buffer (PyTorch semantics)."""

    def __init__(self, net, name="sgd", lr=0.01, momentum=0.9, weight_decay=0.0,
                 betas=(0.9, 0.999), eps=1e-8):
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be > 0, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        if not (np.isfinite(weight_decay) and weight_decay >= 0):
            raise ValueError(f"weight_decay must be finite and >= 0, got {weight_decay}")
        self.net, self.name, self.lr, self.momentum = net, name, float(lr), float(momentum)
        self.weight_decay, self.betas, self.eps = float(weight_decay), betas, float(eps)
        self.state1 = net.zeros_like_params()
        self.state2 = net.zeros_like_params() if name == "adam" else None
        self.t = 0

    def step(self, grad):
        """Apply one update with gradient ``grad`` (flat layout)."""
        self.t += 1
        if self.name == "sgd":
            _sgd_step(self.net.params, grad, self.state1, self.lr, self.momentum,
                      self.weight_decay)
        else:
            _adam_step(self.net.params, grad, self.state1, self.state2, self.t, self.lr,
                       self.betas[0], self.betas[1], self.eps, self.weight_decay)


@dataclass
class PCSettings:
    """Inference settings of a PC algorithm (ignored for ``bp``)."""
    steps: int = None          # default: L, the fewest that reach every layer (Theorem 1)
    step_size: float = None    # default: 1, or 0.1/k for scaled
    precision_ratio: float = 1.0
    init: str = "forward"
    schedule: str = "auto"
    skip: bool = True
    tol: float = 1e-6

    def resolved(self, algo, n_hidden):
        """Copy with the defaults that depend on the algorithm and depth filled in."""
        steps = self.steps
        if steps is None:
            steps = n_hidden
        step_size = self.step_size
        if step_size is None:
            step_size = default_step_size(algo, self.precision_ratio)
        return PCSettings(steps, step_size, self.precision_ratio, self.init, self.schedule,
                          self.skip, self.tol)


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    val_accuracy: float
    test_accuracy: float
    seconds: float
    samples_per_s: float
    cosine: float = None            # mean cosine(update, backprop) over the epoch's batches
    layer_cosine: list = None       # the same per weight layer


@dataclass
class History:
    """Everything a training run measured; grows epoch by epoch (kept on interruption)."""
    epochs: list = field(default_factory=list)
    interrupted: bool = False

    @property
    def final(self):
        return self.epochs[-1] if self.epochs else None

    def as_dicts(self):
        return [asdict(e) for e in self.epochs]


def accuracy(net, X, y):
    """Fraction of rows of X whose predicted class equals y (NaN for an empty set)."""
    if len(y) == 0:
        return float("nan")
    return float(np.mean(net.predict(X) == y))


class GradientFn:
    """The per-batch update of an algorithm: writes a gradient, returns the batch loss."""

    def __init__(self, net, algo, pc=None):
        if algo not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algo!r}; choose from {', '.join(ALGORITHMS)}")
        self.net, self.algo = net, algo
        self.runner = None
        if algo != "bp":
            s = (pc or PCSettings()).resolved(algo, net.n_layers - 1)
            self.settings = s
            self.runner = PCRunner(net, algo, s.steps, s.step_size, s.precision_ratio,
                                   init=s.init, schedule=s.schedule, skip=s.skip, tol=s.tol)

    def __call__(self, X, labels, targets, grad):
        if self.runner is None:
            return backprop_into(self.net, X, labels, targets, grad)
        return self.runner.run(X, labels, targets, grad)[0]


def train(net, X_train, y_train, X_val=None, y_val=None, X_test=None, y_test=None, *,
          algo="bp", pc=None, epochs=10, batch_size=64, optimizer="sgd", lr=0.05,
          momentum=0.9, weight_decay=0.0, seed=0, cosine=False, history=None,
          on_batch=None, on_epoch=None):
    """Train ``net`` in place with shuffled mini-batches.

    Parameters
    ----------
    net : MLP
    X_train : array of shape (n, n_0); y_train : array of shape (n,)
    X_val, y_val, X_test, y_test : optional evaluation sets (accuracy per epoch)
    algo : {"bp", "vpc", "scaled", "fpa", "zil"}
    pc : PCSettings, optional
    cosine : bool
        Also compute backprop's gradient at the same weights for every batch and record the
        mean cosine similarity of the update with it (global and per layer).
    history : History, optional
        Appended to as epochs finish, so a caller keeps what was done if interrupted.
    on_batch : callable(n_samples_done), optional; on_epoch : callable(EpochMetrics), optional

    Returns
    -------
    History

    Raises
    ------
    DivergenceError
        When a batch loss or the parameters become non-finite. The parameters are restored
        to the last finite values before the failing batch (or before the batch whose
        update made them non-finite).
    """
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
    X_train = net.check_input(X_train)
    n = X_train.shape[0]
    labels_all, targets_all = net.check_targets(y_train, n)
    grad_fn = GradientFn(net, algo, pc)
    opt = Optimizer(net, optimizer, lr, momentum, weight_decay)
    history = history if history is not None else History()
    rng = np.random.default_rng(seed)
    grad = net.zeros_like_params()
    bp_grad = net.zeros_like_params() if cosine and algo != "bp" else None
    layer_cos = np.zeros(net.n_layers, dtype=np.float64)
    # Batches are gathered row by row into small buffers that stay in cache, rather than
    # shuffling the whole training set each epoch (a second full copy of it in memory).
    Xs = np.empty((batch_size, X_train.shape[1]), dtype=X_train.dtype)
    ls = np.empty(batch_size if labels_all.size else 0, dtype=labels_all.dtype)
    ts = (np.empty((batch_size, targets_all.shape[1]), dtype=targets_all.dtype)
          if targets_all.size else targets_all)
    # Parameters before the current and before the previous batch: a non-finite loss is
    # seen one batch after the update that caused it when that update itself overflowed.
    backup, backup_prev = net.params.copy(), net.params.copy()
    last_batch = None
    for epoch in range(1, int(epochs) + 1):
        start = time.perf_counter()
        perm = rng.permutation(n)
        total, cos_sum, n_batches = 0.0, 0.0, 0
        layer_sum = np.zeros(net.n_layers)
        for b0 in range(0, n, batch_size):
            b1 = min(n, b0 + batch_size)
            rows = perm[b0:b1]
            Xb = np.take(X_train, rows, axis=0, out=Xs[:b1 - b0])
            lb = np.take(labels_all, rows, out=ls[:b1 - b0]) if ls.size else ls
            tb = np.take(targets_all, rows, axis=0, out=ts[:b1 - b0]) if ts.size else ts
            backup, backup_prev = backup_prev, backup
            backup[:] = net.params
            loss = grad_fn(Xb, lb, tb, grad)
            if not np.isfinite(loss):
                batch_no = b0 // batch_size + 1
                if np.all(np.isfinite(backup)):
                    net.params[:] = backup
                    what = f"loss became {loss} at epoch {epoch}, batch {batch_no}"
                else:
                    net.params[:] = backup_prev
                    what = (f"the update of epoch {last_batch[0]}, batch {last_batch[1]} "
                            "made the parameters non-finite")
                raise DivergenceError(f"{what}; try a smaller learning rate (lr={lr})")
            last_batch = (epoch, b0 // batch_size + 1)
            if bp_grad is not None:
                backprop_into(net, Xb, lb, tb, bp_grad)
                cos_sum += _layer_cosines(grad, bp_grad, net.sizes, layer_cos)
                layer_sum += layer_cos
            opt.step(grad)
            total += loss * (b1 - b0)
            n_batches += 1
            if on_batch is not None:
                on_batch(b1 - b0)
        seconds = time.perf_counter() - start
        if not np.all(np.isfinite(net.params)):
            net.params[:] = backup
            raise DivergenceError(f"parameters became non-finite at the last batch of epoch "
                                  f"{epoch}; try a smaller learning rate (lr={lr})")
        m = EpochMetrics(
            epoch=epoch, train_loss=total / n,
            val_accuracy=accuracy(net, X_val, y_val) if X_val is not None else float("nan"),
            test_accuracy=accuracy(net, X_test, y_test) if X_test is not None else float("nan"),
            seconds=seconds, samples_per_s=n / seconds if seconds > 0 else float("inf"))
        if cosine:
            if bp_grad is None:
                m.cosine, m.layer_cosine = 1.0, [1.0] * net.n_layers
            else:
                m.cosine = cos_sum / n_batches
                m.layer_cosine = (layer_sum / n_batches).tolist()
        history.epochs.append(m)
        if on_epoch is not None:
            on_epoch(m)
    return history
