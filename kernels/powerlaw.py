"""Power-law background ``A * E**-r`` of one EELS spectrum, fitted in a window and subtracted.

The maths are plain Python functions without decorators that allocate nothing and work on
scalars only, so that the same source can be compiled with ``numba.njit`` (the CPU driver
below, :func:`subtract_chunk`) and with ``numba.cuda.jit(device=True)`` (a CUDA kernel then only
has to run :func:`powerlaw_pixel` for its pixel).

The fit works in ``t = ln(E / E0)``, ``E0`` the geometric mean energy of the window, with the
model ``B * exp(-r t)`` (``A = B * E0**r``): ``B`` and ``r`` are then nearly uncorrelated. It is
seeded by the straight line through ``(t, ln y)`` (the log-log fit, which skips channels with
zero or negative counts) and refined by Levenberg-Marquardt on the sum of squared residuals
(the same objective as a non-linear least-squares fit of ``A * E**-r``), with closed-form 2 x 2
solves.
"""

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from hyperlum.kernels.compile import jit_functions
from hyperlum.kernels.constants import BAD_INPUT, CONVERGED, MAX_ITERATIONS, SINGULAR

#: Rows of the per-pixel output: the maps of a power-law fit.
ROWS = ("A", "r", "chisq", "state", "iterations", "nonpositive")
N_ROWS = len(ROWS)


#: Channels between exact ``exp`` evaluations when powers are stepped from channel to channel.
RESYNC = 32


def exp_step(x):
    """``exp(x)``: a 7-term series for ``|x| <= 0.02`` (relative error < 3e-16), else ``math.exp``.

    ``E**-r`` changes by ``exp(-r dt)`` from one channel to the next, with ``r dt`` of a few
    thousandths on a typical core-loss axis: the series is cheaper than ``exp`` there.
    """
    if -0.02 <= x <= 0.02:
        return 1.0 + x * (
            1.0
            + x
            * 0.5
            * (1.0 + x * (1.0 / 3.0) * (1.0 + x * 0.25 * (1.0 + x * 0.2 * (1.0 + x * (1.0 / 6.0)))))
        )
    return math.exp(x)


def window_is_bad(y, lo, hi):
    """True when a channel of the window ``lo <= i < hi`` is NaN or infinite."""
    for i in range(lo, hi):
        if not math.isfinite(float(y[i])):
            return True
    return False


def count_nonpositive(y, lo, hi):
    """Number of channels of the window with zero or negative counts."""
    k = 0
    for i in range(lo, hi):
        if not float(y[i]) > 0.0:
            k += 1
    return k


def loglog_slope(y, t, lo, hi):
    """Least-squares line ``ln y = ln B - r t`` over the positive channels of the window.

    Returns ``(B, r, used)``; ``used < 2`` (or a degenerate ``t``) leaves ``B = r = nan``.
    """
    n = 0
    st = 0.0
    sl = 0.0
    stt = 0.0
    stl = 0.0
    for i in range(lo, hi):
        v = float(y[i])
        if v > 0.0:
            lv = math.log(v)
            n += 1
            st += t[i]
            sl += lv
            stt += t[i] * t[i]
            stl += t[i] * lv
    if n < 2:
        return math.nan, math.nan, n
    det = n * stt - st * st
    if not det > 0.0:
        return math.nan, math.nan, n
    slope = (n * stl - st * sl) / det
    icpt = (sl - slope * st) / n
    return math.exp(icpt), -slope, n


def evaluate(y, t, lo, hi, b, r):
    """One pass over the window at ``(b, r)``: the sum of squares and the normal equations.

    Returns ``(chi2, h00, h01, h11, g0, g1)``: ``H = J^T J`` and ``g = J^T (y - f)`` for the
    model ``f = b u``, ``u = exp(-r t)``, ``J = [u, -b t u]``. The powers are stepped from
    channel to channel (:func:`exp_step`), exactly recomputed every :data:`RESYNC` channels.
    """
    chi2 = 0.0
    h00 = 0.0
    h01 = 0.0
    h11 = 0.0
    g0 = 0.0
    g1 = 0.0
    i = lo
    while i < hi:
        stop = min(i + RESYNC, hi)
        u = math.exp(-r * t[i])
        for j in range(i, stop):
            if j > i:
                u *= exp_step(-r * (t[j] - t[j - 1]))
            res = float(y[j]) - b * u
            d1 = -b * t[j] * u
            chi2 += res * res
            h00 += u * u
            h01 += u * d1
            h11 += d1 * d1
            g0 += res * u
            g1 += res * d1
        i = stop
    return chi2, h00, h01, h11, g0, g1


