"""Separate feedback weights: the weight-symmetry problem (docs/algorithms.md, "Weight symmetry").

Backprop, fpa and vpc carry the error down layer ``l`` through ``W_l^T``: the same
synapses that carry activity up. The paper (section 1, "Point 2") counts this weight
transport among the reasons backprop is not biologically plausible and PC inherits it. The
feedback kinds here replace ``W_l`` on the error path by a matrix ``B_l`` of the same shape:

- ``"symmetric"``: ``B_l = W_l`` (backprop, and the existing kernels run unchanged);
- ``"fa"``: feedback alignment (Lillicrap, Cownden, Tweed & Akerman 2016, "Random synaptic
  feedback weights support error backpropagation for deep learning", Nat. Commun. 7:13276):
  ``B_l`` is fixed and random, drawn once with the initialisation's distribution;
- ``"kp"``: Kolen-Pollack (Kolen & Pollack 1994; Akrout, Wilson, Humphreys, Lillicrap &
  Tweed 2019, "Deep learning without weight transport", NeurIPS): ``B_l`` starts random
  and receives the same update as ``W_l``, each with its own weight decay, so
  ``B_l - W_l`` shrinks by ``(1 - lr * weight_decay)`` per step.

The matrices live with the network (``net.feedback``, a :class:`Feedback`), are saved in
training checkpoints and pickled with it.
"""
import dataclasses

import numpy as np

from .backprop import GradientResult
from .config import get_threads
from .kernels import feedback as FK

#: Feedback kinds (``--feedback``), "symmetric" first (the default).
FEEDBACK = ("symmetric", "fa", "kp")
#: Algorithms that accept a non-symmetric feedback.
FEEDBACK_ALGOS = ("bp", "fpa", "vpc")
#: Default inference step and number of steps of vpc with fa or kp (fixed rule). The
#: paper's step 1 with T = L, the fixed-rule default, let vpc's inference diverge after a
#: few epochs on digits even with B = W (the stable step shrinks as the weights grow);
#: 0.2 with 20 steps trained to 0.956 test accuracy there with B = W.
VPC_STEP_SIZE = 0.2
VPC_STEPS = 20
#: Spawn key of the feedback matrices' random stream, derived from the network's seed
#: (so that B_0 is not W_0).
FEEDBACK_STREAM = 0xFB
#: Rows per chunk of the batch-parallel schedule.
DEFAULT_CHUNK_ROWS = 32
SCHEDULES = ("auto", "serial", "batch")
INITS = {"forward": FK.INIT_FORWARD, "zeros": FK.INIT_ZEROS}


def check_feedback(feedback, algo=None):
    """ValueError unless ``feedback`` is a known kind that ``algo`` supports."""
    if feedback not in FEEDBACK:
        raise ValueError(f"unknown feedback {feedback!r}; choose from {', '.join(FEEDBACK)}")
    if algo is not None and feedback != "symmetric" and algo not in FEEDBACK_ALGOS:
        raise ValueError(f"feedback {feedback!r} applies to {', '.join(FEEDBACK_ALGOS)}, not "
                         f"to {algo}")


