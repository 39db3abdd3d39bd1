"""The covariance of a pixel's fitted parameters, recomputed in numpy, for derived quantities
whose uncertainty the kernels do not give: the FWHM of a shape whose FWHM depends on more than
its width (the EMG's, on ``sigma`` and ``tau``).

The kernels keep of the covariance only the variances and the area's variance. Here it is
computed again at the fitted parameters as the kernels compute it
(:func:`hyperlum.kernels.pixel.fit_pixel`): for least squares the sandwich
``n / (n - m) H^-1 (J^T diag(r^2) J) H^-1`` with ``H = J^T J``, for the Poisson MLE the
inverse Fisher matrix ``(J^T diag(1 / f) J)^-1``. The Jacobian ``J`` comes from forward
differences of the shapes' and backgrounds' numpy ``evaluate`` (a peak is its amplitude
times a profile: the amplitude's column is the profile), with steps of 1e-4 of each
parameter's standard deviation (the scale on which the model is linear).
"""

import numpy as np

from hyperlum.kernels.backgrounds import MODULES
from hyperlum.kernels.constants import BAD_INPUT, LSE, MLE_FLOOR, SINGULAR, n_params
from hyperlum.kernels.shapes import get_shape

#: Pixels per pass: the Jacobian of a pass holds ``PIXELS * channels * parameters`` floats.
PIXELS = 256
#: Forward-difference step, as a fraction of each parameter's standard deviation.
STEP = 1e-4


def covariance(y, x, rows, *, peaks, n_background, shape, background, estimator):
    """The covariance matrix of the fitted parameters of each pixel.

    Parameters
    ----------
    y : numpy.ndarray
        The spectra fitted, ``(pixels, channels)``.
    x : numpy.ndarray
        Channel positions.
    rows : numpy.ndarray
        The kernels' output for these spectra, ``(rows, pixels)``
        (:func:`hyperlum.kernels.cpu.fit_chunk`).
    peaks, n_background : int
        Peaks and background terms fitted.
    shape : str
        The peaks' shape (a key of :data:`hyperlum.kernels.shapes.SHAPES`).
    background : str
        The background's kernel module (a key of :data:`hyperlum.kernels.backgrounds.MODULES`:
        ``"polynomial"``, ``"power_law"``), as :func:`hyperlum.kernels.cpu.fit_chunk` takes it.
    estimator : int
        :data:`hyperlum.kernels.constants.LSE` or ``MLE``.

    Returns
    -------
    numpy.ndarray
        ``(pixels, m, m)``; NaN for pixels flagged singular or bad input.

    Examples
    --------
    >>> from hyperlum.kernels import cpu
    >>> x = np.linspace(-10.0, 10.0, 81)
    >>> y = 100 * np.exp(-0.5 * (x / 2.0) ** 2) + 5 + np.sin(7 * x)  # not quite a Gaussian
    >>> rows = np.empty((12, 1))
    >>> _ = cpu.fit_chunk(y[None], x, 1, 1, LSE, 50, 1e-9, np.inf, rows)
    >>> cov = covariance(y[None], x, rows, peaks=1, n_background=1, shape="gaussian",
    ...                  background="polynomial", estimator=LSE)
    >>> np.allclose(np.sqrt(np.diag(cov[0])), rows[4:8, 0], rtol=1e-4)  # the kernel's stds
    True
    """
    sh = get_shape(shape)
    npar = sh.n_params
    m = n_params(peaks, n_background, npar)
    params = np.asarray(rows[:m], dtype=np.float64).T
    stds = np.asarray(rows[m : 2 * m], dtype=np.float64).T
    state = rows[2 * m + peaks + 1]
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    xref = 0.5 * (x[0] + x[-1])
    bg = MODULES[background]
    n = x.size
    out = np.full((params.shape[0], m, m), np.nan)
    ok = np.flatnonzero((state != SINGULAR) & (state != BAD_INPUT) & np.isfinite(params).all(1))
    for start in range(0, ok.size, PIXELS):
        pix = ok[start : start + PIXELS]
        p, s = params[pix], stds[pix]
        step = np.where(np.isfinite(s) & (s > 0), STEP * s, 1e-8 * (np.abs(p) + 1.0))
        jac = np.empty((pix.size, n, m))
        model = np.zeros((pix.size, n))
        with np.errstate(all="ignore"):
            for k in range(peaks):
                first = npar * k
                unit = p[:, first : first + npar].copy()
                unit[:, 0] = 1.0  # a peak is its amplitude times a profile
                base = sh.evaluate(x, unit)
                amp = p[:, first, None]
                model += amp * base
                jac[..., first] = base
                for q in range(1, npar):
                    moved = unit.copy()
                    moved[:, q] += step[:, first + q]
                    diff = sh.evaluate(x, moved) - base
                    jac[..., first + q] = amp * diff / step[:, first + q, None]
            if n_background:
                first = npar * peaks
                terms = p[:, first:]
                base = bg.evaluate(x, xref, terms)
                model += base
                for j in range(n_background):
                    moved = terms.copy()
                    moved[:, j] += step[:, first + j]
                    diff = bg.evaluate(x, xref, moved) - base
                    jac[..., first + j] = diff / step[:, first + j, None]
            jt = jac.transpose(0, 2, 1)
            if estimator == LSE:
                hinv = _inverse(jt @ jac)
                middle = jt @ ((y[pix] - model)[..., None] ** 2 * jac)
                cov = hinv @ middle @ hinv * (n / max(n - m, 1))
            else:
                w = 1.0 / np.maximum(model, MLE_FLOOR)
                cov = _inverse(jt @ (w[..., None] * jac))
        out[pix] = cov
    return out


