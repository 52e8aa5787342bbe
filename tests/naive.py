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