def powerlaw_pixel(y, t, lo, hi, max_iter, tol, out, pix):
    """Fit ``B exp(-r t)`` to ``y[lo:hi]``; write column ``pix`` of ``out`` (rows: :data:`ROWS`).

    Row 0 receives ``B`` here; :func:`subtract_pixel` turns it into ``A = B * E0**r``.
    Levenberg-Marquardt with the damping ``lam * diag(H)``; each trial point costs one pass
    (:func:`evaluate`), whose normal equations serve the next step when it is accepted.
    """
    out[5, pix] = count_nonpositive(y, lo, hi)
    b = math.nan
    r = math.nan
    if not window_is_bad(y, lo, hi):
        b, r, used = loglog_slope(y, t, lo, hi)
    if not (math.isfinite(b) and math.isfinite(r)):
        out[0, pix] = math.nan
        out[1, pix] = math.nan
        out[2, pix] = math.nan
        out[3, pix] = BAD_INPUT
        out[4, pix] = 0
        return
    chi2, h00, h01, h11, g0, g1 = evaluate(y, t, lo, hi, b, r)
    state = MAX_ITERATIONS
    lam = 1e-3
    it = 0
    while it < max_iter:
        it += 1
        a00 = h00 * (1.0 + lam)
        a11 = h11 * (1.0 + lam)
        det = a00 * a11 - h01 * h01
        if not (det > 0.0 and math.isfinite(det)):
            lam *= 10.0
            if lam > 1e12:
                state = SINGULAR
                break
            continue
        db = (a11 * g0 - h01 * g1) / det
        dr = (a00 * g1 - h01 * g0) / det
        bt = b + db
        if not bt > 0.0:
            bt = 0.1 * b
        rt = r + dr
        chi2n, n00, n01, n11, ng0, ng1 = evaluate(y, t, lo, hi, bt, rt)
        if chi2n <= chi2:
            small = abs(bt - b) <= tol * abs(b) and abs(rt - r) <= tol * (abs(r) + 1.0)
            done = small or chi2 - chi2n <= tol * chi2n
            b = bt
            r = rt
            chi2 = chi2n
            h00 = n00
            h01 = n01
            h11 = n11
            g0 = ng0
            g1 = ng1
            lam = max(0.1 * lam, 1e-12)
            if done:
                state = CONVERGED
                break
        else:
            lam *= 10.0
            if lam > 1e12:
                # No step lowers the sum of squares: a minimum to machine precision.
                state = CONVERGED
                break
    n = hi - lo
    out[0, pix] = b
    out[1, pix] = r
    out[2, pix] = chi2 / max(n - 2, 1)
    out[3, pix] = state
    out[4, pix] = it


def subtract_pixel(y, t, lo, hi, lne0, max_iter, tol, out, pix, sub):
    """Fit the window of ``y``, store ``A`` (``= B E0**r``) and write ``y - A E**-r`` to ``sub``.

    Channels at ``E <= 0`` (``t`` NaN there) keep their value, as in HyperSpy's ``PowerLaw``
    (zero below its ``left_cutoff``). A pixel whose fit failed gets NaN throughout ``sub``.
    """
    powerlaw_pixel(y, t, lo, hi, max_iter, tol, out, pix)
    b = out[0, pix]
    r = out[1, pix]
    if math.isfinite(b) and math.isfinite(r):
        out[0, pix] = b * math.exp(r * lne0)
        n = y.shape[0]
        # The channels at E > 0 are one run p0:p1 of a monotonic axis.
        p0 = 0
        while p0 < n and not math.isfinite(t[p0]):
            p0 += 1
        p1 = n
        while p1 > p0 and not math.isfinite(t[p1 - 1]):
            p1 -= 1
        for i in range(p0):
            sub[i] = float(y[i])
        for i in range(p1, n):
            sub[i] = float(y[i])
        i = p0
        while i < p1:
            v = b * math.exp(-r * t[i])
            sub[i] = float(y[i]) - v
            stop = min(i + RESYNC, p1)
            for j in range(i + 1, stop):
                v *= exp_step(-r * (t[j] - t[j - 1]))
                sub[j] = float(y[j]) - v
            i = stop
    else:
        for i in range(y.shape[0]):
            sub[i] = math.nan


