"""The paper's cost model (sections 2.1 and 3.4.2, eq. 2.4-2.6 and 3.27-3.36).

Counting convention (FLOPs, one multiply or one add = 1 FLOP):

- ``C_i``, the forward cost of weight layer ``i`` (``z = h W + b``, ``h' = g(z)``) for a
  batch of ``B`` rows: ``2 B n_in n_out`` for the matrix product, ``B n_out`` for the bias
  and ``ACT_FLOPS[g] * B n_out`` for the activation (1 per element for every nonlinearity,
  0 for the identity output layer). Transcendentals are counted as one FLOP: the model is
  about orders of growth, and the GEMM term dominates for every width the paper uses.
- ``VJP_i = 2 C_i`` (cheap-gradient constant, the paper's convention). The kernels split it
  into the input side ``delta W^T`` (``2 B n_in n_out``) and the parameter side
  ``h^T delta`` plus the bias sum (``2 B n_in n_out + B n_out``); :func:`kernel_flops`
  counts what the kernels really do.
- ``w`` is the machine constant turning work into time; analytic times are reported as
  FLOPs on the critical path (``w = 1``) and in units of one forward pass ``C_F = sum C_i``.

Models (docs/algorithms.md, "Time complexity"):

- backprop: ``WORK = TIME/w = sum C_i + sum 2 C_i = 3 sum C_i`` (eq. 2.6).
- fpa: ``TIME >= w sum C_i + w sum_{t=1..T} 2 C_max`` with ``T >= L`` (eq. 3.27-3.32),
  ``WORK = sum C_i + T sum 2 C_i``.
- zil: ``T`` counts state updates as for every variant; ``T = L`` updates give the states
  at the points ``t = 0..L`` of eq. 3.33-3.36 (the paper sums over those L + 1 points; the
  VJP of the t = 0 point is the output layer's parameter VJP, which backprop's count has
  too, so L input VJPs lie on the critical path, as for fpa): ``TIME >= w sum C_i +
  w sum_{t=1..T} 2 C_max``. Its work also recomputes every prediction after each of its
  ``T`` state updates (vpc dynamics), ``WORK = sum C_i + T sum 2 C_i + T sum C_i``.

Theorem 1 / Corollary 1 counts and the wasted work are in :func:`first_nonzero_steps`,
:func:`simulate_fpa` and :func:`wasted_vjps`.
"""
import numpy as np

#: FLOPs per element of an activation (identity: none).
ACT_FLOPS = {"identity": 0}
DEFAULT_ACT_FLOPS = 1

MODEL_ALGOS = ("bp", "fpa", "zil")


def _sizes(sizes):
    sizes = np.asarray([int(s) for s in sizes], dtype=np.int64)
    if sizes.size < 2 or sizes.min() < 1:
        raise ValueError(f"sizes needs at least two widths >= 1, got {sizes.tolist()}")
    return sizes


def layer_flops(sizes, batch, activation="tanh"):
    """Forward FLOPs ``C_i`` of each weight layer.

    Parameters
    ----------
    sizes : sequence of int
        Widths ``(n_0, ..., n_N)``.
    batch : int
        Rows per batch ``B``.
    activation : str
        Hidden activation; the output layer is the identity.

    Returns
    -------
    array of shape (N,), int64
        ``C_i = 2 B n_i n_{i+1} + B n_{i+1} + a_i B n_{i+1}``, ``a_i`` from ``ACT_FLOPS``.
    """
    s = _sizes(sizes)
    if int(batch) < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    B = int(batch)
    n_in, n_out = s[:-1], s[1:]
    act = np.full(n_in.size, ACT_FLOPS.get(activation, DEFAULT_ACT_FLOPS), dtype=np.int64)
    act[-1] = ACT_FLOPS["identity"]
    return 2 * B * n_in * n_out + B * n_out + act * B * n_out


def _default_steps(algo, n_hidden):
    # fpa (step 1) and zil reach the first layer, i.e. equal backprop, after L updates
    return n_hidden


