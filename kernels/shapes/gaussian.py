"""Gaussian peak ``A exp(-(x - c)^2 / (2 sigma^2))``: amplitude, centre, width sigma.

The reference shape of the registry (see ``docs/adding-a-shape.md``). Its derivatives over a
block of channels (:func:`peaks_block`) follow recurrences on chains instead of an exponential
per channel; the other functions are what every shape gives (see
:mod:`hyperlum.kernels.shapes`).
"""

import math

import numpy as np

from hyperlum.kernels.constants import EXP_CUTOFF, FWHM_PER_SIGMA, SQRT_2PI
from hyperlum.kernels.shapes.common import CORE, constrain_core, step_small_core

N_PARAMS = 3
PARAM_NAMES = ("amplitude", "centre", "sigma")
#: Units of each parameter: "counts" (those of the data), "axis" (those of the signal axis) or "".
UNITS = ("counts", "axis", "axis")
#: FWHM of a peak of width parameter 1 (used to bound the width and by the detection verdict).
FWHM_PER_WIDTH = FWHM_PER_SIGMA
#: The peak as a formula of ``x`` and the parameter names (a HyperSpy ``Expression``).
EXPRESSION = "amplitude * exp(-(x - centre)**2 / (2 * sigma**2))"


def peak_value(x, p, i):
    """Value at ``x`` of the peak whose parameters start at ``p[i]``."""
    u = (x - p[i + 1]) / p[i + 2]
    u2 = u * u
    if u2 < EXP_CUTOFF:
        return p[i] * math.exp(-0.5 * u2)
    return 0.0


def peaks_block(x, i0, nb, p, npk, D, F, R, h, C):
    """Gaussians and their derivatives on channels ``i0 .. i0 + nb - 1``.

    Derivatives go into rows ``0 .. 3 npk - 1`` of ``D`` (one column per channel of the block),
    the sum of the Gaussians into ``F``. Only channels with ``((x - c) / s)^2 <`` ``EXP_CUTOFF``
    (a Gaussian's window) get non-zero values.

    On a uniform axis of step ``h`` each Gaussian follows, on every column ``j`` of the blocks,
    the recurrence ``e[i + B] = e[i] r[i]``, ``r[i + B] = r[i] q`` with ``B = D.shape[1]`` and
    ``q = exp(-(B h)^2 / s^2)``: ``B`` independent chains of two products per channel, kept in
    rows ``2k`` (``e``) and ``2k + 1`` (``r``) of ``C``, which vectorise (a CPU) or run as
    independent instructions (a GPU thread). ``R[3k]`` says whether peak ``k``'s chains are
    running, ``R[3k + 1]`` holds its ``q``; ``R`` must be zero before the first block. The chains
    start, from exponentials and one scalar recurrence over the block, in the first block that
    meets the window, and stop after the last; they never leave a range where every value is a
    normal number (``(B h)^2 / s^2 <= EXP_CUTOFF``). A narrower Gaussian, or any Gaussian on a
    non-uniform axis (``h == 0``), is evaluated with an exponential per channel of its window.
    Returns False when no channel of the block lies inside any Gaussian's window.
    """
    for j in range(nb):
        F[j] = 0.0
    nblock = D.shape[1]
    # a view indexed from 0: x[i0 + j] would be checked for a negative index (numba's
    # wrap-around) channel by channel, which keeps the loops from loading 4 at once
    xs = x[i0 : i0 + nb]
    xa = xs[0]
    xb = xs[nb - 1]
    active = False
    for k in range(npk):
        a = p[3 * k]
        c = p[3 * k + 1]
        inv_s = 1.0 / p[3 * k + 2]
        half = math.sqrt(EXP_CUTOFF) * p[3 * k + 2]
        if max(xa, xb) <= c - half or min(xa, xb) >= c + half:
            # The block misses the window: zero derivatives (chains, if started, are done).
            for j in range(nb):
                D[3 * k, j] = 0.0
                D[3 * k + 1, j] = 0.0
                D[3 * k + 2, j] = 0.0
            continue
        active = True
        hb = nblock * h * inv_s
        if h == 0.0 or hb * hb > EXP_CUTOFF:
            for j in range(nb):
                u = (xs[j] - c) * inv_s
                u2 = u * u
                e = 0.0
                if u2 < EXP_CUTOFF:
                    e = math.exp(-0.5 * u2)
                ae = a * e
                F[j] += ae
                D[3 * k, j] = e
                D[3 * k + 1, j] = ae * u * inv_s
                D[3 * k + 2, j] = ae * u2 * inv_s
            continue
        if R[3 * k] == 0.0:
            # Start the chains: channel i0 + j holds e(x) and r(x) = e(x + B h) / e(x).
            R[3 * k] = 1.0
            R[3 * k + 1] = math.exp(-hb * hb)
            u = (xa - c) * inv_s
            hs = h * inv_s
            e = math.exp(-0.5 * u * u)
            r1 = math.exp(-(u + 0.5 * hs) * hs)
            q1 = math.exp(-hs * hs)
            rb = math.exp(-(u + 0.5 * hb) * hb)
            qb = math.exp(-nblock * hs * hs)
            for j in range(nb):
                C[2 * k, j] = e
                C[2 * k + 1, j] = rb
                e *= r1
                r1 *= q1
                rb *= qb
        q = R[3 * k + 1]
        for j in range(nb):
            u = (xs[j] - c) * inv_s
            u2 = u * u
            e = C[2 * k, j]
            r = C[2 * k + 1, j]
            C[2 * k, j] = e * r
            C[2 * k + 1, j] = r * q
            if not u2 < EXP_CUTOFF:
                e = 0.0
            ae = a * e
            F[j] += ae
            D[3 * k, j] = e
            D[3 * k + 1, j] = ae * u * inv_s
            D[3 * k + 2, j] = ae * u2 * inv_s
    return active


