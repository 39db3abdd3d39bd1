"""Detection verdict: is a fitted Gaussian a real, resolved peak, or noise / a spike?

A converged optimiser is not a found peak: on a spectrum of noise alone the fit still ends
somewhere, often on a one-channel fluctuation. A peak is **detected** when all of these hold:

* the fit converged (``state == 0``) with finite parameters and a positive amplitude;
* it is **resolved**: its FWHM spans at least ``MIN_CHANNELS = 3`` channels (the local step
  of the axis at its centre; sigma >= 1.27 channels) and at least 0.75 x ``resolution`` when
  the instrument's resolution (FWHM, axis units) is given. A cosmic-ray spike, or what is
  left of one that hit two channels, fits a Gaussian of sigma at most about one channel;
  measured lines of the real CL files here have sigma >= 1.6 channels;
* it is **located**: its centre lies inside the fitted range by at least one channel and its
  sigma is below half the range (wider "peaks" are background curvature);
* it is **significant** against the background alone. The background-only model is a
  quadratic in ``x`` (a broad hump or a curved baseline that a parabola describes as well is
  not a peak; for a flat background this only makes the test more conservative). The
  statistic is the likelihood ratio: for least squares ``t = (RSS0 - RSS) / (RSS / (n - m))``
  with RSS0 that of the parabola alone and RSS that of the fitted Gaussians (held fixed)
  plus a refitted parabola, ``m = 3 k + 3`` (nested models; for ``k`` Gaussians); for the
  Poisson estimator the deviance difference ``t = D0 - D`` of the same two models. For a
  peak of known position and width ``t`` would follow chi-square with one degree of
  freedom; the fit looks for the best of many positions and widths, so the threshold
  includes a trials (look-elsewhere) factor: ``t > T`` with
  ``P(chi2_1 > T) / 2 = false_alarm / N_eff`` and ``N_eff = TRIALS_PER_CHANNEL * n``
  (``n`` channels; for least squares, whose noise level comes from the residuals, Fisher's
  F(1, n - m) in place of chi2_1). ``TRIALS_PER_CHANNEL = 10`` was calibrated by simulation
  (white Gaussian and Poisson noise, constant and linear background, 64 to 1024 channels,
  8,000-20,000 pixels each): with every rule above, at ``false_alarm=1e-3`` 0% to 0.025% of
  noise-only pixels were detected, at 1e-2 0.03% to 0.2%: the rate is an upper bound,
  conservative by 4x or more
  (``tests/test_detect.py`` checks it under a simulated null).

With several peaks each peak ``k`` is also tested on its own by its Wald statistic
``(amplitude_k / amplitude_k_std)^2 > T``, in addition to the whole model's likelihood ratio.
"""

import numpy as np
from scipy.special import chdtri, fdtri

#: Default false-alarm rate per pixel (probability that a noise-only pixel is detected).
FALSE_ALARM = 1e-3
#: Effective number of independent places (positions x widths) per channel where a noise
#: feature can be fitted; calibrated by simulation (see the module docstring).
TRIALS_PER_CHANNEL = 10.0
#: Channels a resolved peak spans at half maximum, at least.
MIN_CHANNELS = 3.0
#: A fitted FWHM below this fraction of the instrument's resolution is not resolved.
RESOLUTION_ALLOWANCE = 0.75
_FWHM_PER_SIGMA = 2.3548200450309493
#: Terms of the background-only model: 1, x, x^2.
NULL_TERMS = 3
#: Fisher-scoring steps of the Poisson background-only fit.
POISSON_STEPS = 6
_FLOOR = 1e-30
#: Float64 bytes of spectra handled at once by :func:`background_objective`.
_BLOCK_BYTES = 16 * 2**20


def threshold(n_channels, *, false_alarm=FALSE_ALARM, dof=None):
    """The likelihood-ratio threshold for a peak fitted anywhere in ``n_channels`` channels.

    Parameters
    ----------
    n_channels : int
        Channels of the fitted range.
    false_alarm : float
        Probability, per pixel, that noise alone passes.
    dof : int, optional
        Residual degrees of freedom ``n - m`` of a least-squares fit, whose noise level is
        estimated from the residuals: the tail is then that of Fisher's F(1, dof) instead of
        chi-square with one degree of freedom (the Poisson estimator).

    Returns
    -------
    float
        ``T`` with ``P(chi2_1 > T) / 2`` (or ``P(F(1, dof) > T) / 2``) equal to
        ``false_alarm / (TRIALS_PER_CHANNEL * n_channels)``.

    Examples
    --------
    >>> round(threshold(1000), 1), round(threshold(1000, dof=996), 1)
    (27.0, 27.4)
    """
    trials = TRIALS_PER_CHANNEL * max(int(n_channels), 1)
    tail = min(1.0, 2.0 * false_alarm / trials)
    if dof is None:
        return float(chdtri(1, tail))
    return float(fdtri(1, max(int(dof), 1), 1.0 - tail))


