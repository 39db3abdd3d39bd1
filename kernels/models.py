"""Model values and partial derivatives at one channel.

Parameters of a pixel are laid out as ``[A_1, c_1, s_1, ..., A_n, c_n, s_n, b_0, b_1]``: per
Gaussian an amplitude, a centre and a width (sigma), then the background: ``b_0`` (constant) and
``b_1`` (slope, linear background), with the background ``b_0 + b_1 * (x - xref)`` and ``xref``
the middle of the fitted range (well-conditioned slope and level).
"""

import math

from hyperlum.kernels.constants import EXP_CUTOFF


def model_value(x, xref, p, npk, nbg):
    """Model value at position ``x``."""
    f = 0.0
    for k in range(npk):
        u = (x - p[3 * k + 1]) / p[3 * k + 2]
        u2 = u * u
        if u2 < EXP_CUTOFF:
            f += p[3 * k] * math.exp(-0.5 * u2)
    if nbg > 0:
        f += p[3 * npk]
    if nbg > 1:
        f += p[3 * npk + 1] * (x - xref)
    return f


def gaussians_block(x, i0, nb, p, npk, D, F, R, h):
    """Gaussians and their derivatives on channels ``i0 .. i0 + nb - 1``.

    Derivatives go into rows ``0 .. 3 npk - 1`` of ``D`` (one column per channel of the block),
    the sum of the Gaussians into ``F``. Peak after peak, the inner loop runs over channels, so
    that on a uniform axis of step ``h`` each Gaussian follows the recurrence
    ``e[i+1] = e[i] * r[i]``, ``r[i+1] = r[i] * q`` with ``q = exp(-h^2 / s^2)``: two products
    per channel instead of an exponential, with ``e``, ``r`` in registers. ``R`` keeps
    ``(e, r, q)`` per peak from one block to the next and must be zero before the first block;
    a Gaussian is (re)started with exponentials where it enters its window. With ``h == 0``
    (non-uniform axis) every value is an exponential. Returns False when no channel of the
    block lies inside any Gaussian's window (all their derivatives are zero there).
    """
    for j in range(nb):
        F[j] = 0.0
    active = False
    for k in range(npk):
        a = p[3 * k]
        c = p[3 * k + 1]
        inv_s = 1.0 / p[3 * k + 2]
        e = R[3 * k]
        r = R[3 * k + 1]
        q = R[3 * k + 2]
        for j in range(nb):
            xc = x[i0 + j] - c
            u = xc * inv_s
            u2 = u * u
            if u2 < EXP_CUTOFF:
                active = True
                if h == 0.0 or e == 0.0:
                    e = math.exp(-0.5 * u2)
                    r = math.exp(-(h * xc + 0.5 * h * h) * inv_s * inv_s)
                    q = math.exp(-(h * h) * inv_s * inv_s)
                ae = a * e
                F[j] += ae
                D[3 * k, j] = e
                D[3 * k + 1, j] = ae * u * inv_s
                D[3 * k + 2, j] = ae * u2 * inv_s
                e *= r
                r *= q
            else:
                e = 0.0
                D[3 * k, j] = 0.0
                D[3 * k + 1, j] = 0.0
                D[3 * k + 2, j] = 0.0
        R[3 * k] = e
        R[3 * k + 1] = r
        R[3 * k + 2] = q
    return active
