"""``hyperlum.load``: spectrum images from vendor and HyperSpy files, with sensible units.

Files are read by HyperSpy / RosettaSciIO (no hand-written readers); ``.npy`` arrays by NumPy,
with the channel positions from a separate file or array. After loading, axes given in metres
or millimetres (Attolight ``.sur`` files, whose wavelength comes in mm) are converted: the
wavelength axis of a CL signal to nm, an energy axis in keV to eV, spatial axes in m / cm / mm
to nm or µm. Non-uniform axes stay non-uniform.

What cannot be fitted is refused here, with one line naming the file: complex data, empty axes,
axes of scale 0 / inf / nan. A lazy signal reads its chunks through a guard, so that a damaged
chunk ends a computation with a ValueError naming the file and the chunk.
"""

import contextlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from hyperlum._validate import calibrated_axes

#: Nanometres per unit of length.
_NM_PER = {
    "m": 1e9,
    "cm": 1e7,
    "mm": 1e6,
    "µm": 1e3,
    "μm": 1e3,
    "um": 1e3,
    "micron": 1e3,
    "nm": 1.0,
    "Å": 0.1,
    "pm": 1e-3,
}
#: Spatial units that are rescaled (to nm or µm) when the data comes with them.
_UNUSUAL_SPATIAL = ("m", "cm", "mm")
_MICRO = ("um", "μm", "micron")

#: What the readers of the formats named in the docs are called, for error messages.
_FORMAT_NAMES = {
    ".dm3": "a Gatan DigitalMicrograph file",
    ".dm4": "a Gatan DigitalMicrograph file",
    ".sur": "a DigitalSurf file",
    ".pro": "a DigitalSurf file",
    ".h5": "an HDF5 file",
    ".hdf5": "an HDF5 file",
    ".hspy": "a HyperSpy file",
    ".zspy": "a HyperSpy zarr file",
    ".npy": "a NumPy array",
}
#: Readers tried, in this order, when several RosettaSciIO readers claim a file.
_PREFERRED_READERS = ("Delmic",)


def _known_extensions():
    from rsciio import IO_PLUGINS

    skip = {"Image"}  # imageio would accept almost anything, and gives no spectra
    exts = {".npy"}
    for plugin in IO_PLUGINS:
        if plugin["name"] not in skip:
            exts.update("." + e.lower() for e in plugin["file_extensions"])
    return exts


def _reason(err):
    text = str(err).strip()
    line = text.splitlines()[0] if text else ""
    name = type(err).__name__
    if name == "error":  # struct.error, zlib.error: say whose
        name = f"{type(err).__module__}.error"
    return f"{name}: {line}" if line else name


