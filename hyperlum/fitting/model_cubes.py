"""The fitted model and its residuals as spectrum cubes, rebuilt from a fit's maps.

A :class:`~hyperlum.fitting.result.FitResult` keeps the parameters of every pixel; the model is
evaluated from them chunk by chunk on the axis the fit used (``res.signal_axis``): a lazy fit
gives a lazy cube whose chunks are those of the fit, so that computing it never holds more
than one chunk of spectra per worker; an eager fit gives a numpy cube filled block by block.

The model of a pixel is hyperlum's: peaks of the fitted shape (the shape's numpy
``evaluate``, :mod:`hyperlum.kernels.shapes`) plus the background (a polynomial in
``x - xref`` or the power law ``A (x / xref)^-r``), with ``xref`` the middle of the fitted
range.
"""

import numpy as np

from hyperlum.io.cube import as_cube, is_dask
from hyperlum.kernels.backgrounds import BACKGROUNDS, background_module, map_names
from hyperlum.kernels.shapes import SHAPES, get_shape

#: Pixels evaluated at once in an eager cube: blocks of this many bytes of float64 spectra.
BLOCK_BYTES = 32 * 2**20


class PeakModel:
    """What a fit result's model is made of: peaks, background, axis and parameter maps.

    Parameters
    ----------
    res : FitResult
        A peak fit (from :func:`hyperlum.fit`). Only what the evaluation needs is kept (the
        object goes into every task of a lazy cube).

    Attributes
    ----------
    peaks, n_background : int
        Number of peaks and of background parameters (0 to 4).
    shape, background : str
        The peaks' shape and the background's name, as given to :func:`hyperlum.fit`.
    x : numpy.ndarray
        Channel positions of the fitted range.
    xref : float
        Middle of the fitted range (the origin of the background slope).
    axis : dict
        The fitted axis as a HyperSpy axis dictionary.
    """

    def __init__(self, res):
        opts = res.options
        shape = opts.get("shape", "gaussian")
        if "peaks" not in opts or opts.get("background") not in BACKGROUNDS or shape not in SHAPES:
            raise ValueError(
                "this result holds no peak fit (its options name no peaks, shape and "
                "background known here); model cubes are made from results of hyperlum.fit"
            )
        self.peaks = int(opts["peaks"])
        self.shape = shape
        self.background = opts["background"]
        self.n_background = BACKGROUNDS[self.background][1]
        self.x = fitted_axis(res)
        self.xref = 0.5 * (self.x[0] + self.x[-1])
        self.axis = dict(res.signal_axis, navigate=False)

    def component_names(self):
        """Names of the components: ``peak_1`` ... ``peak_n``, then ``background`` if any."""
        names = [f"peak_{k + 1}" for k in range(self.peaks)]
        return names + (["background"] if self.n_background else [])

    def param_names(self):
        """Names of the maps that hold the parameters, in the kernels' order."""
        return param_map_names(self.peaks, self.shape, self.background)

    def params(self, res):
        """The parameters of ``res`` stacked on a last axis: numpy, or dask chunked like the fit."""
        maps = [res.maps[n] for n in self.param_names()]
        if any(is_dask(m) for m in maps):
            import dask.array as da

            stack = da.stack([da.asarray(m) for m in maps], axis=-1)
            return stack.rechunk({stack.ndim - 1: -1})
        return np.stack([np.asarray(m, dtype=np.float64) for m in maps], axis=-1)

    def parts(self, component=None):
        """``(peaks, background)`` to evaluate for ``component`` (see :meth:`FitResult.model`)."""
        if component is None:
            return tuple(range(self.peaks)), True
        if isinstance(component, str) and component == "background" and self.n_background:
            return (), True
        if (
            isinstance(component, (int, np.integer))
            and not isinstance(component, bool)
            and 1 <= component <= self.peaks
        ):
            return (int(component) - 1,), False
        bg = " or 'background'" if self.n_background else ""
        peak = (
            "1 (the peak)"
            if self.peaks == 1
            else f"a peak number from 1 to {self.peaks} (as in the map names centre_1 ...)"
        )
        raise ValueError(
            f"component must be {peak}{bg}, or None for the whole model; got {component!r}"
        )

    def evaluate(self, params, component=None):
        """The model (or one component) at every pixel of ``params`` (numpy, float64)."""
        peaks, background = self.parts(component)
        return evaluate(
            params,
            self.x,
            self.xref,
            peaks,
            self.n_background if background else 0,
            self.peaks,
            shape=self.shape,
            background=self.background,
        )


