"""Levenberg-Marquardt pieces for one pixel: normal equations, damped solve, constraints.

Two estimators share one loop, as in Gpufit: least squares (``LSE``: minimise the sum of squared
residuals, Gauss-Newton normal matrix ``J^T J``) and Poisson maximum likelihood (``MLE``: minimise
the deviance ``2 sum(f - y + y ln(y / f))``, with the Fisher information ``J^T diag(1/f) J`` as the
normal matrix, i.e. Fisher scoring; counts may be zero, negative counts count as zero).
"""

import math

from hyperlum.kernels.constants import LSE, MLE_FLOOR
from hyperlum.kernels.models import gaussians_block


def accumulate(y, x, xref, p, npk, nbg, est, H, g, R, h, D, W, C, middle):
    """Objective at ``p``; the normal matrix goes into ``H`` and the right-hand side into ``g``.

    ``g`` is ``J^T W (y - f)``, so the Gauss-Newton step solves ``H delta = g``. Returns ``inf``
    when the model is negative somewhere (outside the Poisson model's domain). With ``middle``
    (least squares only, once at the solution) ``H`` receives ``J^T diag(r^2) J`` instead: the
    middle of the sandwich covariance.

    Channels go in blocks of ``B = D.shape[1]``: derivatives into ``D[:, j]`` (see
    :func:`~hyperlum.kernels.models.gaussians_block`, whose chains live in ``C`` and ``R``;
    ``h`` is the step of a uniform axis or 0), weights (squared residuals for least squares),
    weighted residuals and model values into ``W[0, j]``, ``W[1, j]``, ``W[2, j]``;
    then ``H`` and ``g`` are updated with one short, vectorisable reduction per entry.
    """
    m = 3 * npk + nbg
    nblock = D.shape[1]
    weighted = est != LSE or middle
    for a in range(3 * npk):
        R[a] = 0.0
    for a in range(m):
        g[a] = 0.0
        for b in range(m):
            H[a, b] = 0.0
    chi2 = 0.0
    n = y.shape[0]
    F = W[2]
    for i0 in range(0, n, nblock):
        nb = min(nblock, n - i0)
        # Outside every Gaussian's window only the background terms get contributions.
        first = 0 if gaussians_block(x, i0, nb, p, npk, D, F, R, h, C) else 3 * npk
        # Branch-free over the block (it vectorises); the Poisson logarithms follow apart.
        fmin = math.inf
        for j in range(nb):
            f = F[j]
            if nbg > 0:
                f += p[3 * npk]
                D[3 * npk, j] = 1.0
            if nbg > 1:
                dx = x[i0 + j] - xref
                f += p[3 * npk + 1] * dx
                D[3 * npk + 1, j] = dx
            yi = float(y[i0 + j])
            if est == LSE:
                r = yi - f
                w = r * r
                chi2 += w
            else:
                fmin = min(fmin, f)
                yi = max(yi, 0.0)
                fc = max(f, MLE_FLOOR)
                w = 1.0 / fc
                chi2 += 2.0 * (fc - yi)
                r = yi * w - 1.0
            W[0, j] = w
            W[1, j] = r
        if est != LSE:
            if fmin < 0.0:
                return math.inf
            for j in range(nb):
                yi = float(y[i0 + j])
                if yi > 0.0:
                    chi2 += 2.0 * yi * math.log(yi * W[0, j])
        for a in range(first, m):
            s = 0.0
            for j in range(nb):
                s += W[1, j] * D[a, j]
            g[a] += s
            for b in range(a, m):
                s = 0.0
                if weighted:
                    for j in range(nb):
                        s += W[0, j] * D[a, j] * D[b, j]
                else:
                    for j in range(nb):
                        s += D[a, j] * D[b, j]
                H[a, b] += s
    for a in range(m):
        for b in range(a):
            H[a, b] = H[b, a]
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
    """Keep a trial point feasible: amplitudes > 0, ``smin <= sigma <= smax``, centre in range.

    A trial value that leaves the box moves part of the way from the current value ``p``
    towards the bound instead, so that the search can still approach it.
    """
    for k in range(npk):
        ia = 3 * k
        if not pt[ia] > 0.0:
            pt[ia] = 0.1 * p[ia]
        ic = ia + 1
        if pt[ic] < xlo:
            pt[ic] = 0.5 * (p[ic] + xlo)
        elif pt[ic] > xhi:
            pt[ic] = 0.5 * (p[ic] + xhi)
        i_s = ia + 2
        if pt[i_s] < smin:
            pt[i_s] = max(0.5 * p[i_s], smin)
        elif pt[i_s] > smax:
            pt[i_s] = 0.5 * (p[i_s] + smax)


def step_is_small(delta, p, npk, nbg, tol, xspan):
    """True when every parameter moved by less than ``tol`` of its natural scale.

    Centre and sigma are measured against the peak's sigma, amplitudes against their value,
    background terms (the slope times the fitted span) against the largest amplitude.
    """
    amax = 0.0
    for k in range(npk):
        amax = max(amax, abs(p[3 * k]))
    for k in range(npk):
        s = p[3 * k + 2]
        if abs(delta[3 * k]) > tol * abs(p[3 * k]):
            return False
        if abs(delta[3 * k + 1]) > tol * s or abs(delta[3 * k + 2]) > tol * s:
            return False
    if nbg > 0 and abs(delta[3 * npk]) > tol * (abs(p[3 * npk]) + amax):
        return False
    if nbg > 1 and abs(delta[3 * npk + 1]) * xspan > tol * (abs(p[3 * npk + 1]) * xspan + amax):
        return False
    return True
