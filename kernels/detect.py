"""Residual sums of squares for the detection verdict, one pass per spectrum (CPU, numba).

For each pixel: the residual sum of squares of the best parabola alone (``rss0``) and of
the fitted Gaussians, held fixed, plus the best parabola (``rss1``). With ``q`` an
orthonormal basis of the parabolas over the channels (``n x 3``), the RSS of ``z`` after the
best parabola is ``sum(z^2) - |q^T z|^2``: one pass, no fit. Gaussians are evaluated only
where ``((x - c) / sigma)^2 < 75`` (beyond, below 6e-17 of their height); on a uniform axis
(step ``h`` > 0) by the recurrence ``g[i+1] = g[i] r[i]``, ``r[i+1] = r[i] exp(-(h/s)^2)``
outwards from the centre: two multiplications a channel instead of an exponential.
"""

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _subtract(z, x, h, a, c, s):
    n = z.shape[0]
    if h > 0.0:
        d = h / s
        c2 = math.exp(-d * d)
        i0 = min(max(int(round((c - x[0]) / h)), 0), n - 1)
        u = (x[i0] - c) / s
        g0 = math.exp(-0.5 * u * u) if u * u < 75.0 else 0.0
        g = g0
        r = math.exp(-u * d - 0.5 * d * d)
        i = i0
        uu = u
        while i < n and uu * uu < 75.0:
            z[i] -= a * g
            g *= r
            r *= c2
            i += 1
            uu += d
        g = g0
        lft = math.exp(u * d - 0.5 * d * d)
        i = i0 - 1
        uu = u - d
        while i >= 0 and uu * uu < 75.0:
            g *= lft
            lft *= c2
            z[i] -= a * g
            i -= 1
            uu -= d
        return
    for i in range(n):
        u = (x[i] - c) / s
        u = u * u
        if u < 75.0:
            z[i] -= a * math.exp(-0.5 * u)


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy")
def smooth_rss(data, x, h, q, peaks, rss0, rss1, start, stop):
    """Pixels ``start`` to ``stop`` of ``data`` (pixels x channels); ``h`` the step of a
    uniform axis (else 0); ``q`` channels x 3 (orthonormal columns, or zeros); ``peaks``
    ``(3 k, pixels)`` (amplitude, centre, sigma; a non-finite amplitude or sigma <= 0: no
    peak); results into ``rss0``, ``rss1``.

    Examples
    --------
    >>> x = np.arange(8.0)
    >>> y = np.array([[1.0, 1, 1, 9, 1, 1, 1, 1]])
    >>> q = np.linalg.qr(np.vander(x - 3.5, 3, increasing=True))[0]
    >>> rss0, rss1 = np.empty(1), np.empty(1)
    >>> smooth_rss(y, x, 1.0, q, np.array([[8.0], [3.0], [0.1]]), rss0, rss1, 0, 1)
    >>> round(float(rss0[0]), 3), abs(round(float(rss1[0]), 9))
    (46.095, 0.0)
    """
    n = data.shape[1]
    npk = peaks.shape[0] // 3
    z = np.empty(n)
    for p in range(start, stop):
        yy = 0.0
        p0 = 0.0
        p1 = 0.0
        p2 = 0.0
        for i in range(n):
            y = float(data[p, i])
            z[i] = y
            yy += y * y
            p0 += y * q[i, 0]
            p1 += y * q[i, 1]
            p2 += y * q[i, 2]
        rss0[p] = yy - (p0 * p0 + p1 * p1 + p2 * p2)
        for k in range(npk):
            a = peaks[3 * k, p]
            s = peaks[3 * k + 2, p]
            if math.isfinite(a) and s > 0.0:
                _subtract(z, x, h, a, peaks[3 * k + 1, p], s)
        zz = 0.0
        p0 = 0.0
        p1 = 0.0
        p2 = 0.0
        for i in range(n):
            v = z[i]
            zz += v * v
            p0 += v * q[i, 0]
            p1 += v * q[i, 1]
            p2 += v * q[i, 2]
        rss1[p] = zz - (p0 * p0 + p1 * p1 + p2 * p2)