@contextlib.contextmanager
def quiet():
    """Silence HyperSpy's and RosettaSciIO's log lines and warnings while a file is read."""
    loggers = [logging.getLogger(n) for n in ("hyperspy", "rsciio", "exspy", "lumispy")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


def load(path, *, lazy=False, **reader_hints):
    """Load a spectrum image (CL or EELS) as a HyperSpy signal with one spectral axis.

    Parameters
    ----------
    path : str or os.PathLike
        A file HyperSpy / RosettaSciIO reads (``.dm3``, ``.dm4``, ``.sur``, Delmic ``.h5``,
        ``.hspy``, ``.zspy``, ...) or a ``.npy`` array with the spectral axis last.
    lazy : bool
        Return a lazy (dask-backed) signal; the data is read chunk by chunk when needed. Readers
        that cannot read lazily load the data, then wrap it.
    **reader_hints
        ``file_format`` (or ``reader``): the RosettaSciIO reader to use. Without it, a file that
        several readers claim (HDF5, JobinYvon ``.xml``) is read by the first of them that gives
        a spectrum (Delmic first). For ``.npy`` input: ``axis`` (the channel positions: an
        array, or a ``.npy`` / text file; default: ``<name>.axis.npy`` next to the array),
        ``axis_units``, ``axis_name`` and ``signal_type`` (e.g. ``"CL"`` or ``"EELS"``). Any
        other hint goes to :func:`hyperspy.api.load`.

    Returns
    -------
    hyperspy Signal1D
        ``CLSpectrum`` / ``EELSSpectrum`` (lazy or not) when the file says what it holds. The
        wavelength of CL signals is in nm, EELS energy loss in eV; spatial axes in m, cm or
        mm are converted to nm or µm. When the file holds several signals (a Renishaw map and
        its survey image), the spectrum image.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The format is not supported; the file could not be read; it holds no signal with one
        spectral axis, or complex numbers; an axis is empty, or has a scale of 0, inf or nan
        (or non-finite, non-monotonic positions). A data chunk that cannot be read (a damaged
        compressed chunk, a truncated file) raises a ValueError naming the file and the chunk,
        when it is read: at once for ``lazy=False``, when computed for ``lazy=True``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "cube.npy"), np.ones((2, 3, 5), dtype=np.float32))
    >>> np.save(os.path.join(d, "cube.axis.npy"), np.linspace(0.6, 0.7, 5))
    >>> s = load(os.path.join(d, "cube.npy"), axis_units="µm", signal_type="CL")
    >>> s.axes_manager.signal_axes[0].units, round(float(s.axes_manager.signal_axes[0].axis[-1]), 6)
    ('nm', 700.0)
    >>> s.metadata.Signal.signal_type
    'CL'
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    ext = p.suffix.lower()
    if ext not in _known_extensions():
        raise ValueError(
            f"{p}: unsupported format {ext or '(no extension)'!r}; hyperlum reads .dm3, .dm4, "
            ".sur, Delmic .h5, .hspy, .zspy, .npy and the other spectrum formats of RosettaSciIO"
        )
    if ext == ".npy":
        signal = _load_npy(p, lazy=lazy, **reader_hints)
    else:
        signal = _load_hyperspy(p, ext, lazy=lazy, **reader_hints)
    kind = np.dtype(signal.data.dtype).kind
    if kind not in "uif":
        what = "complex numbers" if kind == "c" else f"{signal.data.dtype} values"
        raise ValueError(f"{p} holds {what}, not real numbers; hyperlum fits real spectra")
    calibrated_axes(signal.axes_manager, str(p))
    normalise_units(signal)
    tp = signal.tmp_parameters  # the file it came from, as HyperSpy notes it, for every reader
    if not tp.has_item("filename"):
        tp.set_item("folder", str(p.resolve().parent))
        tp.set_item("filename", p.stem)
        tp.set_item("extension", p.suffix)
    return signal


def _load_hyperspy(p, ext, *, lazy, **hints):
    import hyperspy.api as hs

    if "reader" in hints:  # HyperSpy 2.4 renamed it
        hints.setdefault("file_format", hints.pop("reader"))
    what = _FORMAT_NAMES.get(ext, f"a {ext} file")
    if hints.get("file_format"):
        what = f"a {hints['file_format']} file"

    def read(lazy, **kw):
        with quiet():
            try:
                found = hs.load(str(p), lazy=lazy, **kw)
            except NotImplementedError as err:
                if not lazy or "lazy" not in str(err).lower():
                    raise
                return _spectral(hs.load(str(p), lazy=False, **kw), p).as_lazy()
        return _spectral(found, p)

    try:
        signal = read(lazy, **hints)
    except _NotSpectral:
        raise
    except Exception as err:  # readers fail in many ways on a corrupt file
        readers = _claimed_by(err)
        if readers and not hints.get("file_format"):
            return _first_reader(read, p, readers, lazy, hints)
        if not lazy and not isinstance(err, MemoryError):
            _find_bad_chunk(read, p, hints)
        raise ValueError(f"{p} could not be read as {what}: {_reason(err)}") from err
    return _guard(signal, p) if lazy else signal


def _first_reader(read, p, readers, lazy, hints):
    """Several readers claim ``p``: the first (preferred ones first) that gives a spectrum."""
    order = [r for r in _PREFERRED_READERS if r in readers]
    order += [r for r in readers if r not in order]
    failed = []
    for name in order:
        try:
            signal = read(lazy, **dict(hints, file_format=name))
        except _NotSpectral:
            failed.append(f"{name}: no spectral axis")
            continue
        except Exception as err:  # the readers that do not fit this file fail in many ways
            failed.append(f"{name}: {_reason(err)}")
            continue
        return _guard(signal, p) if lazy else signal
    raise ValueError(
        f"{p} could not be read by any of the readers that claim it ({'; '.join(failed)}); "
        "name one with file_format= (--format on the command line)"
    )


def _find_bad_chunk(read, p, hints):
    """After an eager read failed: when a lazy read works, raise the error of the chunk that
    cannot be read (naming it); else return, and the eager read's error stands."""
    try:
        signal = _guard(read(True, **hints), p)
    except Exception:
        return
    import dask.array as da

    for block in signal.data.blocks.ravel():
        da.compute(block, scheduler="sync")


class _NotSpectral(ValueError):
    """The file was read, and holds no spectrum: said as it is, not as a read error."""


class _GuardedBlocks:
    """A lazy array read block by block; a block that cannot be read raises a ValueError that
    names the file and the block (a damaged chunk of a compressed file, a truncated file)."""

    def __init__(self, data, path):
        self.data, self.path = data, str(path)
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim

    def __dask_tokenize__(self):
        return ("hyperlum.io.loader.guarded", self.path, self.data.name)

    def __getitem__(self, key):
        try:
            return np.asarray(self.data[key].compute(scheduler="sync"))
        except Exception as err:  # decompression and I/O errors come in many types
            where = ", ".join(_index_text(k) for k in (key if isinstance(key, tuple) else (key,)))
            raise ValueError(
                f"{self.path}: the data chunk [{where}] could not be read ({_reason(err)}); "
                "the file is damaged"
            ) from err


def _index_text(k):
    if isinstance(k, slice):
        lo = "" if k.start is None else k.start
        hi = "" if k.stop is None else k.stop
        return f"{lo}:{hi}" + ("" if k.step in (None, 1) else f":{k.step}")
    return str(k)


def _guard(signal, p):
    """Make the reads of a lazy signal's chunks fail with a message naming ``p`` and the chunk."""
    import dask.array as da

    data = signal.data
    signal.data = da.from_array(
        _GuardedBlocks(data, p),
        chunks=data.chunks,
        fancy=False,
        meta=np.empty((0,) * data.ndim, dtype=data.dtype),
    )
    return signal


def _claimed_by(err):
    """The reader names listed by HyperSpy's "multiple file readers" error, else None."""
    text = str(err)
    if "multiple file readers" not in text or "[" not in text:
        return None
    inside = text[text.rindex("[") + 1 : text.rindex("]")]
    return [r.strip().strip("'\"") for r in inside.split(",") if r.strip()]


def _spectral(signal, p):
    """The one signal with one spectral axis in what a reader returned."""
    found = signal if isinstance(signal, list) else [signal]
    spectra = [s for s in found if s.axes_manager.signal_dimension == 1]
    if not spectra:
        dims = ", ".join(
            f"{s.axes_manager.signal_dimension}-D signal of shape {s.data.shape}" for s in found
        )
        raise _NotSpectral(f"{p} has no spectral axis (it holds {dims}); hyperlum fits spectra")
    return max(spectra, key=lambda s: s.data.size)


def _load_npy(p, *, lazy, axis=None, axis_units=None, axis_name=None, signal_type=None, **rest):
    import hyperspy.api as hs

    if rest:
        raise TypeError(f"unknown reader hint(s) for a .npy file: {', '.join(sorted(rest))}")
    try:
        data = np.load(p, mmap_mode="r", allow_pickle=False)
    except Exception as err:
        raise ValueError(f"{p} could not be read as a NumPy array: {_reason(err)}") from err
    if data.ndim < 1 or not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"{p} holds a {data.ndim}-D {data.dtype} array, not spectra")
    if 0 in data.shape:
        raise ValueError(f"{p} holds an empty array (shape {data.shape}), no spectra")
    x = _npy_axis(p, axis, data.shape[-1])
    if lazy:
        import dask.array as da

        data = da.from_array(data, chunks=("auto",) * (data.ndim - 1) + (-1,))
    else:
        data = np.asarray(data)
    dx = np.diff(x)
    uniform = x.size < 2 or np.allclose(dx, dx[0], rtol=1e-9, atol=0)
    sig_ax = {"name": axis_name or "Signal axis", "navigate": False}
    if axis_units:
        sig_ax["units"] = axis_units
    if uniform:
        step = float((x[-1] - x[0]) / (x.size - 1)) if x.size > 1 else 1.0
        sig_ax.update(size=x.size, offset=float(x[0]), scale=step)
    else:
        sig_ax["axis"] = x
    nav = [{"size": n, "navigate": True} for n in data.shape[:-1]]
    signal = hs.signals.Signal1D(data, axes=[*nav, sig_ax])
    if lazy:
        signal = signal.as_lazy()
    if signal_type:
        with quiet():
            signal.set_signal_type(signal_type)
    signal.metadata.General.title = p.stem
    return signal


