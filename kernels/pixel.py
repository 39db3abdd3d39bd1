"""The whole fit of one pixel: input checks, starting values, LM loop, uncertainties, outputs.

:func:`fit_pixel` is what both drivers run per pixel: the CPU driver over a row of a
pixel-major chunk, the CUDA kernel over a column of a channel-major chunk.
"""

import math

from hyperlum.kernels.constants import (
    BAD_INPUT,
    CONVERGED,
    FWHM_PER_SIGMA,
    LSE,
    MAX_ITERATIONS,
    SINGULAR,
)
from hyperlum.kernels.guess import guess
from hyperlum.kernels.lm import accumulate, cho_solve, cholesky, constrain, step_is_small
from hyperlum.kernels.shapes.gaussian import FWHM_PER_WIDTH, peak_area, peak_fwhm
from hyperlum.kernels.shapes.gaussian import N_PARAMS as NP

#: The passes of a step predicted to lower the least-squares objective by less than this share
#: of it (likely the last accepted one near a minimum) sum the sandwich middle too.
QTOL = 1e-2


def uniform_step(x):
    """The step of ``x`` if it is uniform (to 1e-9 of a step), else 0."""
    n = x.shape[0]
    h = (x[n - 1] - x[0]) / (n - 1)
    for i in range(n):
        if abs(x[i] - (x[0] + i * h)) > 1e-9 * abs(h):
            return 0.0
    return h


