"""Elementwise passes over contiguous arrays, written so that LLVM vectorises them.

Flat loops over ``reshape(-1)`` views, no early exits, and counts instead of max/any
reductions (a float max reduction does not vectorise without the ``nnan`` flag, which
pckernels leaves off so that NaN checks keep working).
"""
import numpy as np

from ..config import jit


@jit(ordered=True)
def _scaled_product(out, a, b, s):
    """out = s * (a * b), in that order (backprop scales its delta = d * g' the same way)."""
    fo, fa, fb = out.reshape(-1), a.reshape(-1), b.reshape(-1)
    s_ = out.dtype.type(s)
    for i in range(fo.size):
        fo[i] = s_ * (fa[i] * fb[i])


@jit(ordered=True)
def _scaled_copy(out, a, s):
    """out = s * a."""
    fo, fa = out.reshape(-1), a.reshape(-1)
    s_ = out.dtype.type(s)
    for i in range(fo.size):
        fo[i] = s_ * fa[i]


@jit
def _difference(out, a, b):
    """out = a - b."""
    fo, fa, fb = out.reshape(-1), a.reshape(-1), b.reshape(-1)
    for i in range(fo.size):
        fo[i] = fa[i] - fb[i]


@jit
def _negate(a):
    """a = -a in place."""
    fa = a.reshape(-1)
    for i in range(fa.size):
        fa[i] = -fa[i]


@jit
def _count_nonzero(a):
    """Number of nonzero entries."""
    fa = a.reshape(-1)
    n = 0
    for i in range(fa.size):
        n += fa[i] != 0
    return n


@jit
def _axpby_tracked(x, a, b, alpha, beta, tol):
    """x += alpha a + beta b in place.

    Returns ``(changed, big)``: how many entries changed at all and by more than ``tol``.
    """
    fx, fa, fb = x.reshape(-1), a.reshape(-1), b.reshape(-1)
    t = x.dtype.type
    alpha_, beta_, tol_ = t(alpha), t(beta), t(tol)
    changed = 0
    big = 0
    for i in range(fx.size):
        old = fx[i]
        new = old + (alpha_ * fa[i] + beta_ * fb[i])
        fx[i] = new
        changed += new != old
        big += abs(new - old) > tol_
    return changed, big


@jit
def _relax_tracked(e, v, gamma, tol):
    """e += gamma (v - e) in place; with gamma = 1 exactly e = v (eq. 3.24).

    Returns ``(changed, big, nonzero)`` counts of the new values.
    """
    fe, fv = e.reshape(-1), v.reshape(-1)
    t = e.dtype.type
    tol_ = t(tol)
    changed = 0
    big = 0
    nonzero = 0
    if gamma == 1.0:
        for i in range(fe.size):
            old = fe[i]
            new = fv[i]
            fe[i] = new
            changed += new != old
            big += abs(new - old) > tol_
            nonzero += new != 0
    else:
        g = t(gamma)
        for i in range(fe.size):
            old = fe[i]
            new = old + g * (fv[i] - old)
            fe[i] = new
            changed += new != old
            big += abs(new - old) > tol_
            nonzero += new != 0
    return changed, big, nonzero


@jit
def _sum_squares(a):
    """Sum of squares, accumulated in float64."""
    fa = a.reshape(-1)
    s = 0.0
    for i in range(fa.size):
        ai = np.float64(fa[i])
        s += ai * ai
    return s
