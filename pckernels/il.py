"""Inference learning as implicit SGD: IL-prox and G-IL (docs/algorithms.md, "IL-prox" and
"G-IL"; Alonso, Millidge, Krichmar & Neftci, "A theoretical framework for inference
learning", NeurIPS 2022).

Both run PC inference of the latents (vpc dynamics, the kernels of ``kernels/pc.py`` and
``kernels/pc_safeguard.py`` through :class:`pckernels.pc.PCRunner`) towards an output
*target* that is only part of the way from the prediction to the label, then update each
layer from its local error:

- the output target is ``t_N = h_N + beta (y - h_N)`` (mse; for nll the same mix of the
  predicted distribution and the one-hot label), which the energy expresses as the output
  precision ``pi_N = beta``: ``-dF/dh_N = beta (y - h_N)``;
- ``rule="lms"`` takes the PC gradient ``dW_l = -x_l^T (pi_{l+1} e_{l+1} * g_l') / B``;
  ``rule="nlms"`` divides layer l's block (weights and bias) by
  ``n_l = mean_b ||x_l[b]||^2 + 1``, the squared norm of its input plus one for the bias.

``gil`` is that family with a fixed ``beta`` and rule (the optimizer then applies the
learning rate). ``ilprox`` ties beta to the learning rate so that the output target is the
proximal (implicit SGD) step, ``beta = a / (1 + a)`` with ``a = lr n_{N-1}``, and moves
every layer by its normalised local update with step 1: the output layer then takes
exactly the proximal step on its local loss, and for one linear layer trained with mse on
one sample the update *is* implicit SGD,
``W_new = argmin_W loss(W) + ||W - W_old||^2 / (2 lr)``.
"""
import numpy as np

from .backprop import GradientResult
from .kernels.network import _forward_net, _layer
from .pc import DEFAULT_ENERGY_TOL, PCRunner

IL_VARIANTS = ("ilprox", "gil")
IL_RULES = ("lms", "nlms")
#: G-IL's defaults: the output clamped to the label (beta 1, IL's target) and the
#: normalised rule.
GIL_BETA = 1.0
GIL_RULE = "nlms"


def input_norms(net, X, ws, batch):
    """n_l = mean over the batch of ||x_l[b]||^2 + 1 for l = 0..N-1 (x_0 = X, x_l the final
    latents in the PC workspace ``ws``): the NLMS normalisers, the +1 counting the bias."""
    n = net.n_layers
    out = np.empty(n, dtype=np.float64)
    for l in range(n):
        x = X if l == 0 else _layer(ws.state.x, net.sizes, batch, l)
        out[l] = float(np.einsum("ij,ij->", x, x, dtype=np.float64)) / batch + 1.0
    return out


