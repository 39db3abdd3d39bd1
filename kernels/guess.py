"""Moment-based starting values for one pixel, for any shape and background.

The background comes from the ends of the spectrum (the background's ``background_start``);
then, peak after peak, the largest maximum of the (lightly smoothed) residual gives a height,
and a position, and its half-maximum crossings (interpolated between channels) a FWHM, from
which the shape's ``peak_start`` makes its parameters. The position is the midpoint of the
three-quarter-height crossings where that lies within :data:`LOPSIDED` of the FWHM of the
maximum: the crossings lie on the steep flanks, where the noise moves them little, while the
maximum of a noisy flat top wanders (on the benchmark's Poisson Gaussians: a median 2.7
standard errors from the fitted centre instead of 13, and 3.08 passes over the channels per
fit instead of 3.47). Further off, the peak is lopsided or two peaks merge above that height,
and the maximum stays. Everything is computed on the fly from the spectrum: no scratch memory.
"""

import math

from hyperlum.kernels.backgrounds.polynomial import background_start, background_value
from hyperlum.kernels.constants import MLE
from hyperlum.kernels.models import peaks_value
from hyperlum.kernels.shapes.gaussian import N_PARAMS as NP
from hyperlum.kernels.shapes.gaussian import peak_start

#: Segments of the interior that :func:`smoothed_max` scans side by side: 4, or 1 (a
#: compile-time constant; the CUDA driver binds 1).
SCAN_SEGMENTS = 4

#: A peak's position is the midpoint of its three-quarter-height crossings unless that lies
#: further than this share of the FWHM from its maximum (see the module's docstring).
LOPSIDED = 0.125


def residual(y, x, xref, p, k, o, nbg, i):
    """Data minus background (terms at ``p[o]``) and the first ``k`` peaks, at channel ``i``."""
    r = float(y[i]) - background_value(x[i], xref, p, o, nbg)
    if k > 0:
        r -= peaks_value(x[i], p, k)
    return r


def crossing(x, i, step, above, below, level):
    """Where the smoothed residual falls to ``level`` between the positions of channels
    ``i - step`` (value ``above``) and ``i`` (value ``below``), linear between them; the
    position of channel ``i`` unless it falls there."""
    if above > level and not below > level:
        return x[i - step] + (above - level) / (above - below) * (x[i] - x[i - step])
    return x[i]


def slide(y, x, xref, p, k, o, nbg, ahead, behind):
    """:func:`residual` at channel ``ahead`` minus at ``behind``."""
    d = float(y[ahead]) - float(y[behind])
    d -= background_value(x[ahead], xref, p, o, nbg) - background_value(x[behind], xref, p, o, nbg)
    if k > 0:
        d -= peaks_value(x[ahead], p, k) - peaks_value(x[behind], p, k)
    return d


def larger(r, i, rmax, imax):
    """``(r, i)`` when ``r`` exceeds ``rmax``, else ``(rmax, imax)``: the first maximum of
    values compared in channel order."""
    if r > rmax:
        return r, i
    return rmax, imax


def window_sum(y, x, xref, p, k, o, nbg, lo, hi):
    """Sum of :func:`residual` over channels ``lo .. hi``."""
    s = 0.0
    for j in range(lo, hi + 1):
        s += residual(y, x, xref, p, k, o, nbg, j)
    return s


def scan(y, x, xref, p, k, o, nbg, h, lo, hi, rmax, imax):
    """The first maximum, above ``rmax`` (at ``imax``), of the smoothed residual over
    channels ``lo .. hi - 1``: the mean of :func:`residual` over ``i - h .. i + h`` (clipped at
    the ends), one sum sliding along; returns ``(rmax, imax)``."""
    n = y.shape[0]
    if hi <= lo:
        return rmax, imax
    full = 2 * h + 1
    inv_full = 1.0 / float(full)
    total = window_sum(y, x, xref, p, k, o, nbg, max(lo - h, 0), min(lo + h, n - 1))
    for i in range(lo, hi):
        if h <= i < n - h - 1:
            # inside: a full window, and one add on the sum's dependency chain, not two
            rmax, imax = larger(total * inv_full, i, rmax, imax)
            total += slide(y, x, xref, p, k, o, nbg, i + h + 1, i - h)
            continue
        count = min(i + h, n - 1) - max(i - h, 0) + 1
        r = total * inv_full if count == full else total / float(count)
        rmax, imax = larger(r, i, rmax, imax)
        if i + h + 1 < n:
            total += residual(y, x, xref, p, k, o, nbg, i + h + 1)
        if i - h >= 0:
            total -= residual(y, x, xref, p, k, o, nbg, i - h)
    return rmax, imax


