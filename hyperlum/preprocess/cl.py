"""CL preprocessing for whole spectrum images: wavelength to energy, cosmic-ray spikes.

* :func:`to_energy` converts the wavelength axis to photon energy as LumiSpy's ``to_eV`` does
  (refractive index of air, Peck & Reeder 1972, or vacuum) and scales the intensities by the
  Jacobian, so that integrals are kept: counts per nm become counts per meV.
* :func:`remove_spikes` replaces cosmic-ray spikes (narrow positive outliers) by the running
  median of their spectrum, over the whole cube (dask for lazy data).
"""

import functools
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hyperlum._validate import choice, integer, positive
from hyperlum.io.cube import as_cube, is_dask, is_signal, map_spectra
from hyperlum.preprocess._signals import new_like, spectra_out

__all__ = ["despike_spectra", "refractive_index_air", "remove_spikes", "to_energy"]

#: Exact SI values (as ``scipy.constants``, which LumiSpy uses): Planck constant (J s), speed
#: of light (m/s), elementary charge (C).
_H = 6.62607015e-34
_C = 299792458.0
_E = 1.602176634e-19

#: Float64 bytes per block of pixels filtered at once (eager input).
_BLOCK_BYTES = 16 * 2**20

#: Metres per unit of a wavelength axis.
_UNITS = {"nm": 1e-9, "µm": 1e-6, "um": 1e-6, "μm": 1e-6, "mm": 1e-3, "m": 1.0}


def refractive_index_air(wavelength_nm):
    """Refractive index of air at ``wavelength_nm`` (Peck & Reeder, J. Opt. Soc. Am. 62, 958).

    The formula holds from 185 to 1700 nm; outside, the value at the nearest end is used (with
    a warning), as in LumiSpy.

    Examples
    --------
    >>> round(float(refractive_index_air(633.0)), 7)
    1.0002765
    """
    wl = np.array(wavelength_nm, dtype=np.float64)
    if np.any(wl < 185) or np.any(wl > 1700):
        warnings.warn(
            "The wavelength range exceeds the interval of 185 to 1700 nm for which the "
            "refractive index of air is known; beyond it the index is kept constant.",
            UserWarning,
            stacklevel=2,
        )
        wl = np.clip(wl, 185.0, 1700.0)
    inv2 = 1.0 / (wl / 1000.0) ** 2
    return 1 + 806051e-10 + 2480990e-8 / (132274e-3 - inv2) + 174557e-9 / (3932957e-5 - inv2)


def to_energy(signal, *, jacobian=True, medium="air"):
    """Convert a CL signal from wavelength to photon energy (eV), with the Jacobian.

    The energy of a channel is ``h c / (n lambda)`` with ``n`` the refractive index of air
    (``medium="air"``, as LumiSpy's ``to_eV``) or 1 (``"vacuum"``); the axis is reversed so
    that energies increase, and becomes non-uniform. With ``jacobian=True`` the intensities
    are multiplied by ``|d lambda / d E|`` (LumiSpy's convention: counts per nm become counts
    per meV), so that the integral of a peak is the same in both units.

    Parameters
    ----------
    signal : hyperspy Signal1D
        CL spectra, lazy or not, with the signal axis in nm, µm or mm.
    jacobian : bool
        Scale the intensities (True), or only convert the axis.
    medium : {"air", "vacuum"}
        Where the wavelengths were measured.

    Returns
    -------
    hyperspy Signal1D
        A new signal of the same class with an ``Energy`` axis in eV; the input is untouched.

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> s = hs.signals.Signal1D(np.ones(3))
    >>> s.axes_manager[0].units, s.axes_manager[0].offset, s.axes_manager[0].scale = "nm", 400, 100
    >>> e = to_energy(s, medium="vacuum")
    >>> np.round(e.axes_manager[0].axis, 4).tolist()
    [2.0664, 2.4797, 3.0996]
    """
    if not is_signal(signal) or signal.axes_manager.signal_dimension != 1:
        raise TypeError(f"signal must be a HyperSpy Signal1D, got {type(signal).__name__}")
    choice("medium", medium, ("air", "vacuum"))
    ax = signal.axes_manager.signal_axes[0]
    units = ax.units
    if units not in _UNITS:
        raise ValueError(
            f"the signal axis is in {units!r}; to_energy needs a wavelength in one of "
            f"{', '.join(repr(u) for u in _UNITS if u not in ('um', 'μm'))}"
        )
    wl_nm = np.asarray(ax.axis, dtype=np.float64) * _UNITS[units] * 1e9
    if np.any(wl_nm <= 0):
        raise ValueError("the wavelength axis must hold positive values")
    n = refractive_index_air(wl_nm) if medium == "air" else np.ones_like(wl_nm)
    energy = 1e9 * _H * _C / (_E * n * wl_nm)
    flip = energy[0] > energy[-1]
    order = slice(None, None, -1) if flip else slice(None)
    energy = energy[order]
    data = signal.data[..., order]
    if jacobian:
        # counts per axis unit -> counts per meV: |d lambda / d E| in axis units per meV.
        factor = 1e-3 / _UNITS[units]
        jac = factor * _H * _C / (_E * n[order] * energy**2)
        dtype = np.float32 if signal.data.dtype == np.float32 else np.float64
        data = (data * jac).astype(dtype)
    new_axis = {
        "_type": "DataAxis",
        "axis": energy,
        "name": "Energy",
        "units": "eV",
        "navigate": False,
    }
    out = new_like(signal, data, new_axis)
    var = signal.metadata.get_item("Signal.Noise_properties.variance")
    if var is not None:
        vdata = var.data[..., order] if is_signal(var) else np.full(signal.data.shape, var)
        if jacobian:
            vdata = vdata * jac**2
        out.set_noise_variance(new_like(signal, np.asarray(vdata), new_axis))
    return out


