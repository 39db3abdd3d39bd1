"""Lorentzian peak ``A / (1 + ((x - c) / gamma)^2)``: amplitude (height), centre, HWHM gamma.

``gamma`` is the half width at half maximum, as in HyperSpy's ``Lorentzian`` (whose ``A`` is
the area ``pi A gamma``, hyperlum's ``intensity``). Long tails: every channel counts.
"""

import math

import numpy as np

from hyperlum.kernels.shapes.common import CORE, constrain_core, peaks_block, step_small_core

N_PARAMS = 3
PARAM_NAMES = ("amplitude", "centre", "gamma")
UNITS = ("counts", "axis", "axis")
FWHM_PER_WIDTH = 2.0


def peak_value(x, p, i):
    """Value at ``x`` of the peak whose parameters start at ``p[i]``."""
    u = (x - p[i + 1]) / p[i + 2]
    return p[i] / (1.0 + u * u)


def peak_point(x, p, i, D, j):
    """Value at ``x``; derivatives by amplitude, centre, gamma into ``D[i .. i + 2, j]``."""
    inv_g = 1.0 / p[i + 2]
    u = (x - p[i + 1]) * inv_g
    d = 1.0 / (1.0 + u * u)
    f = p[i] * d
    t = 2.0 * f * d * u * inv_g
    D[i, j] = d
    D[i + 1, j] = t
    D[i + 2, j] = t * u
    return f


def peak_start(p, i, amp, centre, fwhm, wmin):
    """Starting values from the height, position and FWHM the generic guess found."""
    p[i] = amp
    p[i + 1] = centre
    p[i + 2] = max(0.5 * fwhm, wmin)


def peak_constrain(pt, p, i, xlo, xhi, wmin, wmax):
    """Keep the trial parameters of one peak feasible (see ``constrain_core``)."""
    constrain_core(pt, p, i, xlo, xhi, wmin, wmax)


def peak_step_small(delta, p, i, tol):
    """True when the step of every parameter of the peak is below ``tol`` of its scale."""
    return step_small_core(delta, p, i, tol)


def peak_area(p, i, G):
    """Area ``pi A gamma``; its gradient goes into ``G[0 .. 2]``."""
    G[0] = math.pi * p[i + 2]
    G[1] = 0.0
    G[2] = math.pi * p[i]
    return math.pi * p[i] * p[i + 2]


def peak_fwhm(p, i, G):
    """FWHM ``2 gamma``; its gradient goes into ``G[0 .. 2]``."""
    G[0] = 0.0
    G[1] = 0.0
    G[2] = 2.0
    return 2.0 * p[i + 2]


FUNCTIONS = (
    *CORE,
    peak_value,
    peak_point,
    peaks_block,
    peak_start,
    peak_constrain,
    peak_step_small,
    peak_area,
    peak_fwhm,
)


def evaluate(x, params):
    """Peak values ``out[..., channel]`` for ``params[..., 3]`` on positions ``x``.

    Examples
    --------
    >>> evaluate(np.array([-1.0, 0.0, 1.0]), np.array([2.0, 0.0, 1.0]))
    array([1., 2., 1.])
    """
    a, c, g = (params[..., q, None] for q in range(3))
    return a / (1.0 + ((x - c) / g) ** 2)


def fwhm(params):
    """FWHM ``2 gamma`` of each peak of ``params[..., 3]``."""
    return 2.0 * params[..., 2]


def area(params):
    """Area ``pi A gamma`` of each peak of ``params[..., 3]``."""
    return np.pi * params[..., 0] * params[..., 2]
