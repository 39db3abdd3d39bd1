"""Moment-based starting values for one pixel.

The background comes from the ends of the spectrum; then, peak after peak, the largest maximum
of the (lightly smoothed) residual gives an amplitude and a centre, and its half-maximum
crossings a width. Everything is computed on the fly from the spectrum: no scratch memory.
"""

import math

from hyperlum.kernels.constants import FWHM_PER_SIGMA, MLE
from hyperlum.kernels.models import model_value


def residual(y, x, xref, p, k, nbg, i):
    """Data minus background and the first ``k`` peaks found so far, at channel ``i``."""
    r = float(y[i])
    if nbg > 0:
        r -= p[3 * k]
    if nbg > 1:
        r -= p[3 * k + 1] * (x[i] - xref)
    if k > 0:
        r -= model_value(x[i], xref, p, k, 0)
    return r


def half_edge(y, x, xref, p, k, nbg, i, h, half, step):
    """Walk from channel ``i`` by ``step`` (+1 or -1) while the smoothed residual exceeds ``half``.

    The smoothed residual is the mean of :func:`residual` over channels ``i - h .. i + h``
    (clipped at the ends); its window sum slides along with ``i``. Returns the first channel
    at which it is ``<= half``, or the end of the spectrum.
    """
    n = y.shape[0]
    lo = max(0, i - h)
    hi = min(n - 1, i + h)
    count = hi - lo + 1
    s = 0.0
    for j in range(lo, hi + 1):
        s += residual(y, x, xref, p, k, nbg, j)
    b0 = p[3 * k] if nbg > 0 else 0.0
    b1 = p[3 * k + 1] if nbg > 1 else 0.0
    steps = i if step < 0 else n - 1 - i
    for _ in range(steps):
        if not s > half * count:
            break
        i += step
        # the window [i - h, i + h] (clipped) gains a channel ahead and loses one behind
        ahead = i + step * h
        behind = i - step * (h + 1)
        # (the background and found peaks are subtracted here, not by calling residual: LLVM
        # does not inline that call in this loop, and it cost 6x the walk; measured)
        if 0 <= ahead <= n - 1:
            s += float(y[ahead]) - b0 - b1 * (x[ahead] - xref)
            if k > 0:
                s -= model_value(x[ahead], xref, p, k, 0)
            count += 1
        if 0 <= behind <= n - 1:
            s -= float(y[behind]) - b0 - b1 * (x[behind] - xref)
            if k > 0:
                s += model_value(x[behind], xref, p, k, 0)
            count -= 1
    return i


def guess(y, x, xref, npk, nbg, est, smin, saturation, p):
    """Starting values into ``p`` (layout of :mod:`~hyperlum.kernels.models`), or a bad pixel.

    Returns True, leaving ``p`` undefined, for a spectrum with a NaN / inf, a channel at or
    above ``saturation``, or nothing but zeros (one branch-free, vectorised sweep checks every
    channel). The background is stored right after the peaks found so far while they are being
    found, and moved to its final place at the end.
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
    b0 = 0.0
    b1 = 0.0
    if nbg == 1:
        b0 = min(left, right)
    elif nbg == 2:
        b1 = (right - left) / (xr - xl)
        b0 = left + b1 * (xref - xl)
    if est == MLE and nbg > 0:
        # The Poisson model must stay non-negative over the whole range.
        lo_end = min(b0 + b1 * (x[0] - xref), b0 + b1 * (x[n - 1] - xref))
        if lo_end < 0.0:
            b0 -= lo_end
    h = max(1, n // 256)
    for k in range(npk):
        # background of the peaks found so far sits at p[3k], p[3k+1]
        p[3 * k] = b0
        p[3 * k + 1] = b1
        # Largest smoothed residual; the window sum slides along the channels.
        imax = 0
        rmax = -math.inf
        total = 0.0
        full = 2 * h + 1
        inv_full = 1.0 / full
        for j in range(min(h, n - 1) + 1):
            total += residual(y, x, xref, p, k, nbg, j)
        for i in range(n):
            count = min(i + h, n - 1) - max(i - h, 0) + 1
            r = total * inv_full if count == full else total / count
            if r > rmax:
                rmax = r
                imax = i
            if i + h + 1 < n:
                total += residual(y, x, xref, p, k, nbg, i + h + 1)
            if i - h >= 0:
                total -= residual(y, x, xref, p, k, nbg, i - h)
        half = 0.5 * rmax
        il = half_edge(y, x, xref, p, k, nbg, imax, h, half, -1)
        ir = half_edge(y, x, xref, p, k, nbg, imax, h, half, 1)
        width = abs(x[ir] - x[il])
        sigma = max(width / FWHM_PER_SIGMA, smin)
        amp = rmax
        if not amp > 0.0:
            amp = max(abs(left), abs(right), 1.0) * 1e-3
        p[3 * k] = amp
        p[3 * k + 1] = x[imax]
        p[3 * k + 2] = sigma
    if nbg > 0:
        p[3 * npk] = b0
    if nbg > 1:
        p[3 * npk + 1] = b1
    return False