def _npy_axis(p, axis, n):
    if axis is None:
        side = p.with_name(p.stem + ".axis.npy")
        if not side.exists():
            raise ValueError(
                f"{p} has no spectral axis: give the channel positions (axis=, or "
                f"--axis on the command line) or put them in {side.name} next to it"
            )
        axis = side
    if isinstance(axis, (str, os.PathLike)):
        a = Path(axis)
        if not a.exists():
            raise FileNotFoundError(f"no such axis file: {a}")
        try:
            x = np.load(a, allow_pickle=False) if a.suffix.lower() == ".npy" else np.loadtxt(a)
        except Exception as err:
            raise ValueError(f"{a} could not be read as channel positions: {_reason(err)}") from err
    else:
        x = axis
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.shape != (n,):
        raise ValueError(f"the axis of {p} must give {n} channel positions, it gives {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"the axis of {p} must hold finite channel positions")
    if n > 1 and not (np.all(np.diff(x) > 0) or np.all(np.diff(x) < 0)):
        raise ValueError(f"the axis of {p} must be strictly increasing or decreasing")
    return x


def _rescale(ax, factor, units):
    if ax.is_uniform:
        ax.scale = ax.scale * factor
        ax.offset = ax.offset * factor
    else:
        if not hasattr(ax, "_expression"):
            ax.axis = np.asarray(ax.axis) * factor
        else:  # a functional axis: make it a plain non-uniform one first
            ax.convert_to_non_uniform_axis()
            ax = ax.axes_manager[ax.index_in_axes_manager]
            ax.axis = np.asarray(ax.axis) * factor
    ax.units = units


def _text(value):
    return value.strip() if isinstance(value, str) else ""


def _is_wavelength(signal, ax):
    name = _text(ax.name).lower()
    stype = (signal.metadata.get_item("Signal.signal_type", "") or "").upper()
    return "wavelength" in name or stype.startswith("CL") or stype == "PL"


def normalise_units(signal):
    """Convert the axes of ``signal`` in place: wavelength to nm, keV to eV, mm to nm / µm.

    A signal axis in a unit of length is a wavelength (on a CL signal, or an axis named
    wavelength) and goes to nm; an energy axis in keV goes to eV; navigation axes in m, cm or
    mm go to nm (steps under 1 µm) or µm. ``um`` is spelled ``µm``. Other axes are left alone.

    Examples
    --------
    >>> import hyperspy.api as hs, numpy as np
    >>> s = hs.signals.Signal1D(np.zeros((3, 4)))
    >>> s.axes_manager[0].units = "mm"; s.axes_manager[0].scale = 8e-5
    >>> s.axes_manager[-1].units = "mm"; s.axes_manager[-1].name = "Wavelength"
    >>> s.axes_manager[-1].scale = 1e-6; s.axes_manager[-1].offset = 3.5e-4
    >>> normalise_units(s)
    >>> [(a.units, round(a.scale, 6), round(a.offset, 6)) for a in s.axes_manager._axes]
    [('nm', 80.0, 0.0), ('nm', 1.0, 350.0)]
    """
    am = signal.axes_manager
    for ax in am.signal_axes:
        units = _text(ax.units)
        if units in _NM_PER and units != "nm" and _is_wavelength(signal, ax):
            _rescale(ax, _NM_PER[units], "nm")
        elif units == "keV":
            _rescale(ax, 1e3, "eV")
    for ax in am.navigation_axes:
        units = _text(ax.units)
        if units in _UNUSUAL_SPATIAL:
            f = _NM_PER[units]
            if ax.is_uniform:
                step = abs(ax.scale) * f
            else:
                step = float(np.median(np.abs(np.diff(ax.axis)))) * f
            if step >= 1000:
                _rescale(ax, f / 1e3, "µm")
            else:
                _rescale(ax, f, "nm")
        elif units in _MICRO:
            ax.units = "µm"
