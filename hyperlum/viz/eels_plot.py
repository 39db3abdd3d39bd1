"""Figures of an EELS edge analysis: edge maps with the profile line, profiles, mean spectra.

Every figure is in calibrated units (the navigation axes' scale and units, the energy axis in
eV), with a scale bar on maps and a label with units on every axis and colour bar. Each
function returns a matplotlib Figure and leaves the backend alone.
"""

import numpy as np

from hyperlum.viz.plot import add_scalebar, map_extent


def _units(value, default):
    return value if isinstance(value, str) and value not in ("", "<undefined>") else default


def _band(start, end, width):
    """The two long sides of the band of ``width`` around the line ``start -> end``."""
    p0, p1 = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
    d = p1 - p0
    n = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-300)
    off = 0.5 * width * n
    return (p0 + off, p1 + off), (p0 - off, p1 - off)


def plot_edge_maps(maps, nav_axes, *, labels, line=None, width=None, colorbar_label=None):
    """One panel per edge map, calibrated, with a scale bar and the profile line drawn.

    Parameters
    ----------
    maps : sequence of 2-D or 1-D arrays
        One map per edge (e.g. the normalised edge intensity); a line scan gives 1-D maps.
    nav_axes : list of dict
        HyperSpy axis dicts of the maps in array order (``FitResult.nav_axes``).
    labels : sequence of str
        Title of each panel (e.g. ``"edge 636-670 eV"``).
    line : ((float, float), (float, float)), optional
        Start and end ``(x, y)`` of the profile in calibrated units, drawn on 2-D maps.
    width : float, optional
        Width of the profile band (calibrated units), drawn as dashed sides.
    colorbar_label : str, optional
        Label of the colour bars (2-D) or of the value axis (line scan), with its units.
        Default: ``"edge / total intensity (fraction)"``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> axes = [{"scale": 2.0, "offset": 0.0, "units": "nm"}] * 2
    >>> fig = plot_edge_maps([np.ones((4, 5))], axes, labels=["Mn"], line=((0, 2), (8, 2)))
    >>> fig.axes[0].get_xlabel(), fig.axes[1].get_ylabel()
    ('x (nm)', 'edge / total intensity (fraction)')
    """
    import matplotlib.pyplot as plt

    value_label = colorbar_label or "edge / total intensity (fraction)"
    maps = [np.asarray(m, dtype=float) for m in maps]
    if maps[0].ndim == 1:
        ax0 = nav_axes[0] if nav_axes else {}
        units = _units(ax0.get("units"), "px")
        pos = float(ax0.get("offset", 0.0)) + float(ax0.get("scale", 1.0)) * np.arange(maps[0].size)
        fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
        for m, label in zip(maps, labels, strict=True):
            ax.plot(pos, m, "o-", ms=4, label=label)
        ax.set_xlabel(f"position ({units})")
        ax.set_ylabel(value_label)
        ax.legend(fontsize=8, frameon=False)
        return fig
    n = len(maps)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 4.0), layout="constrained", squeeze=False)
    extent, units = map_extent(nav_axes, maps[0].shape)
    for ax, m, label in zip(axes[0], maps, labels, strict=True):
        finite = m[np.isfinite(m)]
        vmin, vmax = np.percentile(finite, [1, 99]) if finite.size else (None, None)
        im = ax.imshow(m, extent=extent, cmap="viridis", vmin=vmin, vmax=vmax)
        fig.colorbar(im, ax=ax, label=value_label, shrink=0.85)
        ax.set_xlabel(f"x ({units})")
        ax.set_ylabel(f"y ({units})")
        ax.set_title(label)
        add_scalebar(ax, extent, units)
        if line is not None:
            (x0, y0), (x1, y1) = line
            ax.plot([x0, x1], [y0, y1], color="white", lw=1.5, label="profile")
            ax.plot([x0], [y0], "o", color="white", ms=4)
            if width is not None:
                for a, b in _band(line[0], line[1], width):
                    ax.plot([a[0], b[0]], [a[1], b[1]], "--", color="white", lw=0.8)
            ax.set_xlim(extent[0], extent[1])
            ax.set_ylim(extent[2], extent[3])
    return fig


