"""JAX: backprop and fpa training steps under one ``jax.jit``, inference in ``lax.fori_loop``.

This is how pcx/jpc users run PC: the whole step (forward, T inference sweeps, parameter
VJPs, SGD-momentum update) is one compiled XLA program. Threads are fixed through
``XLA_FLAGS`` before jax is first imported (:func:`configure_threads`).
"""
import os
import sys

from . import Unavailable, init_params, random_batch


def configure_threads(threads):
    """Set XLA's CPU thread flags; only effective before jax is imported in this process."""
    if threads and "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                   f"intra_op_parallelism_threads={int(threads)}").strip()


def _jax():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as exc:
        raise Unavailable(f"jax not installed ({exc})") from None
    return jax, jnp


def make(sizes, batch, dtype="float32", steps=None, step_size=1.0, lr=0.01, momentum=0.9,
         seed=0, threads=None):
    """Step callables ``{"forward", "bp", "fpa"}`` on a fixed random batch, and ``params``
    (the flat parameters in pckernels' layout, for tests)."""
    configure_threads(threads)
    jax, jnp = _jax()
    from jax import lax
    Ws, bs = init_params(sizes, dtype, seed)
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(Ws, bs)]
    vel = [(jnp.zeros_like(W), jnp.zeros_like(b)) for W, b in params]
    Xn, yn = random_batch(sizes, batch, dtype, seed)
    X, y = jnp.asarray(Xn), jnp.asarray(yn)
    n = len(params)
    T = len(sizes) - 2 if steps is None else int(steps)
    gamma = float(step_size)

    def layer(p, h, l):
        z = h @ p[0] + p[1]
        return jnp.tanh(z) if l < n - 1 else z

    def net(ps, h):
        for l in range(n):
            h = layer(ps[l], h, l)
        return h

    def loss_fn(out):
        logp = jax.nn.log_softmax(out)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def sgd(ps, vs, gs):
        vs = jax.tree_util.tree_map(lambda v, g: momentum * v + g, vs, gs)
        ps = jax.tree_util.tree_map(lambda p, v: p - lr * v, ps, vs)
        return ps, vs

    @jax.jit
    def forward(ps):
        return net(ps, X)

    @jax.jit
    def bp(ps, vs):
        gs = jax.grad(lambda q: loss_fn(net(q, X)))(ps)
        return sgd(ps, vs, gs)

    @jax.jit
    def fpa(ps, vs):
        h = X
        vjps = []
        for l in range(n):
            out, f = jax.vjp(lambda p, hin, l=l: layer(p, hin, l), ps[l], h)
            vjps.append(f)
            h = out
        d_out = jax.grad(loss_fn)(h)
        d0 = tuple(jnp.zeros((X.shape[0], int(s)), X.dtype) for s in sizes[1:-1])

        def sweep(t, d):
            full = d + (d_out,)
            v = [vjps[l](full[l])[1] for l in range(1, n)]
            return tuple(d[k] + gamma * (v[k] - d[k]) for k in range(n - 1))

        d = lax.fori_loop(0, T, sweep, d0) + (d_out,)
        gs = [vjps[l](d[l])[0] for l in range(n)]
        return sgd(ps, vs, gs)

    state = {"p": params, "v": vel}

    def run_forward():
        forward(state["p"]).block_until_ready()

    def run_bp():
        state["p"], state["v"] = bp(state["p"], state["v"])
        jax.block_until_ready(state["p"])

    def run_fpa():
        state["p"], state["v"] = fpa(state["p"], state["v"])
        jax.block_until_ready(state["p"])

    def flat_params():
        import numpy as np
        return np.concatenate([np.concatenate([np.asarray(W).ravel(), np.asarray(b)])
                               for W, b in state["p"]])

    return {"forward": run_forward, "bp": run_bp, "fpa": run_fpa, "params": flat_params}
