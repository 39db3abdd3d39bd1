"""Levenberg-Marquardt pieces for one pixel: normal equations, damped solve, constraints.

Two estimators share one loop, as in Gpufit: least squares (``LSE``: minimise the sum of squared
residuals, Gauss-Newton normal matrix ``J^T J``) and Poisson maximum likelihood (``MLE``: minimise
the deviance ``2 sum(f - y + y ln(y / f))``, with the Fisher information ``J^T diag(1/f) J`` as the
normal matrix, i.e. Fisher scoring; counts may be zero, negative counts count as zero).
"""

import math

import numpy as np

from hyperlum.kernels.constants import LSE, MLE_FLOOR
from hyperlum.kernels.models import gaussians_block


def accumulate(y, x, xref, p, npk, nbg, est, H, g, R, h, D, W, C, middle):
    """Objective at ``p``; the normal matrix goes into ``H`` and the right-hand side into ``g``.

    ``g`` is ``J^T W (y - f)``, so the Gauss-Newton step solves ``H delta = g``. Returns ``inf``
    when the model is negative somewhere (outside the Poisson model's domain). ``middle``
    (least squares only) asks for the middle ``J^T diag(r^2) J`` of the sandwich covariance:
    ``1`` puts it into ``H`` instead of the normal matrix (one extra pass at the solution), ``2``
    into columns ``m .. 2m - 1`` of ``H`` besides it (in every pass, from the same derivatives;
    needs ``H.shape[1] >= 2m``). Sums cost less than a pass: the CPU takes ``2``, a GPU thread,
    whose blocks are ``m`` channels wide, ``1``.

    Channels go in blocks of ``B = D.shape[1]``: derivatives into ``D[:, j]`` (see
    :func:`~hyperlum.kernels.models.gaussians_block`, whose chains live in ``C`` and ``R``;
    ``h`` is the step of a uniform axis or 0), weights (squared residuals for least squares),
    weighted residuals and model values into ``W[0, j]``, ``W[1, j]``, ``W[2, j]``;
    then ``H`` and ``g`` are updated with one short, vectorisable reduction per entry.
    """
    m = 3 * npk + nbg
    nblock = D.shape[1]
    weighted = est != LSE or middle == 1
    both = est == LSE and middle == 2
    for a in range(3 * npk):
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
                chi2 += 2.0 * yi * log_positive(yi * W[0, j] if yi > 0.0 else 1.0)
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


def log_positive(z):
    """Natural logarithm of a positive normal number ``z``, to 3e-16 relative.

    Plain arithmetic on the bits (exponent and mantissa, then the odd series of
    ``atanh((m - 1) / (m + 1))`` to degree 17 on ``[sqrt(1/2), sqrt(2))``), so a loop over
    channels vectorises; ``math.log`` is a scalar library call on a CPU (~10 ns per channel).
    """
    b = np.float64(z).view(np.uint64)
    # exponent: its 11 bits placed in the mantissa of 2^52, exact without an int conversion
    e = np.uint64((b >> np.uint64(52)) | np.uint64(0x4330000000000000)).view(np.float64)
    e -= 4503599627370496.0 + 1023.0
    mant = np.uint64((b & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(0x3FF0000000000000))
    mv = mant.view(np.float64)
    if mv > 1.4142135623730951:
        mv *= 0.5
        e += 1.0
    s = (mv - 1.0) / (mv + 1.0)
    s2 = s * s
    t = 1.0 / 17.0
    for k in range(15, 0, -2):
        t = t * s2 + 1.0 / k
    return e * 0.6931471805599453 + 2.0 * s * t


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
