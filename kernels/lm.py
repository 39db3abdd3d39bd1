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


def accumulate(y, x, xref, p, npk, nbg, est, H, g, R, h, D, W, C, middle):
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
    or 0), weights (squared residuals for least squares), weighted residuals and model values
    into ``W[0, j]``, ``W[1, j]``, ``W[2, j]``; then ``H`` and ``g`` are updated with one
    short, vectorisable reduction per entry.
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
    F = W[2]
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
            if below > 0.0:
                return math.inf
            for j in range(nb):
                chi2 += deviance_log(float(ys[j]), W[0, j])
        for a in range(first, m):
            s = 0.0
            for j in range(nb):
                s += W[1, j] * D[a, j]
            g[a] += s
            for b in range(a, m):
                s = 0.0
                if weigh:
                    for j in range(nb):
                        s += W[0, j] * D[a, j] * D[b, j]
                elif both:
                    q = 0.0
                    for j in range(nb):
                        d = D[a, j] * D[b, j]
                        s += d
                        q += W[0, j] * d
                    H[a, m + b] += q
                else:
                    for j in range(nb):
                        s += D[a, j] * D[b, j]
                H[a, b] += s
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
