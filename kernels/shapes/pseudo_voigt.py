"""Pseudo-Voigt peak: ``A (eta L + (1 - eta) G)``, a Lorentzian ``L`` and a Gaussian ``G`` of the
same FWHM and height 1, mixed by ``eta`` (fitted, kept in ``[0, 1]``).

``L = 1 / (1 + 4 u^2)``, ``G = exp(-4 ln 2 u^2)``, ``u = (x - c) / fwhm``: parameters amplitude
(height), centre, fwhm and eta (0: Gaussian, 1: Lorentzian). An approximation of the Voigt
profile (a Gaussian convolved with a Lorentzian) to about 1% of its height.
"""

import math

import numpy as np

from hyperlum.kernels.shapes.common import CORE, constrain_core, peaks_block, step_small_core

N_PARAMS = 4
PARAM_NAMES = ("amplitude", "centre", "fwhm", "eta")
UNITS = ("counts", "axis", "axis", "")
FWHM_PER_WIDTH = 1.0
EXPRESSION = (
    "amplitude * (eta / (1 + 4 * ((x - centre) / fwhm)**2)"
    " + (1 - eta) * exp(-4 * log(2) * ((x - centre) / fwhm)**2))"
)
LN2_4 = 4.0 * math.log(2.0)
#: Area of a peak of height 1 and FWHM 1: Lorentzian, Gaussian.
AREA_L = 0.5 * math.pi
AREA_G = 0.5 * math.sqrt(math.pi / math.log(2.0))


def peak_value(x, p, i):
    """Value at ``x`` of the peak whose parameters start at ``p[i]``."""
    u = (x - p[i + 1]) / p[i + 2]
    u2 = u * u
    eta = p[i + 3]
    return p[i] * (eta / (1.0 + 4.0 * u2) + (1.0 - eta) * math.exp(-LN2_4 * u2))


def peak_point(x, p, i, D, j):
    """Value at ``x``; derivatives by amplitude, centre, fwhm, eta into ``D[i .. i + 3, j]``."""
    a = p[i]
    inv_w = 1.0 / p[i + 2]
    eta = p[i + 3]
    u = (x - p[i + 1]) * inv_w
    u2 = u * u
    lor = 1.0 / (1.0 + 4.0 * u2)
    gau = math.exp(-LN2_4 * u2)
    shape = eta * lor + (1.0 - eta) * gau
    # d shape / du = -8 u (eta L^2 + (1 - eta) ln2 G); du/dc = -1/w, du/dw = -u/w
    t = 8.0 * a * u * (eta * lor * lor + (1.0 - eta) * 0.25 * LN2_4 * gau) * inv_w
    D[i, j] = shape
    D[i + 1, j] = t
    D[i + 2, j] = t * u
    D[i + 3, j] = a * (lor - gau)
    return a * shape


def peak_start(p, i, amp, centre, fwhm, wmin):
    """Starting values: the guess's height, position and FWHM, half Lorentzian."""
    p[i] = amp
    p[i + 1] = centre
    p[i + 2] = max(fwhm, wmin)
    p[i + 3] = 0.5


def peak_constrain(pt, p, i, xlo, xhi, wmin, wmax):
    """Common constraints, and ``0 <= eta <= 1``: a step out moves halfway to the bound, or
    onto it from within 1e-3 (a pure Gaussian or Lorentzian is a solution, reached exactly)."""
    constrain_core(pt, p, i, xlo, xhi, wmin, wmax)
    ie = i + 3
    if pt[ie] < 0.0:
        pt[ie] = 0.5 * p[ie] if p[ie] > 1e-3 else 0.0
    elif pt[ie] > 1.0:
        pt[ie] = 0.5 * (p[ie] + 1.0) if p[ie] < 1.0 - 1e-3 else 1.0


def peak_step_small(delta, p, i, tol):
    """Common parameters against their scales, eta against 1."""
    return step_small_core(delta, p, i, tol) and not abs(delta[i + 3]) > tol


def peak_area(p, i, G):
    """Area ``A fwhm (eta pi / 2 + (1 - eta) sqrt(pi / ln 2) / 2)``; gradient into ``G``."""
    a = p[i]
    w = p[i + 2]
    eta = p[i + 3]
    unit = eta * AREA_L + (1.0 - eta) * AREA_G
    G[0] = w * unit
    G[1] = 0.0
    G[2] = a * unit
    G[3] = a * w * (AREA_L - AREA_G)
    return a * w * unit


def peak_fwhm(p, i, G):
    """FWHM: the parameter ``fwhm`` itself; its gradient into ``G``."""
    G[0] = 0.0
    G[1] = 0.0
    G[2] = 1.0
    G[3] = 0.0
    return p[i + 2]


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
    """Peak values ``out[..., channel]`` for ``params[..., 4]`` on positions ``x``.

    Examples
    --------
    >>> evaluate(np.array([-0.5, 0.0, 0.5]), np.array([2.0, 0.0, 1.0, 0.3]))
    array([1., 2., 1.])
    """
    a, c, w, eta = (params[..., q, None] for q in range(4))
    u2 = ((x - c) / w) ** 2
    return a * (eta / (1.0 + 4.0 * u2) + (1.0 - eta) * np.exp(-LN2_4 * u2))


def fwhm(params):
    """FWHM of each peak of ``params[..., 4]`` (a parameter)."""
    return params[..., 2] + 0.0


def area(params):
    """Area of each peak of ``params[..., 4]``."""
    eta = params[..., 3]
    return params[..., 0] * params[..., 2] * (eta * AREA_L + (1.0 - eta) * AREA_G)