class ILRunner(PCRunner):
    """IL-prox or G-IL on validated arrays; the same interface as :class:`PCRunner`.

    Parameters
    ----------
    net : MLP
    algo : {"ilprox", "gil"}
    steps, step_size, init, schedule, chunk_rows, skip, tol, step_rule, latent_optimizer,
    energy_tol
        The vpc inference settings (see :func:`pckernels.pc_infer`).
    lr : float
        ilprox: the proximal step (the learning rate of implicit SGD), > 0. Unused by gil,
        whose learning rate is the optimizer's.
    beta : float in (0, 1]
        gil: the output target's share of the label, ``t_N = h_N + beta (y - h_N)``.
    rule : {"lms", "nlms"}
        gil: the weight rule (ilprox always uses nlms with step 1).

    Raises
    ------
    ValueError
        On an unknown algorithm or rule, a non-positive ``lr`` or ``beta`` outside (0, 1],
        or invalid inference settings.
    """

    def __init__(self, net, algo, steps, step_size, init="forward", schedule="auto",
                 chunk_rows=None, skip=True, tol=1e-6, step_rule="auto", latent_optimizer="gd",
                 energy_tol=DEFAULT_ENERGY_TOL, lr=1.0, beta=GIL_BETA, rule=GIL_RULE):
        if algo not in IL_VARIANTS:
            raise ValueError(f"unknown IL algorithm {algo!r}; choose from "
                             f"{', '.join(IL_VARIANTS)}")
        if rule not in IL_RULES:
            raise ValueError(f"unknown rule {rule!r}; choose from {', '.join(IL_RULES)}")
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be > 0, got {lr}")
        if not (np.isfinite(beta) and 0 < beta <= 1):
            raise ValueError(f"beta must lie in (0, 1], got {beta}")
        super().__init__(net, "vpc", steps, step_size, precisions=np.ones(net.n_layers),
                         init=init, schedule=schedule, chunk_rows=chunk_rows, skip=skip,
                         tol=tol, step_rule=step_rule, latent_optimizer=latent_optimizer,
                         energy_tol=energy_tol)
        self.algo, self.lr = algo, float(lr)
        self.beta = float(beta)
        self.rule = "nlms" if algo == "ilprox" else rule
        self.pis[-1] = self.beta  # opts.pis is this array: the kernels see the change
        self.norms_in = None

    def run(self, X, labels, targets, grad, trace_with=None, weight_step=None):
        """Inference, then the local updates into ``grad`` (flat layout, as a gradient:
        ``params - grad`` is ilprox's step, ``params - lr grad`` gil's under plain SGD).

        Returns ``(loss, workspace, trace)`` as :meth:`PCRunner.run`; the trace's cosines
        are those of the PC gradient before normalisation. ``self.norms_in`` holds the
        normalisers n_l and, for ilprox, ``self.beta`` the output share used.
        """
        batch = X.shape[0]
        n = self.net.n_layers
        if self.algo == "ilprox":
            # beta from the feedforward input of the output layer (fixed during inference)
            self.beta = _prox_share(self.lr, self._feedforward_norm(X))
            self.pis[-1] = self.beta
        loss, ws, trace = super().run(X, labels, targets, grad, trace_with=trace_with)
        norms = input_norms(self.net, X, ws, batch)
        self.norms_in = norms
        if self.rule == "nlms":
            scale = 1.0 / norms
            if self.algo == "ilprox":
                # the output layer's exact proximal step on its local loss, with the
                # share from its inferred input: beta_T / beta on top of 1 / n_{N-1}
                scale[n - 1] *= _prox_share(self.lr, norms[n - 1]) / self.beta
            sizes = self.net.sizes
            off = 0
            for l in range(n):
                size = int(sizes[l] * sizes[l + 1] + sizes[l + 1])
                grad[off:off + size] *= grad.dtype.type(scale[l])
                off += size
        return loss, ws, trace

    def _feedforward_norm(self, X):
        """n_{N-1} at the feedforward pass (mean squared norm of the output layer's input + 1)."""
        n = self.net.n_layers
        batch = X.shape[0]
        if n == 1:
            x = X
        else:
            h = self.net.workspace(batch)["h"]
            _forward_net(X, self.net.params, self.net.sizes, self.net.codes, h)
            x = _layer(h, self.net.sizes, batch, n - 1)
        return float(np.einsum("ij,ij->", x, x, dtype=np.float64)) / batch + 1.0


def _prox_share(lr, norm):
    """beta = a / (1 + a), a = lr * norm: the proximal step's share of the output error."""
    a = lr * norm
    return a / (1.0 + a)


def il_update(net, X, y, algo="ilprox", lr=0.05, steps=None, step_size=1.0, *,
              step_rule="auto", beta=GIL_BETA, rule=GIL_RULE, apply=False, **inference):
    """One IL-prox or G-IL update on a batch.

    Parameters
    ----------
    net : MLP
    X : array of shape (batch, n_0)
    y : array of shape (batch,) of labels, or (batch, n_N) targets for ``mse``
    algo : {"ilprox", "gil"}
    lr : float
        ilprox's proximal step (see :class:`ILRunner`).
    steps : int, optional
        Inference steps T (default ``max(L, 20)``; samples stop early under ``auto``).
    step_size : float
        Inference step (multiplier of the curvature step under ``step_rule="auto"``).
    beta, rule
        gil's output share and weight rule (see :class:`ILRunner`).
    apply : bool
        ilprox: also move ``net``'s parameters by the step (``params -= grad``).
    **inference
        Further :class:`ILRunner` settings (init, schedule, skip, tol, latent_optimizer,
        energy_tol).

    Returns
    -------
    GradientResult
        ``.grad`` the update as a gradient (ilprox: the step itself), ``.loss`` the
        batch-mean loss at the feedforward pass.

    Raises
    ------
    ValueError
        As :class:`ILRunner`, or on invalid X, y.
    """
    if steps is None:
        steps = max(net.n_layers - 1, 20)
    runner = ILRunner(net, algo, steps, step_size, step_rule=step_rule, lr=lr, beta=beta,
                      rule=rule, **inference)
    X = net.check_input(X)
    labels, targets = net.check_targets(y, X.shape[0])
    grad = net.zeros_like_params()
    loss = runner.run(X, labels, targets, grad)[0]
    if apply and algo == "ilprox":
        net.params -= grad
    dW, db = net.split(grad)
    return GradientResult(loss=float(loss), grad=grad, dW=dW, db=db)
