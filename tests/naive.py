"""Slow, obvious NumPy references written straight from docs/algorithms.md (float64)."""
import numpy as np

LEAKY_SLOPE = 0.01


def act(name, z):
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if name == "identity":
        return z.copy()
    raise ValueError(name)


def act_grad(name, z):
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(float)
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-z))
        return s * (1 - s)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, LEAKY_SLOPE)
    if name == "identity":
        return np.ones_like(z)
    raise ValueError(name)


def layer_acts(activation, n_layers):
    return [activation] * (n_layers - 1) + ["identity"]


def loss_and_grad(loss, out, y):
    """Per-sample loss vector and dloss_b/dh_N."""
    if loss == "nll":
        m = out.max(axis=1, keepdims=True)
        lse = m + np.log(np.exp(out - m).sum(axis=1, keepdims=True))
        logp = out - lse
        onehot = np.eye(out.shape[1])[y]
        return -(logp * onehot).sum(axis=1), np.exp(logp) - onehot
    target = y if y.ndim == 2 else np.eye(out.shape[1])[y]
    r = out - target
    return 0.5 * (r ** 2).sum(axis=1), r


def forward(Ws, bs, activation, X):
    acts = layer_acts(activation, len(Ws))
    hs, zs = [X], []
    for W, b, a in zip(Ws, bs, acts):
        zs.append(hs[-1] @ W + b)
        hs.append(act(a, zs[-1]))
    return hs, zs


def mean_loss(Ws, bs, activation, loss, X, y):
    hs, _ = forward(Ws, bs, activation, X)
    return loss_and_grad(loss, hs[-1], y)[0].mean()


def backprop(Ws, bs, activation, loss, X, y):
    """(loss, dWs, dbs, ds) with ds[l] = dloss_b/dh_l for l = 1..N (ds[0] unused)."""
    acts = layer_acts(activation, len(Ws))
    hs, zs = forward(Ws, bs, activation, X)
    B = X.shape[0]
    lvec, d = loss_and_grad(loss, hs[-1], y)
    N = len(Ws)
    ds = [None] * (N + 1)
    ds[N] = d
    dWs, dbs = [None] * N, [None] * N
    for l in range(N - 1, -1, -1):
        delta = ds[l + 1] * act_grad(acts[l], zs[l])
        dWs[l] = hs[l].T @ delta / B
        dbs[l] = delta.sum(axis=0) / B
        ds[l] = delta @ Ws[l].T
    return lvec.mean(), dWs, dbs, ds


def _pc_param_grad(Ws, bs, acts, xs, es, pis, B):
    dWs, dbs = [], []
    for l in range(len(Ws)):
        q = pis[l + 1] * es[l + 1] * act_grad(acts[l], xs[l] @ Ws[l] + bs[l])
        dWs.append(-xs[l].T @ q / B)
        dbs.append(-q.sum(axis=0) / B)
    return dWs, dbs


def vpc(Ws, bs, activation, loss, X, y, steps, gamma, pis=None):
    """Standard PC (eq. 3.5-3.13), synchronous updates from the feedforward values.

    Returns (dWs, dbs, xs, es, history) where history[t] = errors after t steps.
    ``pis`` has one precision per latent layer 1..L and the output (index 1..N; index 0 unused).
    """
    N = len(Ws)
    acts = layer_acts(activation, N)
    pis = [1.0] * (N + 1) if pis is None else pis
    hs, _ = forward(Ws, bs, activation, X)
    xs = [h.copy() for h in hs]
    B = X.shape[0]

    def errors(xs):
        es = [None]
        for l in range(1, N):
            es.append(xs[l] - act(acts[l - 1], xs[l - 1] @ Ws[l - 1] + bs[l - 1]))
        out = act(acts[N - 1], xs[N - 1] @ Ws[N - 1] + bs[N - 1])
        es.append(-loss_and_grad(loss, out, y)[1])
        return es

    es = errors(xs)
    history = [[e.copy() for e in es[1:]]]
    for _ in range(steps):
        new = [x.copy() for x in xs]
        for l in range(1, N):
            q = pis[l + 1] * es[l + 1] * act_grad(acts[l], xs[l] @ Ws[l] + bs[l])
            new[l] = xs[l] + gamma * (-pis[l] * es[l] + q @ Ws[l].T)
        xs = new
        es = errors(xs)
        history.append([e.copy() for e in es[1:]])
    dWs, dbs = _pc_param_grad(Ws, bs, acts, xs, es, pis, B)
    return dWs, dbs, xs, es, history