def peak_start(p, i, amp, centre, fwhm, wmin):
    """Starting values from the height, position and FWHM the generic guess found."""
    p[i] = amp
    p[i + 1] = centre
    p[i + 2] = max(fwhm / FWHM_PER_SIGMA, wmin)


def peak_constrain(pt, p, i, xlo, xhi, wmin, wmax):
    """Keep the trial parameters of one peak feasible (see :func:`constrain_core`)."""
    constrain_core(pt, p, i, xlo, xhi, wmin, wmax)


def peak_step_small(delta, p, i, tol):
    """True when the step of every parameter of the peak is below ``tol`` of its scale."""
    return step_small_core(delta, p, i, tol)


def peak_area(p, i, G):
    """Area ``A sigma sqrt(2 pi)``; its gradient goes into ``G[0 .. N_PARAMS - 1]``."""
    G[0] = SQRT_2PI * p[i + 2]
    G[1] = 0.0
    G[2] = SQRT_2PI * p[i]
    return SQRT_2PI * p[i] * p[i + 2]


def peak_fwhm(p, i, G):
    """FWHM ``sigma 2 sqrt(2 ln 2)``; its gradient goes into ``G[0 .. N_PARAMS - 1]``."""
    G[0] = 0.0
    G[1] = 0.0
    G[2] = FWHM_PER_SIGMA
    return FWHM_PER_SIGMA * p[i + 2]


#: The kernel functions, callees before callers (compiled per model by ``compile.py``).
FUNCTIONS = (
    *CORE,
    peak_value,
    peaks_block,
    peak_start,
    peak_constrain,
    peak_step_small,
    peak_area,
    peak_fwhm,
)


# -- numpy: the same peak on arrays (model cubes, detection verdict, HyperSpy models) ----------


def evaluate(x, params):
    """Peak values ``out[..., channel]`` for ``params[..., N_PARAMS]`` on positions ``x``.

    Examples
    --------
    >>> evaluate(np.array([-1.0, 0.0, 1.0]), np.array([2.0, 0.0, 1.0])).round(4)
    array([1.2131, 2.    , 1.2131])
    """
    a, c, s = (params[..., q, None] for q in range(3))
    return a * np.exp(-0.5 * ((x - c) / s) ** 2)


def fwhm(params):
    """FWHM of each peak of ``params[..., N_PARAMS]``."""
    return params[..., 2] * FWHM_PER_SIGMA


def area(params):
    """Area of each peak of ``params[..., N_PARAMS]``."""
    return params[..., 0] * params[..., 2] * SQRT_2PI