def param_map_names(peaks, shape, background):
    """Names of the maps holding the parameters of a fit, in the kernels' order.

    Examples
    --------
    >>> param_map_names(2, "lorentzian", "linear")
    ['amplitude_1', 'centre_1', 'gamma_1', 'amplitude_2', 'centre_2', 'gamma_2', \
'background', 'background_slope']
    """
    names = []
    for k in range(peaks):
        sfx = "" if peaks == 1 else f"_{k + 1}"
        names += [f"{n}{sfx}" for n in get_shape(shape).param_names]
    return names + list(map_names(background))


def fitted_axis(res):
    """Channel positions the fit used, rebuilt from ``res.signal_axis``.

    Raises
    ------
    ValueError
        When the result does not record its axis (a file written by an older hyperlum).
    """
    ax = res.signal_axis
    if "axis" in ax:
        return np.asarray(ax["axis"], dtype=np.float64)
    if {"size", "offset", "scale"} <= set(ax):
        return float(ax["offset"]) + float(ax["scale"]) * np.arange(int(ax["size"]))
    raise ValueError(
        "this result does not record the signal axis it was fitted on (a result saved by an "
        "older hyperlum): fit the data again to get model and residual cubes"
    )


def evaluate(
    params, x, xref, peaks, n_background, n_peaks, *, shape="gaussian", background="constant"
):
    """Evaluate the model of ``params[..., parameter]`` on ``x``: ``out[..., channel]``.

    Parameters
    ----------
    params : numpy.ndarray
        The parameters of ``n_peaks`` peaks and of the background per pixel, in the kernels'
        order.
    x : numpy.ndarray
        Channel positions.
    xref : float
        Reference position of the background (the middle of the fitted range).
    peaks : sequence of int
        Which peaks to include (0-based).
    n_background : int
        0 leaves the background out; else the background's number of terms.
    n_peaks : int
        Number of peaks in ``params``.
    shape : str
        The peaks' shape (a key of :data:`hyperlum.kernels.shapes.SHAPES`).
    background : str
        The background's name (a key of :data:`hyperlum.kernels.backgrounds.BACKGROUNDS`).

    Returns
    -------
    numpy.ndarray
        float64, shape ``params.shape[:-1] + (len(x),)``; NaN where a parameter is NaN.

    Examples
    --------
    >>> x = np.array([-1.0, 0.0, 1.0])
    >>> evaluate(np.array([2.0, 0.0, 1.0, 0.5]), x, 0.0, [0], 1, 1).round(4)
    array([1.7131, 2.5   , 1.7131])
    >>> evaluate(np.array([2.0, 0.0, 1.0, 0.5]), x, 0.0, [0], 1, 1, shape="lorentzian")
    array([1.5, 2.5, 1.5])
    """
    s = get_shape(shape)
    npar = s.n_params
    p = np.asarray(params, dtype=np.float64)
    flat = p.reshape(-1, p.shape[-1])
    out = np.zeros((flat.shape[0], x.size))
    with np.errstate(invalid="ignore", over="ignore"):
        for k in peaks:
            out += s.evaluate(x, flat[:, npar * k : npar * (k + 1)])
        if n_background:
            first = npar * n_peaks
            terms = flat[:, first : first + n_background]
            out += background_module(background).evaluate(x, xref, terms)
    return out.reshape(*p.shape[:-1], x.size)