#: The shared plain functions, callees before callers (compiled in this order).
SHARED = (
    exp_step,
    window_is_bad,
    count_nonpositive,
    loglog_slope,
    evaluate,
    powerlaw_pixel,
    subtract_pixel,
)


def jit_powerlaw(decorator):
    """Compile :data:`SHARED` with ``decorator`` (as :func:`~hyperlum.kernels.compile.jit_all`).

    Examples
    --------
    >>> sorted(jit_powerlaw(lambda f: f))[:2]
    ['count_nonpositive', 'evaluate']
    """
    return jit_functions(SHARED, decorator)


_fns = jit_powerlaw(numba.njit(cache=True, nogil=True))
_subtract_pixel = _fns["subtract_pixel"]


@numba.njit(cache=True, nogil=True)
def _rows(data, t, lo, hi, lne0, max_iter, tol, out, sub, start, stop):
    for pix in range(start, stop):
        _subtract_pixel(data[pix], t, lo, hi, lne0, max_iter, tol, out, pix, sub[pix])


def window_axis(x, lo, hi):
    """``t = ln(E / E0)`` for every channel (NaN at ``E <= 0``) and ``ln E0``.

    ``E0`` is the geometric mean energy of the window ``x[lo:hi]`` (all positive).

    Examples
    --------
    >>> t, lne0 = window_axis(np.array([-1.0, 1.0, 4.0]), 1, 3)
    >>> np.round(np.exp(lne0), 6), np.round(t[1:], 4).tolist(), bool(np.isnan(t[0]))
    (np.float64(2.0), [-0.6931, 0.6931], True)
    """
    x = np.asarray(x, dtype=np.float64)
    lne0 = float(np.mean(np.log(x[lo:hi])))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)) - lne0, np.nan)
    return t, lne0


def subtract_chunk(data, x, lo, hi, max_iter, tol, out, sub, threads=None):
    """Fit and subtract the power law for every row of ``data`` (pixels x channels).

    ``data`` is C-ordered (any real dtype), ``x`` the channel energies, ``lo:hi`` the channel
    slice of the fit window (energies > 0). ``out`` (``N_ROWS`` x pixels, float64) receives
    the rows :data:`ROWS`; ``sub`` (pixels x channels, float) the subtracted spectra.

    Examples
    --------
    >>> from hyperlum.kernels import powerlaw
    >>> e = np.linspace(500.0, 700.0, 201)
    >>> y = np.stack([3e10 * e ** -3.0, 5e12 * e ** -3.8])
    >>> out, sub = np.empty((powerlaw.N_ROWS, 2)), np.empty_like(y)
    >>> _ = powerlaw.subtract_chunk(y, e, 0, 50, 100, 1e-12, out, sub, threads=1)
    >>> np.round(out[1], 6).tolist(), float(np.abs(sub).max()) < 1e-6
    ([3.0, 3.8], True)
    """
    t, lne0 = window_axis(x, lo, hi)
    npix = data.shape[0]
    threads = threads or len(os.sched_getaffinity(0))
    nblocks = max(1, min(npix // 64, 4 * threads))
    bounds = [b * npix // nblocks for b in range(nblocks + 1)]
    args = (data, t, lo, hi, lne0, max_iter, tol, out, sub)
    if nblocks == 1 or threads == 1:
        _rows(*args, 0, npix)
        return out, sub
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda b: _rows(*args, bounds[b], bounds[b + 1]), range(nblocks)))
    return out, sub
