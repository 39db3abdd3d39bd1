"""Fit results: named maps as calibrated HyperSpy signals, saved to and loaded from one file."""

import numpy as np

from hyperlum.fitting.options import DEFAULTS
from hyperlum.io.cube import is_dask
from hyperlum.kernels.backgrounds import map_names
from hyperlum.kernels.constants import STATES, output_rows
from hyperlum.kernels.shapes import SHAPES, get_shape

#: Maps in the units of the signal axis: the shapes' width-like parameters and the FWHM.
_AXIS_UNIT_MAPS = {"fwhm"} | {
    name
    for module, _ in SHAPES.values()
    for name, unit in zip(module.PARAM_NAMES, module.UNITS, strict=True)
    if unit == "axis"
}


def _peak_suffix(k, npk):
    return "" if npk == 1 else f"_{k + 1}"


def _per_peak(fn, params):
    """``fn(params)`` over the last axis (numpy), or block by block for a dask stack."""
    if is_dask(params):
        params = params.rechunk({params.ndim - 1: -1})
        return params.map_blocks(fn, drop_axis=params.ndim - 1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return fn(params)


def peak_maps(rows, k, npk, layout, shape):
    """The maps of peak ``k`` of ``npk`` from the kernel rows (``rows(r)`` is row ``r``, laid
    out as ``layout``, an :class:`~hyperlum.kernels.constants.OutputRows`): the shape's
    parameters, ``fwhm`` (unless a parameter) and ``intensity`` (the area), each with its
    ``_std`` (those of the FWHM and the area from the kernels' rows for them)."""
    sfx = _peak_suffix(k, npk)
    npar = shape.n_params
    values = [rows(layout.params + npar * k + q) for q in range(npar)]
    stds = [rows(layout.stds + npar * k + q) for q in range(npar)]
    names = list(shape.param_names)
    maps = dict(zip([f"{n}{sfx}" for n in names], values, strict=True))
    std_maps = dict(zip([f"{n}{sfx}_std" for n in names], stds, strict=True))
    if any(is_dask(v) for v in values):
        import dask.array as da

        params = da.stack(values, axis=-1)
    else:
        params = np.stack(values, axis=-1)
    if "fwhm" not in names:
        maps[f"fwhm{sfx}"] = _per_peak(shape.fwhm, params)
        std_maps[f"fwhm{sfx}_std"] = rows(layout.fwhm_std + k)
    maps[f"intensity{sfx}"] = _per_peak(shape.area, params)
    std_maps[f"intensity{sfx}_std"] = rows(layout.area_std + k)
    return {**maps, **std_maps}


class FitResult:
    """Maps of a per-pixel fit, by name.

    ``res[name]`` is a HyperSpy signal (Signal2D for a map, Signal1D for a line scan) with the
    navigation calibration of the fitted data; ``res.maps[name]`` is the bare array (numpy, or
    dask for a lazy fit). ``res.names`` lists the names; ``res.options`` says how it was fitted.
    """

    def __init__(self, maps, nav_axes, options, signal_axis=None, title=""):
        self.maps = dict(maps)
        self.nav_axes = list(nav_axes)
        self.options = dict(options)
        self.signal_axis = dict(signal_axis or {})
        self.title = title
        self._signals = {}

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_stacked(cls, stacked, npk, nbg, cube, options):
        """Build the named maps from the rows of
        :func:`hyperlum.fitting.fit.fit_block` stacked on the last axis of ``stacked``: the kernel
        rows, then ``detected`` per peak, the spikes replaced per pixel, when
        ``options["peaks"] == "auto"`` the peaks kept."""
        shape = get_shape(options.get("shape", DEFAULTS.shape))
        rows = lambda r: stacked[..., r]  # noqa: E731
        layout = output_rows(npk, nbg, shape.n_params)
        base = layout.total
        auto = options.get("peaks") == "auto"
        maps = {}
        for k in range(npk):
            maps.update(peak_maps(rows, k, npk, layout, shape))
        first = shape.n_params * npk
        for j, name in enumerate(map_names(options.get("background", DEFAULTS.background))[:nbg]):
            maps[name] = rows(layout.params + first + j)
            maps[f"{name}_std"] = rows(layout.stds + first + j)
        maps["chisq"] = rows(layout.chisq)
        state = rows(layout.state).astype(np.int8)
        maps["state"] = state
        maps["converged"] = state == 0
        maps["iterations"] = rows(layout.iterations).astype(np.int32)
        detected = [rows(base + k) > 0.5 for k in range(npk)]
        if npk > 1:
            maps.update({f"detected_{k + 1}": d for k, d in enumerate(detected)})
        anywhere = detected[0]
        for d in detected[1:]:
            anywhere = anywhere | d
        maps["detected"] = anywhere
        maps["spikes"] = rows(base + npk).astype(np.int32)
        if auto:
            maps["n_peaks"] = rows(base + npk + 1).astype(np.int8)
        opts = dict(options, axis_units=cube.signal_axis.get("units"))
        return cls(maps, cube.nav_axes, opts, cube.signal_axis, cube.title)

    # -- access ---------------------------------------------------------------------------
    @property
    def names(self):
        """Names of the maps."""
        return list(self.maps)

    @property
    def lazy(self):
        """True while the maps are dask arrays not yet computed."""
        return any(is_dask(v) for v in self.maps.values())

    @property
    def shape(self):
        """Navigation shape of the maps."""
        return tuple(self.maps["state"].shape)

    def __contains__(self, name):
        return name in self.maps

    def __getitem__(self, name):
        if name not in self.maps:
            raise KeyError(f"no map named {name!r}; the maps are: {', '.join(self.maps)}")
        if name not in self._signals:
            self._signals[name] = self._to_signal(name)
        return self._signals[name]

    def _to_signal(self, name):
        import hyperspy.api as hs

        data = self.maps[name]
        nd = data.ndim
        axes = [dict(a) for a in self.nav_axes]
        if nd == 0:
            sig = hs.signals.BaseSignal(np.asarray(data).reshape(1))
        elif nd == 1:
            sig = hs.signals.Signal1D(data, axes=axes)
        else:
            sig = hs.signals.Signal2D(data, axes=axes)
            if nd > 2:
                sig = sig.transpose(signal_axes=[nd - 1, nd - 2])
        if self.lazy:
            sig = sig.as_lazy()
        units = self.options.get("axis_units") if _has_axis_units(name) else None
        sig.metadata.General.title = f"{name} ({units})" if units else name
        sig.metadata.set_item("Signal.quantity", f"{name} ({units})" if units else name)
        return sig

    def state_counts(self):
        """Number of pixels in each fit state, by state name."""
        state = np.asarray(self.compute().maps["state"]).ravel()
        return {STATES[k]: int(np.sum(state == k)) for k in STATES}

    def compute(self, *, progress=None):
        """Return a result whose maps are numpy arrays (one pass over a lazy fit).

        Parameters
        ----------
        progress : bool, optional
            Show dask's progress bar on stderr (local schedulers). By default it appears only
            when the computation lasts more than a second.
        """
        if not self.lazy:
            return self
        import contextlib
        import sys

        import dask
        from dask.diagnostics import ProgressBar

        names = list(self.maps)
        bar = (
            contextlib.nullcontext()
            if progress is False
            else ProgressBar(minimum=0.0 if progress else 1.0, out=sys.stderr)
        )
        with bar:
            values = dask.compute(*(self.maps[n] for n in names))
        return FitResult(
            dict(zip(names, values, strict=True)),
            self.nav_axes,
            self.options,
            self.signal_axis,
            self.title,
        )

    def plot(self, names=("centre", "sigma"), **kwargs):
        """Show maps at a glance: a panel of 2-D maps, or profiles along a line scan.

        Parameters
        ----------
        names : sequence of str
            Maps to show (for a map, after the fitted intensity, which comes first unless an
            ``image`` is given).
        **kwargs
            Passed to :func:`hyperlum.viz.plot.plot_maps` (a map) or
            :func:`hyperlum.viz.plot.plot_profile` (a line scan).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from hyperlum.viz import plot

        res = self.compute()
        if len(res.shape) == 2:
            if "image" not in kwargs:  # the fitted intensity is the first panel already
                names = [n for n in names if n != "intensity"]
            return plot.plot_maps(res, names=tuple(names), **kwargs)
        if len(res.shape) == 1:
            return plot.plot_profile(res, names=tuple(names), **kwargs)
        raise ValueError(
            f"plot shows maps (2 navigation axes) or line scans (1), this result has "
            f"{len(res.shape)}; use res[name].plot() instead"
        )

    def __repr__(self):
        shape = "x".join(map(str, self.shape)) or "1"
        kind = "lazy " if self.lazy else ""
        return (
            f"<FitResult, {kind}{shape} pixels, {self.options.get('peaks')} "
            f"{self.options.get('shape', 'gaussian')} peak(s) + "
            f"{self.options.get('background')} background, {self.options.get('estimator')}, "
            f"{len(self.maps)} maps>"
        )

    # -- files ----------------------------------------------------------------------------
    def save(self, path, *, overwrite=False):
        """Write every map to one HyperSpy file (``.zspy`` or ``.hspy``).

        The maps are stacked along a first navigation axis; ``load_result`` splits them again.
        An existing file is kept unless ``overwrite=True``.
        """
        from hyperlum.io.result_files import save_result

        save_result(self, path, overwrite=overwrite)

    # -- the model as spectra, and in HyperSpy -------------------------------------------
    def model(self, *, component=None):
        """The fitted model at every pixel, as a spectrum cube on the fitted signal axis.

        Parameters
        ----------
        component : int or "background", optional
            Only one part of the model: peak ``k`` (numbered from 1, as in the map names
            ``centre_1``, ``centre_2``; ``1`` for a single peak), or the background.
            Default: the whole model.

        Returns
        -------
        hyperspy Signal1D
            The navigation axes of the fitted data and the channels of the fitted range.
            Lazy for a lazy fit, in the fit's chunks: computing it holds one chunk of spectra
            per worker at a time. NaN at pixels the fit could not do (bad input).

        Examples
        --------
        >>> import numpy as np
        >>> import hyperlum as hl
        >>> x = np.linspace(650.0, 770.0, 121)
        >>> cube = 100 * np.exp(-0.5 * ((x - np.array([[700.0], [720.0]])) / 8.0) ** 2) + 5
        >>> res = hl.fit(cube, axis=x, device="cpu")
        >>> m = res.model()
        >>> m.data.shape, bool(np.allclose(m.data, cube))
        ((2, 121), True)
        >>> round(float(res.model(component="background").data[0, 0]), 9)
        5.0
        """
        from hyperlum.fitting.model_cubes import model_cube

        return model_cube(self, component=component)

    def residuals(self, signal, *, axis=None):
        """Data minus fitted model at every pixel, on the fitted channels.

        Parameters
        ----------
        signal : hyperspy Signal1D or array
            The data that was fitted (all its channels, or those of the fitted range).
        axis : array_like, optional
            Channel positions for an array, as given to :func:`hyperlum.fit`.

        Returns
        -------
        hyperspy Signal1D
            float64; lazy when the fit or the signal is lazy (chunk by chunk).

        Examples
        --------
        >>> import numpy as np
        >>> import hyperlum as hl
        >>> x = np.linspace(650.0, 770.0, 121)
        >>> cube = 100 * np.exp(-0.5 * ((x - 700.0) / 8.0) ** 2) + 5 + np.zeros((3, 1))
        >>> res = hl.fit(cube, axis=x, device="cpu")
        >>> bool(np.abs(res.residuals(cube, axis=x).data).max() < 1e-6)
        True
        """
        from hyperlum.fitting.model_cubes import residual_cube

        return residual_cube(self, signal, axis=axis)

    def to_hyperspy_model(self, signal):
        """A HyperSpy ``Model1D`` of ``signal`` whose parameter maps hold this fit.

        The signal is cropped to the fitted range; each peak is a ``Gaussian`` named
        ``peak_k`` and the background (if any) a component named ``background``: an
        ``Offset``, or for a linear background ``a0 + a1 * (x - x0)`` with ``x0`` fixed at
        the middle of the fitted range. Values and standard deviations are hyperlum's, so that
        ``m.plot(plot_components=True)`` explores the fit, ``m.fit()`` refines the current
        pixel from it and ``m.as_signal()`` equals :meth:`model`.

        HyperSpy's Gaussian ``A`` is the peak *area* (hyperlum's ``intensity``); on a binned
        uniform axis HyperSpy multiplies the model by the channel width, so ``A`` and the
        background are divided by it (``A`` becomes the counts summed over channels). A binned
        non-uniform axis is marked not binned in the model's (cropped) signal. The input
        signal is left unchanged.

        Parameters
        ----------
        signal : hyperspy Signal1D
            The signal that was fitted (lazy or not).

        Returns
        -------
        hyperspy.models.model1d.Model1D

        Examples
        --------
        >>> import numpy as np
        >>> import hyperspy.api as hs
        >>> import hyperlum as hl
        >>> x = np.linspace(650.0, 770.0, 121)
        >>> s = hs.signals.Signal1D(100 * np.exp(-0.5 * ((x - 700.0) / 8.0) ** 2) + 5)
        >>> s.axes_manager[0].offset, s.axes_manager[0].scale = 650.0, 1.0
        >>> m = hl.fit(s, device="cpu").to_hyperspy_model(s)
        >>> [c.name for c in m], round(float(m["peak_1"].centre.value), 6)
        (['peak_1', 'background'], 700.0)
        """
        from hyperlum.fitting.hs_model import to_hyperspy_model

        return to_hyperspy_model(self, signal)


def load_result(path):
    """Load maps written by :meth:`FitResult.save`.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.zspy`` or ``.hspy`` file written by hyperlum.

    Returns
    -------
    FitResult

    Examples
    --------
    >>> import os, tempfile
    >>> import hyperlum as hl
    >>> x = np.linspace(600.0, 800.0, 64)
    >>> y = 50 * np.exp(-0.5 * ((x - 700) / 12) ** 2) + 5 + np.zeros((2, 3, 1))
    >>> res = hl.fit(y, axis=x, device="cpu")
    >>> path = os.path.join(tempfile.mkdtemp(), "maps.zspy")
    >>> res.save(path)
    >>> back = load_result(path)
    >>> bool(np.array_equal(back.maps["centre"], res.maps["centre"]))
    True
    """
    from hyperlum.io.result_files import read_result

    return FitResult(**read_result(path))


def _has_axis_units(name):
    base = name.removesuffix("_std").rstrip("_0123456789")
    return base in _AXIS_UNIT_MAPS
