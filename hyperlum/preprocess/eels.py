"""EELS preprocessing for whole spectrum images: zero-loss peak, power-law background, edges.

* :func:`zlp_centre` fits a Gaussian to the zero-loss peak (ZLP) of every pixel through
  :func:`hyperlum.fit` (sub-channel centres); :func:`align_zlp` moves the ZLP of every pixel to
  0 eV and applies the same shifts to the matching core-loss spectra (DualEELS).
* :func:`subtract_powerlaw` fits ``A * E**-r`` per pixel in a window before an edge (the
  fitting engine with no peak and the power-law background) and subtracts it from the whole
  spectrum, both on the CPU or both on the GPU.
* :func:`edge_intensity` integrates a window; :func:`normalise` divides each spectrum by its
  total core-loss intensity; :func:`~hyperlum.analysis.profile.line_profile` profiles a map across
  an interface in calibrated distance.

Every function takes a HyperSpy Signal1D (lazy or not) or a numpy / dask array with the
spectral axis last (then ``axis=`` gives the energies) and gives back the same kind. Any real
dtype up to 64 bits is accepted (float16 is computed in float32). A NaN, infinite or saturated
channel (integer data at its dtype's largest value, or at ``saturation=``) is flagged in its own
pixel and never stops the run; the other pixels come out exactly as without it.
"""

import contextlib
import functools
import math
import threading

import numpy as np

from hyperlum._validate import choice, integer, positive, value_range
from hyperlum.analysis.profile import line_profile
from hyperlum.fitting._backend import DEVICES, resolve_device
from hyperlum.fitting.fit import kernel_dtype
from hyperlum.fitting.result import FitResult
from hyperlum.io.cube import as_cube, is_dask, is_signal, map_spectra
from hyperlum.kernels.backgrounds import BACKGROUNDS as BACKGROUND_MODELS
from hyperlum.kernels.constants import BAD_INPUT, LSE, STATES, n_outputs
from hyperlum.preprocess._signals import map_out, spectra_out

__all__ = [
    "align_zlp",
    "edge_intensity",
    "line_profile",
    "normalise",
    "state_counts",
    "subtract_powerlaw",
    "zlp_centre",
]


# -- input checks shared by every function --------------------------------------------------
def _checked_cube(data, axis):
    """:func:`as_cube` plus the dtypes the EELS functions accept (float16 to float64, any int)."""
    cube = as_cube(data, axis)
    dt = np.dtype(cube.data.dtype)
    if dt.kind not in "uif" or dt.itemsize > 8:
        raise TypeError(
            f"data must hold integers or floats of at most 64 bits, got dtype {dt.name}"
        )
    return cube


def _saturation_level(saturation, dtype):
    """The count at or above which a channel is saturated: ``saturation`` if given, else the
    largest value of an integer dtype (a full detector), else infinity (floats)."""
    if saturation is not None:
        return positive("saturation", saturation)
    if np.dtype(dtype).kind in "ui":
        return float(np.iinfo(dtype).max)
    return math.inf


def _flagged(block, level):
    """Float64 copy of ``block`` with non-finite and saturated channels set to NaN."""
    y = np.asarray(block, dtype=np.float64)
    bad = ~np.isfinite(y)
    if level < math.inf:
        bad |= y >= level
    return np.where(bad, np.nan, y) if bad.any() else y


# -- zero-loss peak -------------------------------------------------------------------------
def _windows(block, h):
    """Per pixel, the ``2h + 1`` channels around its maximum, then the maximum's index.

    Channels beyond the ends of the spectrum are NaN (the fit flags such a pixel).
    """
    y = np.asarray(block, dtype=np.float64)
    n = y.shape[-1]
    imax = np.argmax(np.where(np.isfinite(y), y, -np.inf), axis=-1)
    idx = imax[..., None] + np.arange(-h, h + 1)
    inside = (idx >= 0) & (idx < n)
    win = np.take_along_axis(y, np.clip(idx, 0, n - 1), axis=-1)
    win = np.where(inside, win, np.nan)
    return np.concatenate([win, imax[..., None].astype(np.float64)], axis=-1)


