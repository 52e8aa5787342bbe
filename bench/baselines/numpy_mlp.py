"""Plain NumPy tanh MLP: a backprop and an fpa training step (the honest floor).

Preallocated buffers and ``np.dot(..., out=)`` everywhere, so the time is BLAS plus
NumPy's elementwise passes: what a careful NumPy user gets without a compiler.
"""
import numpy as np

from . import init_params, random_batch


class NumpyMLP:
    """log-softmax + NLL output, SGD with momentum (PyTorch semantics)."""

    def __init__(self, sizes, batch, dtype="float32", lr=0.01, momentum=0.9, seed=0):
        self.sizes = [int(s) for s in sizes]
        self.Ws, self.bs = init_params(self.sizes, dtype, seed)
        self.dt = np.dtype(dtype)
        self.lr, self.m = self.dt.type(lr), self.dt.type(momentum)
        B = int(batch)
        self.h = [np.empty((B, n), self.dt) for n in self.sizes[1:]]
        self.d = [np.empty((B, n), self.dt) for n in self.sizes[1:]]
        self.v = [np.empty((B, n), self.dt) for n in self.sizes[1:]]
        self.gW = [np.zeros_like(W) for W in self.Ws]
        self.gb = [np.zeros_like(b) for b in self.bs]
        self.vW = [np.zeros_like(W) for W in self.Ws]
        self.vb = [np.zeros_like(b) for b in self.bs]
        self.gp = [np.empty((B, n), self.dt) for n in self.sizes[1:]]

    def forward(self, X):
        h = X
        n = len(self.Ws)
        for l in range(n):
            out = self.h[l]
            np.dot(h, self.Ws[l], out)
            out += self.bs[l]
            if l < n - 1:
                np.tanh(out, out)
            h = out
        return h

    def _output_grad(self, y):
        out = self.h[-1]
        d = self.d[-1]
        np.subtract(out, out.max(axis=1, keepdims=True), d)
        np.exp(d, d)
        d /= d.sum(axis=1, keepdims=True)
        d[np.arange(d.shape[0]), y] -= 1
        d *= self.dt.type(1.0 / d.shape[0])
        return d

    def _param_grads(self, X, deltas):
        for l in range(len(self.Ws)):
            hin = X if l == 0 else self.h[l - 1]
            np.dot(hin.T, deltas[l], self.gW[l])
            np.sum(deltas[l], axis=0, out=self.gb[l])

    def _update(self):
        for p, g, v in zip(self.Ws + self.bs, self.gW + self.gb, self.vW + self.vb):
            v *= self.m
            v += g
            p -= self.lr * v

    def bp_step(self, X, y):
        self.forward(X)
        self._output_grad(y)
        n = len(self.Ws)
        for l in range(n - 1, -1, -1):
            if l < n - 1:
                # d holds dL/dh_{l+1}; turn it into delta = d * (1 - h^2)
                h = self.h[l]
                np.multiply(h, h, self.gp[l])
                np.subtract(1, self.gp[l], self.gp[l])
                self.d[l] *= self.gp[l]
            if l > 0:
                np.dot(self.d[l], self.Ws[l].T, self.d[l - 1])
        self._param_grads(X, self.d)
        self._update()

    def fpa_step(self, X, y, steps, step_size=1.0):
        """Forward, ``steps`` synchronous inference sweeps (eq. 3.24), update."""
        self.forward(X)
        n = len(self.Ws)
        for l in range(n - 1):
            h = self.h[l]
            np.multiply(h, h, self.gp[l])
            np.subtract(1, self.gp[l], self.gp[l])
        self.gp[n - 1].fill(1)
        # errors as gradients (d = -e), latents 1..L in d[0..L-1], output in d[L]
        self._output_grad(y)
        for l in range(n - 1):
            self.d[l].fill(0)
        q = self.v  # scratch: q_{l+1} = d_{l+1} * g_l'
        g = self.dt.type(step_size)
        for _ in range(int(steps)):
            for l in range(1, n):
                np.multiply(self.d[l], self.gp[l], q[l])
            for l in range(1, n):
                # new d_l from step-t values only (synchronous): d_l += g (q_l W_l^T - d_l)
                tmp = np.dot(q[l], self.Ws[l].T)
                self.d[l - 1] += g * (tmp - self.d[l - 1])
        deltas = [self.d[l] * self.gp[l] for l in range(n)]
        self._param_grads(X, deltas)
        self._update()


def make(sizes, batch, dtype="float32", steps=None, step_size=1.0, lr=0.01, momentum=0.9,
         seed=0):
    """Step callables ``{"forward", "bp", "fpa"}`` on a fixed random batch, and ``params``
    (the flat parameters in pckernels' layout, for tests)."""
    net = NumpyMLP(sizes, batch, dtype, lr, momentum, seed)
    X, y = random_batch(sizes, batch, dtype, seed)
    T = len(sizes) - 2 if steps is None else int(steps)
    return {"forward": lambda: net.forward(X), "bp": lambda: net.bp_step(X, y),
            "fpa": lambda: net.fpa_step(X, y, T, step_size),
            "params": lambda: np.concatenate([np.concatenate([W.ravel(), b])
                                              for W, b in zip(net.Ws, net.bs)])}
