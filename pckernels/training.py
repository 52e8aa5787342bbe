"""The training loop shared by the CLI, the sweep and the scikit-learn estimator."""
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from .backprop import backprop_into
from .feedback import FeedbackRunner, feedback_backprop_into, feedback_settings, resolve_feedback
from .gpc import GenerativePC, GPCRunner
from .kernels.network import _layer_cosines
from .kernels.optim import _adam_step, _sgd_step
from .il import IL_VARIANTS, ILRunner
from .pc import (DEFAULT_ENERGY_TOL, ENERGY_DESCENT, VARIANTS, PCRunner,
                 default_step_size)

#: Algorithms whose latents descend the energy, so the step rule, the latent optimizer and
#: the latent initialisation apply to them.
LATENT_ALGOS = ENERGY_DESCENT + IL_VARIANTS
#: Algorithms that train an MLP (what sweeps and benchmarks vary).
MLP_ALGORITHMS = ("bp",) + VARIANTS + IL_VARIANTS
#: Every algorithm of :func:`train`; ``gpc`` trains a :class:`pckernels.GenerativePC`.
ALGORITHMS = MLP_ALGORITHMS + ("gpc",)
#: Learning rate when none is given, and the algorithms whose own default differs: ilprox's
#: is the step of implicit SGD, which is stable at any size (docs/algorithms.md, IL-prox),
#: and whose updates shrink with it (beta -> 0), so a small one learns slowly; gil's
#: normalised (NLMS) update is ~1/||x_l||^2 of the gradient, so plain SGD needs a larger
#: rate (Adam is scale-free and keeps the fallback).
DEFAULT_LR = 0.05
#: vpc's update at the end of inference is a fraction of backprop's gradient once the
#: weights have grown (the energy spreads from the output into the hidden layers: per layer
#: 0.08-0.28x on digits after 10 epochs), so under SGD it takes a larger rate to learn as
#: fast; 0.2 keeps Fashion-MNIST stable and lifts a 16-wide network on digits (README).
ALGORITHM_LR = {("ilprox", "sgd"): 10.0, ("ilprox", "adam"): 10.0, ("gil", "sgd"): 1.0,
                ("vpc", "sgd"): 0.2}
#: Algorithms that move the weights themselves, so no optimizer step follows their update:
#: ipc (the optimizer's step after every inference step) and ilprox (its proximal step).
STEPS_WEIGHTS = ("ipc", "ilprox")
OPTIMIZERS = ("sgd", "adam")


#: Mini-batch size when none is given (:func:`default_batch_size`).
DEFAULT_BATCH_SIZE = 64
#: ilprox's step is the proximal step of the batch-mean loss with one normaliser per
#: batch (docs/algorithms.md, IL-prox), so a sample unlike the others moves its output
#: about 1/B of its own implicit-SGD step and a large batch learns slowly at any learning
#: rate: on digits, 10 epochs, the mean over 3 seeds ends at 0.909 at batch size 64 for
#: every lr from 3 to 100, 0.953 at 8 and 0.962 at 1 (docs/results/lr-batch-digits.csv,
#: README section 3.6). 8 keeps most
#: of the accuracy of online learning at a fraction of its cost.
ALGORITHM_BATCH_SIZE = {"ilprox": 8}


def default_batch_size(algo, fallback=DEFAULT_BATCH_SIZE):
    """The mini-batch size of ``algo`` when none is given: its own
    (:data:`ALGORITHM_BATCH_SIZE`) or ``fallback``."""
    return ALGORITHM_BATCH_SIZE.get(algo, fallback)