def plot_profiles(profiles, *, labels, value_label=None):
    """Profiles (e.g. from :func:`hyperlum.eels.line_profile`) against calibrated distance.

    Parameters
    ----------
    profiles : sequence of hyperspy Signal1D
        One profile per edge, all along the same line.
    labels : sequence of str
        Legend entry of each profile.
    value_label : str, optional
        Label of the value axis with its units. Default:
        ``"edge / total intensity (fraction)"``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> p = hs.signals.Signal1D(np.arange(5.0))
    >>> p.axes_manager[0].scale, p.axes_manager[0].units = 3.0, "nm"
    >>> plot_profiles([p], labels=["Mn"]).axes[0].get_xlabel()
    'distance from the start of the line (nm)'
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for p, label in zip(profiles, labels, strict=True):
        ax.plot(p.axes_manager[0].axis, p.data, "o-", ms=4, label=label)
    units = _units(profiles[0].axes_manager[0].units, "px")
    ax.set_xlabel(f"distance from the start of the line ({units})")
    ax.set_ylabel(value_label or "edge / total intensity (fraction)")
    ax.legend(fontsize=8, frameon=False)
    return fig


def plot_mean_spectra(spectra, subtracted, background, *, fit_range, edges, ax=None):
    """Mean spectrum, its power-law background and the subtracted mean, with the windows.

    Only pixels whose power law converged are averaged. The background is drawn solid over
    ``fit_range``, where it was fitted, and dashed from there to the end of the last edge
    window, where it is extrapolated and subtracted; it is not drawn below ``fit_range``
    (``E**-r`` grows without bound towards 0 eV). The subtracted mean is drawn over the same
    range, fit window and edges; the view spans them with a margin of 30 % on each side.

    Parameters
    ----------
    spectra : hyperspy Signal1D
        The spectra the background was fitted to.
    subtracted : hyperspy Signal1D
        The background-subtracted spectra (:func:`hyperlum.eels.subtract_powerlaw`).
    background : FitResult
        The power-law maps from :func:`hyperlum.eels.subtract_powerlaw`.
    fit_range : (float, float)
        The power-law window.
    edges : sequence of (float, float)
        The edge windows.
    ax : matplotlib Axes, optional
        Where to draw; default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    sax = spectra.axes_manager.signal_axes[0]
    e = np.asarray(sax.axis, dtype=float)
    units = _units(sax.units, "channel")
    good = np.asarray(background.maps["converged"]).reshape(-1)
    flat = np.asarray(spectra.data, dtype=float).reshape(-1, e.size)[good]
    flat_sub = np.asarray(subtracted.data, dtype=float).reshape(-1, e.size)[good]
    a = np.asarray(background.maps["A"], dtype=float).reshape(-1)[good]
    r = np.asarray(background.maps["r"], dtype=float).reshape(-1)[good]
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    fig = ax.figure
    ax.set_xlabel(f"energy loss ({units})")
    ax.set_ylabel("counts per channel")
    if not good.any():
        ax.set_title("no pixel's power law converged")
        return fig
    lo, hi = fit_range
    end = max([hi] + [w[1] for w in edges])
    fitted = (e >= lo) & (e <= hi)
    extra = (e >= hi) & (e <= end)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        model = np.mean(a[:, None] * np.where(e > 0, e, np.nan)[None] ** -r[:, None], axis=0)
    ax.plot(e, np.nanmean(flat, axis=0), color="k", lw=1, label=f"mean of {good.sum()} pixels")
    ax.plot(e[fitted], model[fitted], color="C0", lw=2, label="power law (fitted)")
    ax.plot(e[extra], model[extra], "--", color="C0", lw=1.5, label="power law (extrapolated)")
    used = (e >= lo) & (e <= end)
    ax.plot(e[used], np.nanmean(flat_sub, axis=0)[used], color="C2", label="mean subtracted")
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.axvspan(lo, hi, color="0.85", zorder=0, label=f"fit {lo:g}-{hi:g} {units}")
    for k, (a0, a1) in enumerate(edges):
        label = f"edge {a0:g}-{a1:g} {units}"
        ax.axvspan(a0, a1, color=f"C{3 + k}", alpha=0.25, zorder=0, label=label)
    span = end - lo
    ax.set_xlim(max(e.min(), lo - 0.3 * span), min(e.max(), end + 0.3 * span))
    shown = (e >= ax.get_xlim()[0]) & (e <= ax.get_xlim()[1])
    top = np.nanmax(np.nanmean(flat, axis=0)[shown])
    bottom = min(0.0, np.nanmin(np.nanmean(flat_sub, axis=0)[used]))
    ax.set_ylim(bottom - 0.05 * top, 1.05 * top)
    ax.legend(fontsize=8, frameon=False)
    return fig
