"""Residual sums of squares for the detection verdict, one pass per spectrum (CPU, numba).

For each pixel: the residual sum of squares of the best parabola alone (``rss0``) and of
the fitted Gaussians, held fixed, plus the best parabola (``rss1``). With ``q`` an
orthonormal basis of the parabolas over the channels (``n x 3``), the RSS of ``z`` after the
best parabola is ``sum(z^2) - |q^T z|^2``: one pass, no fit. Gaussians are evaluated only
where ``((x - c) / sigma)^2 < 75`` (beyond, below 6e-17 of their height); on a uniform axis
(step ``h`` > 0) by the recurrence ``g[i+1] = g[i] r[i]``, ``r[i+1] = r[i] exp(-(h/s)^2)``
outwards from the centre: two multiplications a channel instead of an exponential, run as
``CHAINS`` interleaved recurrences of stride ``CHAINS`` (``g[i+L] = g[i] R[i]``, ``R[i+L] =
R[i] exp(-(L h/s)^2)``) that vectorise.

The sums are split at the Gaussians' window: outside it ``z`` is the data, so its sums serve
both ``rss0`` and ``rss1``; inside, the data's sums (for ``rss0``) are taken in the same pass
and the residual's in a second one over the window alone. A peak of zero amplitude is no
peak (``rss1`` is then ``rss0`` exactly). The squares are taken in float64 whatever the
data's dtype (the previous kernel squared float32 counts in float32: 5e-8 off above 4096
counts).
"""

import math

import numba
import numpy as np

#: ``((x - c) / sigma)^2`` beyond which a Gaussian is not evaluated, and its square root.
WIDTH2 = 75.0
_WIDTH = math.sqrt(WIDTH2)

#: Channels of one run of the Gaussian recurrence, between restarts from exact values.
SEGMENT = 256

_OPTIONS = {"cache": True, "nogil": True, "fastmath": {"reassoc", "contract"}}


@numba.njit(**_OPTIONS)
def _chain(z, lo, count, a, g, r, c2, d):
    """``z[lo + k] -= a v[k]``, ``k < count``, for ``v[0] = g``, ``v[k+1] = v[k] r[k]``,
    ``r[k+1] = r[k] c2`` (``r[0] = r``, ``c2 = exp(-d^2)``): by 8 interleaved recurrences of
    stride 8, ``v[k+8] = v[k] R[k]``, ``R[k+8] = R[k] exp(-64 d^2)``, held in registers."""
    if count < 32:
        for k in range(count):
            z[lo + k] -= a * g
            g *= r
            r *= c2
        return
    g0 = g
    g1 = g0 * r
    r *= c2
    g2 = g1 * r
    r *= c2
    g3 = g2 * r
    r *= c2
    g4 = g3 * r
    r *= c2
    g5 = g4 * r
    r *= c2
    g6 = g5 * r
    r *= c2
    g7 = g6 * r
    r *= c2
    R0 = g7 * r / g0  # r[0] r[1] ... r[7]
    c8 = math.exp(-8.0 * d * d)
    R1 = R0 * c8
    R2 = R1 * c8
    R3 = R2 * c8
    R4 = R3 * c8
    R5 = R4 * c8
    R6 = R5 * c8
    R7 = R6 * c8
    C = math.exp(-64.0 * d * d)
    blocks = count // 8
    w = z[lo : lo + count]
    for b in range(blocks):
        j = np.uint64(8 * b)  # unsigned: no negative-index wrap, the 8 stores vectorise
        w[j] -= a * g0
        w[j + np.uint64(1)] -= a * g1
        w[j + np.uint64(2)] -= a * g2
        w[j + np.uint64(3)] -= a * g3
        w[j + np.uint64(4)] -= a * g4
        w[j + np.uint64(5)] -= a * g5
        w[j + np.uint64(6)] -= a * g6
        w[j + np.uint64(7)] -= a * g7
        g0 *= R0
        g1 *= R1
        g2 *= R2
        g3 *= R3
        g4 *= R4
        g5 *= R5
        g6 *= R6
        g7 *= R7
        R0 *= C
        R1 *= C
        R2 *= C
        R3 *= C
        R4 *= C
        R5 *= C
        R6 *= C
        R7 *= C
    rest = (g0, g1, g2, g3, g4, g5, g6, g7)
    for k in range(count - 8 * blocks):
        w[8 * blocks + k] -= a * rest[k]