def fpa(Ws, bs, activation, loss, X, y, steps, gamma):
    """Fixed-prediction assumption (eq. 3.19-3.26). Returns (dWs, dbs, es, history)."""
    N = len(Ws)
    acts = layer_acts(activation, N)
    hs, zs = forward(Ws, bs, activation, X)
    gps = [act_grad(acts[l], zs[l]) for l in range(N)]
    B = X.shape[0]
    es = [None] + [np.zeros_like(hs[l]) for l in range(1, N)] + [-loss_and_grad(loss, hs[N], y)[1]]
    history = [[e.copy() for e in es[1:]]]
    for _ in range(steps):
        new = list(es)
        for l in range(1, N):
            new[l] = es[l] + gamma * (-es[l] + (es[l + 1] * gps[l]) @ Ws[l].T)
        es = new
        history.append([e.copy() for e in es[1:]])
    dWs = [-hs[l].T @ (es[l + 1] * gps[l]) / B for l in range(N)]
    dbs = [-(es[l + 1] * gps[l]).sum(axis=0) / B for l in range(N)]
    return dWs, dbs, es, history


def zil(Ws, bs, activation, loss, X, y):
    """Z-IL: vpc with gamma = 1, layer l's parameters taken at step N - 1 - l."""
    N = len(Ws)
    acts = layer_acts(activation, N)
    B = X.shape[0]
    dWs, dbs = [None] * N, [None] * N
    for t in range(N):
        l = N - 1 - t
        _, _, xs, es, _ = vpc(Ws, bs, activation, loss, X, y, t, 1.0)
        q = es[l + 1] * act_grad(acts[l], xs[l] @ Ws[l] + bs[l])
        dWs[l] = -xs[l].T @ q / B
        dbs[l] = -q.sum(axis=0) / B
    return dWs, dbs


def energy(Ws, bs, activation, loss, X, y, xs, pis=None):
    """F = sum_b [sum_l pi_l/2 ||e_l||^2 + pi_N loss_b] at states xs."""
    N = len(Ws)
    acts = layer_acts(activation, N)
    pis = [1.0] * (N + 1) if pis is None else pis
    F = 0.0
    for l in range(1, N):
        e = xs[l] - act(acts[l - 1], xs[l - 1] @ Ws[l - 1] + bs[l - 1])
        F += pis[l] / 2 * (e ** 2).sum()
    out = act(acts[N - 1], xs[N - 1] @ Ws[N - 1] + bs[N - 1])
    return F + pis[N] * loss_and_grad(loss, out, y)[0].sum()


def _errors(Ws, bs, acts, loss, X, y, xs):
    """Errors e_1..e_N (index 0 unused) and the per-sample loss at states xs (xs[0] = X)."""
    N = len(Ws)
    es = [None]
    for l in range(1, N):
        es.append(xs[l] - act(acts[l - 1], xs[l - 1] @ Ws[l - 1] + bs[l - 1]))
    out = act(acts[N - 1], xs[N - 1] @ Ws[N - 1] + bs[N - 1])
    lvec, d = loss_and_grad(loss, out, y)
    es.append(-d)
    return es, lvec


def energy_grads(Ws, bs, acts, es, xs, pis):
    """g_l = dF/dx_l = pi_l e_l - (pi_{l+1} e_{l+1} * g_l') W_l^T for l = 1..L."""
    N = len(Ws)
    gs = [None]
    for l in range(1, N):
        q = pis[l + 1] * es[l + 1] * act_grad(acts[l], xs[l] @ Ws[l] + bs[l])
        gs.append(pis[l] * es[l] - q @ Ws[l].T)
    return gs