def fit_pixel(out, pix, y, x, h, npk, nbg, est, max_iter, tol, saturation, M, V, T):
    """Fit one spectrum ``y`` over positions ``x``; write column ``pix`` of ``out``.

    ``h`` is :func:`uniform_step` of ``x``, computed once by the driver, not per pixel.

    ``out`` rows (:func:`~hyperlum.kernels.constants.output_rows`): the ``m = NP npk + nbg``
    parameters (peaks sorted by centre), their standard deviations, the peaks' area standard
    deviations, their FWHMs' standard deviations, the reduced chi-square, the state and the
    iterations. ``NP`` and the peak and background functions are those of the compiled model.
    ``M`` (4 x P x B) and ``V`` (8 x B) are scratch space in the working precision, ``T``
    ((P + 2) x B) that of the normal-equation tiles (of type ``TILE``), ``P`` the largest
    parameter count and ``B >= P`` the number of channels handled as one block (see
    :func:`~hyperlum.kernels.lm.accumulate`: 128 is good on a CPU).
    """
    n = y.shape[0]
    m = NP * npk + nbg
    H = M[0]
    Hn = M[1]
    L = M[2]
    C = M[3]
    g = V[0]
    gn = V[1]
    pt = V[2]
    delta = V[3]
    order = V[4]
    p = V[5]
    R = V[6]
    F = V[7]
    W = T[:2]
    D = T[2:]
    rows = 2 * m + 2 * npk + 3  # constants.output_rows(npk, nbg, NP).total
    x0 = x[0]
    x1 = x[n - 1]
    xlo = min(x0, x1)
    xhi = max(x0, x1)
    xref = 0.5 * (x0 + x1)
    xspan = xhi - xlo
    # width bounds: sigma from a quarter channel to the span, as FWHMs, in the shape's width
    wscale = FWHM_PER_SIGMA / FWHM_PER_WIDTH
    smin = 0.25 * xspan / n * wscale
    smax = xspan * wscale
    if guess(y, x, xref, npk, nbg, est, smin, saturation, p):
        for r in range(rows - 2):
            out[r, pix] = math.nan
        out[rows - 2, pix] = BAD_INPUT
        out[rows - 1, pix] = 0
        return
    # Least squares on wide blocks (a CPU) sums the sandwich middle beside H, but only in the
    # passes that may be the last accepted one: those of a step predicted to lower the
    # objective by less than QTOL of it. ``hasq``: H's columns m .. 2m - 1 hold it at p.
    wide = est == LSE and H.shape[1] >= 2 * m
    chi2 = accumulate(y, x, xref, p, npk, nbg, est, H, g, R, h, D, W, F, C, 0)
    hasq = False
    state = MAX_ITERATIONS
    lam = 1e-3
    it = 0
    if not math.isfinite(chi2):
        state = SINGULAR
        it = max_iter
    while it < max_iter:
        it += 1
        if not cholesky(H, lam, m, L):
            lam *= 10.0
            if lam > 1e12:
                state = SINGULAR
                break
            continue
        cho_solve(L, g, m, delta)
        for j in range(m):
            pt[j] = p[j] + delta[j]
            gn[j] = pt[j]
        constrain(pt, p, npk, xlo, xhi, smin, smax)
        # A parameter whose trial left the box is held where the box put it, and the others
        # are solved again with it fixed (rows and columns of the fixed ones taken out of the
        # damped system). Otherwise they take the step solved for a move it does not make, and
        # the search zig-zags along the bound (a pseudo-Voigt's eta heading below 0 ran out of
        # iterations in 55% of a real map's pixels). ``order`` flags the fixed ones.
        nfix = 0
        for j in range(m):
            order[j] = 0.0
            if pt[j] != gn[j]:
                order[j] = 1.0
                nfix += 1
                delta[j] = pt[j] - p[j]
        if nfix > 0 and nfix < m:
            for a in range(m):
                if order[a] != 0.0:
                    gn[a] = (1.0 + lam) * delta[a]
                    for b in range(m):
                        Hn[a, b] = 0.0
                    Hn[a, a] = 1.0
                else:
                    s = g[a]
                    for b in range(m):
                        if order[b] != 0.0:
                            s -= H[a, b] * delta[b]
                            Hn[a, b] = 0.0
                        else:
                            Hn[a, b] = H[a, b]
                    gn[a] = s
            if cholesky(Hn, lam, m, L):
                cho_solve(L, gn, m, delta)
                for j in range(m):
                    pt[j] = p[j] + delta[j]
                constrain(pt, p, npk, xlo, xhi, smin, smax)
                for j in range(m):
                    delta[j] = pt[j] - p[j]
        # The Gauss-Newton model predicts a decrease of g^T delta for this step. Below the
        # tolerance (or for a negligible step) the point is a minimum: take the step without
        # a trial pass over the channels (the normal matrix stays that of the point before).
        pred = 0.0
        for j in range(m):
            pred += g[j] * delta[j]
        if lam <= 1e-2 and (pred <= tol * chi2 or step_is_small(delta, p, npk, nbg, tol, xspan)):
            for j in range(m):
                p[j] = pt[j]
            state = CONVERGED
            break
        middle = 2 if wide and pred <= QTOL * chi2 else 0
        chi2n = accumulate(y, x, xref, pt, npk, nbg, est, Hn, gn, R, h, D, W, F, C, middle)
        if chi2n <= chi2:
            small = step_is_small(delta, p, npk, nbg, tol, xspan)
            for a in range(m):
                p[a] = pt[a]
                g[a] = gn[a]
                for b in range(2 * m if middle else m):
                    H[a, b] = Hn[a, b]
            hasq = middle == 2
            done = small or chi2 - chi2n <= tol * chi2n
            chi2 = chi2n
            lam = max(0.1 * lam, 1e-9)
            if done:
                state = CONVERGED
                break
        else:
            lam *= 10.0
            if lam > 1e12:
                # No step decreases the objective any more: a minimum to machine precision.
                state = CONVERGED
                break
    dof = max(n - m, 1)
    # Covariance: the inverse normal matrix at the solution (columns into H once factored,
    # delta as a unit vector). For the Poisson MLE that is the inverse Fisher information. For
    # least squares, the noise need not be uniform (counts are not), so the sandwich
    # H^-1 (J^T diag(r^2) J) H^-1, scaled by n / (n - m), is used: right for any noise, equal to
    # chi2/dof H^-1 for uniform noise. Its middle comes from the last accepted pass (columns
    # m .. 2m - 1 of H) when that pass summed it, otherwise (narrow blocks: a GPU) from one
    # more pass at the solution (which also gives chi2 there). The covariance ends in Hn.
    if state != SINGULAR and not cholesky(H, 0.0, m, L):
        state = SINGULAR
    if state != SINGULAR:
        for j in range(m):
            for a in range(m):
                gn[a] = 0.0
            gn[j] = 1.0
            cho_solve(L, gn, m, delta)
            for a in range(m):
                H[a, j] = delta[a]
        if est == LSE:
            if hasq:
                for a in range(m):
                    for b in range(m):
                        Hn[a, b] = H[a, m + b]
            else:
                chi2 = accumulate(y, x, xref, p, npk, nbg, est, Hn, gn, R, h, D, W, F, C, 1)
            for a in range(m):
                for b in range(m):
                    s = 0.0
                    for c in range(m):
                        s += Hn[a, c] * H[c, b]
                    L[a, b] = s
            for a in range(m):
                for b in range(m):
                    s = 0.0
                    for c in range(m):
                        s += H[a, c] * L[c, b]
                    Hn[a, b] = s * n / dof
        else:
            for a in range(m):
                for b in range(m):
                    Hn[a, b] = H[a, b]
    # Sort the peaks by centre (insertion sort of indices kept as floats in ``order``).
    for k in range(npk):
        order[k] = k
    for k in range(1, npk):
        j = k
        while j > 0 and p[NP * int(order[j - 1]) + 1] > p[NP * int(order[j]) + 1]:
            t = order[j - 1]
            order[j - 1] = order[j]
            order[j] = t
            j -= 1
    for k in range(npk):
        src = NP * int(order[k])
        for q in range(NP):
            out[NP * k + q, pix] = p[src + q]
            if state != SINGULAR:
                out[m + NP * k + q, pix] = math.sqrt(max(Hn[src + q, src + q], 0.0))
            else:
                out[m + NP * k + q, pix] = math.nan
        # the variances G^T Cov G of the area and of the FWHM, from their gradients G (in
        # gn, free by now): one row per peak each
        for r in range(2):
            row = 2 * m + r * npk + k
            if state == SINGULAR:
                out[row, pix] = math.nan
                continue
            if r == 0:
                peak_area(p, src, gn)
            else:
                peak_fwhm(p, src, gn)
            var = 0.0
            for a in range(NP):
                for b in range(NP):
                    var += gn[a] * gn[b] * Hn[src + a, src + b]
            out[row, pix] = math.sqrt(max(var, 0.0))
    for j in range(NP * npk, m):
        out[j, pix] = p[j]
        if state != SINGULAR:
            out[m + j, pix] = math.sqrt(max(Hn[j, j], 0.0))
        else:
            out[m + j, pix] = math.nan
    out[rows - 3, pix] = chi2 / dof
    out[rows - 2, pix] = state
    out[rows - 1, pix] = it