@numba.njit(**_OPTIONS)
def _window(x, h, c, s):
    """Channels ``[lo, hi)`` where the Gaussian of centre ``c``, sigma ``s`` is evaluated,
    the channel ``i0`` nearest its centre and ``u = (x[i0] - c) / s``."""
    n = x.shape[0]
    if h <= 0.0:
        return 0, n, 0, 0.0
    d = h / s
    i0 = min(max(int(round((c - x[0]) / h)), 0), n - 1)
    u = (x[i0] - c) / s
    right = 0 if u * u >= WIDTH2 else min(n - i0, int(math.ceil((_WIDTH - u) / d)))
    v = u - d
    left = 0 if v * v >= WIDTH2 else min(i0, int(math.ceil((u + _WIDTH) / d)) - 1)
    lo = i0 - max(left, 0)
    hi = i0 + max(right, 0)
    return lo, max(hi, lo), i0, u


@numba.njit(**_OPTIONS)
def _subtract(z, x, h, a, c, s):
    """``z -= a exp(-((x - c) / s)^2 / 2)`` where the Gaussian is evaluated (see the notes)."""
    n = z.shape[0]
    if h > 0.0:
        lo, hi, i0, u = _window(x, h, c, s)
        if hi <= lo or u * u >= WIDTH2:  # (as the old outward recurrence: nothing)
            return
        d = h / s
        c2 = math.exp(-d * d)
        # Forwards from the window's first channel, restarted from exact values every
        # SEGMENT channels: the recurrence's relative error grows as the square of its length
        # (1e-12 after 800 channels, 1e-13 after 256).
        for first in range(lo, hi, SEGMENT):
            v = u - (i0 - first) * d
            g = math.exp(-0.5 * v * v)
            r = math.exp(-v * d - 0.5 * d * d)
            _chain(z, first, min(SEGMENT, hi - first), a, g, r, c2, d)
        return
    for i in range(n):
        u = (x[i] - c) / s
        u = u * u
        if u < WIDTH2:
            z[i] -= a * math.exp(-0.5 * u)


@numba.njit(**_OPTIONS)
def _sums(v, qt, lo, hi):
    """``sum(v^2)`` and ``q^T v`` over channels ``[lo, hi)``."""
    w = v[lo:hi]  # views indexed from 0: no negative-index wrap, the loop vectorises
    q0 = qt[0, lo:hi]
    q1 = qt[1, lo:hi]
    q2 = qt[2, lo:hi]
    vv = 0.0
    p0 = 0.0
    p1 = 0.0
    p2 = 0.0
    for i in range(w.shape[0]):
        y = np.float64(w[i])  # (numba's float() of a float32 is a float32)
        vv += y * y
        p0 += y * q0[i]
        p1 += y * q1[i]
        p2 += y * q2[i]
    return vv, p0, p1, p2


@numba.njit(**_OPTIONS, error_model="numpy")
def smooth_rss(data, x, h, q, peaks, rss0, rss1, start, stop):
    """Pixels ``start`` to ``stop`` of ``data`` (pixels x channels); ``h`` the step of a
    uniform axis (else 0); ``q`` channels x 3 (orthonormal columns, or zeros); ``peaks``
    ``(3 k, pixels)`` (amplitude, centre, sigma; a non-finite or zero amplitude or sigma <=
    0: no peak); results into ``rss0``, ``rss1``.

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
    qt = np.ascontiguousarray(q.T)
    z = np.empty(n)
    for p in range(start, stop):
        y = data[p]
        lo = n
        hi = 0
        for k in range(npk):
            a = peaks[3 * k, p]
            s = peaks[3 * k + 2, p]
            if math.isfinite(a) and a != 0.0 and s > 0.0:
                l, r, _, _ = _window(x, h, peaks[3 * k + 1, p], s)
                if r > l:
                    lo = min(lo, l)
                    hi = max(hi, r)
        if hi <= lo:  # no peak evaluated anywhere: the residual is the data
            vv, p0, p1, p2 = _sums(y, qt, 0, n)
            rss0[p] = vv - (p0 * p0 + p1 * p1 + p2 * p2)
            rss1[p] = rss0[p]
            continue
        oa, o0, o1, o2 = _sums(y, qt, 0, lo)
        ob, b0, b1, b2 = _sums(y, qt, hi, n)
        oa += ob
        o0 += b0
        o1 += b1
        o2 += b2
        ia, i0, i1, i2 = _sums(y, qt, lo, hi)
        t0 = o0 + i0
        t1 = o1 + i1
        t2 = o2 + i2
        rss0[p] = oa + ia - (t0 * t0 + t1 * t1 + t2 * t2)
        z[lo:hi] = y[lo:hi]
        for k in range(npk):
            a = peaks[3 * k, p]
            s = peaks[3 * k + 2, p]
            if math.isfinite(a) and a != 0.0 and s > 0.0:
                _subtract(z, x, h, a, peaks[3 * k + 1, p], s)
        za, z0, z1, z2 = _sums(z, qt, lo, hi)
        t0 = o0 + z0
        t1 = o1 + z1
        t2 = o2 + z2
        rss1[p] = oa + za - (t0 * t0 + t1 * t1 + t2 * t2)
