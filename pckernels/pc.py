"""Predictive-coding inference through the public API (ALGORITHMS.md, sections 3.1-3.5)."""
from dataclasses import dataclass, field

import numpy as np

from .backprop import GradientResult, backprop_into
from .config import get_threads
from .kernels import pc as K
from .kernels.network import _layer, _layer_cosines

VARIANTS = ("vpc", "scaled", "fpa", "zil")
SCHEDULES = ("auto", "serial", "layers", "batch")
INITS = {"forward": K.INIT_FORWARD, "zeros": K.INIT_ZEROS}
_CODES = {"vpc": K.VPC, "scaled": K.VPC, "fpa": K.FPA, "zil": K.ZIL}
#: Variants whose inference is gradient descent on the energy F (so F must not rise).
ENERGY_DESCENT = ("vpc", "scaled")
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
    """
    energy: np.ndarray
    error_norms: np.ndarray
    cosine: np.ndarray
    layer_cosine: np.ndarray


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


def _check_args(net, variant, steps, step_size, schedule, init, chunk_rows, tol):
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if not np.isfinite(step_size) or step_size <= 0:
        raise ValueError(f"step_size must be > 0, got {step_size}")
    if variant == "zil":
        if step_size != 1.0:
            raise ValueError("zil requires step_size 1 (Requirement 2); got "
                             f"{step_size}")
        if init != "forward":
            raise ValueError("zil requires init='forward' (Requirement 1)")
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


def default_step_size(variant, precision_ratio=1.0):
    """The step size the CLI uses when none is given: 1, or 0.1/k for ``scaled``.

    ``scaled`` multiplies the hidden precisions by k, so the stable step shrinks as 1/k.
    It also shrinks as the weights grow during training (the coupling between layers
    scales with ||W||^2): 0.5/k is stable at initialisation but made inference diverge
    after a few epochs on digits, 0.1/k trained (with ~40 steps to converge).
    """
    if variant != "scaled":
        return 1.0
    if not (np.isfinite(precision_ratio) and precision_ratio > 0):
        raise ValueError(f"precision_ratio must be > 0, got {precision_ratio}")
    return 0.1 / precision_ratio


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

    @staticmethod
    def get(net, batch, n_chunks):
        key = ("pc", batch, n_chunks)
        ws = net._workspaces.get(key)
        if ws is None:
            ws = PCWorkspace(net, batch, n_chunks)
            net._workspaces[key] = ws
        return ws


class PCRunner:
    """Validated settings of a PC variant, reusable across batches (used by training).

    :func:`pc_infer` is the one-call front end; the training loop keeps a runner so that
    the per-batch path does no validation beyond the array checks it already did.
    """

    def __init__(self, net, variant, steps, step_size, precision_ratio=1.0, precisions=None,
                 init="forward", schedule="auto", chunk_rows=None, skip=True, tol=1e-6):
        _check_args(net, variant, steps, step_size, schedule, init, chunk_rows, tol)
        self.net = net
        self.variant = variant
        self.steps = int(steps)
        self.step_size = float(step_size)
        self.init = init
        self.schedule = schedule
        self.chunk_rows = chunk_rows
        self.pis = precisions_for(net, variant, precision_ratio, precisions)
        self.opts = K.PCOpts(variant=_CODES[variant], gamma=self.step_size, pis=self.pis,
                             tol=float(tol), skip=bool(skip))
        self.knet = K.PCNet(params=net.params, sizes=net.sizes, codes=net.codes,
                            loss_code=net.loss_code)
        self.energy_change, self.energy_rose = None, False

    def _layout(self, batch):
        schedule = resolve_schedule(self.schedule)
        rows = batch
        if schedule == "batch":
            rows = min(batch, self.chunk_rows or DEFAULT_CHUNK_ROWS)
        return schedule, rows, (batch + rows - 1) // rows

    def run(self, X, labels, targets, grad, trace_with=None):
        """Inference on validated arrays; writes the update into ``grad`` (flat layout).

        Returns ``(loss, workspace, trace)``. ``trace_with`` is the backprop gradient to
        compare with, or None for the fused path with no per-step recording. Afterwards
        ``energy_change`` holds ``(F_0, F_T)`` for the energy-descent variants started at
        the feedforward values (else None), and ``energy_rose`` whether F_T > F_0.
        """
        batch = X.shape[0]
        schedule, rows, n_chunks = self._layout(batch)
        ws = PCWorkspace.get(self.net, batch, n_chunks)
        st = ws.state
        data = K.PCData(X=X, labels=labels, targets=targets)
        init = INITS[self.init]
        parallel = get_threads() > 1
        if schedule == "batch" and trace_with is None:
            fused = K._pc_fused_batch_parallel if parallel else K._pc_fused_batch_serial
            loss = fused(init, self.steps, rows, self.knet, data, st, self.opts, ws.partial,
                         grad)
            trace = None
        else:
            init_kernel = (K._pc_init_parallel if schedule == "batch" and parallel
                           else K._pc_init_serial)
            loss = init_kernel(init, rows, self.knet, data, st, self.opts)
            if trace_with is None:
                self._advance(schedule, 0, self.steps, rows, data, st)
                trace = None
            else:
                trace = self._traced(schedule, self.steps, rows, data, st, trace_with, grad,
                                     ws)
            self._gradient(schedule, rows, data, st, ws, grad)
        self._check_energy(data, st)
        return loss, ws, trace

    def _check_energy(self, data, st):
        """Compare the energy after inference with the energy at the feedforward values.

        From feedforward values every hidden error is zero, so F_0 = pi_N * (loss sum);
        energy descent with a stable step size never ends above it (ALGORITHMS.md, fact
        5). One pass over the errors, small next to the T inference steps.
        """
        self.energy_change, self.energy_rose = None, False
        if self.variant not in ENERGY_DESCENT or self.init != "forward" or self.steps == 0:
            return
        f0 = self.pis[-1] * float(st.loss0.sum())
        ft = float(K._energy(self.knet, data, st, self.opts))
        self.energy_change = (f0, ft)
        # float32 rounding of a converged state can leave F_T a hair above F_0
        self.energy_rose = not ft <= f0 * (1 + ENERGY_RISE_TOL) + 1e-12

    def _advance(self, schedule, t0, t1, rows, data, st):
        if t1 <= t0:
            return
        if schedule == "batch":
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

    def _traced(self, schedule, n_updates, rows, data, st, bp_grad, grad, ws):
        n = self.net.n_layers
        energy, norms, cos, layer_cos = [], [], [], []

        def record():
            if self.variant != "fpa":
                energy.append(K._energy(self.knet, data, st, self.opts))
            out = np.zeros(n, dtype=np.float64)
            K._error_norms(self.knet, data, st, out)
            norms.append(out)
            self._gradient(schedule, rows, data, st, ws, grad)
            per_layer = np.zeros(n, dtype=np.float64)
            cos.append(_layer_cosines(grad, bp_grad, self.net.sizes, per_layer))
            layer_cos.append(per_layer)

        record()
        for t in range(n_updates):
            self._advance(schedule, t, t + 1, rows, data, st)
            record()
        return PCTrace(energy=np.array(energy) if energy else None,
                       error_norms=np.array(norms), cosine=np.array(cos),
                       layer_cosine=np.array(layer_cos, dtype=np.float64))

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
             trace=False):
    """Run T steps of predictive-coding inference and return the parameter update.

    Parameters
    ----------
    net : MLP
    X : array of shape (batch, n_0)
    y : array of shape (batch,) of labels, or (batch, n_N) targets for ``mse``
    variant : {"vpc", "scaled", "fpa", "zil"}
    steps : int
        T, the number of inference steps (state updates), for every variant. fpa and zil
        with ``T >= L`` (and step size 1) reproduce backprop; with ``T < L`` the layers the
        error has not reached get a zero update.
    step_size : float
        gamma; zil requires 1.
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

    Returns
    -------
    PCResult
    """
    runner = PCRunner(net, variant, steps, step_size, precision_ratio, precisions, init,
                      schedule, chunk_rows, skip, tol)
    X = net.check_input(X)
    labels, targets = net.check_targets(y, X.shape[0])
    grad = net.zeros_like_params()
    bp_grad = None
    if trace:
        bp_grad = net.zeros_like_params()
        backprop_into(net, X, labels, targets, bp_grad)
    loss, ws, tr = runner.run(X, labels, targets, grad, trace_with=bp_grad)
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
                    converged_at=converged, states=states, errors=errors, work=work, trace=tr)
