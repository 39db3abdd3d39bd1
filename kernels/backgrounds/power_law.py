"""Power-law background ``A (x / xref)^-r``: ``A`` the background at the middle of the fitted
range ``xref``, ``r`` the exponent (the EELS background before an edge). Positions must be
positive.
"""

import math

import numpy as np

NAMES = ("background", "background_exponent")
#: Units of the parameters: counts (``A``), none (``r``): the axis-unit powers are not used.
AXIS_POWERS = (0, None)
MAX_TERMS = 2


def background_point(x, xref, p, o, nbg, D, j):
    """Value at ``x``; derivatives by ``A`` and ``r`` into ``D[o], D[o + 1]`` column ``j``."""
    t = math.log(x / xref)
    e = math.exp(-p[o + 1] * t)
    f = p[o] * e
    D[o, j] = e
    D[o + 1, j] = -f * t
    return f


def background_value(x, xref, p, o, nbg):
    """Value at ``x`` of the power law at ``p[o], p[o + 1]``."""
    return p[o] * math.exp(-p[o + 1] * math.log(x / xref))


def background_start(left, right, xl, xr, xref, x0, x1, nbg, positive, p, o):
    """The power law through the mean counts of the two ends (``left`` at ``xl``, ``right`` at
    ``xr``); with an end at or below zero, a flat one at the larger end's level."""
    r = 0.0
    level = max(left, right, 1e-12)
    if left > 0.0 and right > 0.0 and xl > 0.0 and xr > 0.0 and xl != xr:
        r = -math.log(right / left) / math.log(xr / xl)
        level = left * math.exp(r * math.log(xl / xref))
    p[o] = level
    p[o + 1] = r


def background_step_small(delta, p, o, nbg, tol, xspan, amax):
    """``A`` against itself plus the largest peak amplitude, ``r`` against 1."""
    if abs(delta[o]) > tol * (abs(p[o]) + amax):
        return False
    return not abs(delta[o + 1]) > tol


FUNCTIONS = (background_point, background_value, background_start, background_step_small)


def evaluate(x, xref, params):
    """Background ``out[..., channel]`` for ``params[..., 2]`` (numpy).

    Examples
    --------
    >>> evaluate(np.array([1.0, 2.0, 4.0]), 2.0, np.array([8.0, 3.0]))
    array([64.,  8.,  1.])
    """
    x = np.asarray(x, dtype=np.float64)
    return params[..., 0, None] * (x / xref) ** -params[..., 1, None]
