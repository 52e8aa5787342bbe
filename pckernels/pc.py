"""Predictive-coding inference through the public API (docs/algorithms.md, sections 3.1-3.5).

vpc, scaled, fpa and zil with a fixed step run the kernels of ``kernels/pc.py``; the
``auto`` step rule, the latent optimizers and ipc (incremental PC, Salvatori et al., ICLR
2024) run the safeguarded loop of ``kernels/pc_safeguard.py``.
"""
from dataclasses import dataclass, field

import numpy as np

from .backprop import GradientResult, backprop_into
from .config import get_threads
from .kernels import pc as K
from .kernels import pc_safeguard as S
from .kernels.activations import IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH
from .kernels.losses import MSE, NLL
from .kernels.network import _layer, _layer_cosines

VARIANTS = ("vpc", "scaled", "fpa", "zil", "fazil", "ipc")
SCHEDULES = ("auto", "serial", "layers", "batch")
INITS = {"forward": K.INIT_FORWARD, "zeros": K.INIT_ZEROS}
_CODES = {"vpc": K.VPC, "scaled": K.VPC, "fpa": K.FPA, "zil": K.ZIL, "fazil": K.FAZIL,
          "ipc": K.VPC}
#: Variants whose weight layers each learn once, at one inference step (Z-IL's Requirement 3).
ONE_STEP_LEARNERS = ("zil", "fazil")
#: Variants whose inference is gradient descent on the energy F (so F must not rise).
ENERGY_DESCENT = ("vpc", "scaled", "ipc")
#: How the inference step is chosen (energy-descent variants): ``fixed`` uses gamma as
#: given (the paper's setting); ``auto`` uses a per-layer step from a curvature bound with
#: an energy safeguard and a convergence stop (see :func:`curvature_steps`).
STEP_RULES = ("auto", "fixed")
#: Optimizers on the latents (see ``kernels/pc_safeguard.py`` for the equations).
LATENT_OPTIMIZERS = {"gd": S.GD, "momentum": S.MOMENTUM, "adam": S.ADAM}
#: Upper bounds of |g'| per activation code and of the loss Hessian's largest eigenvalue
#: with respect to the output (nll: diag(p) - p p^T has eigenvalues <= 1/2; mse: 1).
_GRAD_BOUND = {IDENTITY: 1.0, TANH: 1.0, RELU: 1.0, LEAKY_RELU: 1.0, SIGMOID: 0.25}
_LOSS_CURVATURE = {NLL: 0.5, MSE: 1.0}
#: Power iterations per weight layer: on the first batch, then per batch (warm start).
POWER_ITERS_FIRST, POWER_ITERS = 30, 1
#: Default relative energy tolerance of the convergence stop of the ``auto`` rule.
DEFAULT_ENERGY_TOL = 1e-4
#: Latent-optimizer constants (momentum uses beta1).
LATENT_BETAS, LATENT_EPS = (0.9, 0.999), 1e-8
#: A row whose step factor falls below this after rejected steps stops (no step lowers F).
MIN_SCALE = 2.0 ** -20
#: Relative rise of F over an inference that counts as "the energy rose".
ENERGY_RISE_TOL = 1e-4

#: Rows per chunk of the batch-parallel schedule. Fixed, so that results never depend on
#: the number of threads.
DEFAULT_CHUNK_ROWS = 32


@dataclass
class PCTrace:
    """Per-step diagnostics, index t = 0..T (state after t inference steps).

    Attributes
    ----------
    energy : array of shape (T+1,) or None
        F = sum_b [sum_l pi_l/2 ||e_l||^2 + pi_N loss_b]; None for fpa, which has no energy.
    error_norms : array of shape (T+1, N)
        ||e_l|| over the batch for l = 1..N.
    cosine : array of shape (T+1,)
        Cosine similarity of the update-so-far with the backprop gradient (all parameters).
    layer_cosine : array of shape (T+1, N)
        The same per weight layer (0 where the update or the gradient is zero).
    layer_energy : array of shape (T+1, N) or None
        Terms of F: ``pi_l/2 ||e_l||^2`` for l = 1..L, and ``pi_N * loss`` (last column).
        None for fpa.
    layer_step : array of shape (T+1, L) or None
        Under the ``auto`` rule or a latent optimizer: the step gamma_l * scale_b of each
        latent, averaged over the samples, that the next step will use.
    rejected : int array of shape (T+1,) or None
        Under the ``auto`` rule: rejected steps (summed over samples) up to step t.
    """
    energy: np.ndarray
    error_norms: np.ndarray
    cosine: np.ndarray
    layer_cosine: np.ndarray
    layer_energy: np.ndarray = None
    layer_step: np.ndarray = None
    rejected: np.ndarray = None