def _mean_spectrum(d):
    """Mean spectrum over the pixels, leaving out NaN and infinite channels."""
    import warnings

    n = d.shape[-1]
    if is_dask(d):
        import dask.array as da

        flat = d.reshape(-1, n).map_blocks(_flagged, math.inf, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN channels
            mean = da.nanmean(flat, axis=0).compute()
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(_flagged(d.reshape(-1, n), math.inf), axis=0)
    if not np.isfinite(mean).any():
        raise ValueError("data holds no finite value: the ZLP window cannot be sized")
    return mean


def _half_width(mean_spectrum):
    """Half-maximum width (channels) of the highest peak of a spectrum, at least 2."""
    y = np.asarray(mean_spectrum, dtype=np.float64)
    y = np.where(np.isfinite(y), y, -np.inf)
    m = int(np.argmax(y))
    base = float(np.min(y[np.isfinite(y)]))
    half = base + 0.5 * (y[m] - base)
    il = m
    while il > 0 and y[il - 1] > half:
        il -= 1
    ir = m
    while ir < y.size - 1 and y[ir + 1] > half:
        ir += 1
    return max(2, math.ceil(ir - il + 1))


def zlp_centre(data, *, axis=None, window=None, background="none", device="auto", saturation=None):
    """Sub-channel centre of the zero-loss peak of every pixel, by a Gaussian fit.

    Each pixel is fitted in its own window centred on its brightest channel, so a ZLP that
    drifts by many channels across the scan is still fitted on its core.

    Parameters
    ----------
    data : hyperspy Signal1D, numpy.ndarray or dask.array.Array
        Low-loss spectra (spectral axis last for arrays).
    axis : array_like, optional
        Energies of the channels for array input.
    window : float, optional
        Half-width of the fit window in axis units. Default: the full width at half maximum
        of the mean spectrum's highest peak (at least 2 channels; for lazy data the mean
        spectrum costs one pass over the data).
    background : {"none", "constant"}
        Background under the Gaussian inside the window.
    device : {"auto", "cpu", "cuda"}
        Where to fit (see :func:`hyperlum.fit`).
    saturation : float, optional
        Counts at or above which a channel is saturated. Default: the largest value of an
        integer dtype (a full detector), none for floats.

    Returns
    -------
    FitResult
        As from :func:`hyperlum.fit`, in the units of the energy axis: ``res["centre"]`` is the
        ZLP centre map; ``sigma``, ``fwhm``, ``amplitude``, ``state``, ``converged``... too.
        A pixel with a NaN, infinite or saturated channel in its fit window is flagged
        ``bad_input`` (state 3, centre NaN); the other pixels are fitted as if it were not
        there (NaN and inf channels are left out of the mean spectrum that sizes the window).

    Examples
    --------
    >>> e = np.arange(-20.0, 20.0, 0.5)
    >>> shifts = np.array([[0.13, -0.31], [0.72, -1.05]])
    >>> cube = 1e5 * np.exp(-0.5 * ((e - shifts[..., None]) / 0.6) ** 2)
    >>> res = zlp_centre(cube, axis=e, device="cpu")
    >>> np.round(res.maps["centre"], 4)
    array([[ 0.13, -0.31],
           [ 0.72, -1.05]])
    """
    from hyperlum.fitting.fit import fit

    choice("background", background, ("none", "constant"))
    cube = _checked_cube(data, axis)
    level = _saturation_level(saturation, cube.data.dtype)
    x = cube.x
    n = x.size
    d = cube.data
    if n < 5:
        raise ValueError(f"the ZLP fit needs at least 5 channels, the spectrum has {n}")
    if window is None:
        h = _half_width(_mean_spectrum(d))
    else:
        width = positive("window", window)
        h = max(2, math.ceil(width / float(np.median(np.abs(np.diff(x))))))
    h = min(h, (n - 1) // 2)
    if background == "constant":
        h = max(h, 3)
    stacked = map_spectra(functools.partial(_windows, h=h), d, 2 * h + 2)
    local = np.arange(-h, h + 1, dtype=np.float64)
    res = fit(
        stacked[..., :-1],
        axis=local,
        peaks=1,
        background=background,
        device=device,
        saturation=level if level < math.inf else None,
        despike=False,  # the ZLP is one or two channels wide: a spike filter would cut it
    )
    imax = stacked[..., -1]
    pos = imax + res.maps["centre"]  # fractional channel index of the centre
    chan = np.arange(n, dtype=np.float64)
    step = np.gradient(x)

    def to_axis(p):
        return np.interp(p, chan, x)

    def step_at(p):
        return np.abs(np.interp(p, chan, step))

    if is_dask(pos):
        centre = pos.map_blocks(to_axis, dtype=np.float64)
        scale = pos.map_blocks(step_at, dtype=np.float64)
    else:
        centre = to_axis(pos)
        scale = step_at(pos)
    maps = dict(res.maps)
    maps["centre"] = centre
    for name in (
        "centre_std",
        "sigma",
        "sigma_std",
        "fwhm",
        "fwhm_std",
        "intensity",
        "intensity_std",
    ):
        maps[name] = res.maps[name] * scale
    options = dict(res.options, window_channels=2 * h + 1, axis_units=cube.signal_axis.get("units"))
    return FitResult(maps, cube.nav_axes, options, cube.signal_axis, cube.title)


def _shift_block(block, shifts, dtype):
    """``out[..., i] = y[..., i + s]`` (linear interpolation, NaN outside) per pixel."""
    y = np.asarray(block, dtype=np.float64)
    n = y.shape[-1]
    pos = np.arange(n) + np.asarray(shifts, dtype=np.float64)[..., None]
    i0 = np.floor(pos)
    frac = pos - i0
    i0 = i0.astype(np.int64)
    ok = (i0 >= 0) & (i0 <= n - 1) & ((frac == 0) | (i0 + 1 <= n - 1))
    a = np.take_along_axis(y, np.clip(i0, 0, n - 1), axis=-1)
    b = np.take_along_axis(y, np.clip(i0 + 1, 0, n - 1), axis=-1)
    with np.errstate(invalid="ignore"):  # inf - inf at a hot channel: NaN, as wanted
        out = np.where(ok, a + frac * (np.where(frac > 0, b, a) - a), np.nan)
    return out.astype(dtype, copy=False)


def _shift_column(block, shifts, dtype):
    return _shift_block(block, shifts[..., 0], dtype)


def align_zlp(low_loss, *others, centres=None, crop=True):
    """Shift every pixel so that its zero-loss peak sits at 0 eV; shift ``others`` alike.

    The median ZLP centre is taken off the energy axis (calibration), and each pixel's
    difference from it is applied to its spectrum by linear interpolation (sub-channel
    shifts). The same energy shifts are applied to each signal of ``others`` (e.g. the
    core-loss of DualEELS), each on its own axis. Pixels whose ZLP fit failed (a NaN,
    infinite or saturated channel at the peak, see :func:`zlp_centre`) are only recalibrated;
    how many there were is in ``metadata.Signal.zlp_unaligned_pixels`` of every output.

    Parameters
    ----------
    low_loss : hyperspy Signal1D
        Low-loss spectra with a ZLP (uniform energy axis).
    *others : hyperspy Signal1D
        Signals recorded with ``low_loss`` (same navigation shape, uniform energy axis).
    centres : FitResult or array_like, optional
        ZLP centres from :func:`zlp_centre`; computed when not given.
    crop : bool
        Keep only the channels that hold data in every pixel after the shifts (True), or keep
        every channel and fill the ends with NaN.

    Returns
    -------
    tuple of hyperspy Signal1D
        ``(aligned_low_loss, *aligned_others)``, new signals (the input is left as it was).

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> e = np.arange(-30.0, 30.0, 0.5)
    >>> ll = hs.signals.Signal1D(1e4 * np.exp(-0.5 * ((e - np.array([[-1.2], [-0.7]])) / 0.8) ** 2))
    >>> ll.axes_manager[-1].offset, ll.axes_manager[-1].scale = -30.0, 0.5
    >>> (al,) = align_zlp(ll)
    >>> np.round(zlp_centre(al).maps["centre"], 3)
    array([0., 0.])
    """
    signals = (low_loss, *others)
    for k, s in enumerate(signals):
        if not is_signal(s) or s.axes_manager.signal_dimension != 1:
            what = "low_loss" if k == 0 else f"others[{k - 1}]"
            raise TypeError(f"{what} must be a HyperSpy Signal1D, got {type(s).__name__}")
        ax = s.axes_manager.signal_axes[0]
        if not getattr(ax, "is_uniform", True):
            raise ValueError(f"{s} needs a uniform energy axis to be shifted")
    nav = low_loss.data.shape[:-1]
    for k, s in enumerate(others):
        if s.data.shape[:-1] != nav:
            raise ValueError(
                f"others[{k}] has navigation shape {s.data.shape[:-1]}, the low-loss has {nav}"
            )
    if centres is None:
        centres = zlp_centre(low_loss)
    if isinstance(centres, FitResult):
        centres = centres.maps["centre"]
    c = np.asarray(centres.compute() if is_dask(centres) else centres, dtype=np.float64)
    if c.shape != nav:
        raise ValueError(f"centres must have the navigation shape {nav}, got {c.shape}")
    finite = np.isfinite(c)
    if not finite.any():
        raise ValueError("no pixel has a finite ZLP centre: nothing to align on")
    common = float(np.median(c[finite]))
    resid = np.where(finite, c - common, 0.0)
    out = []
    for s in signals:
        ax = s.axes_manager.signal_axes[0]
        n = ax.size
        shifts = resid / ax.scale
        lo = max(0, math.ceil(-shifts.min() - 1e-9)) if crop else 0
        hi = min(n, n - math.ceil(shifts.max() - 1e-9)) if crop else n
        if hi - lo < 2:
            raise ValueError(f"the ZLP shifts leave fewer than 2 channels of {s}")
        dtype = np.result_type(s.data.dtype, np.float32)
        if is_dask(s.data):
            fn = functools.partial(_shift_column, dtype=dtype)
            moved = map_spectra(fn, s.data, n, dtype=dtype, extra=(shifts[..., None],))
        else:
            moved = _shift_block(s.data, shifts, dtype)
        axis = ax.get_axis_dictionary()
        axis.update(size=hi - lo, offset=ax.offset - common + lo * ax.scale)
        new = spectra_out(moved[..., lo:hi], s, axis)
        new.metadata.set_item("Signal.zlp_shift_median", common)
        new.metadata.set_item("Signal.zlp_unaligned_pixels", int(np.sum(~finite)))
        out.append(new)
    return tuple(out)


# -- power-law background -------------------------------------------------------------------
def _window_slice(name, value, x, units):
    keep = value_range(name, value, x, units)
    idx = np.flatnonzero(keep)
    if idx.size < 3:
        raise ValueError(f"{name}={tuple(value)!r} holds {idx.size} channel(s), at least 3 needed")
    return int(idx[0]), int(idx[-1]) + 1


#: The power-law maps, in the order :func:`_powerlaw_arrays` stacks them.
ROWS = ("A", "r", "chisq", "state", "iterations", "nonpositive", "saturated", "nonfinite")
#: The engine's background model of :func:`subtract_powerlaw`, and its number of parameters.
_KIND, _NBG = BACKGROUND_MODELS["powerlaw"]


def _engine_rows(window, xw, max_iter, tol, level, device):
    """The engine's rows (``n_outputs(0, 2)`` x pixels) for the power law fitted to ``window``
    (pixels x channels of the fit window at ``xw``): no peak, least squares."""
    if device == "cuda":
        from hyperlum.kernels import cuda

        # float64 on the GPU too: two parameters over a short window cost little at any rate,
        # and the background under an edge (often 10-100x the edge's counts) is subtracted
        # exactly as on the CPU
        return cuda.fit_chunk(
            window, xw, 0, _NBG, LSE, max_iter, tol, level, background=_KIND, precision="float64"
        )
    from hyperlum.kernels import cpu  # numba: imported when first needed

    # float64 whatever the input: the window is copied anyway (it is a few channels of each
    # spectrum), and the same counts in another dtype then give the same fit to the last bit
    window = np.ascontiguousarray(window, dtype=np.float64)
    out = np.empty((n_outputs(0, _NBG), window.shape[0]))
    return cpu.fit_chunk(window, xw, 0, _NBG, LSE, max_iter, tol, level, out, background=_KIND)


def _powerlaw_arrays(block, x, lo, hi, max_iter, tol, level, dtype, device):
    """Fit and subtract one block: ``(subtracted[..., channel], rows[..., ROWS])``.

    The window goes to the engine as it is (a saturated or non-finite channel there makes the
    pixel bad input). A window with fewer than 2 positive channels holds no power law: such a
    pixel is bad input without a fit. For the subtraction, saturated and non-finite channels
    become NaN: elsewhere than in the window only they are NaN in the subtracted spectrum.
    """
    nav = block.shape[:-1]
    n = block.shape[-1]
    flat = np.ascontiguousarray(block.reshape(-1, n))
    if flat.dtype.kind == "f" and flat.dtype.itemsize < 4:
        flat = flat.astype(np.float32)  # numba has no float16
    nonfinite = np.zeros(flat.shape[0])
    saturated = np.zeros(flat.shape[0])
    if flat.dtype.kind == "f":
        nonfinite = np.sum(~np.isfinite(flat), axis=-1, dtype=np.float64)
    if level < math.inf:
        saturated = np.sum(flat >= level, axis=-1, dtype=np.float64)
    window = flat[:, lo:hi]
    nonpositive = np.sum(~(window > 0), axis=-1, dtype=np.float64)
    fit = (hi - lo) - nonpositive >= 2
    m = 2 * _NBG  # the parameters and their standard deviations come first
    rows = np.full((n_outputs(0, _NBG), flat.shape[0]), np.nan)
    rows[m + 1 :] = [[BAD_INPUT], [0]]  # state, iterations
    if fit.all():
        rows = _engine_rows(window, x[lo:hi], max_iter, tol, level, device)
    elif fit.any():
        rows[:, fit] = _engine_rows(window[fit], x[lo:hi], max_iter, tol, level, device)
    params = rows[:_NBG]
    chisq, state, iterations = rows[m], rows[m + 1], rows[m + 2]
    if nonfinite.any() or saturated.any():
        flat = _flagged(flat, level)
    flat = flat.astype(kernel_dtype(flat), copy=False)
    from hyperlum.kernels import powerlaw

    xref = 0.5 * (x[lo] + x[hi - 1])  # the engine's reference: the middle of the window
    sub = np.empty((flat.shape[0], n), dtype=dtype)
    if device == "cuda":  # the same code as a CUDA kernel
        from hyperlum.kernels.powerlaw_cuda import subtract_chunk_cuda

        subtract_chunk_cuda(flat, x, xref, params, sub)
    else:
        powerlaw.subtract_chunk(flat, x, xref, params, sub)
    a = params[0] * np.exp(params[1] * math.log(xref))  # the background at x = 1
    table = np.stack([a, params[1], chisq, state, iterations, nonpositive, saturated, nonfinite])
    return sub.reshape(*nav, n), table.T.reshape(*nav, len(ROWS))


#: Held by a chunk on numba's CUDA simulator (:func:`_one_chunk_at_a_time`).
_SIMULATOR_LOCK = threading.Lock()


def _one_chunk_at_a_time(device):
    """A lock on numba's CUDA simulator, which runs kernels from one host thread at a time
    (the fit's and the subtraction's of two dask chunks would mix); nothing on a GPU."""
    import numba

    simulated = device == "cuda" and numba.config.ENABLE_CUDASIM
    return _SIMULATOR_LOCK if simulated else contextlib.nullcontext()


def _powerlaw_block(block, x, lo, hi, max_iter, tol, level, device):
    """:func:`_powerlaw_arrays` for ``map_blocks``: the rows appended to the channels."""
    with _one_chunk_at_a_time(device):
        sub, rows = _powerlaw_arrays(block, x, lo, hi, max_iter, tol, level, np.float64, device)
    return np.concatenate([sub, rows], axis=-1)


def subtract_powerlaw(
    data,
    *,
    fit_range,
    axis=None,
    max_iterations=100,
    tolerance=1e-10,
    saturation=None,
    device="auto",
):
    """Fit ``A * E**-r`` per pixel in ``fit_range`` and subtract it from the whole spectrum.

    The fit is the non-linear least-squares fit of ``A * E**-r`` to the counts of the window
    (as exSpy's ``remove_background(fast=False)``), run by the fitting engine of
    :func:`hyperlum.fit` with no peak and its ``"powerlaw"`` background, on the CPU or the
    GPU, started from the log-log line through the window's positive channels. Channels with
    zero or negative counts are fitted like the others; how many there were is in the
    ``nonpositive`` map. A pixel with a NaN / inf in the window, or fewer than 2
    positive channels, is flagged ``bad_input`` (state 3) and its subtracted spectrum is NaN.
    So is a pixel with a saturated channel in the window (integer data at its dtype's largest
    value: the true count is unknown). A NaN, infinite or saturated channel outside the window
    is NaN in the subtracted spectrum, the rest of that pixel is fitted and subtracted as
    usual; the ``saturated`` and ``nonfinite`` maps count such channels per pixel. Channels at
    ``E <= 0`` are left as they are (HyperSpy's ``PowerLaw`` is zero there).

    Parameters
    ----------
    data : hyperspy Signal1D, numpy.ndarray or dask.array.Array
        Core-loss spectra (spectral axis last for arrays), lazy or not.
    fit_range : (float, float)
        Window before the edge, in axis units (eV), at positive energies, at least 3 channels.
    axis : array_like, optional
        Energies of the channels for array input.
    max_iterations : int
        Levenberg-Marquardt iterations at most per pixel.
    tolerance : float
        Convergence: relative step (``A``; absolute for ``r``) or relative decrease of the
        sum of squares below this.
    saturation : float, optional
        Counts at or above which a channel is saturated. Default: the largest value of an
        integer dtype, none for floats.
    device : {"auto", "cpu", "cuda"}
        Where to fit and subtract (see :func:`hyperlum.fit`). On the GPU the subtraction
        runs there too, from the CPU's code compiled for CUDA; each chunk's spectra are
        copied to the GPU and the subtracted spectra back.

    Returns
    -------
    subtracted : same kind as ``data``
        Background-subtracted spectra (float32 for float16 and float32 input, else float64).
    maps : FitResult
        Per pixel: ``A`` (counts per channel at ``E = 1`` axis unit; HyperSpy's ``PowerLaw``
        on a binned axis reports ``A / scale`` instead), ``r``, ``chisq`` (reduced), ``state``
        (0 converged, 1 max iterations, 2 singular, 3 bad input), ``converged``,
        ``iterations``, ``nonpositive`` (channels <= 0 in the window), ``saturated`` and
        ``nonfinite`` (channels in the whole spectrum). ``maps["A"]`` is a
        calibrated signal, ``maps.maps["A"]`` the array.

    Examples
    --------
    >>> e = np.arange(400.0, 700.0, 1.0)
    >>> r = np.array([3.0, 3.5])
    >>> cube = 1e11 * e ** -r[:, None] + np.where(e > 640, 50.0, 0.0)
    >>> sub, maps = subtract_powerlaw(cube, fit_range=(580, 630), axis=e, device="cpu")
    >>> np.round(maps.maps["r"], 6).tolist(), np.round(sub[:, [200, 250]], 6) + 0.0
    ([3.0, 3.5], array([[ 0., 50.],
           [ 0., 50.]]))
    """
    cube = _checked_cube(data, axis)
    max_iterations = integer("max_iterations", max_iterations, 1, 10_000)
    tolerance = positive("tolerance", tolerance)
    choice("device", device, DEVICES)
    level = _saturation_level(saturation, cube.data.dtype)
    x = cube.x
    units = cube.signal_axis.get("units")
    lo, hi = _window_slice("fit_range", fit_range, x, units)
    if np.any(x[lo:hi] <= 0):
        raise ValueError(
            f"fit_range={tuple(fit_range)!r} must lie at positive energies for a power law"
        )
    device = resolve_device(device)
    d = cube.data
    n = x.size
    out_dtype = np.float32 if d.dtype in (np.float16, np.float32) else np.float64
    if is_dask(d):
        fn = functools.partial(
            _powerlaw_block,
            x=x,
            lo=lo,
            hi=hi,
            max_iter=max_iterations,
            tol=tolerance,
            level=level,
            device=device,
        )
        stacked = map_spectra(fn, d, n + len(ROWS))
        sub = stacked[..., :n].astype(out_dtype)
        table = stacked[..., n:]
    else:
        sub, table = _powerlaw_arrays(
            np.asarray(d), x, lo, hi, max_iterations, tolerance, level, out_dtype, device
        )
    rows = {name: table[..., k] for k, name in enumerate(ROWS)}
    state = rows["state"].astype(np.int8)
    maps = {
        "A": rows["A"],
        "r": rows["r"],
        "chisq": rows["chisq"],
        "state": state,
        "converged": state == 0,
        "iterations": rows["iterations"].astype(np.int32),
        "nonpositive": rows["nonpositive"].astype(np.int32),
        "saturated": rows["saturated"].astype(np.int32),
        "nonfinite": rows["nonfinite"].astype(np.int32),
    }
    options = {
        "peaks": 0,
        "background": "power law",
        "estimator": "lse",
        "fit_range": [float(v) for v in fit_range],
        "max_iterations": max_iterations,
        "tolerance": tolerance,
        "saturation": level if level < math.inf else None,
        "device": device,
        "axis_units": units,
    }
    result = FitResult(maps, cube.nav_axes, options, cube.signal_axis, cube.title)
    return spectra_out(sub, data), result


def state_counts(maps):
    """Number of pixels in each state of a :func:`subtract_powerlaw` result, by state name."""
    state = np.asarray(maps.maps["state"]).ravel()
    return {STATES[k]: int(np.sum(state == k)) for k in STATES}


# -- edges, normalisation -------------------------------------------------------------------
def _widths(x):
    return np.abs(np.gradient(np.asarray(x, dtype=np.float64))) if x.size > 1 else np.ones(1)


def _integral(d, widths):
    """Sum over the channels of ``d`` weighted by their ``widths``."""
    return (d * widths).sum(axis=-1)


def edge_intensity(data, *, window, axis=None, saturation=None):
    """Integrated intensity of every pixel over ``window`` (counts times channel width).

    A pixel with a NaN, infinite or saturated channel inside the window is NaN in the map (its
    integral is unknown); the other pixels are integrated as if it were not there.

    Parameters
    ----------
    data : hyperspy Signal1D, numpy.ndarray or dask.array.Array
        Spectra, usually background-subtracted (:func:`subtract_powerlaw`).
    window : (float, float)
        Energy window of the edge, in axis units (channels from ``low`` to ``high``).
    axis : array_like, optional
        Energies of the channels for array input.
    saturation : float, optional
        Counts at or above which a channel is saturated. Default: the largest value of an
        integer dtype, none for floats.

    Returns
    -------
    map : calibrated HyperSpy signal for a signal input, else a numpy / dask array

    Examples
    --------
    >>> e = np.arange(600.0, 700.0, 0.5)
    >>> cube = np.ones((2, 3, e.size))
    >>> cube[1, 2, 85] = np.inf
    >>> edge_intensity(cube, window=(640, 650), axis=e).tolist()
    [[10.5, 10.5, 10.5], [10.5, 10.5, nan]]
    """
    cube = _checked_cube(data, axis)
    level = _saturation_level(saturation, cube.data.dtype)
    units = cube.signal_axis.get("units")
    lo, hi = _window_slice("window", window, cube.x, units)
    block = cube.data[..., lo:hi]
    if level < math.inf:
        block = np.where(block >= level, np.nan, block)
    result = _integral(block, _widths(cube.x)[lo:hi])
    result = np.where(np.isfinite(result), result, np.nan)
    return map_out(result, cube, "edge intensity", data, f"counts {units}" if units else None)


def normalise(data, *, by="core_loss_total", range=None, axis=None):
    """Divide every spectrum by its total integrated intensity (or its maximum).

    Parameters
    ----------
    data : hyperspy Signal1D, numpy.ndarray or dask.array.Array
        Spectra.
    by : {"core_loss_total", "max"} or array_like
        ``"core_loss_total"``: the integral over ``range`` (default: the whole spectrum);
        ``"max"``: the largest value in ``range``; an array of the navigation shape: those
        values (e.g. the totals of the raw spectra when normalising background-subtracted
        ones).
    range : (float, float), optional
        Energy range of the total, axis units.
    axis : array_like, optional
        Energies of the channels for array input.

    Returns
    -------
    same kind as ``data``
        Normalised spectra. A pixel whose total is zero, negative or not finite becomes NaN.

    Examples
    --------
    >>> e = np.arange(0.0, 10.0, 1.0)
    >>> y = np.stack([np.ones(10), 3 * np.ones(10)])
    >>> normalise(y, axis=e)[:, 0].tolist()
    [0.1, 0.1]
    """
    cube = _checked_cube(data, axis)
    units = cube.signal_axis.get("units")
    sl = slice(None) if range is None else slice(*_window_slice("range", range, cube.x, units))
    d = cube.data
    if isinstance(by, str):
        choice("by", by, ("core_loss_total", "max"))
        if by == "core_loss_total":
            total = _integral(d[..., sl], _widths(cube.x)[sl])
        else:
            total = d[..., sl].max(axis=-1)
    else:
        total = by.data if is_signal(by) else by
        if tuple(np.shape(total)) != cube.nav_shape:
            raise ValueError(
                f"by must be a string or an array of the navigation shape {cube.nav_shape}, "
                f"got shape {tuple(np.shape(total))}"
            )
    if not is_dask(total):
        total = np.asarray(total, dtype=np.float64)
    good = np.isfinite(total) & (total > 0)
    scale = np.where(good, 1.0 / np.where(good, total, 1.0), np.nan)
    dtype = np.float32 if d.dtype in (np.float16, np.float32) else np.float64
    result = (d * scale[..., None]).astype(dtype)
    return spectra_out(result, data)