def background_objective(y, x, est, *, peaks=None):
    """The objective (RSS, or Poisson deviance) of a smooth background (plus fixed peaks).

    The background is a quadratic in ``x`` (whatever background the fit has), refitted here:
    a broad hump or a curved baseline that a parabola describes as well is not a peak. With
    ``peaks`` the Gaussians are added with their fitted parameters held fixed, so that the
    fit and the background alone are compared with the same background (nested models).

    Parameters
    ----------
    y : numpy.ndarray or cupy.ndarray
        Pixels x channels.
    x : numpy.ndarray
        Channel positions.
    est : int
        0 for least squares (closed form), 1 for the Poisson deviance (Fisher scoring from
        the least-squares parabola).
    peaks : numpy.ndarray, optional
        ``(3 k, pixels)``: amplitude, centre, sigma of each of ``k`` Gaussians (NaN: none).

    Returns
    -------
    numpy.ndarray
        One float64 value per pixel, on the host.

    Examples
    --------
    >>> x = np.arange(10.0)
    >>> y = np.stack([1 + 0.5 * x + 0.1 * x**2, np.where(x == 5, 4.0, 1.0)])
    >>> np.round(background_objective(y, x, 0), 6).tolist()
    [0.0, 6.981818]
    >>> spike = np.array([[3.0, 3.0], [5.0, 5.0], [0.01, 0.01]])
    >>> (np.round(background_objective(y, x, 0, peaks=spike), 6) + 0.0).tolist()
    [6.981818, 0.0]
    """
    x = np.asarray(x, dtype=np.float64)
    half = max(0.5 * abs(x[-1] - x[0]), 1e-300)
    basis = np.vander((x - 0.5 * (x[0] + x[-1])) / half, NULL_TERMS, increasing=True)
    per = max(1, _BLOCK_BYTES // (8 * max(y.shape[-1], 1)))
    out = []
    for s in range(0, y.shape[0], per):
        part = None if peaks is None else np.asarray(peaks[:, s : s + per], dtype=np.float64)
        out.append(_background_block(y[s : s + per], x, basis, est, part))
    return np.concatenate(out) if out else np.empty(0)


def _background_block(y, x, basis, est, peaks):
    xp = _module(y)
    y = y.astype(xp.float64, copy=False)
    if peaks is not None:
        g = np.zeros((peaks.shape[1], x.size))
        for k in range(0, peaks.shape[0], 3):
            a, c, sd = (np.nan_to_num(peaks[k + q], nan=1.0)[:, None] for q in range(3))
            a = np.where(np.isfinite(peaks[k])[:, None], a, 0.0)
            g += a * np.exp(-0.5 * ((x - c) / sd) ** 2)
        y = y - xp.asarray(g)
    q, r = np.linalg.qr(basis)
    proj = y @ xp.asarray(q)
    if est == 0:
        return _host(xp.einsum("ij,ij->i", y, y) - xp.einsum("ij,ij->i", proj, proj))
    # Poisson: y is the counts minus the fixed peaks; the model is offset + parabola.
    off = 0.0 if peaks is None else xp.asarray(g)
    counts = xp.maximum(y + off, 0.0)
    b = xp.asarray(basis)
    coef = (xp.asarray(np.linalg.inv(r)) @ proj.T).T
    eye = xp.eye(basis.shape[1])
    for _ in range(POISSON_STEPS):
        f = xp.maximum(coef @ b.T + off, _FLOOR)
        grad = (counts / f - 1.0) @ b
        h = xp.einsum("pn,na,nc->pac", 1.0 / f, b, b)
        ok = xp.isfinite(h).all(axis=(1, 2)) & xp.isfinite(grad).all(axis=1)
        h = xp.where(ok[:, None, None], h, eye)
        h = h + 1e-12 * eye * xp.abs(h).max(axis=(1, 2))[:, None, None]
        step = xp.linalg.solve(h, xp.where(ok[:, None], grad, 0.0)[..., None])[..., 0]
        coef = coef + xp.where(xp.isfinite(step), step, 0.0)
    f = xp.maximum(coef @ b.T + off, _FLOOR)
    ylogy = xp.where(counts > 0, counts * xp.log(xp.where(counts > 0, counts / f, 1.0)), 0.0)
    return _host(2.0 * (f - counts + ylogy).sum(axis=-1))


def statistic(obj0, obj1, n, m, est):
    """Likelihood-ratio statistic of a model (objective ``obj1``, ``m`` parameters) against a
    nested one (``obj0``), over ``n`` channels: see the module docstring."""
    obj0 = np.asarray(obj0, dtype=np.float64)
    obj1 = np.asarray(obj1, dtype=np.float64)
    if est == 0:
        s2 = obj1 / max(n - m, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(s2 > 0, (obj0 - obj1) / s2, np.where(obj0 > obj1, np.inf, 0.0))
    else:
        t = obj0 - obj1
    return np.where(np.isfinite(obj1), t, np.nan)


def peak_valid(amp, centre, sigma, state, x, *, resolution=None):
    """Converged, finite, positive, resolved and located (see the module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = min(x[0], x[-1]), max(x[0], x[-1])
    xs = np.sort(x)
    step = np.diff(xs)
    with np.errstate(invalid="ignore"):
        i = np.clip(np.searchsorted(xs, np.nan_to_num(centre, nan=lo)), 1, x.size - 1)
        local = step[i - 1]
        fwhm = sigma * _FWHM_PER_SIGMA
        need = MIN_CHANNELS * local
        if resolution is not None:
            need = np.maximum(need, RESOLUTION_ALLOWANCE * resolution)
        return (
            (state == 0)
            & np.isfinite(amp)
            & np.isfinite(centre)
            & np.isfinite(sigma)
            & (amp > 0)
            & (fwhm >= need)
            & (centre >= lo + local)
            & (centre <= hi - local)
            & (sigma < 0.5 * (hi - lo))
        )


def objective(y, x, rows, npk, est):
    """The fit's objective with its Gaussians held fixed and the background refitted as the
    parabola of :func:`background_objective` (so that the two are nested). ``rows`` is the
    kernels' ``(rows, pixels)`` output for ``npk`` Gaussians."""
    return background_objective(y, x, est, peaks=rows[: 3 * npk])


def peaks_valid(rows, npk, nbg, x, *, resolution=None):
    """:func:`peak_valid` for each peak of the kernels' rows: ``(npk, pixels)`` bool."""
    m = 3 * npk + nbg
    state = rows[2 * m + npk + 1]
    return np.array(
        [peak_valid(*rows[3 * k : 3 * k + 3], state, x, resolution=resolution) for k in range(npk)]
    ).reshape(npk, -1)


def verdict(
    rows,
    obj0,
    obj,
    x,
    *,
    peaks,
    background,
    estimator,
    resolution=None,
    false_alarm=FALSE_ALARM,
):
    """``detected`` per peak for a fit of a fixed number of peaks (the rule of this module).

    Parameters
    ----------
    rows : numpy.ndarray
        The kernels' ``(rows, pixels)`` output (:func:`hyperlum.kernels.pixel.fit_pixel`).
    obj0 : numpy.ndarray
        The background-only objective per pixel (:func:`background_objective`).
    obj : numpy.ndarray
        The fit's objective per pixel, its background refitted (:func:`objective`).
    x : numpy.ndarray
        Channel positions of the fitted range.
    peaks, background, estimator : int
        Gaussians, background terms (0-2), estimator code (0 least squares, 1 Poisson).
    resolution : float, optional
        Instrument resolution (FWHM, axis units).
    false_alarm : float
        Probability per pixel that noise alone passes.

    Returns
    -------
    numpy.ndarray
        ``(peaks, pixels)``, 1.0 where detected, else 0.0.

    Examples
    --------
    >>> from hyperlum.kernels import cpu
    >>> x = np.arange(100.0)
    >>> rng = np.random.default_rng(0)
    >>> y = 10 + rng.normal(0, 1, (2, 100))
    >>> y[0] += 20 * np.exp(-0.5 * ((x - 50) / 4) ** 2)
    >>> rows = np.empty((12, 2))  # kernel rows of 1 Gaussian + constant
    >>> _ = cpu.fit_chunk(y, x, 1, 1, 0, 50, 1e-7, np.inf, rows)
    >>> obj0, obj = background_objective(y, x, 0), objective(y, x, rows, 1, 0)
    >>> verdict(rows, obj0, obj, x, peaks=1, background=1, estimator=0).tolist()
    [[1.0, 0.0]]
    """
    n = np.asarray(x).size
    m = 3 * peaks + NULL_TERMS
    limit = threshold(n, false_alarm=false_alarm, dof=n - m if estimator == 0 else None)
    t = statistic(obj0, obj, n, m, estimator)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = peaks_valid(rows, peaks, background, x, resolution=resolution) & (t > limit)
        if peaks > 1:  # each peak on its own: Wald statistic of its amplitude
            first_sd = 3 * peaks + background  # the kernel rows: parameters, then their sds
            amp = rows[0 : 3 * peaks : 3]
            amp_sd = rows[first_sd : first_sd + 3 * peaks : 3]
            ok &= (amp / amp_sd) ** 2 > limit
    return ok.astype(np.float64)


def _module(a):
    if hasattr(a, "__cuda_array_interface__") and hasattr(a, "get"):
        import cupy

        return cupy
    return np


def _host(a):
    return np.asarray(a.get() if hasattr(a, "get") else a, dtype=np.float64)
