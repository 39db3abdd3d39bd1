"""Levenberg-Marquardt pieces for one pixel: normal equations, damped solve, constraints.

Two estimators share one loop, as in Gpufit (their terms: :mod:`hyperlum.kernels.estimators`).
The peaks come from the shape being compiled (``peaks_block``, ``peak_constrain``,
``peak_step_small``: :mod:`hyperlum.kernels.shapes`), the background from its module
(:mod:`hyperlum.kernels.backgrounds`); ``NP`` is the shape's parameter count. As plain Python
these names are the Gaussian's and the polynomial's.
"""

import math

from hyperlum.kernels.backgrounds.polynomial import background_point, background_step_small
from hyperlum.kernels.constants import LSE
from hyperlum.kernels.estimators import channel_terms, deviance_log, weighted
from hyperlum.kernels.shapes.gaussian import N_PARAMS as NP
from hyperlum.kernels.shapes.gaussian import peak_constrain, peak_step_small, peaks_block

#: Type of the normal-equation tiles' sums and of their inputs ``D`` and ``W`` in
#: :func:`accumulate`: bound when compiled (:func:`hyperlum.kernels.precision.real_namespace`),
#: to the working precision unless the target binds another (the CPU: float32).
TILE = None


def accumulate(y, x, xref, p, npk, nbg, est, H, g, R, h, D, W, F, C, middle):
    """Objective at ``p``; the normal matrix goes into ``H`` and the right-hand side into ``g``.

    ``g`` is ``J^T W (y - f)``, so the Gauss-Newton step solves ``H delta = g``. Returns ``inf``
    when the model is negative somewhere (outside the Poisson model's domain). ``middle``
    (least squares only) asks for the middle ``J^T diag(r^2) J`` of the sandwich covariance:
    ``1`` puts it into ``H`` instead of the normal matrix (one extra pass at the solution), ``2``
    into columns ``m .. 2m - 1`` of ``H`` besides it (in every pass, from the same derivatives;
    needs ``H.shape[1] >= 2m``). Sums cost less than a pass: the CPU takes ``2``, a GPU thread,
    whose blocks are ``m`` channels wide, ``1``.

    Channels go in blocks of ``B = D.shape[1]``: derivatives into ``D[:, j]`` (the shape's
    ``peaks_block``, whose scratch lives in ``C`` and ``R``; ``h`` is the step of a uniform axis
    or 0), model values into ``F[j]``, weights (squared residuals for least squares) and
    weighted residuals into ``W[0, j]``, ``W[1, j]``; then ``H`` and ``g`` are updated tile by tile:
    one loop over the block's channels sums the products of rows ``a``, ``a + 1`` of ``D`` with
    rows ``b .. b + 3`` (and of ``W[1]`` with rows ``a``, ``a + 1``), each row loaded once and
    the 10 sums kept in registers (sums that fall outside the matrix or below its diagonal are
    dead code once the compiled sizes are constants). One loop per entry cost twice as much.

    ``D``, ``W`` and the tiles' sums over one block are of type ``TILE`` (bound per target; the
    working precision unless bound otherwise); ``F``, the objective and the sums over blocks are
    in the working precision. The CPU takes float32 tiles in its float64 fits over a polynomial
    background (:data:`hyperlum.kernels.cpu.TILES`): twice the lanes for the sums. The normal
    matrix then carries rounding of about 1e-7 of its entries, which moves the steps, not the
    point they converge to (the gradient's rounding is far below its noise), nor the objective
    the steps are compared by. With the Poisson MLE, ``F[j]`` holds the weight in the working
    precision for the logarithms.
    """
    o = NP * npk
    m = o + nbg
    nblock = D.shape[1]
    weigh = weighted(est) or middle == 1
    both = est == LSE and middle == 2
    for a in range(o):
        R[a] = 0.0
    for a in range(m):
        g[a] = 0.0
        for b in range(2 * m if both else m):
            H[a, b] = 0.0
    chi2 = 0.0
    n = y.shape[0]
    for i0 in range(0, n, nblock):
        nb = min(nblock, n - i0)
        # views indexed from 0: y[i0 + j] would be checked for a negative index (numba's
        # wrap-around) channel by channel, which keeps the loop from loading 4 at once
        ys = y[i0 : i0 + nb]
        xs = x[i0 : i0 + nb]
        # Outside every peak's window only the background terms get contributions.
        first = 0 if peaks_block(x, i0, nb, p, npk, D, F, R, h, C) else o
        # Branch-free over the block (it vectorises; negative model values are counted: a min()
        # reduction kept this loop scalar, at 1.3x the time of the whole pass). The Poisson
        # logarithms follow apart.
        below = 0.0
        for j in range(nb):
            f = F[j] + background_point(xs[j], xref, p, o, nbg, D, j)
            if est != LSE:
                below += 1.0 if f < 0.0 else 0.0
            c, w, r = channel_terms(est, float(ys[j]), f)
            chi2 += c
            W[0, j] = w
            W[1, j] = r
            if est != LSE:
                F[j] = w
        if est != LSE:
            if below > 0.0:
                return math.inf
            for j in range(nb):
                chi2 += deviance_log(float(ys[j]), F[j])
        for a in range(first, m, 2):
            a1 = min(a + 1, m - 1)
            two = a + 1 < m
            for b in range(a, m, 4):
                b1 = min(b + 1, m - 1)
                b2 = min(b + 2, m - 1)
                b3 = min(b + 3, m - 1)
                # the sandwich middle (``both``): the same tile again, weighted, into H[:, m:]
                for c in range(0, 2 * m if both else m, m):
                    wt = weigh or c > 0
                    t0 = TILE(0.0)
                    t1 = TILE(0.0)
                    s00 = TILE(0.0)
                    s01 = TILE(0.0)
                    s02 = TILE(0.0)
                    s03 = TILE(0.0)
                    s10 = TILE(0.0)
                    s11 = TILE(0.0)
                    s12 = TILE(0.0)
                    s13 = TILE(0.0)
                    for j in range(nb):
                        u0 = D[a, j]
                        u1 = D[a1, j]
                        t0 += W[1, j] * u0
                        t1 += W[1, j] * u1
                        if wt:
                            u0 *= W[0, j]
                            u1 *= W[0, j]
                        d0 = D[b, j]
                        d1 = D[b1, j]
                        d2 = D[b2, j]
                        d3 = D[b3, j]
                        s00 += u0 * d0
                        s01 += u0 * d1
                        s02 += u0 * d2
                        s03 += u0 * d3
                        s10 += u1 * d0
                        s11 += u1 * d1
                        s12 += u1 * d2
                        s13 += u1 * d3
                    if b == a and c == 0:
                        g[a] += t0
                        if two:
                            g[a1] += t1
                    # (row a1's entry left of its diagonal, b == a, comes by symmetry below:
                    # not stored, its sum is dead code)
                    H[a, c + b] += s00
                    if two and b > a:
                        H[a1, c + b] += s10
                    if b + 1 < m:
                        H[a, c + b1] += s01
                        if two:
                            H[a1, c + b1] += s11
                    if b + 2 < m:
                        H[a, c + b2] += s02
                        if two:
                            H[a1, c + b2] += s12
                    if b + 3 < m:
                        H[a, c + b3] += s03
                        if two:
                            H[a1, c + b3] += s13
    for a in range(m):
        for b in range(a):
            H[a, b] = H[b, a]
            if both:
                H[a, m + b] = H[b, m + a]
    return chi2