def safeguarded_vpc(Ws, bs, activation, loss, X, y, steps, gammas, pis=None, optimizer="gd",
                    rtol=1e-4, betas=(0.9, 0.999), eps=1e-8, min_scale=2.0 ** -20):
    """The ``auto`` step rule, one sample at a time (kernels/pc_safeguard.py's contract).

    Per sample b: a step with steps gammas[l] * scale_b; if its energy F_b rose, the step
    is undone (momentum's velocity zeroed) and scale_b halves, else scale_b doubles (at
    most 1) and the sample stops when |dF_b| <= rtol |F_b|. Returns (xs, stop, rejects).
    """
    N = len(Ws)
    acts = layer_acts(activation, N)
    pis = [1.0] * (N + 1) if pis is None else pis
    hs, _ = forward(Ws, bs, activation, X)
    B = X.shape[0]
    out_x = [h.copy() for h in hs]
    stop = np.full(B, -1)
    rejects = np.zeros(B, dtype=int)
    for b in range(B):
        yb = y[b:b + 1]
        xs = [h[b:b + 1].copy() for h in hs]
        m1 = [None] + [np.zeros_like(xs[l]) for l in range(1, N)]
        m2 = [None] + [np.zeros_like(xs[l]) for l in range(1, N)]

        def energy_of(xs):
            es, lvec = _errors(Ws, bs, acts, loss, X[b:b + 1], yb, xs)
            return es, sum(pis[l] / 2 * (es[l] ** 2).sum() for l in range(1, N)) \
                + pis[N] * lvec.sum()

        es, F = energy_of(xs)
        scale = 1.0
        for t in range(steps):
            gs = energy_grads(Ws, bs, acts, es, xs, pis)
            new_x, new_m1, new_m2 = list(xs), list(m1), list(m2)
            k = t + 1
            for l in range(1, N):
                s = gammas[l] * scale
                if optimizer == "gd":
                    new_x[l] = xs[l] - s * gs[l]
                elif optimizer == "momentum":
                    new_m1[l] = betas[0] * m1[l] + gs[l]
                    new_x[l] = xs[l] - s * new_m1[l]
                else:
                    new_m1[l] = betas[0] * m1[l] + (1 - betas[0]) * gs[l]
                    new_m2[l] = betas[1] * m2[l] + (1 - betas[1]) * gs[l] ** 2
                    mhat = new_m1[l] / (1 - betas[0] ** k)
                    vhat = new_m2[l] / (1 - betas[1] ** k)
                    new_x[l] = xs[l] - s * mhat / (np.sqrt(vhat) + eps)
            new_es, new_F = energy_of(new_x)
            if not new_F <= F:
                rejects[b] += 1
                scale *= 0.5
                if optimizer == "momentum":
                    m1 = [None] + [np.zeros_like(xs[l]) for l in range(1, N)]
                if scale < min_scale:
                    stop[b] = t + 1
                    break
                continue
            xs, m1, m2, es = new_x, new_m1, new_m2, new_es
            scale = min(1.0, 2 * scale)
            if abs(F - new_F) <= rtol * abs(F):
                F = new_F
                stop[b] = t + 1
                break
            F = new_F
        for l in range(1, N):
            out_x[l][b] = xs[l][0]
    return out_x, stop, rejects


def ipc(Ws, bs, activation, loss, X, y, steps, gamma, lr, pis=None):
    """Incremental PC (Salvatori et al., ICLR 2024) with fixed inference step gamma.

    For t = 0..T-1: every latent takes the synchronous vpc step at the current weights,
    then every weight layer takes W_l <- W_l - lr dW_l with dW_l the PC gradient
    (batch mean) at the new states and the current weights. Returns (Ws, bs, mean dWs,
    mean dbs, xs).
    """
    N = len(Ws)
    acts = layer_acts(activation, N)
    pis = [1.0] * (N + 1) if pis is None else pis
    Ws, bs = [W.copy() for W in Ws], [b.copy() for b in bs]
    hs, _ = forward(Ws, bs, activation, X)
    xs = [h.copy() for h in hs]
    B = X.shape[0]
    sum_dW = [np.zeros_like(W) for W in Ws]
    sum_db = [np.zeros_like(b) for b in bs]
    for _ in range(steps):
        es, _ = _errors(Ws, bs, acts, loss, X, y, xs)
        gs = energy_grads(Ws, bs, acts, es, xs, pis)
        xs = [xs[0]] + [xs[l] - gamma * gs[l] for l in range(1, N)]
        es, _ = _errors(Ws, bs, acts, loss, X, y, xs)
        dWs, dbs = _pc_param_grad(Ws, bs, acts, xs, es, pis, B)
        for l in range(N):
            sum_dW[l] += dWs[l]
            sum_db[l] += dbs[l]
            Ws[l] = Ws[l] - lr * dWs[l]
            bs[l] = bs[l] - lr * dbs[l]
    return Ws, bs, [d / steps for d in sum_dW], [d / steps for d in sum_db], xs
