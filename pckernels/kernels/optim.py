"""Fused optimizer updates over the flat parameter buffer (PyTorch semantics)."""
import numpy as np

from ..config import jit


@jit
def _sgd_step(params, grad, velocity, lr, momentum, weight_decay):
    """torch.optim.SGD: g += wd*p; v = m*v + g; p -= lr*v (v starts at zero, dampening 0)."""
    t = params.dtype.type
    lr_, m_, wd_ = t(lr), t(momentum), t(weight_decay)
    for i in range(params.size):
        g = grad[i] + wd_ * params[i]
        v = m_ * velocity[i] + g
        velocity[i] = v
        params[i] -= lr_ * v


@jit
def _adam_step(params, grad, m, v, step, lr, beta1, beta2, eps, weight_decay):
    """torch.optim.Adam at step ``step`` (1-based): bias-corrected first and second moments."""
    t = params.dtype.type
    b1, b2, wd_ = t(beta1), t(beta2), t(weight_decay)
    bc1 = 1.0 - beta1 ** step
    bc2 = 1.0 - beta2 ** step
    step_size = t(lr / bc1)
    inv_sqrt_bc2 = t(1.0 / np.sqrt(bc2))
    eps_ = t(eps)
    one_minus_b1 = t(1.0 - beta1)  # in double first, as PyTorch does
    one_minus_b2 = t(1.0 - beta2)
    for i in range(params.size):
        g = grad[i] + wd_ * params[i]
        mi = b1 * m[i] + one_minus_b1 * g
        vi = b2 * v[i] + one_minus_b2 * g * g
        m[i] = mi
        v[i] = vi
        params[i] -= step_size * mi / (np.sqrt(vi) * inv_sqrt_bc2 + eps_)