def smoothed_max(y, x, xref, p, k, o, nbg, h):
    """Channel and value ``(imax, rmax)`` of the first maximum of the smoothed residual (see
    :func:`scan`) with the first ``k`` peaks subtracted.

    Where the window is whole (channels ``h .. n - h - 2``) the channels go in four segments
    scanned side by side, each with its own sliding sum: one sum along the spectrum is a chain
    of dependent additions, whose latency, not the work, set the time (1.3 us a pixel of 1024
    channels; four independent chains overlap). The segments' maxima are compared in channel
    order, so the first maximum wins as in one scan. With :data:`SCAN_SEGMENTS` 1, one scan
    (a GPU thread's: four segments' sums and maxima took a 1-peak kernel from 96 to 130
    registers a thread on sm_90, and a GPU hides a thread's latency behind other threads).
    """
    n = y.shape[0]
    if SCAN_SEGMENTS == 1:
        rmax, imax = scan(y, x, xref, p, k, o, nbg, h, 0, n, -math.inf, 0)
        return imax, rmax
    mid = max(n - h - 1, h)
    rmax, imax = scan(y, x, xref, p, k, o, nbg, h, 0, min(h, n), -math.inf, 0)
    q = (mid - h) // 4
    if q > 0:
        i1 = h + q
        i2 = i1 + q
        i3 = i2 + q
        t0 = window_sum(y, x, xref, p, k, o, nbg, 0, 2 * h)
        t1 = window_sum(y, x, xref, p, k, o, nbg, i1 - h, i1 + h)
        t2 = window_sum(y, x, xref, p, k, o, nbg, i2 - h, i2 + h)
        t3 = window_sum(y, x, xref, p, k, o, nbg, i3 - h, i3 + h)
        m0 = t0
        m1 = t1
        m2 = t2
        m3 = t3
        j0 = h
        j1 = i1
        j2 = i2
        j3 = i3
        for t in range(q):
            m0, j0 = larger(t0, h + t, m0, j0)
            m1, j1 = larger(t1, i1 + t, m1, j1)
            m2, j2 = larger(t2, i2 + t, m2, j2)
            m3, j3 = larger(t3, i3 + t, m3, j3)
            t0 += slide(y, x, xref, p, k, o, nbg, 2 * h + 1 + t, t)
            t1 += slide(y, x, xref, p, k, o, nbg, i1 + h + 1 + t, i1 - h + t)
            t2 += slide(y, x, xref, p, k, o, nbg, i2 + h + 1 + t, i2 - h + t)
            t3 += slide(y, x, xref, p, k, o, nbg, i3 + h + 1 + t, i3 - h + t)
        full = 1.0 / float(2 * h + 1)
        rmax, imax = larger(m0 * full, j0, rmax, imax)
        rmax, imax = larger(m1 * full, j1, rmax, imax)
        rmax, imax = larger(m2 * full, j2, rmax, imax)
        rmax, imax = larger(m3 * full, j3, rmax, imax)
    rmax, imax = scan(y, x, xref, p, k, o, nbg, h, h + 4 * q, mid, rmax, imax)
    rmax, imax = scan(y, x, xref, p, k, o, nbg, h, mid, n, rmax, imax)
    return imax, rmax