def analytic(sizes, batch, steps=None, activation="tanh", algos=MODEL_ALGOS):
    """WORK and TIME of backprop, fpa and zil under the paper's model.

    Parameters
    ----------
    sizes, batch, activation : as in :func:`layer_flops`
    steps : int, optional
        T, the state updates of fpa and zil (default L, the fewest that reach the first
        layer).
    algos : sequence of {"bp", "fpa", "zil"}

    Returns
    -------
    dict
        ``C`` (list, FLOPs per layer), ``C_sum`` (= C_F), ``C_max``, ``L`` and per algorithm
        ``{"steps", "work_flops", "time_flops", "work_fwd", "time_fwd", "time_ratio_bp"}``:
        work, critical-path time (w = 1), both in forward-pass units, and the lower bound
        ``TIME{algo} / TIME{backprop}``.
    """
    C = layer_flops(sizes, batch, activation).astype(np.float64)
    L = C.size - 1
    c_sum, c_max = float(C.sum()), float(C.max())
    out = {"C": C.tolist(), "C_sum": c_sum, "C_max": c_max, "L": L, "batch": int(batch)}
    time_bp = 3.0 * c_sum
    for algo in algos:
        if algo == "bp":
            work = time = 3.0 * c_sum
            T = 0
        elif algo in ("fpa", "zil"):
            T = _default_steps(algo, L) if steps is None else int(steps)
            if T < 0:
                raise ValueError(f"steps must be >= 0, got {T}")
            time = c_sum + T * 2.0 * c_max
            work = c_sum + T * 2.0 * c_sum
            if algo == "zil":
                work += T * c_sum
        else:
            raise ValueError(f"no cost model for {algo!r}; choose from {MODEL_ALGOS}")
        out[algo] = {"steps": T, "work_flops": work, "time_flops": time,
                     "work_fwd": work / c_sum, "time_fwd": time / c_sum,
                     "time_ratio_bp": time / time_bp}
    return out


def kernel_flops(sizes, batch, steps=0, activation="tanh"):
    """FLOPs the kernels actually perform (for achieved GFLOP/s), per call.

    Returns
    -------
    dict
        ``forward`` (sum C_i), ``input_vjps`` (``delta W^T`` of layers 1..N-1, what one fpa
        inference step and one backward pass both compute), ``backprop`` (forward + loss
        gradient + all parameter-side VJPs + input VJPs + activation derivatives),
        ``fpa`` (forward + ``steps`` full inference steps + the final parameter VJPs) and
        ``sgd`` (3 FLOPs per parameter of the momentum update; not counted in the others).
    """
    s = _sizes(sizes)
    B = int(batch)
    C = layer_flops(s, B, activation).astype(np.float64)
    n_in, n_out = s[:-1].astype(np.float64), s[1:].astype(np.float64)
    param_vjp = 2 * B * n_in * n_out + 2 * B * n_out + n_in * n_out
    input_vjp = 2 * B * n_in[1:] * n_out[1:]
    act_grad = 2.0 * B * n_out
    loss = 4.0 * B * n_out[-1]
    fwd = float(C.sum())
    bp = fwd + loss + float(param_vjp.sum() + input_vjp.sum() + act_grad.sum())
    # per fpa step and latent: e * gp, the VJP, and e += gamma (v - e)
    fpa_step = float(input_vjp.sum() + 4.0 * B * n_in[1:].sum() + B * n_out[1:].sum())
    fpa = fwd + loss + steps * fpa_step + float(param_vjp.sum() + act_grad.sum())
    n_params = float((n_in * n_out + n_out).sum())
    return {"forward": fwd, "input_vjps": float(input_vjp.sum()), "backprop": bp,
            "fpa_step": fpa_step, "fpa": fpa, "sgd": 3.0 * n_params,
            "input_vjp_per_layer": input_vjp.tolist()}


def first_nonzero_steps(n_hidden):
    """Theorem 1: the step at which latent l = 1..L first has a nonzero error, ``L + 1 - l``."""
    L = int(n_hidden)
    return np.arange(L, 0, -1, dtype=np.int64)


