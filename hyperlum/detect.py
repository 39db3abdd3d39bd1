"""Detection verdict: is a fitted Gaussian a real, resolved peak, or noise / a spike?

A converged optimiser is not a found peak: on a spectrum of noise alone the fit still ends
somewhere, often on a one-channel fluctuation. A peak is **detected** when all of these hold:

* the fit converged (``state == 0``) with finite parameters and a positive amplitude;
* it is **resolved**: its FWHM is at least one channel (the local step of the axis at its
  centre) and at least 0.75 x ``resolution`` when the instrument's resolution (FWHM, axis
  units) is given (a cosmic-ray spike fits a Gaussian narrower than one channel);
* it is **located**: its centre lies inside the fitted range by at least one channel and its
  sigma is below half the range (wider "peaks" are background curvature);
* it is **significant** against the background-only model. The statistic is the likelihood
  ratio: for least squares ``t = (RSS0 - RSS) / (RSS / (n - m))`` (RSS0 the background-only
  residual sum of squares, closed form), for the Poisson estimator the deviance difference
  ``t = D0 - D``. For a peak of known position and width ``t`` would follow chi-square with
  one degree of freedom; the fit looks for the best of many positions and widths, so the
  threshold includes a trials (look-elsewhere) factor: ``t > T`` with
  ``P(chi2_1 > T) / 2 = false_alarm / N_eff`` and ``N_eff = TRIALS_PER_CHANNEL * n``
  (``n`` channels; for least squares, whose noise level comes from the residuals, Fisher's
  F(1, n - m) in place of chi2_1). ``TRIALS_PER_CHANNEL = 10`` was calibrated by simulation
  (white Gaussian and Poisson noise, constant and linear background, 64 to 1024 channels,
  10,000-20,000 pixels each): at ``false_alarm=1e-3`` 0.03% to 0.06% of noise-only pixels
  were detected, at 1e-2 0.2% to 0.3%: the rate is an upper bound, conservative by 2-4x
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
#: A fitted FWHM below this fraction of the instrument's resolution is not resolved.
RESOLUTION_ALLOWANCE = 0.75
_FWHM_PER_SIGMA = 2.3548200450309493
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


def background_objective(y, x, nbg, est):
    """The background-only model's objective per pixel (RSS, or Poisson deviance).

    ``y`` is pixels x channels (numpy or CuPy), ``x`` the channel positions; ``nbg`` 0, 1 or 2
    (none, constant, linear: ``b0 + b1 (x - middle of the range)``); ``est`` 0 (least
    squares) or 1 (Poisson). Returns a float64 vector on the host.
    """
    per = max(1, _BLOCK_BYTES // (8 * max(y.shape[-1], 1)))
    if y.shape[0] <= per:
        return _background_block(y, np.asarray(x, dtype=np.float64), nbg, est)
    return np.concatenate(
        [_background_block(y[s : s + per], x, nbg, est) for s in range(0, y.shape[0], per)]
    )


def _background_block(y, x, nbg, est):
    xp = _module(y)
    y = y.astype(xp.float64, copy=False)
    n = y.shape[-1]
    if est == 0:
        s2 = xp.einsum("ij,ij->i", y, y)
        if nbg == 0:
            return _host(s2)
        sy = y.sum(axis=-1)
        if nbg == 1:
            return _host(s2 - sy * sy / n)
        d = xp.asarray(x - 0.5 * (x[0] + x[-1]))
        dd = d - d.mean()
        sxy = y @ dd
        return _host(s2 - sy * sy / n - sxy * sxy / float(np.sum(_host(dd) ** 2)))
    yp = xp.maximum(y, 0.0)
    ylogy = xp.where(yp > 0, yp * xp.log(xp.where(yp > 0, yp, 1.0)), 0.0).sum(axis=-1)
    if nbg == 0:  # the Poisson model f = 0 cannot hold any count
        return _host(xp.where(yp.sum(axis=-1) > 0, xp.inf, 0.0))
    if nbg == 1:
        sy = yp.sum(axis=-1)
        f = xp.maximum(sy / n, 1e-30)
        return _host(2.0 * (ylogy - sy * xp.log(f)))
    # Linear Poisson background: a few Newton steps from the least-squares line.
    d = xp.asarray(x - 0.5 * (x[0] + x[-1]))
    b0 = yp.mean(axis=-1)
    b1 = (yp @ (d - d.mean())) / float(np.sum((_host(d) - float(_host(d).mean())) ** 2))
    for _ in range(6):
        f = xp.maximum(b0[:, None] + b1[:, None] * d, 1e-30)
        r = yp / f - 1.0
        w = yp / (f * f)
        g0, g1 = r.sum(-1), (r * d).sum(-1)
        h00, h01, h11 = w.sum(-1), (w * d).sum(-1), (w * d * d).sum(-1)
        det = h00 * h11 - h01 * h01
        ok = det > 0
        det = xp.where(ok, det, 1.0)
        b0 = b0 + xp.where(ok, (h11 * g0 - h01 * g1) / det, 0.0)
        b1 = b1 + xp.where(ok, (h00 * g1 - h01 * g0) / det, 0.0)
    f = xp.maximum(b0[:, None] + b1[:, None] * d, 1e-30)
    dev = 2.0 * ((f - yp).sum(-1) + ylogy - (yp * xp.log(f)).sum(-1))
    return _host(dev)


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
        need = local if resolution is None else np.maximum(local, RESOLUTION_ALLOWANCE * resolution)
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


def objective(rows, npk, nbg, n):
    """The fitted objective (RSS or deviance) per pixel from the kernel's reduced chi-square.

    ``rows`` is the kernels' ``(rows, pixels)`` output for ``npk`` Gaussians and ``nbg``
    background terms (:func:`hyperlum.kernels.pixel.fit_pixel`), ``n`` the channels.
    """
    m = 3 * npk + nbg
    return rows[2 * m + npk] * max(n - m, 1)


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
    >>> rows = np.empty((9, 2))
    >>> _ = cpu.fit_chunk(y, x, 1, 1, 0, 50, 1e-7, np.inf, rows)
    >>> obj0 = background_objective(y, x, 1, 0)
    >>> verdict(rows, obj0, x, peaks=1, background=1, estimator=0).tolist()
    [[1.0, 0.0]]
    """
    n = np.asarray(x).size
    m = 3 * peaks + background
    limit = threshold(n, false_alarm=false_alarm, dof=n - m if estimator == 0 else None)
    t = statistic(obj0, objective(rows, peaks, background, n), n, m, estimator)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = peaks_valid(rows, peaks, background, x, resolution=resolution) & (t > limit)
        if peaks > 1:  # each peak on its own: Wald statistic of its amplitude
            amp = rows[0 : 3 * peaks : 3]
            amp_sd = rows[m : m + 3 * peaks : 3]
            ok &= (amp / amp_sd) ** 2 > limit
    return ok.astype(np.float64)


def _module(a):
    if hasattr(a, "__cuda_array_interface__") and hasattr(a, "get"):
        import cupy

        return cupy
    return np


def _host(a):
    return np.asarray(a.get() if hasattr(a, "get") else a, dtype=np.float64)