def level_edges(y, x, xref, p, k, o, nbg, i, h, top, step):
    """Walk from channel ``i`` by ``step`` (+1 or -1) while the smoothed residual exceeds half
    of ``top`` (its value at ``i``); returns where it falls to ``0.75 top`` and to ``0.5 top``.

    The smoothed residual is the mean of :func:`residual` over channels ``i - h .. i + h``
    (clipped at the ends); its window sum slides along with ``i``. Each position is linear
    between the last channel above the level and the first at or below (:func:`crossing`),
    or the position of the end of the spectrum. One walk finds both (for ``top > 0`` it
    meets the higher level first; otherwise both are ``x[i]``): two walks cost 0.4 us per
    pixel of 1024 channels.
    """
    n = y.shape[0]
    lo = max(0, i - h)
    hi = min(n - 1, i + h)
    count = float(hi - lo + 1)  # (a float: an integer would promote float32 maths to float64)
    s = 0.0
    for j in range(lo, hi + 1):
        s += residual(y, x, xref, p, k, o, nbg, j)
    steps = i if step < 0 else n - 1 - i
    high = 0.75 * top
    low = 0.5 * top
    s_above = s
    n_above = count
    x_high = math.nan  # not yet crossed
    for _ in range(steps):
        if math.isnan(x_high) and not s > high * count:
            x_high = crossing(x, i, step, s_above / n_above, s / count, high)
        if not s > low * count:
            break
        s_above = s
        n_above = count
        i += step
        # the window [i - h, i + h] (clipped) gains a channel ahead and loses one behind
        ahead = i + step * h
        behind = i - step * (h + 1)
        # (the background and found peaks are subtracted here, not by calling residual: LLVM
        # does not inline that call in this loop, and it cost 6x the walk; measured)
        if 0 <= ahead <= n - 1:
            s += float(y[ahead]) - background_value(x[ahead], xref, p, o, nbg)
            if k > 0:
                s -= peaks_value(x[ahead], p, k)
            count += 1.0
        if 0 <= behind <= n - 1:
            s -= float(y[behind]) - background_value(x[behind], xref, p, o, nbg)
            if k > 0:
                s += peaks_value(x[behind], p, k)
            count -= 1.0
    above = s_above / n_above
    below = s / count
    if math.isnan(x_high):
        x_high = crossing(x, i, step, above, below, high)
    return x_high, crossing(x, i, step, above, below, low)


def guess(y, x, xref, npk, nbg, est, smin, saturation, p):
    """Starting values into ``p`` (layout of :mod:`~hyperlum.kernels.models`), or a bad pixel.

    ``smin`` is the smallest width parameter. Returns True, leaving ``p`` undefined, for a
    spectrum with a NaN / inf, a channel at or above ``saturation``, or nothing but zeros (one
    branch-free, vectorised sweep checks every channel).
    """
    n = y.shape[0]
    total = 0.0
    size = 0.0
    over = 0.0
    for i in range(n):
        v = float(y[i])
        total += v  # NaN or inf anywhere makes it NaN or inf
        size += abs(v)
        over += 1.0 if v >= saturation else 0.0
    if not (math.isfinite(total) and over == 0.0 and size > 0.0):
        return True
    m = max(3, n // 20)
    left = 0.0
    right = 0.0
    xl = 0.0
    xr = 0.0
    for i in range(m):
        left += float(y[i])
        right += float(y[n - 1 - i])
        xl += x[i]
        xr += x[n - 1 - i]
    left /= m
    right /= m
    xl /= m
    xr /= m
    o = NP * npk
    background_start(y, x, npk, left, right, xl, xr, xref, x[0], x[n - 1], nbg, est == MLE, p, o)
    h = max(1, n // 256)
    for k in range(npk):
        imax, rmax = smoothed_max(y, x, xref, p, k, o, nbg, h)
        right_high, right_low = level_edges(y, x, xref, p, k, o, nbg, imax, h, rmax, 1)
        left_high, left_low = level_edges(y, x, xref, p, k, o, nbg, imax, h, rmax, -1)
        fwhm = abs(right_low - left_low)
        centre = 0.5 * (left_high + right_high)
        if not abs(centre - x[imax]) <= LOPSIDED * fwhm:
            centre = x[imax]
        amp = rmax
        if not amp > 0.0:
            amp = max(abs(left), abs(right), 1.0) * 1e-3
        peak_start(p, NP * k, amp, centre, fwhm, smin)
    return False


FUNCTIONS = (
    residual,
    slide,
    larger,
    crossing,
    level_edges,
    window_sum,
    scan,
    smoothed_max,
    guess,
)