@dataclass
class PCResult(GradientResult):
    """The outcome of :func:`pc_infer`; ``.dW``/``.db`` are shaped as :func:`backprop`'s.

    Attributes
    ----------
    first_nonzero : int array of shape (L,)
        For latent l = 1..L, the step at which its error first had a nonzero entry
        (-1: never within T steps). Theorem 1: ``L + 1 - l`` from feedforward values.
    converged_at : int array of shape (L,)
        For each latent, the first step after which no step changed it by more than ``tol``
        (-1: the last step still did, or the error never reached the latent). Corollary 1
        counts these.
    states, errors : lists of arrays
        Final latents x_1..x_L and errors e_1..e_N, each (batch, n_l).
    work : dict
        Counts of inference VJPs and predictions computed and skipped.
    trace : PCTrace or None
    step_rule : str
    stopped_at : int
        Steps run before every sample had stopped (the ``auto`` rule's convergence stop;
        ``steps`` when some sample ran them all or under the fixed rule).
    rejected : int
        Steps rejected by the energy safeguard, summed over the samples.
    layer_step : array of shape (L,) or None
        The final per-latent step gamma_l * scale_b, averaged over the samples (``auto``).
    layer_energy : array of shape (N,) or None
        Terms of F after inference (see :class:`PCTrace`); None for fpa.
    params : array or None
        ipc only: the parameters after the inference's weight steps (``net`` is left as it
        was).
    learn_steps : int array of shape (N,) or None
        zil and fazil: for weight layer l = 0..N-1, the inference step whose states and
        errors its update was taken from (-1: never, the error did not reach it within T
        steps). zil fixes it at N-1-l; fazil's trigger fires where e_{l+1} first has a
        nonzero entry (the earliest over chunks of the batch).
    """
    variant: str = ""
    steps: int = 0
    step_size: float = 1.0
    first_nonzero: np.ndarray = None
    converged_at: np.ndarray = None
    states: list = field(default=None, repr=False)
    errors: list = field(default=None, repr=False)
    work: dict = None
    trace: PCTrace = field(default=None, repr=False)
    step_rule: str = "fixed"
    stopped_at: int = 0
    rejected: int = 0
    layer_step: np.ndarray = None
    layer_energy: np.ndarray = None
    params: np.ndarray = field(default=None, repr=False)
    learn_steps: np.ndarray = None


def precisions_for(net, variant, precision_ratio=1.0, precisions=None):
    """Per-layer precisions pi_0..pi_N (pi_0 unused) for a variant.

    ``scaled``: hidden precisions ``k = precision_ratio``, output precision 1 (section 3.3).
    ``vpc``: ``precisions`` (L + 1 values for layers 1..N) or all ones.
    """
    n = net.n_layers
    pis = np.ones(n + 1, dtype=np.float64)
    if variant == "scaled":
        if not np.isfinite(precision_ratio) or precision_ratio <= 0:
            raise ValueError(f"precision_ratio must be > 0, got {precision_ratio}")
        pis[1:n] = precision_ratio
    elif precisions is not None:
        if variant != "vpc":
            raise ValueError(f"precisions apply to vpc only, not {variant}")
        p = np.asarray(precisions, dtype=np.float64)
        if p.shape != (n,):
            raise ValueError(f"precisions needs {n} values (layers 1..{n}), got {p.shape}")
        if not np.all(np.isfinite(p)) or np.any(p <= 0):
            raise ValueError("precisions must be finite and > 0")
        pis[1:] = p
    return pis