def _numba_rows(block):
    """``block`` as contiguous pixels x channels that the numba kernels read."""
    flat = np.ascontiguousarray(np.asarray(block).reshape(-1, block.shape[-1]))
    if flat.dtype.kind not in "fiu" or flat.dtype.itemsize < 4 and flat.dtype.kind == "f":
        flat = flat.astype(np.float64)  # numba reads no float16
    return flat


def _over_rows(fn, npix, threads):
    """``fn(rows)`` over slices of ``npix`` rows, in ``threads`` threads (64 rows at least
    each; default: every CPU this process may use)."""
    threads = min(threads or len(os.sched_getaffinity(0)), max(1, npix // 64))
    bounds = [b * npix // threads for b in range(threads + 1)]
    if threads == 1:
        fn(slice(0, npix))
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda b: fn(slice(bounds[b], bounds[b + 1])), range(threads)))


def _poisson_mode(counts, dtype):
    """The kernels' ``poisson`` argument for ``counts`` (True, False or None: auto) and the
    data's dtype: 1 (floor on every spectrum), 0 (on none), -1 (on the spectra whose finite
    values are all whole numbers of at least 0; an unsigned dtype always is)."""
    if counts is None:
        return 1 if np.dtype(dtype).kind == "u" else -1
    if not isinstance(counts, (bool, np.bool_)):
        raise TypeError(f"counts must be True, False or None (decide per spectrum), got {counts!r}")
    return int(bool(counts))


def _despike_block(block, threshold, window, poisson, threads=1):
    """Clean one block; return the cleaned spectra with the per-pixel spike count appended."""
    from hyperlum.kernels.despike import despike_rows

    flat = _numba_rows(block)
    out = np.empty((flat.shape[0], flat.shape[1] + 1))
    counts = np.empty(flat.shape[0])

    def rows(sl):
        despike_rows(flat[sl], float(threshold), int(window), poisson, out[sl, :-1], counts[sl])

    _over_rows(rows, flat.shape[0], threads)
    out[:, -1] = counts
    return out.reshape(*block.shape[:-1], flat.shape[1] + 1)


def remove_spikes(signal, *, threshold=10.0, window=5, counts=None, axis=None):
    """Replace cosmic-ray spikes in every spectrum of a cube by the running median.

    A channel is a spike when it stands above the median of its ``window - 1`` neighbours by
    more than ``threshold`` times the local noise (1.4826 times the median, over blocks of 32
    channels, of the absolute deviation of the data from that neighbour median), and it rises
    within the window: that excess is more than half its height over the lowest neighbour.
    Spikes up to ``(window - 1) // 2`` channels wide are caught; the top of a real peak of
    sigma 2 channels or more, however bright, is kept (also in noiseless or denoised data).

    For count data the local noise is at least the Poisson noise of the neighbour median,
    ``sqrt(max(median, 1))``: at a few counts per channel most deviations are 0 or 1 and
    their median absolute deviation says nothing of the noise, so ordinary Poisson
    fluctuations would otherwise be cut. That floor is a lower bound on the spread of the
    deviation from the median under Poisson noise (the median is noisy too), so it never
    asks more of a spike than a perfect noise estimate would. With ``counts=None`` a
    spectrum is taken as counts when all its finite values are whole numbers of at least 0
    (always for unsigned integer dtypes): decided per spectrum, so the result does not
    depend on the chunks. Counts with an offset (a camera's bias) are not Poisson at that
    level: pass ``counts=False``.

    Parameters
    ----------
    signal : hyperspy Signal1D, numpy.ndarray or dask.array.Array
        Spectra, lazy or not (spectral axis last for arrays).
    threshold : float
        Height of a spike over the running median, in units of the noise.
    window : int
        Odd number of channels of the running median, 3 to 51.
    counts : bool, optional
        Whether the spectra are counts (the Poisson floor of the noise): True, False, or
        None to decide per spectrum (whole numbers of at least 0).
    axis : array_like, optional
        Channel positions for array input (not used by the method; checked for its length).

    Returns
    -------
    cleaned : same kind as ``signal``
        The spectra with the spikes replaced by the median of their neighbours (same dtype,
        rounded for integers; the input is untouched).
    replaced : int or dask array
        The number of channels replaced in the whole cube (a 0-d dask array for lazy input:
        compute it together with the data, ``dask.compute(cleaned.data, replaced)``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.arange(300.0)
    >>> y = rng.poisson(200 + 800 * np.exp(-0.5 * ((x - 150) / 25) ** 2), (4, 300)).astype(float)
    >>> y[1, 80] += 5000; y[3, 200:202] += 3000
    >>> clean, n = remove_spikes(y)
    >>> n, float(clean[1, 80]) < 400
    (3, True)

    Poisson noise at 1 count is not a spike (the rule without the floor cuts some):

    >>> z = rng.poisson(1.0, (200, 1024))
    >>> remove_spikes(z)[1], remove_spikes(z, counts=False)[1] > 0
    (0, True)
    """
    threshold = positive("threshold", threshold)
    window = integer("window", window, 3, 51)
    if window % 2 == 0:
        raise ValueError(f"window={window} must be an odd number of channels")
    cube = as_cube(signal, axis)
    d = cube.data
    n = d.shape[-1]
    poisson = _poisson_mode(counts, d.dtype)
    fn = functools.partial(_despike_block, threshold=threshold, window=window, poisson=poisson)
    if is_dask(d):
        stacked = map_spectra(fn, d, n + 1)
        replaced = stacked[..., n].sum().astype(np.int64)
        cleaned = stacked[..., :n].astype(d.dtype)
    else:
        # In blocks of pixels: the filters need a few float64 copies of what they work on.
        flat = np.asarray(d).reshape(-1, n)
        out = np.empty(flat.shape, dtype=d.dtype)
        per = max(1, _BLOCK_BYTES // (8 * n))
        replaced = 0
        for s in range(0, flat.shape[0], per):
            block = fn(flat[s : s + per])
            out[s : s + per] = block[:, :n]
            replaced += int(block[:, n].sum())
        cleaned = out.reshape(d.shape)
    return spectra_out(cleaned, signal), replaced


def despike_spectra(spectra, *, threshold=10.0, window=5, counts=None, threads=None):
    """Replace spikes in a block of spectra (numpy, pixels x channels); count them per pixel.

    The rule of :func:`remove_spikes`, for one in-memory block: what :func:`hyperlum.fit`
    runs on each chunk before fitting. The spikes are counted first without a copy; only the
    spectra that hold one are filtered again and changed (rounded for integer dtypes) in a
    copy; the input is untouched.

    Parameters
    ----------
    spectra : numpy.ndarray
        Pixels x channels, any real dtype.
    threshold, window, counts
        As for :func:`remove_spikes`.
    threads : int, optional
        Threads over the pixels; default: every CPU this process may use.

    Returns
    -------
    cleaned : numpy.ndarray
        The spectra, same dtype (``spectra`` itself when nothing was replaced).
    replaced : numpy.ndarray
        Channels replaced per pixel (int32).

    Examples
    --------
    >>> y = np.full((2, 64), 100.0) + np.sin(np.arange(64))
    >>> y[1, 20] = 5000.0
    >>> clean, counts = despike_spectra(y)
    >>> counts.tolist(), bool(clean[1, 20] < 102), bool(y[1, 20] == 5000)
    ([0, 1], True, True)
    """
    from hyperlum.kernels.despike import spike_counts

    flat = _numba_rows(spectra)
    poisson = _poisson_mode(counts, flat.dtype)
    found = np.empty(flat.shape[0])

    def rows(sl):
        spike_counts(flat[sl], float(threshold), int(window), poisson, found[sl])

    _over_rows(rows, flat.shape[0], threads)
    counts = found.astype(np.int32)
    hit = np.flatnonzero(counts)
    if not hit.size:
        return spectra, counts
    # Only the spectra with a spike are filtered again, to put the medians in.
    fixed = _despike_block(flat[hit], threshold, window, poisson)[:, :-1]
    cleaned = np.array(spectra, copy=True)
    if np.issubdtype(cleaned.dtype, np.integer):
        info = np.iinfo(cleaned.dtype)
        fixed = np.clip(np.rint(fixed), info.min, info.max)
    cleaned[hit] = fixed.astype(cleaned.dtype)
    return cleaned, counts
