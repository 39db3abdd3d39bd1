"""Argument checks whose messages name the argument and say what was expected."""

import numbers

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
    return (axis >= lo) & (axis <= hi)