class Feedback:
    """Feedback weights ``B_l`` of a network, in its flat parameter layout.

    Parameters
    ----------
    net : MLP
    kind : {"fa", "kp"}
    params : array of shape (net.n_params,), optional
        The feedback buffer; only the weight slots are used (bias slots are set to 0).
        Default: drawn by :meth:`draw`'s rule.

    Attributes
    ----------
    kind : str
    params : array of shape (n_params,)
        The flat buffer, in ``net.dtype``.
    weights : list of arrays, ``weights[l]`` of shape (n_l, n_{l+1})
        Views of ``B_l`` into ``params``.

    Raises
    ------
    ValueError
        For an unknown kind, or ``params`` of the wrong shape or with non-finite values.
    """

    def __init__(self, net, kind, params=None):
        if kind not in FEEDBACK[1:]:
            raise ValueError(f"feedback matrices are for {' and '.join(FEEDBACK[1:])}, not "
                             f"{kind!r}")
        self.kind = kind
        self.sizes = np.array(net.sizes, dtype=np.int64)
        self.params = np.zeros(net.n_params, dtype=net.dtype)
        self.weights, _ = net.split(self.params)
        if params is None:
            params = draw_feedback(net)
        params = np.asarray(params)
        if params.shape != self.params.shape:
            raise ValueError(f"feedback must have shape {self.params.shape}, got {params.shape}")
        if not np.all(np.isfinite(params)):
            raise ValueError("feedback contains NaN or infinite values")
        for B, src in zip(self.weights, net.split(params)[0]):
            B[...] = src

    def __getstate__(self):
        return {"kind": self.kind, "sizes": self.sizes, "params": self.params}

    def __setstate__(self, state):
        self.kind, self.sizes, self.params = state["kind"], state["sizes"], state["params"]
        self.weights, off = [], 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            self.weights.append(self.params[off:off + n_in * n_out].reshape(n_in, n_out))
            off += n_in * n_out + n_out

    def check(self, net):
        """ValueError unless these matrices fit ``net`` (widths and dtype)."""
        if (list(self.sizes) != list(net.sizes) or self.params.dtype != net.dtype):
            raise ValueError(f"the feedback matrices were made for an MLP "
                             f"{'-'.join(map(str, self.sizes))} ({self.params.dtype}), not "
                             f"{'-'.join(map(str, net.sizes))} ({net.dtype})")

    def track(self, params, old, lr, weight_decay):
        """After an optimizer step from ``old`` to ``params``: kp's update of B (a no-op for fa).

        ``B_l <- B_l + (W_l - W_l^old) - lr * weight_decay * (B_l - W_l^old)``: B receives
        W's update, and weight decay acts on B itself, so with plain SGD this is Akrout et
        al.'s rule ``B <- B - lr (dW + weight_decay B)``.
        """
        if self.kind == "kp":
            FK._kp_track(self.params, params, old, self.sizes, float(lr) * float(weight_decay))

    def alignment(self, net):
        """Per weight layer, the cosine of ``B_l`` with ``W_l``: array of shape (N,)."""
        out = np.zeros(len(self.sizes) - 1, dtype=np.float64)
        FK._weight_cosines(self.params, net.params, self.sizes, out)
        return out

    def distance(self, net):
        """Per weight layer, the Frobenius norm ``||B_l - W_l||``: array of shape (N,)."""
        return np.array([float(np.linalg.norm(np.asarray(B, np.float64) - W))
                         for B, W in zip(self.weights, net.weights)])

    def __repr__(self):
        return f"Feedback({self.kind!r}, {'-'.join(map(str, self.sizes))})"


def draw_feedback(net, seed=None):
    """Random feedback weights with the distribution of ``net``'s initialisation.

    A network of the same architecture, ``init``, ``param`` and ``gain`` is drawn from a
    seed derived from ``seed`` (default ``net.seed``) with spawn key
    :data:`FEEDBACK_STREAM`, so the same seed always gives the same ``B`` and ``B_0`` is
    independent of ``W_0``. Returns a flat buffer in the parameter layout, biases zero.
    """
    from .model import MLP
    seed = net.seed if seed is None else seed
    derived = int(np.random.SeedSequence(seed, spawn_key=(FEEDBACK_STREAM,))
                  .generate_state(1)[0])
    gain = net.gain if net.init in ("xavier", "orthogonal") else None
    scratch = MLP(net.sizes, net.activation, net.loss, str(net.dtype), derived, net.init,
                  net.param, gain)
    out = scratch.params.copy()
    for b in scratch.split(out)[1]:
        b[...] = 0
    return out


def resolve_feedback(net, feedback, algo):
    """The :class:`Feedback` a run uses, or None for symmetric feedback.

    ``feedback=None`` takes the network's own (``net.feedback``, e.g. a resumed run's);
    ``"fa"``/``"kp"`` reuse ``net.feedback`` when it is of that kind and otherwise draw and
    attach new matrices; ``"symmetric"`` uses ``W^T`` (leaving ``net.feedback`` as it is).

    Raises
    ------
    ValueError
        For an unknown kind, an algorithm without feedback support, or when the network
        carries matrices of the other non-symmetric kind.
    """
    own = getattr(net, "feedback", None)
    if feedback is None:
        feedback = own.kind if own is not None else "symmetric"
    check_feedback(feedback, algo)
    if feedback == "symmetric":
        return None
    if own is not None:
        if own.kind != feedback:
            raise ValueError(f"the network carries {own.kind} feedback matrices; it cannot "
                             f"continue with feedback {feedback!r}")
        own.check(net)
        return own
    net.feedback = Feedback(net, feedback)
    return net.feedback


