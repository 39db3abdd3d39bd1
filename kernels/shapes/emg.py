"""Exponentially modified Gaussian (EMG): a Gaussian convolved with a one-sided exponential tail.

The asymmetric line of band-edge emission: halide perovskites show an Urbach tail on the
*low-energy* side. Parameters: ``amplitude`` (the height of the Gaussian before the tail is
added: the area is ``amplitude * sigma * sqrt(2 pi)``, as for the Gaussian), ``centre`` (the
Gaussian's centre, not the maximum, which lies towards the tail), ``sigma`` and ``tau`` (the
decay length of the tail, axis units). With ``z = SIDE (x - centre) / sigma`` and
``l = sigma / tau``::

    f = A l sqrt(pi / 2) exp(l^2 / 2 - l z) erfc((l - z) / sqrt(2))

``SIDE`` is a compile-time constant of the registry entry, not a fitted parameter: ``+1`` puts
the tail towards *higher* axis values (``shape="emg_high"``: the low-energy side of a
wavelength axis, nm), ``-1`` towards *lower* axis values (``shape="emg_low"``: the low-energy
side of an energy axis, eV). As ``tau -> 0`` the EMG becomes the Gaussian.
"""

import functools
import math

import numpy as np

from hyperlum.kernels.constants import FWHM_PER_SIGMA, SQRT_2PI
from hyperlum.kernels.shapes.common import CORE, constrain_core, peaks_block, step_small_core

N_PARAMS = 4
PARAM_NAMES = ("amplitude", "centre", "sigma", "tau")
UNITS = ("counts", "axis", "axis", "axis")
FWHM_PER_WIDTH = FWHM_PER_SIGMA
EXPRESSION = (
    "amplitude * l * sqrt(pi / 2) * exp(l**2 / 2 - l * z) * erfc((l - z) / sqrt(2));"
    " l = sigma / tau; z = side * (x - centre) / sigma"
)
SIDE = 1.0  # bound per registry entry: +1 tail towards higher x, -1 towards lower x
SQRT_HALF_PI = 1.2533141373155003
SQRT_PI = 1.7724538509055159
#: Above this ``w`` the scaled complementary error function takes its asymptotic series.
ERFCX_SERIES = 26.0
#: Most Newton (or bisection) steps per root in :func:`peak_fwhm` (a few are taken: the
#: brackets start within a factor 2 of the root).
ROOT_STEPS = 40


def emg_core(z, lam):
    """``(g, e)``: the EMG of height-1 Gaussian at ``z`` for ``l = lam``, and ``exp(-z^2 / 2)``.

    ``exp(l^2/2 - l z) erfc(w)`` with ``w = (l - z) / sqrt(2)``, or, for ``w`` beyond
    :data:`ERFCX_SERIES` (where ``erfc`` underflows), ``exp(-z^2 / 2) erfcx(w)`` by its series.
    """
    e = math.exp(-0.5 * z * z)
    w = (lam - z) * 0.7071067811865476
    if w < ERFCX_SERIES:
        k = math.exp(lam * (0.5 * lam - z)) * math.erfc(w)
    else:
        v = 1.0 / (w * w)
        k = e * (1.0 + v * (-0.5 + v * (0.75 + v * (-1.875 + v * 6.5625)))) / (w * SQRT_PI)
    return lam * SQRT_HALF_PI * k, e


def peak_value(x, p, i):
    """Value at ``x`` of the peak whose parameters start at ``p[i]``."""
    g, _ = emg_core(SIDE * (x - p[i + 1]) / p[i + 2], p[i + 2] / p[i + 3])
    return p[i] * g


def peak_point(x, p, i, D, j):
    """Value at ``x``; derivatives by amplitude, centre, sigma, tau into ``D[i .. i + 3, j]``."""
    a = p[i]
    s = p[i + 2]
    t = p[i + 3]
    z = SIDE * (x - p[i + 1]) / s
    lam = s / t
    g, e = emg_core(z, lam)
    D[i, j] = g
    D[i + 1, j] = SIDE * a * lam * (g - e) / s
    D[i + 2, j] = a * (g * (1.0 + lam * lam) - e * lam * (z + lam)) / s
    D[i + 3, j] = -a * (g * (1.0 + lam * (lam - z)) - lam * lam * e) / t
    return a * g


def peak_start(p, i, amp, centre, fwhm, wmin):
    """Starting values: part of the FWHM to the Gaussian, part to the tail, centre moved away
    from the tail (the maximum lies towards it)."""
    tau = max(0.3 * fwhm, wmin)
    p[i] = 1.2 * amp
    p[i + 1] = centre - SIDE * 0.5 * tau
    p[i + 2] = max(0.8 * fwhm / FWHM_PER_SIGMA, wmin)
    p[i + 3] = tau


