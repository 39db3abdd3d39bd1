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


def model_value_grad(x, xref, p, npk, nbg, d):
    """Model value at ``x``; its partial derivatives go into ``d``."""
    f = 0.0
    for k in range(npk):
        a = p[3 * k]
        s = p[3 * k + 2]
        u = (x - p[3 * k + 1]) / s
        u2 = u * u
        if u2 < EXP_CUTOFF:
            e = math.exp(-0.5 * u2)
            ae = a * e
            f += ae
            d[3 * k] = e
            d[3 * k + 1] = ae * u / s
            d[3 * k + 2] = ae * u2 / s
        else:
            d[3 * k] = 0.0
            d[3 * k + 1] = 0.0
            d[3 * k + 2] = 0.0
    if nbg > 0:
        f += p[3 * npk]
        d[3 * npk] = 1.0
    if nbg > 1:
        f += p[3 * npk + 1] * (x - xref)
        d[3 * npk + 1] = x - xref
    return f