def _inverse(h):
    """Inverses of a stack of matrices; NaN for a singular or non-finite one."""
    good = np.isfinite(h).all(axis=(1, 2))
    out = np.full_like(h, np.nan)
    try:
        out[good] = np.linalg.inv(h[good])
    except np.linalg.LinAlgError:  # one is singular: one at a time
        for i in np.flatnonzero(good):
            try:
                out[i] = np.linalg.inv(h[i])
            except np.linalg.LinAlgError:
                pass
    return out


def fwhm_std(y, x, rows, *, peaks, n_background, shape, background, estimator):
    """Standard deviation of each peak's FWHM, ``(peaks, pixels)``, from the gradient of the
    shape's FWHM and the covariance (:func:`covariance`; arguments as there).

    Examples
    --------
    >>> from hyperlum.kernels import cpu
    >>> x = np.linspace(-10.0, 10.0, 81)
    >>> rng = np.random.default_rng(0)
    >>> y = rng.poisson(100 * np.exp(-0.5 * (x / 2.0) ** 2) + 5).astype(float)
    >>> rows = np.empty((12, 1))
    >>> _ = cpu.fit_chunk(y[None], x, 1, 1, LSE, 50, 1e-9, np.inf, rows)
    >>> std = fwhm_std(y[None], x, rows, peaks=1, n_background=1, shape="gaussian",
    ...                background="polynomial", estimator=LSE)
    >>> bool(np.isclose(std[0, 0], 2.3548200450309493 * rows[6, 0], rtol=1e-4))  # sigma's
    True
    """
    sh = get_shape(shape)
    npar = sh.n_params
    m = n_params(peaks, n_background, npar)
    cov = covariance(
        y,
        x,
        rows,
        peaks=peaks,
        n_background=n_background,
        shape=shape,
        background=background,
        estimator=estimator,
    )
    params = np.asarray(rows[:m], dtype=np.float64).T
    stds = np.asarray(rows[m : 2 * m], dtype=np.float64).T
    out = np.full((peaks, params.shape[0]), np.nan)
    with np.errstate(all="ignore"):
        for k in range(peaks):
            cols = slice(npar * k, npar * (k + 1))
            p = params[:, cols]
            base = sh.fwhm(p)
            grad = np.zeros_like(p)
            for q in range(npar):
                h = STEP * np.where(stds[:, npar * k + q] > 0, stds[:, npar * k + q], 1.0)
                moved = p.copy()
                moved[:, q] += h
                grad[:, q] = (sh.fwhm(moved) - base) / h
            c = cov[:, cols, cols]
            var = np.einsum("pa,pab,pb->p", grad, c, grad)
            out[k] = np.sqrt(np.maximum(var, 0.0))
    return out
