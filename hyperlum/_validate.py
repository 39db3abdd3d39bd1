"""Argument checks whose messages name the argument and say what was expected."""

import numbers
import sys
import warnings

import numpy as np


def choice(name, value, options):
    """Return ``value`` if it is one of ``options``, else raise ValueError naming them."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(repr, options))}")
    return value


def integer(name, value, lo, hi):
    """Return ``value`` as an int in ``[lo, hi]``; TypeError / ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer from {lo} to {hi}, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name}={value} is outside the allowed range {lo} to {hi}")
    return int(value)


def positive(name, value):
    """Return ``value`` as a float > 0; TypeError / ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    if np.isinf(value):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    if not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def value_range(name, value, axis, units=""):
    """Check ``(lo, hi)`` in axis units against ``axis``; return the boolean channel mask."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (low, high) in axis units, got {value!r}") from None
    u = f" {units}" if units else ""
    if not (np.isfinite(lo) and np.isfinite(hi)) or not lo < hi:
        raise ValueError(f"{name}=({lo:g}, {hi:g}) must be increasing finite values")
    amin, amax = float(np.min(axis)), float(np.max(axis))
    if hi < amin or lo > amax:
        raise ValueError(
            f"{name}=({lo:g}, {hi:g}){u} lies outside the signal axis ({amin:g} to {amax:g}{u})"
        )
    keep = (axis >= lo) & (axis <= hi)
    if (lo < amin or hi > amax) and keep.any():
        used = axis[keep]
        warnings.warn(
            f"{name}=({lo:g}, {hi:g}){u} reaches outside the signal axis ({amin:g} to "
            f"{amax:g}{u}); using {used.min():g} to {used.max():g}{u} ({used.size} channels)",
            UserWarning,
            stacklevel=_outside_hyperlum(),
        )
    return keep


def calibrated_axes(axes_manager, what):
    """Check every axis of a HyperSpy signal: not empty, positions finite and distinct.

    ``what`` names the data in the messages (a file, or ``"data"``). Raises ValueError naming
    the axis: an empty axis, a uniform axis of scale 0 or a non-finite scale or offset, a
    non-uniform axis with non-finite or non-monotonic positions.
    """
    for i, ax in enumerate(axes_manager.navigation_axes + axes_manager.signal_axes):
        role = "navigation" if ax.navigate else "signal"
        label = f"{role} axis {ax.name!r}" if isinstance(ax.name, str) else f"{role} axis {i}"
        if ax.size == 0:
            raise ValueError(f"{what} has an empty {label} (0 positions); nothing to fit")
        if ax.is_uniform:
            for key in ("scale", "offset"):
                v = float(getattr(ax, key))
                if not np.isfinite(v) or (key == "scale" and v == 0):
                    raise ValueError(
                        f"{what}: the {label} has {key} {v:g}; an axis needs a finite offset "
                        "and a finite, non-zero scale"
                    )
        else:
            x = np.asarray(ax.axis, dtype=np.float64)
            dx = np.diff(x)
            if not np.all(np.isfinite(x)) or not (np.all(dx > 0) or np.all(dx < 0)):
                raise ValueError(
                    f"{what}: the {label} must hold finite, strictly increasing or decreasing "
                    "positions"
                )


def _outside_hyperlum():
    """The ``stacklevel`` that points a warning at the first caller outside hyperlum."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("hyperlum"):
        frame, level = frame.f_back, level + 1
    return level