def peak_constrain(pt, p, i, xlo, xhi, wmin, wmax):
    """Common constraints; ``tau`` within the width's bounds too."""
    constrain_core(pt, p, i, xlo, xhi, wmin, wmax)
    it = i + 3
    if pt[it] < wmin:
        pt[it] = max(0.5 * p[it], wmin)
    elif pt[it] > wmax:
        pt[it] = 0.5 * (p[it] + wmax)


def peak_step_small(delta, p, i, tol):
    """Common parameters against their scales, tau against ``sigma + tau``."""
    return step_small_core(delta, p, i, tol) and not abs(delta[i + 3]) > tol * (p[i + 2] + p[i + 3])


def peak_area(p, i, G):
    """Area ``A sigma sqrt(2 pi)`` (the tail moves counts, it adds none); gradient into ``G``."""
    G[0] = SQRT_2PI * p[i + 2]
    G[1] = 0.0
    G[2] = SQRT_2PI * p[i]
    G[3] = 0.0
    return SQRT_2PI * p[i] * p[i + 2]


def emg_parts(z, lam):
    """``(g, d, q)`` of the height-1 EMG at ``z`` for ``l = lam`` (see :func:`emg_core`): its
    value ``g``, ``d = g - exp(-z^2 / 2)`` (``dg/dz = -l d``) and ``q = dg/dl`` at fixed ``z``.

    ``q = g (1 / l + l - z) - l exp(-z^2 / 2)``. Where ``erfc`` takes its series (the nearly
    Gaussian side), ``g = e l S / (l - z)`` with ``S = w sqrt(pi) erfcx(w) = 1 - r``, so that
    ``d`` and ``q`` come from ``r`` without the cancellation of ``g - e``.
    """
    e = math.exp(-0.5 * z * z)
    w = (lam - z) * 0.7071067811865476
    if w < ERFCX_SERIES:
        g = lam * SQRT_HALF_PI * math.exp(lam * (0.5 * lam - z)) * math.erfc(w)
        return g, g - e, g * (1.0 / lam + lam - z) - lam * e
    v = 1.0 / (w * w)
    r = v * (0.5 - v * (0.75 - v * (1.875 - v * 6.5625)))
    d = e * (z - lam * r) / (lam - z)
    g = d + e
    return g, d, g / lam - lam * e * r


def emg_root(lam, lo, hi, half, up):
    """The ``z`` in ``[lo, hi]`` where ``g = half`` (``half > 0``), or where ``d = 0`` (the
    maximum, ``half = 0``), by Newton steps kept inside the bracket (bisection otherwise).

    ``up`` is +1 when the function rises over the bracket (the maximum, the half-maximum
    before it), -1 when it falls (the half-maximum after it).
    """
    z = 0.5 * (lo + hi)
    for _ in range(ROOT_STEPS):
        parts = emg_parts(z, lam)
        g = parts[0]
        d = parts[1]
        if half > 0.0:
            f = g - half
            df = -lam * d
        else:
            f = d
            df = z * (g - d) - lam * d  # d(g - e)/dz = -l d + z e
        if up * f < 0.0:
            lo = z
        else:
            hi = z
        zn = z - f / df if df != 0.0 else lo
        if not (lo < zn < hi):
            zn = 0.5 * (lo + hi)
        # a step of 1e-6 leaves an error of about its square (Newton): done, in float32 too
        done = abs(zn - z) <= 1e-6 * (1.0 + abs(z))
        z = zn
        if done:
            break
    return z


def peak_fwhm(p, i, G):
    """FWHM ``sigma W(l)``, ``l = sigma / tau``; its gradient into ``G[0 .. 3]``.

    In ``z`` the peak depends on ``l`` alone: ``W = z2 - z1``, the half-maximum points on
    either side of the maximum ``zm`` (where ``g = e``). They are found by Newton's method
    from brackets that double outwards; their derivatives by ``l`` follow from the
    half-maximum conditions ``g(z_k, l) = g(zm, l) / 2`` differentiated implicitly (``zm``'s
    own move does not change the maximum to first order):
    ``dz_k/dl = (q(zm) / 2 - q(z_k)) / (-l d(z_k))`` (:func:`emg_parts`). Then
    ``dFWHM/dsigma = W + l W'`` and ``dFWHM/dtau = -l^2 W'``.
    """
    lam = p[i + 2] / p[i + 3]
    # the maximum: d < 0 before it, > 0 after; it lies at z >= 0 (g(0) < 1 = e(0))
    hi = 1.0
    for _k in range(64):
        if emg_parts(hi, lam)[1] >= 0.0:
            break
        hi *= 2.0
    zm = emg_root(lam, 0.0, hi, 0.0, 1.0)
    gm, dm, qm = emg_parts(zm, lam)
    half = 0.5 * gm
    step = 1.0
    for _k in range(64):
        if emg_parts(zm - step, lam)[0] <= half:
            break
        step *= 2.0
    z1 = emg_root(lam, zm - step, zm, half, 1.0)
    step = 1.0
    for _k in range(64):
        if emg_parts(zm + step, lam)[0] <= half:
            break
        step *= 2.0
    z2 = emg_root(lam, zm, zm + step, half, -1.0)
    g1, d1, q1 = emg_parts(z1, lam)
    g2, d2, q2 = emg_parts(z2, lam)
    dw = (0.5 * qm - q2) / (-lam * d2) - (0.5 * qm - q1) / (-lam * d1)
    width = z2 - z1
    G[0] = 0.0
    G[1] = 0.0
    G[2] = width + lam * dw
    G[3] = -lam * lam * dw
    return p[i + 2] * width


