"""Turn what the user gives (a HyperSpy signal or an array) into a spectral cube to work on.

A :class:`Cube` is the data with the spectral axis last (numpy, dask or CuPy array), the
channel positions, and the calibration of the navigation axes, so that every map made from it
can carry the same axes.
"""

from dataclasses import dataclass, field

import numpy as np

from hyperlum._validate import calibrated_axes, value_range


@dataclass
class Cube:
    """A spectral cube: ``data[..., channel]`` with positions ``x`` and calibrated axes."""

    data: object
    x: np.ndarray
    nav_axes: list = field(default_factory=list)  # HyperSpy axis dicts, in array order
    #: The spectral axis as a HyperSpy axis dictionary: name, units, is_binned and the
    #: positions of ``x`` (``offset``/``scale``/``size`` when uniform, else ``axis``), kept
    #: in step with ``x`` so that a fit result can rebuild the axis it was fitted on.
    signal_axis: dict = field(default_factory=dict)
    title: str = ""

    def __post_init__(self):
        self.signal_axis = axis_dict(self.x, self.signal_axis)

    @property
    def nav_shape(self):
        return tuple(self.data.shape[:-1])

    @property
    def lazy(self):
        return is_dask(self.data)

    def channels(self, signal_range, name="signal_range"):
        """The slice of channels inside ``signal_range = (lo, hi)`` (axis units).

        ``name`` is the option's name in error messages (e.g. ``"--range"``).
        """
        if signal_range is None:
            return slice(None)
        keep = value_range(name, signal_range, self.x, self.signal_axis.get("units"))
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            raise ValueError(f"{name}={tuple(signal_range)!r} holds no channel")
        return slice(int(idx[0]), int(idx[-1]) + 1)

    def select(self, channels):
        """The cube restricted to the slice ``channels``."""
        return Cube(
            self.data[..., channels], self.x[channels], self.nav_axes, self.signal_axis, self.title
        )

    def crop(self, signal_range):
        """Keep the channels inside ``signal_range = (lo, hi)`` (axis units)."""
        return self if signal_range is None else self.select(self.channels(signal_range))


def axis_dict(x, meta=None):
    """A HyperSpy axis dictionary for channel positions ``x``.

    ``meta`` supplies name, units and is_binned. A uniform axis (steps equal to 1e-9 of the
    step) is written as ``offset``, ``scale`` and ``size``; any other as ``axis``, a list.

    Examples
    --------
    >>> d = axis_dict(np.array([1.0, 1.5, 2.0]), {"units": "eV"})
    >>> d["units"], d["offset"], d["scale"], d["size"]
    ('eV', 1.0, 0.5, 3)
    >>> axis_dict(np.array([1.0, 2.0, 4.0]))["axis"]
    [1.0, 2.0, 4.0]
    """
    meta = meta or {}
    d = {
        "name": meta.get("name"),
        "units": meta.get("units"),
        "is_binned": bool(meta.get("is_binned", False)),
        "navigate": False,
    }
    x = np.asarray(x, dtype=np.float64)
    step = np.diff(x)
    if x.size >= 2 and np.all(np.abs(step - step[0]) <= 1e-9 * abs(step[0])):
        return dict(d, size=int(x.size), offset=float(x[0]), scale=float(step[0]))
    if x.size == 1:
        return dict(d, size=1, offset=float(x[0]), scale=1.0)
    return dict(d, axis=x.tolist())


def _str_or_none(value):
    """HyperSpy leaves unset names and units as ``traits.Undefined``: make those None."""
    return value if isinstance(value, str) else None


def _real(name, data):
    if np.dtype(data.dtype).kind not in "uif":
        raise TypeError(f"{name} must hold real numbers, got dtype {data.dtype}")


def is_dask(a):
    """True for a dask array (checked without importing dask)."""
    return type(a).__module__.startswith("dask")


def as_numpy(a):
    """A block in memory: a dask array computed (threads), anything else as it is (a CuPy
    block stays on its GPU).

    Examples
    --------
    >>> import dask.array as da
    >>> as_numpy(da.ones(3, chunks=1)).tolist()
    [1.0, 1.0, 1.0]
    """
    if is_dask(a):
        return np.asarray(a.compute(scheduler="threads"))
    return a


def is_signal(a):
    """True for a HyperSpy signal (anything with an ``axes_manager`` and ``data``)."""
    return hasattr(a, "axes_manager") and hasattr(a, "data")


