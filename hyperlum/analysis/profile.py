"""Line profiles of a map in calibrated distance (e.g. an edge intensity across an interface)."""

import math

import numpy as np

from hyperlum._validate import positive
from hyperlum.io.cube import is_dask, is_signal


def _map_axes(m):
    """Array, and per array axis (scale, offset, units) of a map (signal or array)."""
    if is_signal(m):
        # ``_axes`` lists the axes in array order, navigation and signal alike.
        cal = [(float(a.scale), float(a.offset), a.units) for a in m.axes_manager._axes]
        data = m.data
    else:
        data = m
        cal = [(1.0, 0.0, None)] * np.ndim(m)
    if is_dask(data):
        data = data.compute()
    return np.asarray(data, dtype=np.float64), cal


def line_profile(map, start, end, *, width=None):
    """Profile of a map along a line from ``start`` to ``end``, in calibrated distance.

    Parameters
    ----------
    map : hyperspy Signal2D / Signal1D map, or a 2-D / 1-D array
        The map (e.g. from :func:`hyperlum.eels.edge_intensity`). A line scan is 1-D.
    start, end : (float, float) or float
        Ends of the line in the map's calibrated units: ``(x, y)`` for a 2-D map (x along the
        columns), a position for a line scan.
    width : float, optional
        Width of the band averaged across the line, in calibrated units (2-D maps only).
        Default: one pixel.

    Returns
    -------
    hyperspy Signal1D
        The profile; its axis is the distance from ``start`` (units of the map), sampled once
        per pixel length along the line (linear interpolation).

    Examples
    --------
    >>> img = np.tile(np.arange(10.0), (5, 1))  # increases along x
    >>> p = line_profile(img, (1, 2), (7, 2), width=3)
    >>> p.data.tolist(), p.axes_manager[0].scale
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 1.0)
    """
    import hyperspy.api as hs

    if width is not None:
        width = positive("width", width)
        if not math.isfinite(width):
            raise ValueError(f"width must be a finite positive number, got {width!r}")
    data, cal = _map_axes(map)
    if data.ndim == 1:
        scale, offset, units = cal[0]
        if width is not None:
            raise ValueError("width applies to 2-D maps only; this map is a line scan")
        try:
            p0, p1 = float(start), float(end)
        except TypeError:
            raise TypeError(
                f"start and end must be positions (numbers) on a line scan, got {start!r}, {end!r}"
            ) from None
        i0, i1 = (p0 - offset) / scale, (p1 - offset) / scale
        npts = max(2, int(math.floor(abs(i1 - i0) + 1e-9)) + 1)
        pos = np.linspace(i0, i1, npts)
        _check_inside("start/end", (i0, i1), data.shape[0], units, scale, offset)
        values = np.interp(pos, np.arange(data.shape[0]), data)
        length = abs(p1 - p0)
    elif data.ndim == 2:
        from skimage.measure import profile_line

        (sy, oy, uy), (sx, ox, ux) = cal
        units = ux or uy
        try:
            (x0, y0), (x1, y1) = ((float(v) for v in p) for p in (start, end))
        except (TypeError, ValueError):
            raise TypeError(
                f"start and end must be (x, y) pairs in calibrated units, got {start!r}, {end!r}"
            ) from None
        r0, c0 = (y0 - oy) / sy, (x0 - ox) / sx
        r1, c1 = (y1 - oy) / sy, (x1 - ox) / sx
        _check_inside("start/end x", (c0, c1), data.shape[1], units, sx, ox)
        _check_inside("start/end y", (r0, r1), data.shape[0], units, sy, oy)
        pix = 0.5 * (abs(sx) + abs(sy))
        lw = 1 if width is None else max(1, int(round(width / pix)))
        values = profile_line(
            data,
            (r0, c0),
            (r1, c1),
            linewidth=lw,
            order=1,
            mode="nearest",
            reduce_func=np.mean,
        )
        npts = values.size
        length = math.hypot(x1 - x0, y1 - y0)
    else:
        raise ValueError(f"map must be 1-D (line scan) or 2-D, got {data.ndim} dimensions")
    step = length / (npts - 1) if npts > 1 else 1.0
    prof = hs.signals.Signal1D(
        np.asarray(values, dtype=np.float64),
        axes=[{"size": npts, "scale": step, "offset": 0.0, "name": "Distance", "units": units}],
    )
    title = map.metadata.General.title if is_signal(map) else "map"
    prof.metadata.General.title = f"profile of {title}"
    return prof


def _check_inside(name, idx, n, units, scale, offset):
    lo, hi = -0.5, n - 0.5
    if any(not (lo <= i <= hi) for i in idx):
        u = f" {units}" if units else ""
        a, b = offset, offset + (n - 1) * scale
        raise ValueError(f"{name} lies outside the map ({min(a, b):g} to {max(a, b):g}{u})")