def default_lr(algo, fallback=DEFAULT_LR, optimizer="sgd"):
    """The learning rate of ``algo`` under ``optimizer`` when none is given: its own
    (:data:`ALGORITHM_LR`) or ``fallback``."""
    return ALGORITHM_LR.get((algo, optimizer), fallback)


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss."""


class Optimizer:
    """SGD with momentum or Adam over the flat parameter buffer (PyTorch semantics).

    For a network with ``multipliers`` (``param="mupc"``: ``W = a V``) the step is taken in
    the trainable coordinates ``V = W / a`` with the gradient ``a dL/dW``, then mapped back,
    so that the learning rate, momentum, Adam's moments and weight decay are those of ``V``
    (the parameterisation's definition); the kernels need not know.
    """

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
        self.multipliers = getattr(net, "multipliers", None)
        self.scaled_grad = net.zeros_like_params() if self.multipliers is not None else None

    def warm_up(self):
        """Compile the update kernel on scratch copies (parameters and state untouched)."""
        params, grad = self.net.params.copy(), self.net.zeros_like_params()
        if self.name == "sgd":
            _sgd_step(params, grad, self.state1.copy(), self.lr, self.momentum,
                      self.weight_decay)
        else:
            _adam_step(params, grad, self.state1.copy(), self.state2.copy(), 1, self.lr,
                       self.betas[0], self.betas[1], self.eps, self.weight_decay)

    def state_dict(self):
        """The state a resumed run needs: ``{"t", "state1", "state2"}`` (copies; state2
        is None for sgd)."""
        return {"t": self.t, "state1": self.state1.copy(),
                "state2": None if self.state2 is None else self.state2.copy()}

    def load_state_dict(self, state):
        """Continue from a :meth:`state_dict` of an optimizer of the same kind and size.

        Raises ValueError if the arrays do not fit (shape, finiteness) or one is missing.
        """
        t = state.get("t")
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ValueError(f"optimizer step count must be an integer >= 0, got {t!r}")
        for name, own in (("state1", self.state1), ("state2", self.state2)):
            if own is None:
                continue
            value = state.get(name)
            if value is None:
                raise ValueError(f"the {self.name} optimizer state has no {name}")
            value = np.asarray(value)
            if value.shape != own.shape or not np.all(np.isfinite(value)):
                raise ValueError(f"optimizer {name} must be finite with shape {own.shape}, "
                                 f"got shape {value.shape}")
            own[...] = value
        self.t = int(t)

    def step(self, grad):
        """Apply one update with gradient ``grad`` (flat layout; left unchanged)."""
        self.t += 1
        a = self.multipliers
        if a is not None:
            grad = np.multiply(grad, a, out=self.scaled_grad)
            np.divide(self.net.params, a, out=self.net.params)
        self._step(grad)
        if a is not None:
            np.multiply(self.net.params, a, out=self.net.params)

    def _step(self, grad):
        if self.name == "sgd":
            _sgd_step(self.net.params, grad, self.state1, self.lr, self.momentum,
                      self.weight_decay)
        else:
            _adam_step(self.net.params, grad, self.state1, self.state2, self.t, self.lr,
                       self.betas[0], self.betas[1], self.eps, self.weight_decay)


#: Default number of inference steps under the ``auto`` step rule (at least L): an upper
#: bound, since each sample stops once its energy has converged.
AUTO_STEPS = 20
#: Default inference steps of ipc (each followed by a weight step).
IPC_STEPS = 5


@dataclass
class PCSettings:
    """Inference settings of a PC algorithm (ignored for ``bp``).

    ``step_rule`` defaults to ``auto`` for the energy-descent variants (vpc, scaled, ipc)
    and ``fixed`` for fpa and zil; ``steps`` to L under ``fixed`` (the fewest that reach
    every layer, Theorem 1), ``max(L, AUTO_STEPS)`` under ``auto`` (samples stop early on
    the energy) and ``max(L, IPC_STEPS)`` for ipc; ``step_size`` to
    :func:`pckernels.pc.default_step_size`. See :func:`pckernels.pc_infer` for the rule
    and the latent optimizers.
    """
    steps: int = None
    step_size: float = None
    precision_ratio: float = 1.0
    init: str = "forward"
    schedule: str = "auto"
    skip: bool = True
    tol: float = 1e-6
    step_rule: str = None
    latent_optimizer: str = "gd"
    energy_tol: float = DEFAULT_ENERGY_TOL

    def resolved(self, algo, n_hidden):
        """Copy with the defaults that depend on the algorithm and depth filled in."""
        rule = self.step_rule
        if rule is None:
            rule = "auto" if algo in ENERGY_DESCENT + IL_VARIANTS else "fixed"
        steps = self.steps
        if steps is None:
            if algo == "ipc":
                steps = max(n_hidden, IPC_STEPS)
            elif rule == "auto":
                steps = max(n_hidden, AUTO_STEPS)
            else:
                steps = n_hidden
        step_size = self.step_size
        if step_size is None:
            step_size = default_step_size(algo, self.precision_ratio, rule,
                                          self.latent_optimizer)
        return PCSettings(steps, step_size, self.precision_ratio, self.init, self.schedule,
                          self.skip, self.tol, rule, self.latent_optimizer, self.energy_tol)

    def runner(self, net, algo, lr=1.0):
        """A :class:`PCRunner` (an :class:`ILRunner` for ilprox and gil, ``lr`` being
        ilprox's proximal step) with these (resolved) settings."""
        if algo in IL_VARIANTS:
            return ILRunner(net, algo, self.steps, self.step_size, init=self.init,
                            schedule=self.schedule, skip=self.skip, tol=self.tol,
                            step_rule=self.step_rule, latent_optimizer=self.latent_optimizer,
                            energy_tol=self.energy_tol, lr=lr)
        return PCRunner(net, algo, self.steps, self.step_size, self.precision_ratio,
                        init=self.init, schedule=self.schedule, skip=self.skip, tol=self.tol,
                        step_rule=self.step_rule, latent_optimizer=self.latent_optimizer,
                        energy_tol=self.energy_tol)


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
    energy_rises: int = 0           # batches whose PC inference ended at a higher energy
    # energy-descent variants (vpc, scaled, ipc), means over the epoch's batches:
    inference_steps: float = None   # steps run before every sample stopped
    rejected_steps: int = None      # steps the energy safeguard rejected (epoch total)
    layer_step: list = None         # chosen step per latent l = 1..L
    layer_energy: list = None       # per-sample energy terms after inference, l = 1..N
    # feedback fa / kp: cosine of B_l with W_l per weight layer at the end of the epoch
    feedback_alignment: list = None


@dataclass
class History:
    """Everything a training run measured; grows epoch by epoch (kept on interruption)."""
    epochs: list = field(default_factory=list)
    interrupted: bool = False
    compile_seconds: float = 0.0    # compiling / loading kernels, before the first epoch
    warnings: list = field(default_factory=list)
    optimizer: object = None        # the run's Optimizer (its state_dict() resumes the run)
    update: object = None           # the run's BatchUpdate (its inference_state() too)

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

    def __init__(self, net, algo, pc=None, lr=1.0, feedback=None):
        if algo not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algo!r}; choose from {', '.join(ALGORITHMS)}")
        self.net, self.algo = net, algo
        self.runner = None
        if (algo == "gpc") != isinstance(net, GenerativePC):
            raise ValueError("algo 'gpc' trains a pckernels.GenerativePC and a "
                             "GenerativePC trains only with algo 'gpc'")
        #: the Feedback whose B_l carries the error down (None: W_l^T, see feedback.py)
        self.feedback = resolve_feedback(net, feedback, algo)
        if algo == "gpc":
            pc = pc or PCSettings()
            self.runner = GPCRunner(net, pc.steps, pc.step_size, pc.energy_tol)
            self.settings = self.runner
        elif algo != "bp" and self.feedback is not None:
            s = feedback_settings(pc or PCSettings(), algo, net.n_layers - 1)
            self.settings = s
            self.runner = FeedbackRunner(net, algo, s.steps, s.step_size, self.feedback,
                                         init=s.init, schedule=s.schedule)
        elif algo != "bp":
            s = (pc or PCSettings()).resolved(algo, net.n_layers - 1)
            self.settings = s
            self.runner = s.runner(net, algo, lr)
        #: ipc: applies the weight step after each inference step; ilprox: applies its
        #: proximal step (set by BatchUpdate)
        self.weight_step = None

    @property
    def steps_weights(self):
        """Whether the update already moved the weights (ipc, ilprox), so no optimizer step
        follows."""
        return self.algo in STEPS_WEIGHTS

    def __call__(self, X, labels, targets, grad):
        if self.runner is None:
            if self.feedback is not None:
                return feedback_backprop_into(self.net, self.feedback, X, labels, targets,
                                              grad)
            return backprop_into(self.net, X, labels, targets, grad)
        loss = self.runner.run(X, labels, targets, grad, weight_step=self.weight_step)[0]
        if self.algo == "ilprox" and self.weight_step is not None:
            self.weight_step(grad)
        return loss

    @property
    def energy_rose(self):
        """Whether the last batch's inference ended at a higher energy than it started."""
        return self.runner is not None and self.runner.energy_rose

    def advice(self, lr):
        """What to change when this update diverges: the step size, the learning rate."""
        if self.runner is None:
            return f"try a smaller learning rate (lr={lr:g})"
        step = f"inference step size (step_size={self.settings.step_size:g})"
        if self.runner.energy_rose:
            return f"inference raised the energy: try a smaller {step}"
        return f"try a smaller learning rate (lr={lr:g}) or a smaller {step}"


class TrainingWarning(UserWarning):
    """Training goes on, but something the user must know happened (energy rose, collapse)."""


class BatchUpdate:
    """One checked mini-batch update, shared by :func:`train` and ``partial_fit``.

    Computes the algorithm's update, checks the loss, applies the optimizer, and keeps the
    parameters from before the current and the previous batch so that a divergence
    always leaves the last finite parameters in place. Counts the batches whose PC
    inference raised the energy.
    """

    def __init__(self, net, algo="bp", pc=None, optimizer="sgd", lr=0.05, momentum=0.9,
                 weight_decay=0.0, feedback=None):
        self.net = net
        self.grad_fn = GradientFn(net, algo, pc, lr, feedback)
        self.feedback = self.grad_fn.feedback
        self.opt = Optimizer(net, optimizer, lr, momentum, weight_decay)
        self.lr = lr
        self.grad = net.zeros_like_params()
        self.backup, self.backup_prev = net.params.copy(), net.params.copy()
        # kp's B moves with W, so a restore of W restores B with it
        self._kp = self.feedback if self.feedback is not None and self.feedback.kind == "kp" \
            else None
        if self._kp is not None:
            self.fb_backup, self.fb_backup_prev = self._kp.params.copy(), self._kp.params.copy()
        self.last_done = None
        self.energy_rises = 0
        self.batches = 0
        self.grad_fn.weight_step = self.opt.step if algo != "ilprox" else self._prox_step
        self._reset_stats()

    def _prox_step(self, grad):
        """ilprox: ``params -= grad``, the proximal step (its size is in grad already)."""
        np.subtract(self.net.params, grad, out=self.net.params)

    def _reset_stats(self):
        self.steps_run, self.rejected, self.stat_batches = 0, 0, 0
        self.layer_step, self.layer_energy = None, None

    def warm_up(self, X, labels, targets):
        """Compile every kernel a batch runs, without changing parameters or state."""
        step, self.grad_fn.weight_step = self.grad_fn.weight_step, lambda g: None
        try:
            self.grad_fn(X, labels, targets, self.grad)
        finally:
            self.grad_fn.weight_step = step
        self.opt.warm_up()
        runner = self.grad_fn.runner
        if runner is not None:
            runner._power_vecs = None  # the first real batch starts the power iteration

    def inference_state(self):
        """What PC inference carries from batch to batch, as a dict of copies: the
        ``auto`` step rule's warm-started power-iteration vectors (``power_vecs``, one
        vector of n_l entries per latent layer l = 1..N, concatenated; absent before the
        first batch and for algorithms without them). A resumed run needs it to continue
        exactly (:func:`train`'s ``inference_state``)."""
        runner = self.grad_fn.runner
        vecs = getattr(runner, "_power_vecs", None)
        return {} if vecs is None else {"power_vecs": vecs.copy()}

    def load_inference_state(self, state):
        """Continue from an :meth:`inference_state` (after :meth:`warm_up`). Raises
        ValueError if its vectors do not fit this network or are not finite."""
        vecs = (state or {}).get("power_vecs")
        if vecs is None:
            return
        runner = self.grad_fn.runner
        n = int(np.sum(self.net.sizes[1:]))
        vecs = np.asarray(vecs, dtype=np.float64)
        if runner is None or getattr(runner, "_bounds", None) is None:
            raise ValueError(f"power-iteration vectors given, but algorithm "
                             f"{self.grad_fn.algo!r} under these settings has none")
        if vecs.shape != (n,) or not np.isfinite(vecs).all():
            raise ValueError(f"power-iteration vectors must be {n} finite numbers, got "
                             f"shape {vecs.shape}")
        runner._power_vecs = vecs.copy()

    def __call__(self, X, labels, targets, where):
        """Update on one batch; returns its loss. ``where`` names the batch in errors.

        Raises :class:`DivergenceError` (parameters restored) on a non-finite loss.
        """
        self.backup, self.backup_prev = self.backup_prev, self.backup
        self.backup[:] = self.net.params
        if self._kp is not None:
            self.fb_backup, self.fb_backup_prev = self.fb_backup_prev, self.fb_backup
            self.fb_backup[:] = self._kp.params
        loss = self.grad_fn(X, labels, targets, self.grad)
        self.energy_rises += self.grad_fn.energy_rose
        self.batches += 1
        self._add_stats(X.shape[0])
        if not np.isfinite(loss):
            if np.all(np.isfinite(self.backup)):
                self.restore()
                what = f"loss became {loss} at {where}"
            else:
                self.restore(previous=True)
                what = f"the update of {self.last_done} made the parameters non-finite"
            raise DivergenceError(f"{what}; {self.grad_fn.advice(self.lr)}")
        self.last_done = where
        if not self.grad_fn.steps_weights:
            self.opt.step(self.grad)
            if self.feedback is not None:
                self.feedback.track(self.net.params, self.backup, self.opt.lr,
                                    self.opt.weight_decay)
        return loss

    def restore(self, previous=False):
        """Put back the parameters (and kp's feedback matrices) from before the current
        batch, or with ``previous`` from before the batch before it."""
        self.net.params[:] = self.backup_prev if previous else self.backup
        if self._kp is not None:
            self._kp.params[:] = self.fb_backup_prev if previous else self.fb_backup

    def snapshot(self):
        """Copies of the parameters and kp's feedback matrices, for :meth:`restore_snapshot`."""
        return (self.net.params.copy(),
                None if self._kp is None else self._kp.params.copy())

    def restore_snapshot(self, snap):
        """Put back what :meth:`snapshot` copied."""
        self.net.params[:] = snap[0]
        if snap[1] is not None:
            self._kp.params[:] = snap[1]

    def _add_stats(self, batch):
        runner = self.grad_fn.runner
        stats = runner.stats if runner is not None else None
        if stats is None:
            return
        self.stat_batches += 1
        self.steps_run += stats["steps_run"]
        self.rejected += stats["rejected"]
        energy = stats["layer_energy"] / batch
        self.layer_energy = energy if self.layer_energy is None else self.layer_energy + energy
        if stats["layer_step"] is not None:
            step = stats["layer_step"]
            self.layer_step = step if self.layer_step is None else self.layer_step + step

    def take_stats(self):
        """Inference diagnostics since the last call (None when there are none), then reset:
        ``(mean steps run, rejected steps, mean step per latent, mean energy terms)``."""
        n = self.stat_batches
        if n == 0:
            return None
        out = (self.steps_run / n, self.rejected,
               None if self.layer_step is None else (self.layer_step / n).tolist(),
               (self.layer_energy / n).tolist())
        self._reset_stats()
        return out

    def check_parameters(self):
        """Raise :class:`DivergenceError` (parameters restored) if the last update made
        any parameter non-finite; the per-batch loss check sees that one batch late."""
        if not np.all(np.isfinite(self.net.params)):
            self.restore()
            raise DivergenceError(f"the update of {self.last_done} made the parameters "
                                  f"non-finite; {self.grad_fn.advice(self.lr)}")

    def take_energy_rises(self):
        """``(rises, batches)`` since the last call, then reset both counters."""
        out = (self.energy_rises, self.batches)
        self.energy_rises = self.batches = 0
        return out


#: An epoch whose mean training loss exceeds this multiple of the first batch's loss has
#: diverged even though every number is finite (the loss of a run at chance stays near the
#: first batch's; a run whose weights blow up reaches hundreds or thousands of times it).
DIVERGENCE_FACTOR = 100.0


def _check_eval_set(net, X, y, name):
    if X is None and y is None:
        return None, None
    if X is None or y is None:
        raise ValueError(f"X_{name} and y_{name} must be given together")
    if len(X) == 0 and len(y) == 0:
        return X, np.asarray(y)  # an empty set: its accuracy is NaN
    X = net.check_input(X)
    net.check_targets(y, X.shape[0])
    return X, np.asarray(y)


def train(net, X_train, y_train, X_val=None, y_val=None, X_test=None, y_test=None, *,
          algo="bp", pc=None, epochs=10, batch_size=None, optimizer="sgd", lr=None,
          momentum=0.9, weight_decay=0.0, seed=0, cosine=False, history=None,
          on_batch=None, on_epoch=None, on_warning=None, shuffle=True, start_epoch=1,
          optimizer_state=None, feedback=None, inference_state=None):
    """Train ``net`` in place with shuffled mini-batches.

    Parameters
    ----------
    net : MLP
    X_train : array of shape (n, n_0); y_train : array of shape (n,)
    X_val, y_val, X_test, y_test : optional evaluation sets (accuracy per epoch)
    algo : {"bp", "vpc", "scaled", "fpa", "zil", "fazil", "ipc", "ilprox", "gil", "gpc"}
        ipc applies the optimizer step after every inference step (T per batch). ilprox
        takes its own proximal step with ``lr`` as the step of implicit SGD (the optimizer,
        momentum and weight decay do not apply to it); gil's normalised update goes
        through the optimizer (docs/algorithms.md). gpc
        trains a :class:`pckernels.gpc.GenerativePC` (``net``), whose inference settings
        ``pc.steps``, ``pc.step_size`` and ``pc.energy_tol`` replace its own when given.
    pc : PCSettings, optional
    batch_size : int, optional
        Samples per mini-batch; default :func:`default_batch_size` (64; ilprox 8).
    lr : float, optional
        Learning rate; default :func:`default_lr` (0.05; ilprox 10; gil with sgd 1).
    cosine : bool
        Also compute backprop's gradient at the same weights for every batch and record the
        mean cosine similarity of the update with it (global and per layer). Always true
        backprop (``W_l^T``), also under ``feedback`` fa or kp.
    history : History, optional
        Appended to as epochs finish, so a caller keeps what was done if interrupted.
    on_batch : callable(n_samples_done), optional
    on_epoch : callable(EpochMetrics), optional
        Called after each epoch; training stops there when it returns True.
    on_warning : callable(str), optional
        Receives each warning (inference raised the energy, training collapsed); by default
        they are issued as :class:`TrainingWarning`. They are also kept in
        ``history.warnings``.
    shuffle : bool, default True
        Visit the training samples in a new random order each epoch (else in order).
    seed : int or numpy.random.Generator
        Seed of the shuffling, or a generator to draw from as it is (to resume a run, one
        whose ``bit_generator.state`` was saved with it).
    start_epoch : int, default 1
        Number of the first epoch: epochs ``start_epoch .. epochs`` run. With the saved
        parameters, ``optimizer_state`` and generator this continues a run exactly.
    optimizer_state : dict, optional
        :meth:`Optimizer.state_dict` of the run to continue (else a fresh state).
    inference_state : dict, optional
        :meth:`BatchUpdate.inference_state` of the run to continue (``history.update``):
        the ``auto`` step rule's warm-started power-iteration vectors.
    feedback : {None, "symmetric", "fa", "kp"}
        Weights that carry the error down under bp, fpa and vpc (``pckernels.feedback``,
        docs/algorithms.md "Weight symmetry"): ``W_l^T`` (symmetric), a fixed random
        ``B_l`` (fa, feedback alignment) or a ``B_l`` that receives ``W_l``'s updates and
        its own weight decay (kp, Kolen-Pollack). fa and kp attach the matrices to the
        network (``net.feedback``, drawn from ``net.seed``) or continue with the ones it
        carries; None uses ``net.feedback`` if there is one, else symmetric. Under fa/kp,
        vpc runs the fixed step rule (step 0.2, max(L, 20) steps by default).

    Returns
    -------
    History
        ``history.compile_seconds`` is the time spent compiling (or loading from the
        cache) the kernels before the first epoch; epoch times and samples/s exclude it.

    Raises
    ------
    DivergenceError
        When a batch loss or the parameters become non-finite (the parameters are restored
        to the last finite values), or an epoch's mean loss exceeds ``DIVERGENCE_FACTOR``
        times the first batch's (the parameters are restored to the previous epoch's).
    """
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs}")
    if int(start_epoch) != start_epoch or not 1 <= start_epoch <= epochs:
        raise ValueError(f"start_epoch must be an integer in [1, epochs={epochs}], got "
                         f"{start_epoch}")
    if batch_size is None:
        batch_size = default_batch_size(algo)
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
    if lr is None:
        lr = default_lr(algo, optimizer=optimizer)
    if cosine and algo == "gpc":
        raise ValueError("cosine compares with backprop's gradient of an MLP; gpc has none")
    X_train = net.check_input(X_train)
    n = X_train.shape[0]
    labels_all, targets_all = net.check_targets(y_train, n)
    X_val, y_val = _check_eval_set(net, X_val, y_val, "val")
    X_test, y_test = _check_eval_set(net, X_test, y_test, "test")
    update = BatchUpdate(net, algo, pc, optimizer, lr, momentum, weight_decay, feedback)
    if optimizer_state is not None:
        update.opt.load_state_dict(optimizer_state)
    history = history if history is not None else History()
    history.optimizer = update.opt

    warned = set()

    def warn(kind, message):
        # each kind once per run; the per-epoch counts stay in the metrics
        if kind in warned:
            return
        warned.add(kind)
        history.warnings.append(message)
        if on_warning is not None:
            on_warning(message)
        else:
            warnings.warn(message, TrainingWarning, stacklevel=3)

    rng = np.random.default_rng(seed)
    bp_grad = (net.zeros_like_params()
               if cosine and (algo != "bp" or update.feedback is not None) else None)
    layer_cos = np.zeros(net.n_layers, dtype=np.float64)
    # Batches are gathered row by row into small buffers that stay in cache, rather than
    # shuffling the whole training set each epoch (a second full copy of it in memory).
    Xs = np.empty((batch_size, X_train.shape[1]), dtype=X_train.dtype)
    ls = np.empty(batch_size if labels_all.size else 0, dtype=labels_all.dtype)
    ts = (np.empty((batch_size, targets_all.shape[1]), dtype=targets_all.dtype)
          if targets_all.size else targets_all)

    # Compile (or load from the cache) every kernel a batch and an evaluation run before
    # the clock starts, so epoch times measure training only.
    start = time.perf_counter()
    b = min(n, batch_size)
    update.warm_up(X_train[:b], labels_all[:b], targets_all[:b] if ts.size else ts)
    if bp_grad is not None:
        backprop_into(net, X_train[:b], labels_all[:b], targets_all[:b] if ts.size else ts,
                      bp_grad)
    net.forward(X_train[:1])
    history.compile_seconds = time.perf_counter() - start
    history.update = update
    update.load_inference_state(inference_state)

    chance = _majority_share(labels_all) if labels_all.size else None
    first_loss = None
    best = None  # (loss, epoch), (accuracy, epoch)
    best_acc = None
    epoch_backup = update.snapshot()
    for epoch in range(int(start_epoch), int(epochs) + 1):
        start = time.perf_counter()
        perm = rng.permutation(n) if shuffle else np.arange(n)
        total, cos_sum, n_batches = 0.0, 0.0, 0
        layer_sum = np.zeros(net.n_layers)
        for b0 in range(0, n, batch_size):
            b1 = min(n, b0 + batch_size)
            rows = perm[b0:b1]
            Xb = np.take(X_train, rows, axis=0, out=Xs[:b1 - b0])
            lb = np.take(labels_all, rows, out=ls[:b1 - b0]) if ls.size else ls
            tb = np.take(targets_all, rows, axis=0, out=ts[:b1 - b0]) if ts.size else ts
            if bp_grad is not None:
                backprop_into(net, Xb, lb, tb, bp_grad)
            loss = update(Xb, lb, tb, f"epoch {epoch}, batch {b0 // batch_size + 1}")
            if first_loss is None:
                first_loss = loss
            if bp_grad is not None:
                cos_sum += _layer_cosines(update.grad, bp_grad, net.sizes, layer_cos)
                layer_sum += layer_cos
            total += loss * (b1 - b0)
            n_batches += 1
            if on_batch is not None:
                on_batch(b1 - b0)
        seconds = time.perf_counter() - start
        update.check_parameters()
        train_loss = total / n
        if train_loss > DIVERGENCE_FACTOR * max(first_loss, 1e-12):
            update.restore_snapshot(epoch_backup)
            raise DivergenceError(
                f"the mean training loss of epoch {epoch} is {train_loss:.4g}, "
                f"{train_loss / first_loss:.0f}x the first batch's {first_loss:.4g}; "
                f"{update.grad_fn.advice(lr)}")
        epoch_backup = update.snapshot()
        m = EpochMetrics(
            epoch=epoch, train_loss=train_loss,
            val_accuracy=accuracy(net, X_val, y_val) if X_val is not None else float("nan"),
            test_accuracy=accuracy(net, X_test, y_test) if X_test is not None else float("nan"),
            seconds=seconds, samples_per_s=n / seconds if seconds > 0 else float("inf"))
        if cosine:
            if bp_grad is None:
                m.cosine, m.layer_cosine = 1.0, [1.0] * net.n_layers
            else:
                m.cosine = cos_sum / n_batches
                m.layer_cosine = (layer_sum / n_batches).tolist()
        if update.feedback is not None:
            m.feedback_alignment = update.feedback.alignment(net).tolist()
        rises, batches = update.take_energy_rises()
        m.energy_rises = rises
        stats = update.take_stats()
        if stats is not None:
            m.inference_steps, m.rejected_steps, m.layer_step, m.layer_energy = stats
        if rises:
            s = update.grad_fn.settings
            warn("energy", f"epoch {epoch}: {algo} inference raised the energy in {rises} of "
                 f"{batches} batches (step size {s.step_size:g}): too large a step for the "
                 "current weights; try a smaller inference step size (energy_rises per "
                 "epoch in the metrics)")
        # collapse: the loss far above its best, or the accuracy back at chance
        if best is not None and train_loss > 2 * best[0] and train_loss - best[0] > 0.1:
            warn("loss", f"epoch {epoch}: training loss {train_loss:.4g} is far above its "
                 f"best {best[0]:.4g} (epoch {best[1]}): training is collapsing")
        acc = m.val_accuracy if np.isfinite(m.val_accuracy) else m.test_accuracy
        if (chance is not None and np.isfinite(acc) and best_acc is not None
                and best_acc[0] >= chance + 0.1 and acc <= chance + 0.02):
            warn("chance", f"epoch {epoch}: accuracy {acc:.4f} is back at chance "
                 f"({chance:.2f}) after {best_acc[0]:.4f} at epoch {best_acc[1]}: training "
                 "has collapsed")
        if best is None or train_loss < best[0]:
            best = (train_loss, epoch)
        if np.isfinite(acc) and (best_acc is None or acc > best_acc[0]):
            best_acc = (acc, epoch)
        history.epochs.append(m)
        if on_epoch is not None and on_epoch(m) is True:
            break
    return history


def _majority_share(labels):
    """Accuracy of always predicting the most frequent label (the chance level)."""
    return float(np.bincount(labels).max() / labels.size)
