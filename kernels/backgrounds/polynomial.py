"""Polynomial background ``b0 + b1 (x - xref) + b2 (x - xref)^2 + b3 (x - xref)^3``.

``nbg`` (0 to 4) terms: none, constant, linear, quadratic (``"poly2"``), cubic (``"poly3"``).
``b0`` is the background at the middle of the fitted range ``xref``; ``b1`` its slope there
(counts per axis unit), ``b2`` and ``b3`` per squared and cubed axis unit.
"""

import numpy as np

NAMES = ("background", "background_slope", "background_quadratic", "background_cubic")
#: Units of the coefficients: counts per axis unit to this power.
AXIS_POWERS = (0, 1, 2, 3)
MAX_TERMS = 4


def background_point(x, xref, p, o, nbg, D, j):
    """Value at ``x`` of the background whose ``nbg`` terms start at ``p[o]``; derivatives
    into ``D[o .. o + nbg - 1, j]``."""
    f = 0.0
    if nbg > 0:
        f += p[o]
        D[o, j] = 1.0
    if nbg > 1:
        dx = x - xref
        f += p[o + 1] * dx
        D[o + 1, j] = dx
        if nbg > 2:
            dx2 = dx * dx
            f += p[o + 2] * dx2
            D[o + 2, j] = dx2
            if nbg > 3:
                dx3 = dx2 * dx
                f += p[o + 3] * dx3
                D[o + 3, j] = dx3
    return f


def background_value(x, xref, p, o, nbg):
    """Value at ``x`` of the background whose ``nbg`` terms start at ``p[o]``."""
    f = 0.0
    if nbg > 0:
        f += p[o]
    if nbg > 1:
        dx = x - xref
        f += p[o + 1] * dx
        if nbg > 2:
            f += p[o + 2] * dx * dx
            if nbg > 3:
                f += p[o + 3] * dx * dx * dx
    return f


def background_start(y, x, npk, left, right, xl, xr, xref, x0, x1, nbg, positive, p, o):
    """Starting terms into ``p[o ..]`` from the mean counts ``left``, ``right`` at the mean
    positions ``xl``, ``xr`` of the two ends: a constant at the lower end, or the line through
    both (higher terms 0). ``positive``: keep the background >= 0 over ``x0 .. x1`` (Poisson).
    The spectrum ``y`` over ``x`` and the number of peaks ``npk`` are not needed here.
    """
    b0 = 0.0
    b1 = 0.0
    if nbg == 1:
        b0 = min(left, right)
    elif nbg > 1:
        b1 = (right - left) / (xr - xl)
        b0 = left + b1 * (xref - xl)
    if positive and nbg > 0:
        lo_end = min(b0 + b1 * (x0 - xref), b0 + b1 * (x1 - xref))
        if lo_end < 0.0:
            b0 -= lo_end
    if nbg > 0:
        p[o] = b0
    if nbg > 1:
        p[o + 1] = b1
    for j in range(2, nbg):
        p[o + j] = 0.0


def background_step_small(delta, p, o, nbg, tol, xspan, amax):
    """True when each term moved by less than ``tol`` of its size over the range (term ``k``
    times ``xspan^k``) plus the largest peak amplitude ``amax``."""
    scale = 1.0
    for j in range(nbg):
        if abs(delta[o + j]) * scale > tol * (abs(p[o + j]) * scale + amax):
            return False
        scale *= xspan
    return True


FUNCTIONS = (background_point, background_value, background_start, background_step_small)


def evaluate(x, xref, params):
    """Background ``out[..., channel]`` for ``params[..., nbg]`` (numpy).

    Examples
    --------
    >>> evaluate(np.array([0.0, 1.0, 2.0]), 1.0, np.array([1.0, 2.0, 0.5]))
    array([-0.5,  1. ,  3.5])
    """
    dx = np.asarray(x, dtype=np.float64) - xref
    out = np.zeros(params.shape[:-1] + dx.shape)
    for j in range(params.shape[-1]):
        out += params[..., j, None] * dx**j
    return out
