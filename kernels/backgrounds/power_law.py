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


def background_start(y, x, npk, left, right, xl, xr, xref, x0, x1, nbg, positive, p, o):
    """Starting ``A`` and ``r`` into ``p[o], p[o + 1]``.

    Under peaks (``npk > 0``), the power law through the mean counts of the two ends of the
    spectrum (``left`` at ``xl``, ``right`` at ``xr``), where peaks are least likely. Alone,
    or when an end is at or below zero, the least-squares line ``ln y = ln A - r ln(x / xref)``
    through the positive channels (a log-log fit, the usual seed of an EELS background): from
    zero ends the two-point start would be ``A ~ 0``, where ``r`` has no gradient and the fit
    wanders off to a spike on one channel. With fewer than 2 positive channels, a flat start
    at the larger end's level.
    """
    if npk > 0 and left > 0.0 and right > 0.0 and xl > 0.0 and xr > 0.0 and xl != xr:
        r = -math.log(right / left) / math.log(xr / xl)
        p[o] = left * math.exp(r * math.log(xl / xref))
        p[o + 1] = r
        return
    k = 0
    st = 0.0
    sl = 0.0
    stt = 0.0
    stl = 0.0
    for i in range(y.shape[0]):
        v = float(y[i])
        if v > 0.0:
            t = math.log(x[i] / xref)
            lv = math.log(v)
            k += 1
            st += t
            sl += lv
            stt += t * t
            stl += t * lv
    det = k * stt - st * st
    if k < 2 or not det > 0.0:
        p[o] = max(left, right, 1e-12)
        p[o + 1] = 0.0
        return
    slope = (k * stl - st * sl) / det
    p[o] = math.exp((sl - slope * st) / k)
    p[o + 1] = -slope


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