def _blocks(n_pixels, n_channels):
    per = max(1, BLOCK_BYTES // (8 * max(1, n_channels)))
    return (slice(s, s + per) for s in range(0, n_pixels, per))


def _model_data(pm, res, component):
    params = pm.params(res)
    nch = pm.x.size
    if is_dask(params):
        return params.map_blocks(
            pm.evaluate,
            component=component,
            dtype=np.float64,
            chunks=params.chunks[:-1] + ((nch,),),
            meta=np.empty((0,) * params.ndim, dtype=np.float64),
        )
    flat = params.reshape(-1, params.shape[-1])
    out = np.empty((flat.shape[0], nch))
    for b in _blocks(flat.shape[0], nch):
        out[b] = pm.evaluate(flat[b], component)
    return out.reshape(*params.shape[:-1], nch)


def _residual_block(data, params, pm):
    return np.asarray(data, dtype=np.float64) - pm.evaluate(params)


def fitted_channels(res, signal, axis=None):
    """The channels of ``signal`` (a signal or an array) that ``res`` was fitted on.

    Returns the data as an array ``[..., channel]``; ValueError when the navigation shape or
    the channels in the fitted range differ from the fit's.
    """
    pm = PeakModel(res)
    cube = as_cube(signal, axis)
    rng = res.options.get("signal_range")
    sel = cube.select(cube.channels(rng)) if rng is not None else cube
    if sel.nav_shape != res.shape:
        raise ValueError(
            f"signal must have the navigation shape of the fit {res.shape}, got {sel.nav_shape}"
        )
    if sel.x.shape != pm.x.shape or not np.allclose(sel.x, pm.x, rtol=1e-9, atol=0):
        raise ValueError(
            f"signal's channels in the fitted range ({sel.x.size} from {sel.x[0]:g} to "
            f"{sel.x[-1]:g}) are not those of the fit ({pm.x.size} from {pm.x[0]:g} to "
            f"{pm.x[-1]:g}): give the signal that was fitted"
        )
    return sel.data


def _to_signal(data, pm, res, title):
    import hyperspy.api as hs

    axes = [dict(a, navigate=True) for a in res.nav_axes] + [pm.axis]
    sig = hs.signals.Signal1D(data, axes=axes)
    if is_dask(data):
        sig = sig.as_lazy()
    sig.metadata.General.title = title
    return sig


def model_cube(res, *, component=None):
    """The fitted model at every pixel as a HyperSpy Signal1D on the fitted axis.

    See :meth:`hyperlum.fitting.result.FitResult.model`.
    """
    pm = PeakModel(res)
    pm.parts(component)  # check it before any work
    what = "model" if component is None else pm.component_names()[_index(pm, component)]
    title = f"{what} of {res.title}" if res.title else what
    return _to_signal(_model_data(pm, res, component), pm, res, title)


def _index(pm, component):
    return pm.peaks if component == "background" else int(component) - 1


def residual_cube(res, signal, *, axis=None):
    """Data minus model on the fitted channels; see :meth:`FitResult.residuals`."""
    pm = PeakModel(res)
    data = fitted_channels(res, signal, axis)
    params = pm.params(res)
    if is_dask(data) or is_dask(params):
        import dask.array as da

        if is_dask(params):
            data = da.asarray(data).rechunk(params.chunks[:-1] + (-1,))
        else:
            data = data.rechunk(data.chunks[:-1] + (-1,))
            params = da.from_array(params, chunks=data.chunks[:-1] + (-1,))
        out = da.map_blocks(
            _residual_block,
            data,
            params,
            pm=pm,
            dtype=np.float64,
            chunks=data.chunks,
            meta=np.empty((0,) * data.ndim, dtype=np.float64),
        )
    else:
        if hasattr(data, "get") and hasattr(data, "__cuda_array_interface__"):
            data = data.get()  # a CuPy cube
        flat_d = data.reshape(-1, data.shape[-1])
        flat_p = params.reshape(-1, params.shape[-1])
        out = np.empty(flat_d.shape)
        for b in _blocks(flat_d.shape[0], pm.x.size):
            out[b] = _residual_block(flat_d[b], flat_p[b], pm)
        out = out.reshape(data.shape)
    title = f"residuals of {res.title}" if res.title else "residuals"
    return _to_signal(out, pm, res, title)
