"""Baselines pckernels is timed against. Each module's ``make(...)`` returns step callables
or raises :class:`Unavailable` with a one-line reason (a missing optional package)."""


class Unavailable(RuntimeError):
    """A baseline cannot run here (its package is missing)."""


def random_batch(sizes, batch, dtype="float32", seed=0):
    """Standard-normal inputs (batch, n_0) and integer labels (batch,), reproducible."""
    import numpy as np
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], size=batch).astype(np.int64)
    return X, y


def init_params(sizes, dtype="float32", seed=0):
    """PyTorch-default ``U(-1/sqrt(n_in), 1/sqrt(n_in))`` weights (n_in, n_out) and biases."""
    import numpy as np
    rng = np.random.default_rng(seed)
    Ws, bs = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(n_in)
        Ws.append(rng.uniform(-bound, bound, (n_in, n_out)).astype(dtype))
        bs.append(rng.uniform(-bound, bound, n_out).astype(dtype))
    return Ws, bs