def feedback_settings(pc, algo, n_hidden):
    """``pc`` (a :class:`pckernels.PCSettings`) with fpa's or vpc's defaults under fa/kp.

    fpa: the fixed rule, ``T = L``, step 1. vpc: the fixed rule (the ``auto`` rule's
    curvature bound and energy safeguard assume that inference descends the energy, which
    it does not when ``B != W``), step :data:`VPC_STEP_SIZE`, ``T = max(L,``
    :data:`VPC_STEPS` ``)``.

    Raises
    ------
    ValueError
        For ``step_rule="auto"``, a latent optimizer other than gd, a schedule the feedback
        kernels do not have (``layers``), or invalid values.
    """
    if algo not in ("fpa", "vpc"):
        raise ValueError(f"feedback inference applies to fpa and vpc, not {algo}")
    rule = pc.step_rule or "fixed"
    if rule != "fixed":
        raise ValueError(f"{algo} with non-symmetric feedback supports step_rule 'fixed' "
                         "only (with B != W inference is not descent on the energy, which "
                         "the auto rule's step bound and safeguard assume)")
    if pc.latent_optimizer != "gd":
        raise ValueError(f"{algo} with non-symmetric feedback supports latent_optimizer "
                         f"'gd' only, got {pc.latent_optimizer!r}")
    if pc.schedule not in SCHEDULES:
        raise ValueError(f"{algo} with non-symmetric feedback supports the schedules "
                         f"{', '.join(SCHEDULES)}, not {pc.schedule!r}")
    steps, step_size = pc.steps, pc.step_size
    if steps is None:
        steps = n_hidden if algo == "fpa" else max(n_hidden, VPC_STEPS)
    if step_size is None:
        step_size = 1.0 if algo == "fpa" else VPC_STEP_SIZE
    return dataclasses.replace(pc, steps=steps, step_size=step_size, step_rule="fixed")


class FeedbackWorkspace:
    """Preallocated buffers for one network, batch size and chunking."""

    def __init__(self, net, batch, n_chunks):
        n = batch * int(np.sum(net.sizes[1:]))
        dt = net.dtype
        self.state = FK.FBState(x=np.zeros(n, dt), e=np.zeros(n, dt), pred=np.zeros(n, dt),
                                gp=np.zeros(n, dt), q=np.zeros(n, dt), v=np.zeros(n, dt),
                                loss=np.zeros(n_chunks), loss0=np.zeros(n_chunks))

    @staticmethod
    def get(net, batch, n_chunks):
        return net.cached_workspace(("feedback", batch, n_chunks),
                                    lambda: FeedbackWorkspace(net, batch, n_chunks))


class FeedbackRunner:
    """fpa or vpc inference with feedback weights B, fixed step (used by training).

    Parameters
    ----------
    net : MLP
    variant : {"fpa", "vpc"}
    steps : int
        T >= 0 inference steps.
    step_size : float
        gamma > 0.
    feedback : Feedback
    precisions : sequence of float, optional
        vpc: pi_1..pi_N (default ones).
    init : {"forward", "zeros"}
        Initial latents of vpc (fpa always starts at the feedforward values).
    schedule : {"auto", "serial", "batch"}
        ``batch`` runs chunks of ``chunk_rows`` rows in parallel; ``auto`` is serial.
    chunk_rows : int, optional
        Rows per chunk (default 32) of the batch schedule.
    """

    def __init__(self, net, variant, steps, step_size, feedback, precisions=None,
                 init="forward", schedule="auto", chunk_rows=None):
        if variant not in ("fpa", "vpc"):
            raise ValueError(f"feedback inference applies to fpa and vpc, not {variant!r}")
        if isinstance(steps, bool) or int(steps) != steps or steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
        if not (np.isfinite(step_size) and step_size > 0):
            raise ValueError(f"step_size must be > 0, got {step_size}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose from {', '.join(INITS)}")
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r} for feedback inference; choose "
                             f"from {', '.join(SCHEDULES)}")
        if chunk_rows is not None and chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        if not isinstance(feedback, Feedback):
            raise ValueError(f"feedback must be a Feedback, got {type(feedback).__name__}")
        feedback.check(net)
        n = net.n_layers
        pis = np.ones(n + 1, dtype=np.float64)
        if precisions is not None:
            if variant != "vpc":
                raise ValueError(f"precisions apply to vpc only, not {variant}")
            p = np.asarray(precisions, dtype=np.float64)
            if p.shape != (n,) or not np.all(np.isfinite(p)) or np.any(p <= 0):
                raise ValueError(f"precisions needs {n} finite values > 0 (layers 1..{n})")
            pis[1:] = p
        self.net, self.variant, self.steps = net, variant, int(steps)
        self.step_size, self.feedback, self.schedule = float(step_size), feedback, schedule
        self.chunk_rows = chunk_rows
        self.opts = FK.FBOpts(variant=FK.FPA if variant == "fpa" else FK.VPC,
                              gamma=self.step_size, pis=pis, init=INITS[init])
        self.knet = FK.FBNet(params=net.params, feedback=feedback.params, sizes=net.sizes,
                             codes=net.codes, loss_code=net.loss_code)
        # what the training loop reads from a runner
        self.energy_rose, self.energy_change, self.stats, self._power_vecs = False, None, None, None

    def run(self, X, labels, targets, grad, trace_with=None, weight_step=None):
        """Inference on validated arrays; writes the update into ``grad``.

        Returns ``(loss at the feedforward pass, workspace, None)``.
        """
        batch = X.shape[0]
        rows = batch
        if self.schedule == "batch":
            rows = min(batch, self.chunk_rows or DEFAULT_CHUNK_ROWS)
        n_chunks = (batch + rows - 1) // rows
        ws = FeedbackWorkspace.get(self.net, batch, n_chunks)
        data = FK.FBData(X=X, labels=labels, targets=targets)
        parallel = self.schedule == "batch" and get_threads() > 1
        infer = FK._infer_parallel if parallel else FK._infer_serial
        loss = infer(self.steps, rows, self.knet, data, ws.state, self.opts)
        gradient = FK._gradient_parallel if parallel else FK._gradient_serial
        gradient(self.knet, data, ws.state, self.opts, grad)
        return loss, ws, None