FUNCTIONS = (
    *CORE,
    emg_core,
    peak_value,
    peak_point,
    peaks_block,
    peak_start,
    peak_constrain,
    peak_step_small,
    peak_area,
    emg_parts,
    emg_root,
    peak_fwhm,
)


def _profile(z, lam):
    """numpy :func:`emg_core`'s ``g`` (broadcasting)."""
    from scipy.special import erfc, erfcx

    z, lam = np.broadcast_arrays(np.asarray(z, float), np.asarray(lam, float))
    w = (lam - z) / np.sqrt(2.0)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        tail = np.exp(lam * (0.5 * lam - z)) * erfc(np.minimum(w, ERFCX_SERIES))
        far = np.exp(-0.5 * z * z) * erfcx(np.maximum(w, 0.0))
    return lam * SQRT_HALF_PI * np.where(w < ERFCX_SERIES, tail, far)


def evaluate(x, params, side=SIDE):
    """Peak values ``out[..., channel]`` for ``params[..., 4]`` on positions ``x``.

    Examples
    --------
    >>> x = np.array([-2.0, 0.0, 2.0])
    >>> evaluate(x, np.array([1.0, 0.0, 1.0, 1e-3])).round(4)  # tau -> 0: the Gaussian (0.1353)
    array([0.1351, 1.    , 0.1356])
    >>> y = evaluate(x, np.array([1.0, 0.0, 1.0, 2.0]), side=-1.0)  # tail towards lower x
    >>> bool(y[0] > y[2])
    True
    """
    a, c, s, t = (params[..., q, None] for q in range(4))
    return a * _profile(side * (x - c) / s, s / t)


def _fwhm_rows(params, out):
    """``out[k]``: :func:`peak_fwhm` of the peak ``params[k, :4]``; NaN where sigma or tau is
    not a positive finite number (a failed pixel's NaN, or no EMG at all)."""
    G = np.empty(N_PARAMS)
    for k in range(params.shape[0]):
        if 0.0 < params[k, 2] < math.inf and 0.0 < params[k, 3] < math.inf:
            out[k] = peak_fwhm(params[k], 0, G)
        else:
            out[k] = math.nan


@functools.cache
def _compiled_fwhm_rows():
    """:func:`_fwhm_rows` over the kernels' :func:`peak_fwhm`, compiled as the CPU kernels are
    (:func:`~hyperlum.kernels.compile.jit_functions`, the CPU driver's options) and cached on
    disk: every function it inlines is in this file, whose edits invalidate numba's cache."""
    import numba

    from hyperlum.kernels.compile import jit_functions
    from hyperlum.kernels.cpu import JIT_OPTIONS

    callees = jit_functions((emg_parts, emg_root, peak_fwhm), numba.njit(nogil=True, **JIT_OPTIONS))
    loop = numba.njit(cache=True, nogil=True, **JIT_OPTIONS)
    return jit_functions((_fwhm_rows,), loop, callees)["_fwhm_rows"]


def fwhm(params):
    """FWHM of each peak of ``params[..., 4]``, by the kernels' own :func:`peak_fwhm`.

    The maps' ``fwhm`` and the kernels' ``fwhm_std`` thus come from one computation (the
    half-maximum points by Newton's method, to rounding). The FWHM does not depend on the
    side of the tail.

    Parameters
    ----------
    params : array_like
        ``amplitude, centre, sigma, tau`` on the last axis.

    Returns
    -------
    ndarray
        ``params.shape[:-1]``, float64; NaN where sigma or tau is not a positive finite number
        (the NaN parameters of a failed pixel).

    Examples
    --------
    >>> round(float(fwhm(np.array([1.0, 0.0, 1.0, 1e-6]))), 6)  # tau -> 0: the Gaussian's
    2.35482
    >>> fwhm(np.array([[1.0, 0.0, 1.0, 1e3], [np.nan] * 4])).round(1)  # about tau ln 2 (693.1)
    array([696.9,   nan])
    """
    params = np.asarray(params, dtype=np.float64)
    rows = np.ascontiguousarray(params.reshape(-1, N_PARAMS))
    out = np.empty(rows.shape[0])
    _compiled_fwhm_rows()(rows, out)
    return out.reshape(params.shape[:-1])


def area(params):
    """Area ``A sigma sqrt(2 pi)`` of each peak of ``params[..., 4]``."""
    return params[..., 0] * params[..., 2] * SQRT_2PI
