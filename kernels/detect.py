"""Residual sums of squares for the detection verdict, one pass per spectrum (CPU, numba).

For each pixel: the residual sum of squares of the best parabola alone (``rss0``) and of the
fitted Gaussians, held fixed, plus the best parabola (``rss1``). With ``q`` an orthonormal
basis of the parabolas over the channels (``n x 3``), the RSS of ``z`` after the best parabola
is ``sum(z^2) - |q^T z|^2``: one pass, no fit. ``q^T z`` comes from the moments ``sum(z)``,
``sum(z t)``, ``sum(z t^2)`` of the scaled positions ``t`` by a 3 x 3 matrix: one array read
per channel beside the data instead of three (the sums took half the time). Gaussians are
evaluated only where ``((x - c) / sigma)^2 < 75`` (beyond, below 6e-17 of their height); on a
uniform axis (step ``h`` > 0) by the recurrence ``g[i+1] = g[i] r[i]``, ``r[i+1] = r[i]
exp(-(h/s)^2)`` outwards from the centre: two multiplications a channel instead of an
exponential, run as ``L = CHAINS`` interleaved recurrences of stride ``L`` (``g[i+L] = g[i]
R[i]``, ``R[i+L] = R[i] exp(-(L h/s)^2)``), one block of ``L`` channels at a time, a loop that
vectorises; short recurrences (at most 2 sqrt(75) sigma / L steps) keep the error near 1e-14 of
the height, below the sequential recurrence's 2e-13. The window is found in closed form.

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

#: Interleaved recurrences of the Gaussian on a uniform axis.
CHAINS = 32

_OPTIONS = {"cache": True, "nogil": True, "fastmath": {"reassoc", "contract"}}


@numba.njit(**_OPTIONS)
def _chain(w, a, g, r, c2, d, G, R):
    """``w[k] -= a v[k]`` for ``v[0] = g``, ``v[k+1] = v[k] r[k]``,
    ``r[k+1] = r[k] c2`` (``r[0] = r``, ``c2 = exp(-d^2)``): by ``L = len(G)`` interleaved
    recurrences of stride ``L``, ``v[k+L] = v[k] R[k]``, ``R[k+L] = R[k] exp(-L^2 d^2)``, one
    block of ``L`` channels at a time (a loop over the block's channels that vectorises);
    ``G``, ``R``: scratch."""
    L = G.shape[0]
    count = w.shape[0]
    if count < 2 * L:
        for k in range(count):
            w[k] -= a * g
            g *= r
            r *= c2
        return
    for k in range(L):
        G[k] = g
        g *= r
        r *= c2
    R[0] = g / G[0]  # r[0] r[1] ... r[L-1]
    cl = math.exp(-L * d * d)
    for k in range(1, L):
        R[k] = R[k - 1] * cl
    C = math.exp(-L * L * d * d)
    blocks = count // L
    for b in range(blocks):
        v = w[b * L : b * L + L]  # a view indexed from 0: no negative-index wrap
        for k in range(L):
            v[k] -= a * G[k]
            G[k] *= R[k]
            R[k] *= C
    v = w[blocks * L :]
    for k in range(v.shape[0]):
        v[k] -= a * G[k]


@numba.njit(**_OPTIONS)
def _chain_left(z, i0, lo, a, g, r, c2, d, G, R):
    """The left side, channels ``i0 - 1`` down to ``lo``: ``z[i0 - m] -= a v[m]``, ``v[0] =
    g`` at ``i0``, ratios ``r c2^j`` as :func:`_chain`, outwards from the centre as the values
    fall; lane ``k`` of a block of ``L`` channels (in memory order, which vectorises) holds
    the recurrence of the distances ``L - k``, ``2 L - k``, ..."""
    L = G.shape[0]
    count = i0 - lo
    if count < 2 * L:
        for m in range(1, count + 1):
            g *= r
            r *= c2
            z[i0 - m] -= a * g
        return
    for m in range(1, L + 1):
        g *= r
        r *= c2
        G[L - m] = g
    R[L - 1] = g * r / G[L - 1]  # r[1] r[2] ... r[L]
    cl = math.exp(-L * d * d)
    for m in range(2, L + 1):
        R[L - m] = R[L - m + 1] * cl
    C = math.exp(-L * L * d * d)
    blocks = count // L
    for b in range(blocks):
        v = z[i0 - (b + 1) * L : i0 - b * L]
        for k in range(L):
            v[k] -= a * G[k]
            G[k] *= R[k]
            R[k] *= C
    base = i0 - (blocks + 1) * L
    for k in range(L - (count - blocks * L), L):
        z[base + k] -= a * G[k]


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
def _subtract(z, x, h, a, c, s, G, R):
    """``z -= a exp(-((x - c) / s)^2 / 2)`` where the Gaussian is evaluated (see the notes)."""
    n = z.shape[0]
    if h > 0.0:
        lo, hi, i0, u = _window(x, h, c, s)
        if hi <= lo or u * u >= WIDTH2:  # (as the old outward recurrence: nothing)
            return
        d = h / s
        # Outwards from the channel nearest the centre, as the values fall (the recurrence's
        # error grows where they are small).
        g0 = math.exp(-0.5 * u * u)
        c2 = math.exp(-d * d)
        _chain(z[i0:hi], a, g0, math.exp(-u * d - 0.5 * d * d), c2, d, G, R)
        _chain_left(z, i0, lo, a, g0, math.exp(u * d - 0.5 * d * d), c2, d, G, R)
        return
    for i in range(n):
        u = (x[i] - c) / s
        u = u * u
        if u < WIDTH2:
            z[i] -= a * math.exp(-0.5 * u)


@numba.njit(**_OPTIONS)
def _sums(v, t, lo, hi):
    """``sum(v^2)`` and the moments ``sum(v)``, ``sum(v t)``, ``sum(v t^2)`` over channels
    ``[lo, hi)``."""
    w = v[lo:hi]  # views indexed from 0: no negative-index wrap, the loop vectorises
    u = t[lo:hi]
    vv = 0.0
    p0 = 0.0
    p1 = 0.0
    p2 = 0.0
    for i in range(w.shape[0]):
        y = np.float64(w[i])  # (numba's float() of a float32 is a float32)
        yt = y * u[i]
        vv += y * y
        p0 += y
        p1 += yt
        p2 += yt * u[i]
    return vv, p0, p1, p2


@numba.njit(**_OPTIONS)
def _sums_both(v, w, t, lo, hi):
    """:func:`_sums` of ``v`` and of ``w`` over channels ``[lo, hi)`` in one loop."""
    a = v[lo:hi]
    b = w[lo:hi]
    u = t[lo:hi]
    vv = 0.0
    v0 = 0.0
    v1 = 0.0
    v2 = 0.0
    ww = 0.0
    w0 = 0.0
    w1 = 0.0
    w2 = 0.0
    for i in range(a.shape[0]):
        y = np.float64(a[i])
        z = np.float64(b[i])
        yt = y * u[i]
        zt = z * u[i]
        vv += y * y
        v0 += y
        v1 += yt
        v2 += yt * u[i]
        ww += z * z
        w0 += z
        w1 += zt
        w2 += zt * u[i]
    return vv, v0, v1, v2, ww, w0, w1, w2


@numba.njit(**_OPTIONS)
def _rss(vv, m0, m1, m2, P):
    """``vv - |P m|^2``: the sum of squares after the best parabola, from the moments ``m``
    (``P``: :func:`smooth_rss`); at least 0 (rounding takes an exact parabola's below)."""
    c0 = P[0, 0] * m0 + P[0, 1] * m1 + P[0, 2] * m2
    c1 = P[1, 0] * m0 + P[1, 1] * m1 + P[1, 2] * m2
    c2 = P[2, 0] * m0 + P[2, 1] * m1 + P[2, 2] * m2
    return max(vv - (c0 * c0 + c1 * c1 + c2 * c2), 0.0)


@numba.njit(**_OPTIONS, error_model="numpy")
def smooth_rss(data, x, h, t, P, peaks, rss0, rss1, start, stop):
    """Pixels ``start`` to ``stop`` of ``data`` (pixels x channels); ``h`` the step of a
    uniform axis (else 0); the parabolas over the channels are those of ``t`` (channels, e.g.
    ``x`` scaled to -1 .. 1), ``P`` (3 x 3) turns their moments ``V^T z`` (``V = [1, t, t^2]``)
    into the coefficients ``Q^T z`` of an orthonormal basis ``Q = V P^T`` (``P = R^-T`` of
    ``V = Q R``; zero rows and columns beyond the terms there are); ``peaks``
    ``(3 k, pixels)`` (amplitude, centre, sigma; a non-finite or zero amplitude or sigma <=
    0: no peak); results into ``rss0``, ``rss1``.

    Examples
    --------
    >>> x = np.arange(8.0)
    >>> y = np.array([[1.0, 1, 1, 9, 1, 1, 1, 1]])
    >>> t = (x - 3.5) / 3.5
    >>> P = np.linalg.inv(np.linalg.qr(np.vander(t, 3, increasing=True))[1]).T
    >>> rss0, rss1 = np.empty(1), np.empty(1)
    >>> smooth_rss(y, x, 1.0, t, P, np.array([[8.0], [3.0], [0.1]]), rss0, rss1, 0, 1)
    >>> round(float(rss0[0]), 3), abs(round(float(rss1[0]), 9))
    (46.095, 0.0)
    """
    n = data.shape[1]
    npk = peaks.shape[0] // 3
    z = np.empty(n)
    G = np.empty(CHAINS)
    R = np.empty(CHAINS)
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
            vv, p0, p1, p2 = _sums(y, t, 0, n)
            rss0[p] = _rss(vv, p0, p1, p2, P)
            rss1[p] = rss0[p]
            continue
        oa, o0, o1, o2 = _sums(y, t, 0, lo)
        ob, b0, b1, b2 = _sums(y, t, hi, n)
        oa += ob
        o0 += b0
        o1 += b1
        o2 += b2
        zw = z[lo:hi]
        yw = y[lo:hi]
        for i in range(hi - lo):  # (a slice assignment across dtypes: 3.5x the time)
            zw[i] = yw[i]
        for k in range(npk):
            a = peaks[3 * k, p]
            s = peaks[3 * k + 2, p]
            if math.isfinite(a) and a != 0.0 and s > 0.0:
                _subtract(z, x, h, a, peaks[3 * k + 1, p], s, G, R)
        ia, i0, i1, i2, za, z0, z1, z2 = _sums_both(y, z, t, lo, hi)
        rss0[p] = _rss(oa + ia, o0 + i0, o1 + i1, o2 + i2, P)
        rss1[p] = _rss(oa + za, o0 + z0, o1 + z1, o2 + z2, P)