def as_cube(data, axis=None):
    """Make a :class:`Cube` from a HyperSpy Signal1D or an array with the spectral axis last.

    Parameters
    ----------
    data : hyperspy Signal1D, numpy.ndarray, dask.array.Array or cupy.ndarray
        The spectra. A signal brings its own axes; an array has the channels last.
    axis : array_like, optional
        Channel positions for an array (ignored for a signal). Default: channel indices.

    Returns
    -------
    Cube

    Examples
    --------
    >>> import numpy as np
    >>> c = as_cube(np.zeros((2, 3, 50)), axis=np.linspace(600, 800, 50))
    >>> c.nav_shape, float(c.x[-1])
    ((2, 3), 800.0)
    """
    if is_signal(data):
        am = data.axes_manager
        if am.signal_dimension != 1:
            raise ValueError(
                f"data must have one signal (spectral) axis, this signal has "
                f"{am.signal_dimension}: {data}"
            )
        _real("data", data.data)
        calibrated_axes(am, "data")
        sax = am.signal_axes[0]
        nav = []
        for ax in reversed(am.navigation_axes):
            d = ax.get_axis_dictionary()
            d["navigate"] = False
            nav.append(d)
        title = data.metadata.get_item("General.title", "") or ""
        return Cube(
            data.data,
            np.asarray(sax.axis, dtype=np.float64),
            nav,
            {
                "name": _str_or_none(sax.name),
                "units": _str_or_none(sax.units),
                "is_binned": bool(sax.is_binned),
            },
            title,
        )
    if not hasattr(data, "shape") or not hasattr(data, "dtype"):
        raise TypeError(
            "data must be a HyperSpy Signal1D or a numpy / dask / CuPy array with the spectral "
            f"axis last, got {type(data).__name__}"
        )
    if data.ndim < 1:
        raise ValueError("data must have at least one (spectral) axis, got a 0-d array")
    _real("data", data)
    if 0 in data.shape:
        raise ValueError(f"data must not have an empty axis, got shape {tuple(data.shape)}")
    n = data.shape[-1]
    if axis is None:
        x = np.arange(n, dtype=np.float64)
    else:
        x = np.asarray(axis, dtype=np.float64)
        if x.shape != (n,):
            raise ValueError(
                f"axis must be 1-D with one position per channel ({n}), got shape {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError("axis must hold finite channel positions")
        dx = np.diff(x)
        if n > 1 and not (np.all(dx > 0) or np.all(dx < 0)):
            raise ValueError("axis must be strictly increasing or strictly decreasing")
    nav = [
        {"size": s, "name": None, "units": None, "scale": 1.0, "offset": 0.0, "navigate": False}
        for s in data.shape[:-1]
    ]
    return Cube(data, x, nav, {"name": None, "units": None})


def map_spectra(fn, data, n_out, *, nav_chunks=None, dtype=np.float64, extra=()):
    """Spectra in, per-pixel values out: ``fn`` on every navigation chunk of ``data``.

    The pattern of every per-pixel computation (fit, spike removal, ZLP, power law): ``data``
    is cut over its navigation axes only, the spectral axis stays whole, and
    ``fn(block[..., channel], *extra_blocks)`` gives ``out[..., n_out]`` for the pixels of the
    block. Data in memory is given to ``fn`` whole.

    Parameters
    ----------
    fn : callable
        ``fn(block, *extra_blocks)`` -> array of shape ``block.shape[:-1] + (n_out,)``.
    data : numpy.ndarray, dask.array.Array or cupy.ndarray
        Spectra, channels last.
    n_out : int
        Values per pixel that ``fn`` gives.
    nav_chunks : tuple of tuple of int, optional
        Chunks of the navigation axes (dask's form) for a dask array; default: its own.
    dtype : numpy dtype
        What ``fn`` returns.
    extra : sequence of arrays
        Arrays with the navigation shape first (e.g. one value per pixel, ``[..., None]``),
        cut into the same navigation chunks and given to ``fn`` with each block.

    Returns
    -------
    numpy / dask array
        ``data.shape[:-1] + (n_out,)``; lazy for dask input.

    Examples
    --------
    >>> import dask.array as da
    >>> d = da.ones((4, 6, 10), chunks=(2, 3, 5))
    >>> out = map_spectra(lambda b: b.sum(axis=-1, keepdims=True), d, 1, nav_chunks=((4,), (6,)))
    >>> out.chunks, float(out.sum().compute())
    (((4,), (6,), (1,)), 240.0)
    >>> map_spectra(lambda b, w: b[..., :1] * w, np.ones((2, 3)), 1, extra=(np.full((2, 1), 5.0),))
    array([[5.],
           [5.]])
    """
    if not is_dask(data):
        return fn(data, *extra)
    import dask.array as da

    nav = data.ndim - 1
    chunks = tuple(nav_chunks) if nav_chunks is not None else data.chunks[:nav]
    data = data.rechunk(chunks + ((data.shape[-1],),))
    blocks = [
        da.asarray(e).rechunk(data.chunks[:nav] + tuple((s,) for s in e.shape[nav:])) for e in extra
    ]
    return da.map_blocks(
        fn,
        data,
        *blocks,
        dtype=dtype,
        chunks=data.chunks[:nav] + ((n_out,),),
        meta=np.empty((0,) * data.ndim, dtype=dtype),
    )