@dataclasses.dataclass
class FeedbackResult(GradientResult):
    """The outcome of :func:`feedback_infer`.

    Attributes
    ----------
    states : list of arrays
        Final latents x_1..x_L, each (batch, n_l) (fpa: mu_l + e_l).
    errors : list of arrays
        Final errors e_1..e_N, each (batch, n_l).
    """
    variant: str = ""
    states: list = dataclasses.field(default=None, repr=False)
    errors: list = dataclasses.field(default=None, repr=False)


def feedback_backprop_into(net, feedback, X, labels, targets, grad):
    """Kernel-level backprop with ``d_l = delta_l B_l^T`` on validated arrays; returns the
    batch-mean loss."""
    ws = net.workspace(X.shape[0])
    knet = FK.FBNet(params=net.params, feedback=feedback.params, sizes=net.sizes,
                    codes=net.codes, loss_code=net.loss_code)
    return FK._backprop_feedback_net(X, labels, targets, knet, ws["h"], ws["d"], grad)


def feedback_backprop(net, X, y, feedback):
    """The update of backprop with feedback weights (docs/algorithms.md, "Weight symmetry").

    Parameters
    ----------
    net : MLP
    X : array of shape (batch, n_0)
    y : array of shape (batch,) of labels, or (batch, n_N) targets for ``mse``
    feedback : Feedback
        ``B_l`` replaces ``W_l`` in ``d_l = delta_l W_l^T``; with ``B = W`` the result is
        bit-identical to :func:`pckernels.backprop`.

    Returns
    -------
    GradientResult
    """
    if not isinstance(feedback, Feedback):
        raise ValueError(f"feedback must be a Feedback, got {type(feedback).__name__}")
    feedback.check(net)
    X = net.check_input(X)
    labels, targets = net.check_targets(y, X.shape[0])
    grad = net.zeros_like_params()
    loss = feedback_backprop_into(net, feedback, X, labels, targets, grad)
    dW, db = net.split(grad)
    return GradientResult(loss=float(loss), grad=grad, dW=dW, db=db)


def feedback_infer(net, X, y, variant, steps, step_size, feedback, *, precisions=None,
                   init="forward", schedule="auto", chunk_rows=None):
    """fpa or vpc inference with feedback weights, fixed step; returns the update.

    Parameters are those of :class:`FeedbackRunner`, plus ``X`` of shape (batch, n_0) and
    ``y`` of shape (batch,) (labels) or (batch, n_N) (``mse`` targets). With ``B = W`` the
    update equals :func:`pckernels.pc_infer`'s with ``step_rule="fixed"`` bit for bit.

    Returns
    -------
    FeedbackResult
    """
    runner = FeedbackRunner(net, variant, steps, step_size, feedback, precisions, init,
                            schedule, chunk_rows)
    X = net.check_input(X)
    labels, targets = net.check_targets(y, X.shape[0])
    grad = net.zeros_like_params()
    loss, ws, _ = runner.run(X, labels, targets, grad)
    st, B, n = ws.state, X.shape[0], net.n_layers
    errors = [FK._layer(st.e, net.sizes, B, l).copy() for l in range(1, n + 1)]
    if variant == "fpa":
        states = [FK._layer(st.pred, net.sizes, B, l) + errors[l - 1] for l in range(1, n)]
    else:
        states = [FK._layer(st.x, net.sizes, B, l).copy() for l in range(1, n)]
    dW, db = net.split(grad)
    return FeedbackResult(loss=float(loss), grad=grad, dW=dW, db=db, variant=variant,
                          states=states, errors=errors)
