"""The paper's Results 1 and 2 as measurements (section 4, "Results"; docs/algorithms.md).

- Result 1: the infinite-variance limit (``scaled``, hidden precisions k) is a model with
  deterministic latents: as k grows, inference leaves the latents at their feedforward
  values, ``max |x - mu|`` shrinking like 1/k, and the update tends to backprop's.
- Result 2: FPA-PC and Z-IL do not follow a free-energy gradient: neither their inference
  steps (against ``-dF/dx``) nor their parameter updates (against ``dF/dtheta`` at their
  final states) point along the gradient of the energy F of standard PC (eq. 3.5), while
  vpc's do by construction.

Everything here is float64 NumPy on the states :func:`pckernels.pc_infer` returns: these
are measurements, not a hot path.
"""
import numpy as np

from .backprop import backprop
from .cost import _act, _act_grad
from .pc import cosine, default_step_size, pc_infer


def _flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.zeros(0)


def _net_arrays(net):
    return ([np.asarray(W, dtype=np.float64) for W in net.weights],
            [np.asarray(b, dtype=np.float64) for b in net.biases])


def energy_gradients(net, X, y, states):
    """Energy of standard PC at given latents, and its gradients (eq. 3.5-3.13, pi = 1).

    Parameters
    ----------
    net : MLP
    X : array of shape (batch, n_0)
    y : array of shape (batch,) of labels, or (batch, n_N) targets for ``mse``
    states : list of L arrays, ``states[l-1]`` of shape (batch, n_l)
        Latents x_1..x_L (e.g. ``pc_infer(...).states``).

    Returns
    -------
    F : float
        ``sum_b [sum_l 1/2 ||e_l||^2 + loss_b]`` with every prediction and Jacobian taken at
        the given states.
    dF_dx : list of L arrays shaped as ``states``
        ``e_l - (e_{l+1} * g_l'(z_l)) W_l^T``.
    dF_dtheta : array of shape (n_params,)
        In the flat parameter layout, divided by the batch size like a gradient of the
        mean loss: ``dW_l = -x_l^T (e_{l+1} * g_l'(z_l)) / B``, ``db_l`` likewise.
    """
    X = net.check_input(X).astype(np.float64)
    labels, targets = net.check_targets(y, X.shape[0])
    Ws, bs = _net_arrays(net)
    N, B = net.n_layers, X.shape[0]
    xs = [X] + [np.asarray(s, dtype=np.float64) for s in states]
    if len(xs) != N:
        raise ValueError(f"states needs {N - 1} arrays (x_1..x_L), got {len(states)}")
    zs, preds = [], []
    for l in range(N):
        z = xs[l] @ Ws[l] + bs[l]
        name = net.activation if l < N - 1 else "identity"
        zs.append(z)
        preds.append(_act(name, z))
    out = preds[-1]
    if net.loss == "nll":
        shifted = out - out.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -logp[np.arange(B), labels].sum()
        dout = np.exp(logp)
        dout[np.arange(B), labels] -= 1.0
    else:
        r = out - targets
        loss = 0.5 * (r * r).sum()
        dout = r
    es = [None] + [xs[l] - preds[l - 1] for l in range(1, N)] + [-dout]
    F = 0.5 * sum(float((e * e).sum()) for e in es[1:N]) + float(loss)
    qs = []
    for l in range(N):
        name = net.activation if l < N - 1 else "identity"
        qs.append(es[l + 1] * _act_grad(name, zs[l], preds[l]))
    dF_dx = [es[l] - qs[l] @ Ws[l].T for l in range(1, N)]
    grads = []
    for l in range(N):
        grads.append(-(xs[l].T @ qs[l]) / B)
        grads.append(-qs[l].sum(axis=0) / B)
    return F, dF_dx, _flat(grads)


def result1(net, X, y, ks=(1.0, 10.0, 100.0, 1000.0, 10000.0), steps=1000, step_size=None):
    """How far ``scaled`` inference moves the latents from their feedforward values.

    Parameters
    ----------
    ks : sequence of float
        Hidden precisions k (output precision 1).
    steps : int
        Inference steps; enough to converge with the default step (``last_step_change``
        in the result shows it).
    step_size : float, optional
        Default :func:`pckernels.pc.default_step_size` (0.1/k).

    Returns
    -------
    list of dict
        Per k: ``k``, ``step_size``, ``max_abs_shift`` (max over latents and entries of
        ``|x - mu|``), ``relative_shift`` (that over ``max |mu|``), ``last_step_change``
        (largest entry change of the final step, a convergence check) and ``cosine_bp``
        (the update against backprop's gradient).
    """
    bp = backprop(net, X, y)
    mu = pc_infer(net, X, y, "fpa", 0, 1.0).states
    mu_max = max(float(np.abs(m).max()) for m in mu) if mu else 0.0
    rows = []
    for k in ks:
        gamma = default_step_size("scaled", k) if step_size is None else step_size
        r = pc_infer(net, X, y, "scaled", steps, gamma, precision_ratio=k)
        prev = pc_infer(net, X, y, "scaled", max(steps - 1, 0), gamma, precision_ratio=k)
        shift = max(float(np.abs(x.astype(np.float64) - m).max())
                    for x, m in zip(r.states, mu))
        last = max(float(np.abs(a.astype(np.float64) - b).max())
                   for a, b in zip(r.states, prev.states))
        rows.append({"k": float(k), "step_size": float(gamma), "max_abs_shift": shift,
                     "relative_shift": shift / mu_max if mu_max > 0 else float("nan"),
                     "last_step_change": last, "cosine_bp": cosine(r.grad, bp.grad)})
    return rows


def result2(net, X, y, cases=(("vpc", None, 0.1), ("fpa", None, 1.0), ("fpa", None, 0.5),
                              ("zil", None, 1.0))):
    """Do a variant's inference steps and updates follow the energy's gradient?

    Parameters
    ----------
    cases : sequence of (variant, steps, step_size)
        ``steps`` None means L (fpa/zil) or 4 L (vpc, so that it nears convergence).

    Returns
    -------
    list of dict
        Per case: ``variant``, ``steps``, ``step_size``, ``inference_cosine`` (mean over
        steps of the cosine of the state change with ``-dF/dx`` at the step's start
        states), ``update_cosine`` (cosine of the parameter update with ``dF/dtheta`` at
        the final states) and ``cosine_bp`` (update vs backprop).
    """
    L = net.n_layers - 1
    bp = backprop(net, X, y)
    rows = []
    for variant, steps, gamma in cases:
        T = (4 * L if variant == "vpc" else L) if steps is None else int(steps)
        runs = [pc_infer(net, X, y, variant, t, gamma) for t in range(T + 1)]
        cosines = []
        for before, after in zip(runs[:-1], runs[1:]):
            move = _flat(after.states) - _flat(before.states)
            down = -_flat(energy_gradients(net, X, y, before.states)[1])
            if np.any(move) and np.any(down):
                cosines.append(cosine(move, down))
        final = runs[-1]
        dtheta = energy_gradients(net, X, y, final.states)[2]
        rows.append({"variant": variant, "steps": T, "step_size": float(gamma),
                     "inference_cosine": float(np.mean(cosines)) if cosines else float("nan"),
                     "update_cosine": cosine(final.grad, dtheta),
                     "cosine_bp": cosine(final.grad, bp.grad)})
    return rows