def cholesky(A, lam, m, L):
    """Cholesky factor of ``A + lam * diag(A)`` into the lower triangle of ``L``.

    Returns False when the matrix is not positive definite.
    """
    for j in range(m):
        s = A[j, j] * (1.0 + lam)
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not s > 0.0:
            return False
        ljj = math.sqrt(s)
        L[j, j] = ljj
        for i in range(j + 1, m):
            t = A[i, j]
            for k in range(j):
                t -= L[i, k] * L[j, k]
            L[i, j] = t / ljj
    return True


def cho_solve(L, b, m, out):
    """Solve ``L L^T out = b`` for a factor from :func:`cholesky`."""
    for i in range(m):
        t = b[i]
        for k in range(i):
            t -= L[i, k] * out[k]
        out[i] = t / L[i, i]
    for i in range(m - 1, -1, -1):
        t = out[i]
        for k in range(i + 1, m):
            t -= L[k, i] * out[k]
        out[i] = t / L[i, i]


def constrain(pt, p, npk, xlo, xhi, smin, smax):
    """Keep a trial point feasible: each peak's ``peak_constrain`` (amplitude > 0, centre in
    range, ``smin <= width <= smax``, and the shape's own bounds)."""
    for k in range(npk):
        peak_constrain(pt, p, NP * k, xlo, xhi, smin, smax)


def step_is_small(delta, p, npk, nbg, tol, xspan):
    """True when every parameter moved by less than ``tol`` of its natural scale.

    The shape's ``peak_step_small`` for the peaks (centre and width against the width,
    amplitudes against their value), the background's ``background_step_small`` for its terms
    (against their size over the fitted span plus the largest amplitude).
    """
    amax = 0.0
    for k in range(npk):
        amax = max(amax, abs(p[NP * k]))
    for k in range(npk):
        if not peak_step_small(delta, p, NP * k, tol):
            return False
    return background_step_small(delta, p, NP * npk, nbg, tol, xspan, amax)