def simulate_fpa(net, X, y, steps, step_size, tol=1e-6):
    """fpa error dynamics in plain float64 NumPy, for the Theorem 1 / Corollary 1 counts.

    An independent re-implementation of eq. 3.24 (errors only: predictions and Jacobians
    are frozen), so the counts can be checked against :func:`pckernels.pc_infer`.

    Parameters
    ----------
    net : MLP
    X : array of shape (batch, n_0); y : array of shape (batch,) of labels
    steps : int; step_size : float; tol : float
        As in ``pc_infer``: a layer has converged after the last step that changed its error
        by more than ``tol`` (largest absolute entry over the batch).

    Returns
    -------
    dict
        ``first_nonzero`` and ``converged_at`` (int arrays of shape (L,), latents 1..L, with
        ``pc_infer``'s conventions: -1 for never / still changing at the last step) and
        ``vjp_needed`` (bool array (steps, L): True where a VJP's output could change the
        parameter update: nonzero, and under step size 1 not a repeat of the previous one).
    """
    Ws = [np.asarray(W, dtype=np.float64) for W in net.weights]
    bs = [np.asarray(b, dtype=np.float64) for b in net.biases]
    h = np.asarray(X, dtype=np.float64)
    gps = []
    n = len(Ws)
    for l in range(n):
        z = h @ Ws[l] + bs[l]
        if l == n - 1:
            out = z
            gps.append(np.ones_like(z))
        else:
            h = _act(net.activation, z)
            gps.append(_act_grad(net.activation, z, h))
    y = np.asarray(y)
    if net.loss == "nll":
        p = np.exp(out - out.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        d = p.copy()
        d[np.arange(len(y)), y.astype(np.int64)] -= 1
    else:
        target = np.eye(out.shape[1])[y.astype(np.int64)] if y.ndim == 1 else y
        d = out - target
    L = n - 1
    e = [np.zeros((h.shape[0], int(s))) for s in net.sizes[1:n]] + [-d]
    first = np.full(L, -1, dtype=np.int64)
    last_big = np.full(L, -1, dtype=np.int64)
    vjp_needed = np.zeros((int(steps), L), dtype=bool)
    prev_v = [None] * L
    for t in range(int(steps)):
        v = [(e[l] * gps[l]) @ Ws[l].T for l in range(1, n)]
        for k in range(L):
            repeats = prev_v[k] is not None and np.array_equal(v[k], prev_v[k])
            vjp_needed[t, k] = np.any(v[k] != 0) and not (step_size == 1.0 and repeats)
        prev_v = v
        for k in range(L):
            old = e[k]
            new = v[k] if step_size == 1.0 else old + step_size * (v[k] - old)
            if np.abs(new - old).max(initial=0.0) > tol:
                last_big[k] = t
            if first[k] < 0 and np.any(new != 0):
                first[k] = t + 1
            e[k] = new
    converged = np.where(last_big + 1 >= steps, -1, last_big + 1)
    converged = np.where(last_big < 0, 0, converged)
    converged = np.where(first < 0, -1, converged)  # the error never arrived: not converged
    return {"first_nonzero": first, "converged_at": converged.astype(np.int64),
            "vjp_needed": vjp_needed}


def _act(name, z):
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    return z


def _act_grad(name, z, h):
    if name == "tanh":
        return 1.0 - h * h
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "sigmoid":
        return h * (1.0 - h)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, 0.01)
    return np.ones_like(z)


def wasted_vjps(variant, n_hidden, steps, step_size=1.0):
    """Inference VJPs whose output cannot change the parameter update (analytic).

    Latent l = 1..L computes one VJP per state update from ``e_{l+1}``, which is zero
    before step ``L - l`` (Theorem 1: the error front has not reached it). After the front:

    - fpa, step 1: ``e_l(t+1) = v_l`` is final at once; later VJPs repeat it (wasted).
    - zil: weight layer l's parameters are read at step ``N - 1 - l = L - l``; only the
      VJP that feeds that snapshot matters (latent l's, at update ``L + 1 - l``, so with
      ``T < L`` the unreached layers get none, as under fpa); later ones change nothing
      that is learned (section 3.5).
    - vpc, scaled, fpa with a step below 1: every VJP after the front moves the final
      states, so only the ones ahead of the front are wasted.

    Returns
    -------
    dict
        ``total`` (VJPs a full run computes: updates * L), ``useful``, ``wasted``,
        ``wasted_fraction``, ``ahead_of_front`` (the part ``pc_infer(skip=True)`` skips
        for every variant) and ``updates`` (state updates: T, for every variant).
    """
    L = int(n_hidden)
    updates = int(steps)
    front = np.arange(L - 1, -1, -1)          # latent l = 1..L first sees a nonzero e_{l+1}
    reached = np.clip(updates - front, 0, None)
    ahead = int(np.minimum(front, updates).sum())
    if variant == "zil" or (variant == "fpa" and step_size == 1.0):
        useful = int((reached > 0).sum())
    else:
        useful = int(reached.sum())
    total = updates * L
    return {"total": total, "useful": useful, "wasted": total - useful,
            "wasted_fraction": (total - useful) / total if total else 0.0,
            "ahead_of_front": ahead, "updates": updates}


def measured_wasted(work, variant, n_hidden, steps, step_size=1.0):
    """Wasted-VJP fraction from ``pc_infer(..., skip=True).work`` (per chunk of the batch).

    ``skip=True`` skips exactly the VJPs whose result is provably unchanged (ahead of the
    front, and under fpa step 1 the repeats), so for fpa the skipped share *is* the waste;
    for zil the VJPs computed after a layer's snapshot are wasted too and are counted from
    the schedule (:func:`wasted_vjps`).
    """
    chunks = max(int(work.get("chunks", 1)), 1)
    computed = work["vjp_computed"] / chunks
    skipped = work["vjp_skipped"] / chunks
    total = computed + skipped
    wasted = skipped
    if variant == "zil":
        wasted = total - wasted_vjps(variant, n_hidden, steps, step_size)["useful"]
    return {"total": total, "computed": computed, "skipped": skipped, "wasted": wasted,
            "wasted_fraction": wasted / total if total else 0.0}
