"""Small helpers shared by the preprocessing modules: give back what the user gave.

A HyperSpy signal in gives a signal of the same class out (same metadata and navigation axes);
an array in gives an array out. Maps (one value per pixel) become calibrated HyperSpy signals
through :class:`~hyperlum.fitting.result.FitResult`'s conversion.
"""

import numpy as np

from hyperlum.io.cube import is_dask, is_signal


def new_like(signal, data, signal_axis=None):
    """A signal of ``signal``'s class, metadata and navigation axes holding ``data``.

    ``signal_axis`` (a HyperSpy axis dictionary) replaces the spectral axis when given. The
    noise variance is not carried over (it would no longer match the data).

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> s = hs.signals.Signal1D(np.zeros((2, 5)))
    >>> t = new_like(s, np.ones((2, 3)), {"size": 3, "scale": 2.0, "offset": 1.0,
    ...                                    "name": "E", "units": "eV", "navigate": False})
    >>> t.axes_manager.signal_axes[0].axis.tolist(), float(t.data.sum())
    ([1.0, 3.0, 5.0], 6.0)
    """
    am = signal.axes_manager
    axes = []
    for ax in am._axes:
        d = ax.get_axis_dictionary()
        if not ax.navigate and signal_axis is not None:
            d = dict(signal_axis)
            d.setdefault("navigate", False)
        axes.append(d)
    md = signal.metadata.as_dictionary()
    md.get("Signal", {}).pop("Noise_properties", None)
    return signal.__class__(
        data,
        axes=axes,
        metadata=md,
        original_metadata=signal.original_metadata.as_dictionary(),
    )


def map_out(data, cube, name, like, units=None):
    """A per-pixel map as the caller expects it: a calibrated signal when ``like`` is a signal.

    ``data`` is a numpy or dask array with the navigation shape of ``cube``.
    """
    if not is_signal(like):
        return data
    import hyperspy.api as hs

    axes = [dict(a) for a in cube.nav_axes]
    if data.ndim == 0:
        sig = hs.signals.BaseSignal(np.asarray(data).reshape(1))
    elif data.ndim == 1:
        sig = hs.signals.Signal1D(data, axes=axes)
    else:
        sig = hs.signals.Signal2D(data, axes=axes)
        if data.ndim > 2:
            sig = sig.transpose(signal_axes=[data.ndim - 1, data.ndim - 2])
    if is_dask(data):
        sig = sig.as_lazy()
    title = f"{name} ({units})" if units else name
    sig.metadata.General.title = title
    sig.metadata.set_item("Signal.quantity", title)
    return sig


def spectra_out(data, like, signal_axis=None):
    """Spectra as the caller expects them: a signal like ``like``, or the bare array."""
    if is_signal(like):
        return new_like(like, data, signal_axis)
    return data
