"""Model values and partial derivatives at one channel.

Parameters of a pixel are laid out as ``[A_1, c_1, s_1, ..., A_n, c_n, s_n, b_0, b_1]``: per
Gaussian an amplitude, a centre and a width (sigma), then the background: ``b_0`` (constant) and
``b_1`` (slope, linear background), with the background ``b_0 + b_1 * (x - xref)`` and ``xref``
the middle of the fitted range (well-conditioned slope and level).
"""

import math

from hyperlum.kernels.constants import EXP_CUTOFF


def model_value(x, xref, p, npk, nbg):
    """Model value at position ``x``."""
    f = 0.0
    for k in range(npk):
        u = (x - p[3 * k + 1]) / p[3 * k + 2]
        u2 = u * u
        if u2 < EXP_CUTOFF:
            f += p[3 * k] * math.exp(-0.5 * u2)
    if nbg > 0:
        f += p[3 * npk]
    if nbg > 1:
        f += p[3 * npk + 1] * (x - xref)
    return f


def gaussians_block(x, i0, nb, p, npk, D, F, R, h, C):
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
    xa = x[i0]
    xb = x[i0 + nb - 1]
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
                u = (x[i0 + j] - c) * inv_s
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
            u = (x[i0 + j] - c) * inv_s
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
