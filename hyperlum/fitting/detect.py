"""Detection verdict: is a fitted peak a real, resolved peak, or noise / a spike?

Written for the Gaussian; every shape of the registry (:mod:`hyperlum.kernels.shapes`) is
judged the same way through its FWHM (below, "sigma" stands for ``FWHM / 2.3548``, the sigma of
the Gaussian of the same FWHM) and its model, which is subtracted from the data for ``RSS``.

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
  statistic is the likelihood ratio of least squares, ``t = (RSS0 - RSS) / (RSS / (n - m))``,
  with RSS0 that of the parabola alone and RSS that of the fitted Gaussians (held fixed)
  plus a refitted parabola, ``m = 3 k + 3`` for ``k`` Gaussians (nested models). It is used
  for both estimators: one pass over the data, where a Poisson likelihood ratio would need
  a Poisson fit of the background and cost more than the peak fit itself. For a peak of
  known position and width ``t`` would follow Fisher's F(1, n - m); the fit looks for the
  best of many positions and widths, so the threshold includes a trials (look-elsewhere)
  factor: ``t > T`` with
  ``P(F(1, n - m) > T) / 2 = false_alarm / N_eff`` and ``N_eff = TRIALS_PER_CHANNEL * n``
  (``n`` channels). ``TRIALS_PER_CHANNEL = 10`` was calibrated by simulation
  (white Gaussian and Poisson noise, constant and linear background, 64 to 1024 channels,
  8,000-20,000 pixels each): with every rule above, at ``false_alarm=1e-3`` 0% to 0.025% of
  noise-only pixels were detected, at 1e-2 0.03% to 0.2%: the rate is an upper bound,
  conservative by 4x or more
  (``tests/test_detect.py`` checks it under a simulated null).

With several peaks each peak ``k`` is also tested on its own by its Wald statistic
``(amplitude_k / amplitude_k_std)^2 > T``, in addition to the whole model's likelihood ratio.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.special import chdtri, fdtri

from hyperlum.kernels.constants import output_rows
from hyperlum.kernels.shapes import get_shape

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


def smooth_rss(y, x, peaks=None, *, threads=None):
    """Residual sums of squares of the smooth background alone, and with the fitted peaks.

    The background is a parabola in ``x`` (whatever background the fit has), refitted here:
    a broad hump or a curved baseline that a parabola describes as well is not a peak. The
    Gaussians are added with their fitted parameters held fixed, so that the two models
    are nested and compared with the same background. One numba pass over the data
    (:func:`hyperlum.kernels.detect.smooth_rss`).

    Parameters
    ----------
    y : numpy.ndarray or cupy.ndarray
        Pixels x channels (a CuPy block is copied to the host).
    x : numpy.ndarray
        Channel positions.
    peaks : numpy.ndarray, optional
        ``(3 k, pixels)``: amplitude, centre, sigma of each of ``k`` Gaussians (NaN: none).
    threads : int, optional
        Threads over the pixels; default: every CPU this process may use.

    Returns
    -------
    rss0, rss1 : numpy.ndarray
        Per pixel: the parabola alone; the peaks plus the parabola.

    Examples
    --------
    >>> x = np.arange(10.0)
    >>> y = np.stack([1 + 0.5 * x + 0.1 * x**2, np.where(x == 5, 4.0, 1.0)])
    >>> spike = np.array([[3.0, 3.0], [5.0, 5.0], [0.01, 0.01]])
    >>> rss0, rss1 = smooth_rss(y, x, spike)
    >>> np.round(rss0, 6).tolist(), np.round(np.abs(rss1), 6).tolist()
    ([0.0, 6.981818], [6.981818, 0.0])
    """
    from hyperlum.kernels.detect import smooth_rss as kernel

    if hasattr(y, "__cuda_array_interface__") and hasattr(y, "get"):
        y = y.get()
    y = np.asarray(y)
    if y.dtype.kind not in "fiu":
        y = y.astype(np.float64)
    y = np.ascontiguousarray(y)
    x = np.asarray(x, dtype=np.float64)
    half = max(0.5 * abs(x[-1] - x[0]), 1e-300)
    t = (x - 0.5 * (x[0] + x[-1])) / half
    terms = min(NULL_TERMS, x.size)
    # the kernel sums the moments V^T z of V = [1, t, t^2]; Q^T z = R^-T V^T z for V = Q R
    # (a pseudo-inverse: R is singular when the positions repeat)
    P = np.zeros((NULL_TERMS, NULL_TERMS))
    P[:terms, :terms] = np.linalg.pinv(np.linalg.qr(np.vander(t, terms, increasing=True))[1]).T
    if peaks is None:
        peaks = np.empty((0, y.shape[0]))
    peaks = np.ascontiguousarray(peaks, dtype=np.float64)
    npix = y.shape[0]
    rss0 = np.empty(npix)
    rss1 = np.empty(npix)
    steps = np.diff(x)
    h = float(steps[0]) if x.size > 1 and np.allclose(steps, steps[0], rtol=1e-9) else 0.0
    args = (y, x, h if h > 0 else 0.0, t, P, peaks, rss0, rss1)
    threads = min(threads or len(os.sched_getaffinity(0)), max(1, npix // 256))
    if threads <= 1:
        kernel(*args, 0, npix)
    else:
        bounds = [b * npix // threads for b in range(threads + 1)]
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda b: kernel(*args, bounds[b], bounds[b + 1]), range(threads)))
    return rss0, rss1


def peak_rss(y, x, rows, *, peaks, shape="gaussian", threads=None):
    """:func:`smooth_rss` for the fitted peaks of any shape: ``(rss0, rss1)`` per pixel.

    Gaussians go to the one-pass kernel as they are; the peaks of another shape are evaluated
    (numpy, the shape's ``evaluate``) and subtracted from the data, whose RSS after the
    parabola is then ``rss1``.

    Parameters
    ----------
    y : numpy.ndarray or cupy.ndarray
        Pixels x channels.
    x : numpy.ndarray
        Channel positions.
    rows : numpy.ndarray
        The kernels' ``(rows, pixels)`` output: the peaks' parameters first.
    peaks : int
        Number of peaks.
    shape : str
        The peaks' shape (a key of :data:`hyperlum.kernels.shapes.SHAPES`).
    threads : int, optional
        As for :func:`smooth_rss`.

    Examples
    --------
    >>> x = np.arange(40.0)
    >>> y = 5 + 8 / (1 + ((x - 20) / 2) ** 2)[None]
    >>> rss0, rss1 = peak_rss(y, x, np.array([[8.0], [20], [2]]), peaks=1, shape="lorentzian")
    >>> bool(rss0[0] > 10), abs(round(float(rss1[0]), 9))
    (True, 0.0)
    """
    s = get_shape(shape)
    npar = s.n_params
    if shape == "gaussian":
        return smooth_rss(y, x, rows[: npar * peaks], threads=threads)
    if hasattr(y, "__cuda_array_interface__") and hasattr(y, "get"):
        y = y.get()
    rss0, _ = smooth_rss(y, x, threads=threads)
    z = np.array(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    for k in range(peaks):
        params = np.asarray(rows[npar * k : npar * (k + 1)], dtype=np.float64).T
        ok = np.isfinite(params).all(axis=1) & (params[:, 0] > 0) & (params[:, 2] > 0)
        with np.errstate(all="ignore"):
            z[ok] -= s.evaluate(x, params[ok])
    rss1, _ = smooth_rss(z, x, threads=threads)
    return rss0, rss1


def statistic(rss0, rss1, n, m):
    """The F-type likelihood-ratio statistic ``(rss0 - rss1) / (rss1 / (n - m))`` of a model
    (``rss1``, ``m`` parameters) against a nested one (``rss0``), over ``n`` channels."""
    rss0 = np.asarray(rss0, dtype=np.float64)
    rss1 = np.asarray(rss1, dtype=np.float64)
    s2 = rss1 / max(n - m, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(s2 > 0, (rss0 - rss1) / s2, np.where(rss0 > rss1, np.inf, 0.0))
    return np.where(np.isfinite(rss1), t, np.nan)


def peak_valid(amp, centre, fwhm, state, x, *, resolution=None):
    """Converged, finite, positive, resolved and located (see the module docstring); ``fwhm``
    the peak's FWHM."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = min(x[0], x[-1]), max(x[0], x[-1])
    xs = np.sort(x)
    step = np.diff(xs)
    with np.errstate(invalid="ignore"):
        i = np.clip(np.searchsorted(xs, np.nan_to_num(centre, nan=lo)), 1, x.size - 1)
        local = step[i - 1]
        need = MIN_CHANNELS * local
        if resolution is not None:
            need = np.maximum(need, RESOLUTION_ALLOWANCE * resolution)
        return (
            (state == 0)
            & np.isfinite(amp)
            & np.isfinite(centre)
            & np.isfinite(fwhm)
            & (amp > 0)
            & (fwhm >= need)
            & (centre >= lo + local)
            & (centre <= hi - local)
            & (fwhm < 0.5 * (hi - lo) * _FWHM_PER_SIGMA)
        )


def peaks_valid(rows, npk, nbg, x, *, resolution=None, shape="gaussian"):
    """:func:`peak_valid` for each peak of the kernels' rows: ``(npk, pixels)`` bool."""
    s = get_shape(shape)
    npar = s.n_params
    state = rows[output_rows(npk, nbg, npar).state]
    out = []
    for k in range(npk):
        params = np.moveaxis(np.asarray(rows[npar * k : npar * (k + 1)]), 0, -1)
        with np.errstate(invalid="ignore"):
            width = s.fwhm(params)
        out.append(
            peak_valid(params[..., 0], params[..., 1], width, state, x, resolution=resolution)
        )
    return np.array(out).reshape(npk, -1)


def verdict(
    rows,
    rss0,
    rss1,
    x,
    *,
    peaks,
    background,
    resolution=None,
    false_alarm=FALSE_ALARM,
    shape="gaussian",
):
    """``detected`` per peak for a fit of a fixed number of peaks (the rule of this module).

    Parameters
    ----------
    rows : numpy.ndarray
        The kernels' ``(rows, pixels)`` output (:func:`hyperlum.kernels.pixel.fit_pixel`).
    rss0, rss1 : numpy.ndarray
        Per pixel, from :func:`peak_rss`: the parabola alone; the fitted peaks plus it.
    x : numpy.ndarray
        Channel positions of the fitted range.
    peaks, background : int
        Peaks and background terms (0-4) of the fit.
    resolution : float, optional
        Instrument resolution (FWHM, axis units).
    false_alarm : float
        Probability per pixel that noise alone passes.
    shape : str
        The peaks' shape (a key of :data:`hyperlum.kernels.shapes.SHAPES`).

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
    >>> rows = np.empty((output_rows(1, 1).total, 2))  # kernel rows of 1 Gaussian + constant
    >>> _ = cpu.fit_chunk(y, x, 1, 1, 0, 50, 1e-7, np.inf, rows)
    >>> rss0, rss1 = smooth_rss(y, x, rows[:3])
    >>> verdict(rows, rss0, rss1, x, peaks=1, background=1).tolist()
    [[1.0, 0.0]]
    """
    n = np.asarray(x).size
    npar = get_shape(shape).n_params
    m = npar * peaks + NULL_TERMS
    limit = threshold(n, false_alarm=false_alarm, dof=n - m)
    t = statistic(rss0, rss1, n, m)
    with np.errstate(invalid="ignore", divide="ignore"):
        valid = peaks_valid(rows, peaks, background, x, resolution=resolution, shape=shape)
        ok = valid & (t > limit)
        if peaks > 1:  # each peak on its own: Wald statistic of its amplitude
            first_sd = npar * peaks + background  # the kernel rows: parameters, then their sds
            amp = rows[0 : npar * peaks : npar]
            amp_sd = rows[first_sd : first_sd + npar * peaks : npar]
            ok &= (amp / amp_sd) ** 2 > limit
    return ok.astype(np.float64)


def clear_spike_remnants(
    verdict, rows, pixels, replaced, x, *, reach=3.0, narrow=3.0, shape="gaussian"
):
    """Undo ``detected`` for a narrow peak whose core holds a channel the spike filter replaced.

    A cosmic ray wider than the filter's window is cut down, not removed: what is left
    is fitted as a narrow peak with the spike's position. A peak counts as such a remnant
    when its sigma is at most ``narrow`` channels and a replaced channel lies within
    ``reach`` sigma (plus one channel) of its centre; a broad peak that a spike merely hit
    keeps its verdict. ``verdict`` is changed in place.

    Parameters
    ----------
    verdict : numpy.ndarray
        ``(peaks, pixels)`` from :func:`verdict` (1.0 detected).
    rows : numpy.ndarray
        The kernels' ``(rows, pixels)`` output: amplitude, centre, sigma of each peak first.
    pixels : numpy.ndarray of int
        The pixels whose spectra held a spike.
    replaced : numpy.ndarray of bool
        ``(len(pixels), channels)``: the channels replaced.
    x : numpy.ndarray
        Channel positions.
    shape : str
        The peaks' shape: its FWHM / 2.3548 stands for sigma.

    Examples
    --------
    >>> x = np.arange(100.0)
    >>> rows = np.array([[50.0, 50, 50], [40, 70, 40], [2, 2, 9]])  # amplitude, centre, sigma
    >>> v = np.ones((1, 3))
    >>> hit = np.zeros((2, 100), bool); hit[:, 41] = True  # pixels 0 and 2: a spike cut at 41
    >>> clear_spike_remnants(v, rows, np.array([0, 2]), hit, x)
    >>> v.tolist()  # pixel 2's peak is broad: a real peak that a spike hit
    [[0.0, 1.0, 1.0]]
    """
    x = np.asarray(x, dtype=np.float64)
    step = np.abs(np.diff(x)).max() if x.size > 1 else 0.0
    shp = get_shape(shape)
    npar = shp.n_params
    for k in range(verdict.shape[0]):
        params = np.moveaxis(np.asarray(rows[npar * k : npar * (k + 1), pixels]), 0, -1)
        c = params[:, 1, None]
        with np.errstate(invalid="ignore"):
            s = shp.fwhm(params)[:, None] / _FWHM_PER_SIGMA
        with np.errstate(invalid="ignore"):
            near = replaced & (np.abs(x[None, :] - c) <= reach * s + step) & (s <= narrow * step)
        verdict[k, pixels[near.any(axis=1)]] = 0.0