def _check_args(net, variant, steps, step_size, schedule, init, chunk_rows, tol,
                step_rule="fixed", latent_optimizer="gd", energy_tol=DEFAULT_ENERGY_TOL):
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    if step_rule not in STEP_RULES:
        raise ValueError(f"unknown step_rule {step_rule!r}; choose from {', '.join(STEP_RULES)}")
    if latent_optimizer not in LATENT_OPTIMIZERS:
        raise ValueError(f"unknown latent_optimizer {latent_optimizer!r}; choose from "
                         f"{', '.join(LATENT_OPTIMIZERS)}")
    if variant not in ENERGY_DESCENT:
        if step_rule != "fixed":
            raise ValueError(f"step_rule {step_rule!r} applies to {', '.join(ENERGY_DESCENT)} "
                             f"only; {variant} needs 'fixed'")
        if latent_optimizer != "gd":
            raise ValueError(f"latent_optimizer {latent_optimizer!r} applies to "
                             f"{', '.join(ENERGY_DESCENT)} only; {variant} needs 'gd'")
    if not (np.isfinite(energy_tol) and energy_tol >= 0):
        raise ValueError(f"energy_tol must be finite and >= 0, got {energy_tol}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if not np.isfinite(step_size) or step_size <= 0:
        raise ValueError(f"step_size must be > 0, got {step_size}")
    if variant in ONE_STEP_LEARNERS:
        if step_size != 1.0:
            raise ValueError(f"{variant} requires step_size 1 (Requirement 2); got "
                             f"{step_size}")
        if init != "forward":
            raise ValueError(f"{variant} requires init='forward' (Requirement 1)")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose from {', '.join(INITS)}")
    if chunk_rows is not None and chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")


def resolve_schedule(schedule):
    """The schedule ``auto`` stands for: ``serial``, the fastest one measured.

    ``pck bench`` measures the three side by side. On the paper's MLP (64-wide layers,
    batch 64) the parallel schedules lose: their threads call BLAS at the same time, and
    concurrent BLAS calls do not scale. ``auto`` never depends on the thread count, so
    results do not change with the number of threads.
    """
    return "serial" if schedule == "auto" else schedule


def default_step_size(variant, precision_ratio=1.0, step_rule="fixed", latent_optimizer="gd"):
    """The step size used when none is given.

    Under the ``auto`` rule it multiplies the curvature step (:func:`curvature_steps`): 1
    (gd, momentum), or is the step of Adam itself, :data:`ADAM_STEP` (Adam's moves are in
    units of the latents, not of the gradient, so no curvature enters). Under the fixed
    rule: 1, or 0.1/k for ``scaled``. ``scaled`` multiplies the hidden precisions by k, so
    the stable step shrinks as 1/k. It also shrinks as the weights grow during training
    (the coupling between layers scales with ||W||^2): 0.5/k is stable at initialisation
    but made inference diverge after a few epochs on digits, 0.1/k trained (with ~40 steps
    to converge). The ``auto`` rule removes this tuning.
    """
    if variant == "scaled" and not (np.isfinite(precision_ratio) and precision_ratio > 0):
        raise ValueError(f"precision_ratio must be > 0, got {precision_ratio}")
    if step_rule == "auto":
        return ADAM_STEP if latent_optimizer == "adam" else 1.0
    if variant != "scaled":
        return 1.0
    return 0.1 / precision_ratio


#: Default step of Adam on the latents under the ``auto`` rule.
ADAM_STEP = 0.01


def curvature_steps(norms, pis, codes, loss_code, step_size=1.0):
    """Per-latent steps gamma_l = step_size / R_l from a bound on the energy's curvature.

    The Gauss-Newton part of the Hessian of F in the latents (docs/algorithms.md, "Inference
    step from curvature") has diagonal blocks ``pi_l I + pi_{l+1} J_l^T C_{l+1} J_l`` and
    off-diagonal blocks ``-pi_{l+1} J_l^T`` (latents l, l+1), with ``J_l = W_l diag(g_l')``
    and ``C`` the identity, or the loss Hessian at the output (<= 1/2 for nll). With
    ``a_l = ||W_l||_2 max|g_l'|`` >= ||J_l||, the block row sums

        R_l = pi_l (1 + a_{l-1} [l >= 2]) + pi_{l+1} (c_{l+1} a_l^2 + a_l [l < L])

    bound the largest eigenvalue of H (Gershgorin, by blocks), and the Jacobi-preconditioned
    H, diag(R)^-1 H, has eigenvalues <= 1: synchronous gradient steps gamma_l = 1/R_l are
    stable (< 2/lambda), for any width, depth and precisions. The term in g'' times the
    error is left out; the energy safeguard covers it.

    Parameters
    ----------
    norms : array of shape (N,)
        ||W_l||_2 estimates (power iteration), l = 0..N-1.
    pis : array of shape (N+1,)
        Precisions (index 0 unused).
    codes : int array of shape (N,)
        Activation codes of the weight layers.
    loss_code : int
    step_size : float
        Multiplier of the curvature step.

    Returns
    -------
    array of shape (N+1,)
        gamma_l for latents l = 1..L (entries 0 and N are 0).
    """
    gammas = np.zeros(len(norms) + 1, dtype=np.float64)
    S._curvature_steps(np.asarray(norms, dtype=np.float64), np.asarray(pis, np.float64),
                       _grad_bounds(codes), _LOSS_CURVATURE[int(loss_code)], float(step_size),
                       gammas)
    return gammas


def _grad_bounds(codes):
    return np.array([_GRAD_BOUND[int(c)] for c in codes], dtype=np.float64)


class PCWorkspace:
    """Preallocated buffers for one network, batch size, dtype and chunking."""

    def __init__(self, net, batch, n_chunks):
        n = batch * int(np.sum(net.sizes[1:]))
        dt = net.dtype
        self.state = K.PCState(
            x=np.zeros(n, dt), e=np.zeros(n, dt), pred=np.zeros(n, dt), gp=np.zeros(n, dt),
            q=np.zeros(n, dt), v=np.zeros(n, dt), xs=np.zeros(n, dt), qs=np.zeros(n, dt),
            info=np.zeros((n_chunks, K.N_INFO, net.n_layers + 1), np.int64),
            loss=np.zeros(n_chunks, np.float64), loss0=np.zeros(n_chunks, np.float64))
        self.partial = np.zeros((n_chunks, net.n_params), dt)
        self.n, self.batch, self.n_chunks = n, batch, n_chunks
        self.safe = None

    def safe_state(self, net):
        """The buffers of the safeguarded loop (allocated on first use)."""
        if self.safe is None:
            n, b, dt = self.n, self.batch, net.dtype
            self.safe = S.SafeState(
                xb=np.zeros(n, dt), m1=np.zeros(n, dt), m2=np.zeros(n, dt),
                m1b=np.zeros(n, dt), m2b=np.zeros(n, dt), row_loss=np.zeros(b),
                energy=np.zeros(b), energy_new=np.zeros(b), scale=np.ones(b),
                stop=np.full(b, -1, np.int64), rejects=np.zeros(b, np.int64),
                row_sq=np.zeros((net.n_layers + 1, b)), gammas=np.zeros(net.n_layers + 1),
                active=np.zeros(self.n_chunks, np.int64))
        return self.safe

    @staticmethod
    def get(net, batch, n_chunks):
        return net.cached_workspace(("pc", batch, n_chunks),
                                    lambda: PCWorkspace(net, batch, n_chunks))


class PCRunner:
    """Validated settings of a PC variant, reusable across batches (used by training).

    :func:`pc_infer` is the one-call front end; the training loop keeps a runner so that
    the per-batch path does no validation beyond the array checks it already did. Under
    the ``auto`` step rule the runner keeps one power-iteration vector per weight layer,
    so each batch's ||W_l|| estimate starts from the previous batch's (a few iterations
    instead of many).
    """

    def __init__(self, net, variant, steps, step_size, precision_ratio=1.0, precisions=None,
                 init="forward", schedule="auto", chunk_rows=None, skip=True, tol=1e-6,
                 step_rule="fixed", latent_optimizer="gd", energy_tol=DEFAULT_ENERGY_TOL):
        _check_args(net, variant, steps, step_size, schedule, init, chunk_rows, tol,
                    step_rule, latent_optimizer, energy_tol)
        if variant == "ipc" and steps < 1:
            raise ValueError("ipc needs steps >= 1 (one weight step per inference step)")
        self.net = net
        self.variant = variant
        self.steps = int(steps)
        self.step_size = float(step_size)
        self.init = init
        self.schedule = schedule
        self.chunk_rows = chunk_rows
        self.step_rule = step_rule
        self.latent_optimizer = latent_optimizer
        self.pis = precisions_for(net, variant, precision_ratio, precisions)
        # ipc changes the weights between steps, so the skip bookkeeping does not apply
        self.opts = K.PCOpts(variant=_CODES[variant], gamma=self.step_size, pis=self.pis,
                             tol=float(tol), skip=bool(skip) and variant != "ipc")
        self.knet = K.PCNet(params=net.params, sizes=net.sizes, codes=net.codes,
                            loss_code=net.loss_code)
        # the safeguarded loop serves the auto rule, latent optimizers other than plain
        # gradient steps, and ipc; fixed-step gd of vpc/scaled keeps the kernels of pc.py
        self.safe = step_rule == "auto" or latent_optimizer != "gd" or variant == "ipc"
        auto = step_rule == "auto"
        self.safe_opts = S.SafeOpts(
            optimizer=LATENT_OPTIMIZERS[latent_optimizer], safeguard=auto,
            rtol=float(energy_tol) if auto and variant != "ipc" else -1.0,
            beta1=LATENT_BETAS[0], beta2=LATENT_BETAS[1], eps=LATENT_EPS, min_scale=MIN_SCALE)
        self._power_vecs = None
        self.norms = None
        self.energy_change, self.energy_rose = None, False
        self.stats = None

    def _layout(self, batch):
        schedule = resolve_schedule(self.schedule)
        rows = batch
        if schedule == "batch":
            rows = min(batch, self.chunk_rows or DEFAULT_CHUNK_ROWS)
        return schedule, rows, (batch + rows - 1) // rows

    def _base_steps(self):
        """gamma_l for l = 1..L (N+1 entries): the curvature step (``auto`` with gd or
        momentum) or ``step_size`` (fixed rule, or Adam)."""
        n = self.net.n_layers
        if self.step_rule != "auto" or self.latent_optimizer == "adam":
            g = np.full(n + 1, self.step_size)
            g[0] = g[n] = 0.0
            return g
        iters = POWER_ITERS
        if self._power_vecs is None:
            iters = POWER_ITERS_FIRST
            sizes = self.net.sizes[1:]
            idx = np.concatenate([np.arange(m, dtype=np.float64) for m in sizes])
            vecs = 1.0 + 0.5 * np.sin(idx + 1.0)
            off = 0
            for m in sizes:
                vecs[off:off + m] /= np.linalg.norm(vecs[off:off + m])
                off += m
            self._power_vecs = vecs
            self.norms = np.zeros(n, dtype=np.float64)
            self._gammas = np.zeros(n + 1, dtype=np.float64)
            self._bounds = _grad_bounds(self.net.codes)
            self._loss_curvature = _LOSS_CURVATURE[int(self.net.loss_code)]
        S._auto_gammas(self.net.params, self.net.sizes, self._power_vecs, iters, self.pis,
                       self._bounds, self._loss_curvature, self.step_size, self.norms,
                       self._gammas)
        return self._gammas

    def run(self, X, labels, targets, grad, trace_with=None, weight_step=None):
        """Inference on validated arrays; writes the update into ``grad`` (flat layout).

        Returns ``(loss, workspace, trace)``. ``trace_with`` is the backprop gradient to
        compare with, or None for the fused path with no per-step recording. Afterwards
        ``energy_change`` holds ``(F_0, F_T)`` for the energy-descent variants started at
        the feedforward values (else None), and ``energy_rose`` whether F_T > F_0; ``stats``
        the per-batch diagnostics (steps run, rejected steps, per-layer steps and energies).

        ipc: ``weight_step(g)`` is called after every inference step with the gradient
        ``g`` of the mean energy at the current states and weights and must update
        ``net.params`` in place; ``grad`` receives the mean of those gradients.
        """
        batch = X.shape[0]
        schedule, rows, n_chunks = self._layout(batch)
        ws = PCWorkspace.get(self.net, batch, n_chunks)
        st = ws.state
        data = K.PCData(X=X, labels=labels, targets=targets)
        init = INITS[self.init]
        parallel = get_threads() > 1
        sg = None
        if self.safe:
            sg = ws.safe_state(self.net)
            sg.gammas[:] = self._base_steps()
        if self.variant == "ipc":
            if weight_step is None:
                raise ValueError("ipc needs a weight_step")
            loss, trace = self._run_ipc(schedule, rows, data, st, sg, ws, grad, trace_with,
                                        weight_step, init)
        elif schedule == "batch" and trace_with is None:
            if self.safe:
                fused = S._safe_fused_batch_parallel if parallel else S._safe_fused_batch_serial
                loss = fused(init, self.steps, rows, self.knet, data, st, self.opts, sg,
                             self.safe_opts, ws.partial, grad)
            else:
                fused = K._pc_fused_batch_parallel if parallel else K._pc_fused_batch_serial
                loss = fused(init, self.steps, rows, self.knet, data, st, self.opts,
                             ws.partial, grad)
            trace = None
        elif self.safe and schedule == "serial" and trace_with is None:
            loss = S._safe_run_serial(init, self.steps, self.knet, data, st, self.opts, sg,
                                      self.safe_opts, grad)
            trace = None
        else:
            loss = self._init(schedule, init, rows, data, st, sg)
            if trace_with is None:
                self._advance(schedule, 0, self.steps, rows, data, st, sg)
                trace = None
            else:
                trace = self._traced(schedule, self.steps, rows, data, st, sg, trace_with,
                                     grad, ws)
            self._gradient(schedule, rows, data, st, ws, grad)
        self._check_energy(data, st)
        self._collect_stats(data, st, sg)
        return loss, ws, trace

    def _init(self, schedule, init, rows, data, st, sg):
        parallel = schedule == "batch" and get_threads() > 1
        if sg is not None:
            kernel = S._safe_init_parallel if parallel else S._safe_init_serial
            return kernel(init, rows, self.knet, data, st, self.opts, sg, self.safe_opts)
        init_kernel = K._pc_init_parallel if parallel else K._pc_init_serial
        return init_kernel(init, rows, self.knet, data, st, self.opts)

    def _run_ipc(self, schedule, rows, data, st, sg, ws, grad, trace_with, weight_step, init):
        """iPC (Salvatori et al. 2024): a weight step on the energy after every state step.

        For t = 0..T-1: x(t+1) from x(t) at weights W(t) (the step rule as for vpc); then
        W(t+1) = weight_step(dF/dW at x(t+1), W(t)), and the predictions, errors and
        energies are recomputed at W(t+1). ``grad`` gets the mean of the T gradients.
        """
        loss = self._init(schedule, init, rows, data, st, sg)
        step_grad = self.net.zeros_like_params()
        total = np.zeros(grad.shape, dtype=np.float64)
        reset = (S._safe_reset_parallel if schedule == "batch" and get_threads() > 1
                 else S._safe_reset_serial)
        rec = self._recorder(schedule, rows, data, st, sg, trace_with, grad, ws) \
            if trace_with is not None else None
        if rec is not None:
            rec.record(None)
        for t in range(self.steps):
            self._advance(schedule, t, t + 1, rows, data, st, sg)
            self._gradient(schedule, rows, data, st, ws, step_grad)
            total += step_grad
            weight_step(step_grad)
            reset(rows, self.knet, data, st, self.opts, sg)
            if rec is not None:
                rec.record((total / (t + 1)).astype(grad.dtype))
        grad[:] = total / self.steps
        return loss, (rec.result() if rec is not None else None)

    def _check_energy(self, data, st):
        """Compare the energy after inference with the energy at the feedforward values.

        From feedforward values every hidden error is zero, so F_0 = pi_N * (loss sum);
        energy descent with a stable step size never ends above it (docs/algorithms.md, fact
        5). One pass over the errors, small next to the T inference steps. (For ipc the
        weights moved too; F_T is taken at the final weights.)
        """
        self.energy_change, self.energy_rose = None, False
        if self.variant not in ENERGY_DESCENT or self.init != "forward" or self.steps == 0:
            return
        f0 = self.pis[-1] * float(st.loss0.sum())
        ft = float(K._energy(self.knet, data, st, self.opts))
        self.energy_change = (f0, ft)
        # float32 rounding of a converged state can leave F_T a hair above F_0
        self.energy_rose = not ft <= f0 * (1 + ENERGY_RISE_TOL) + 1e-12

    def _collect_stats(self, data, st, sg):
        """Per-batch diagnostics for the training metrics (energy-descent variants)."""
        if self.variant not in ENERGY_DESCENT:
            self.stats = None
            return
        n = self.net.n_layers
        energies = np.zeros(n, dtype=np.float64)
        S._layer_energies(self.knet, data, st, self.opts, energies)
        stats = {"layer_energy": energies, "steps_run": self.steps,
                 "rejected": 0, "layer_step": None}
        if sg is not None:
            stats["steps_run"] = _steps_run(sg, self.steps)
            stats["rejected"] = int(sg.rejects.sum())
            stats["layer_step"] = sg.gammas[1:n] * (float(sg.scale.sum()) / sg.scale.size)
        self.stats = stats

    def _advance(self, schedule, t0, t1, rows, data, st, sg=None):
        if t1 <= t0:
            return
        if sg is not None:
            so = self.safe_opts
            if schedule == "batch":
                kernel = (S._safe_steps_batch_parallel if get_threads() > 1
                          else S._safe_steps_batch_serial)
                kernel(t0, t1, rows, self.knet, data, st, self.opts, sg, so)
            elif schedule == "layers":
                S._safe_steps_layer_parallel(t0, t1, 0, data.X.shape[0], 0, self.knet, data,
                                             st, self.opts, sg, so)
            else:
                S._safe_steps_serial(t0, t1, 0, data.X.shape[0], 0, self.knet, data, st,
                                     self.opts, sg, so)
        elif schedule == "batch":
            kernel = K._steps_batch_parallel if get_threads() > 1 else K._steps_batch_serial
            kernel(t0, t1, rows, self.knet, data, st, self.opts)
        elif schedule == "layers":
            K._steps_layer_parallel(t0, t1, 0, data.X.shape[0], 0, self.knet, data, st,
                                    self.opts)
        else:
            K._steps_serial(t0, t1, 0, data.X.shape[0], 0, self.knet, data, st, self.opts)

    def _gradient(self, schedule, rows, data, st, ws, grad):
        if schedule == "batch":
            kernel = (K._pc_gradient_chunks_parallel if get_threads() > 1
                      else K._pc_gradient_chunks_serial)
            kernel(rows, self.knet, data, st, self.opts, ws.partial, grad)
        elif schedule == "layers":
            K._pc_gradient_layer_parallel(self.knet, data, st, self.opts, grad)
        else:
            K._pc_gradient_serial(self.knet, data, st, self.opts, grad)

    def _recorder(self, schedule, rows, data, st, sg, bp_grad, grad, ws):
        return _Recorder(self, schedule, rows, data, st, sg, bp_grad, grad, ws)

    def _traced(self, schedule, n_updates, rows, data, st, sg, bp_grad, grad, ws):
        rec = self._recorder(schedule, rows, data, st, sg, bp_grad, grad, ws)
        rec.record(None)
        for t in range(n_updates):
            self._advance(schedule, t, t + 1, rows, data, st, sg)
            rec.record(None)
        return rec.result()

    def summarize(self, ws):
        """first_nonzero, converged_at and work counts from the workspace's info table."""
        info = ws.state.info
        n = self.net.n_layers
        first = info[:, K.I_FIRST, 1:n]
        first = np.where(first < 0, np.iinfo(np.int64).max, first).min(axis=0)
        first = np.where(first == np.iinfo(np.int64).max, -1, first)
        last = info[:, K.I_LASTBIG, 1:n].max(axis=0)
        n_updates = self.steps
        converged = np.where(last + 1 >= n_updates, -1, last + 1)
        converged = np.where(last < 0, 0, converged)
        converged = np.where(first < 0, -1, converged)  # the error never arrived
        if self.safe and ws.safe is not None:
            # the safeguarded loop stops per sample on the energy, not per layer
            run = _steps_run(ws.safe, self.steps)
            converged = np.where(first < 0, -1, run if run < self.steps else -1)
        vjp = int(info[:, K.I_VJP, 1:n].sum())
        vjp_skipped = int(info[:, K.I_VJP_SKIPPED, 1:n].sum())
        fwd = int(info[:, K.I_FWD, 1:].sum())
        fwd_skipped = int(info[:, K.I_FWD_SKIPPED, 1:].sum())
        total = vjp + vjp_skipped
        work = {"vjp_computed": vjp, "vjp_skipped": vjp_skipped,
                "forward_computed": fwd, "forward_skipped": fwd_skipped,
                "skipped_fraction": (vjp_skipped + fwd_skipped) / max(total + fwd + fwd_skipped, 1),
                "chunks": int(info.shape[0])}
        return first.astype(np.int64), converged.astype(np.int64), work


def _steps_run(sg, steps):
    """Steps run before every sample had stopped (``steps`` if one never stopped)."""
    if np.any(sg.stop < 0):
        return int(steps)
    return int(sg.stop.max())


class _Recorder:
    """Per-step trace of a runner: energy, its terms, error norms, steps, cosines."""

    def __init__(self, runner, schedule, rows, data, st, sg, bp_grad, grad, ws):
        self.r, self.schedule, self.rows, self.data = runner, schedule, rows, data
        self.st, self.sg, self.bp_grad, self.grad, self.ws = st, sg, bp_grad, grad, ws
        self.energy, self.terms, self.norms, self.cos, self.layer_cos = [], [], [], [], []
        self.steps, self.rejected = [], []

    def record(self, update):
        """Record the current state; ``update`` is the update so far (None: compute it)."""
        r, n = self.r, self.r.net.n_layers
        if r.variant != "fpa":
            self.energy.append(K._energy(r.knet, self.data, self.st, r.opts))
            terms = np.zeros(n, dtype=np.float64)
            S._layer_energies(r.knet, self.data, self.st, r.opts, terms)
            self.terms.append(terms)
        out = np.zeros(n, dtype=np.float64)
        K._error_norms(r.knet, self.data, self.st, out)
        self.norms.append(out)
        if update is None:
            r._gradient(self.schedule, self.rows, self.data, self.st, self.ws, self.grad)
            update = self.grad
        per_layer = np.zeros(n, dtype=np.float64)
        self.cos.append(_layer_cosines(update, self.bp_grad, r.net.sizes, per_layer))
        self.layer_cos.append(per_layer)
        if self.sg is not None:
            running = self.sg.stop < 0
            self.steps.append(self.sg.gammas[1:n] * float(np.mean(self.sg.scale * running)))
            self.rejected.append(int(self.sg.rejects.sum()))

    def result(self):
        return PCTrace(energy=np.array(self.energy) if self.energy else None,
                       error_norms=np.array(self.norms), cosine=np.array(self.cos),
                       layer_cosine=np.array(self.layer_cos, dtype=np.float64),
                       layer_energy=np.array(self.terms) if self.terms else None,
                       layer_step=np.array(self.steps) if self.steps else None,
                       rejected=np.array(self.rejected, dtype=np.int64) if self.rejected
                       else None)


def cosine(a, b):
    """Cosine similarity of two flat vectors; 0 if either is zero."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    return float(a @ b / (na * nb))


def pc_infer(net, X, y, variant, steps, step_size, precision_ratio=1.0, *, precisions=None,
             init="forward", schedule="auto", chunk_rows=None, skip=True, tol=1e-6,
             trace=False, step_rule="fixed", latent_optimizer="gd",
             energy_tol=DEFAULT_ENERGY_TOL, weight_lr=0.01):
    """Run T steps of predictive-coding inference and return the parameter update.

    Parameters
    ----------
    net : MLP
    X : array of shape (batch, n_0)
    y : array of shape (batch,) of labels, or (batch, n_N) targets for ``mse``
    variant : {"vpc", "scaled", "fpa", "zil", "fazil", "ipc"}
        ``fazil`` (FA-Z-IL, Salvatori et al. 2021) is zil whose weight layer l learns when
        its output error e_{l+1} first becomes nonzero, detected from the dynamics, instead
        of at the counted step N-1-l; from feedforward values (Theorem 1) that is the same
        step, so its update equals zil's (``result.learn_steps`` shows where it fired).
        ``ipc`` (incremental PC, Salvatori et al., ICLR 2024) is vpc whose weights also
        take a gradient step on the energy after every inference step: here plain steps
        ``W <- W - weight_lr * dF/dW`` (dF/dW as a batch-mean gradient) on a copy, so
        ``net`` is not changed; ``result.params`` holds the final parameters and
        ``result.grad`` the mean of the T gradients.
    steps : int
        T, the number of inference steps (state updates), for every variant. fpa and zil
        with ``T >= L`` (and step size 1) reproduce backprop; with ``T < L`` the layers the
        error has not reached get a zero update.
    step_size : float
        gamma; zil requires 1. Under ``step_rule="auto"``: the multiplier of the
        curvature step (1 is the bound's stable step), or Adam's step.
    precision_ratio : float
        ``scaled`` only: k, the hidden precisions (output precision 1).
    precisions : sequence of float, optional
        ``vpc`` only: pi_1..pi_N.
    init : {"forward", "zeros"}
        Initial latents (vpc/scaled); fpa and zil always start at the feedforward values.
    schedule : {"auto", "serial", "layers", "batch"}
        Parallel schedule: ``prange`` over layers, over chunks of the batch, or none.
    chunk_rows : int, optional
        Rows per chunk of the batch schedule (default 32).
    skip : bool
        Skip work that provably changes nothing (bit-identical results); False runs every
        layer at every step, the cost the paper's model counts.
    tol : float
        Convergence tolerance on the largest per-step change of a layer.
    trace : bool
        Record per-step energy, error norms and cosines with backprop (slower).
    step_rule : {"fixed", "auto"}
        vpc, scaled, ipc. ``fixed``: every step uses ``step_size`` (the paper; the default
        here, where the caller names gamma). ``auto`` (the default of training and the
        CLI): per-latent steps ``step_size / R_l`` from a curvature bound
        (:func:`curvature_steps`, ||W_l|| by warm-started power iteration), a per-sample
        energy safeguard (a step that raises a sample's energy is undone and its step
        halved; accepted steps double it back up to the curvature step) and a stop when a
        sample's relative energy change falls to ``energy_tol`` (``result.stopped_at``).
    latent_optimizer : {"gd", "momentum", "adam"}
        Update of the latents with the gradient g = dF/dx (equations in
        ``kernels/pc_safeguard.py``): plain steps, heavy-ball momentum (beta 0.9) or Adam
        (0.9, 0.999, eps 1e-8).
    energy_tol : float
        Relative energy change at which a sample stops (``auto`` only; not for ipc).
    weight_lr : float
        ipc only: learning rate of the weight step after each inference step.

    Returns
    -------
    PCResult
    """
    runner = PCRunner(net, variant, steps, step_size, precision_ratio, precisions, init,
                      schedule, chunk_rows, skip, tol, step_rule, latent_optimizer,
                      energy_tol)
    X = net.check_input(X)
    labels, targets = net.check_targets(y, X.shape[0])
    grad = net.zeros_like_params()
    bp_grad = None
    if trace:
        bp_grad = net.zeros_like_params()
        backprop_into(net, X, labels, targets, bp_grad)
    params_after = None
    weight_step = None
    if variant == "ipc":
        if not (np.isfinite(weight_lr) and weight_lr > 0):
            raise ValueError(f"weight_lr must be > 0, got {weight_lr}")
        lr = net.dtype.type(weight_lr)

        def weight_step(g):
            net.params -= lr * g
    saved = net.params.copy() if variant == "ipc" else None
    try:
        loss, ws, tr = runner.run(X, labels, targets, grad, trace_with=bp_grad,
                                  weight_step=weight_step)
    finally:
        if saved is not None:
            params_after = net.params.copy()
            net.params[:] = saved
    first, converged, work = runner.summarize(ws)
    st = ws.state
    B, n = X.shape[0], net.n_layers
    errors = [_layer(st.e, net.sizes, B, l).copy() for l in range(1, n + 1)]
    if variant == "fpa":
        states = [_layer(st.pred, net.sizes, B, l) + errors[l - 1] for l in range(1, n)]
    else:
        states = [_layer(st.x, net.sizes, B, l).copy() for l in range(1, n)]
    dW, db = net.split(grad)
    return PCResult(loss=float(loss), grad=grad, dW=dW, db=db, variant=variant,
                    steps=int(steps), step_size=float(step_size), first_nonzero=first,
                    converged_at=converged, states=states, errors=errors, work=work, trace=tr,
                    step_rule=step_rule, stopped_at=_stopped_at(runner, ws),
                    rejected=int(ws.safe.rejects.sum()) if runner.safe else 0,
                    layer_step=(runner.stats or {}).get("layer_step"),
                    layer_energy=(runner.stats or {}).get("layer_energy"),
                    params=params_after, learn_steps=_learn_steps(variant, ws, n, steps))


def _learn_steps(variant, ws, n_layers, steps):
    """Step at which each weight layer learned (zil, fazil), -1 where it never did."""
    if variant == "zil":
        return np.array([t if t <= steps else -1 for t in range(n_layers - 1, -1, -1)],
                        dtype=np.int64)
    if variant != "fazil":
        return None
    first = ws.state.info[:, K.I_FIRST, 1:n_layers + 1]
    first = np.where(first < 0, np.iinfo(np.int64).max, first).min(axis=0)
    return np.where(first == np.iinfo(np.int64).max, -1, first).astype(np.int64)


def _stopped_at(runner, ws):
    return _steps_run(ws.safe, runner.steps) if runner.safe else runner.steps
