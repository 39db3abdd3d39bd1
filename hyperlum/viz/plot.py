"""Figures of fitted maps: map panels with scale bars and region outlines, spectra with their
fits, per-region histograms and 2D histograms.

Every function returns a matplotlib Figure and leaves the backend alone; code that writes
files (the report, the command line) selects the Agg backend first.
"""

import numpy as np

from hyperlum.viz.labels import axis_label as _label
from hyperlum.viz.labels import new_axes as _axes

_PIXEL_COLOURS = ("#000000", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
#: Colours of the regions, used in every figure.
REGION_COLOURS = {
    "core": "#1f77b4",
    "interface": "#d62728",
    "shell": "#2ca02c",
    "matrix": "#7f7f7f",
}


def _nice_length(span):
    """A round length (1, 2 or 5 x 10^k) close to a fifth of ``span``."""
    target = span / 5.0
    k = np.floor(np.log10(target))
    for m in (5.0, 2.0, 1.0):
        if m * 10**k <= target:
            return m * 10**k
    return 10**k


def add_scalebar(ax, extent, units, *, color="white"):
    """Draw a scale bar in the lower right of an image drawn with ``extent``.

    Parameters
    ----------
    ax : matplotlib Axes
    extent : (left, right, bottom, top)
        The calibrated extent given to ``imshow``.
    units : str
        Units of the extent, written under the bar.
    """
    from matplotlib.font_manager import FontProperties
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    left, right, bottom, top = extent
    width, height = abs(right - left), abs(bottom - top)
    length = _nice_length(width)
    bar = AnchoredSizeBar(
        ax.transData,
        length,
        f"{length:g} {units}".strip(),
        "lower right",
        pad=0.35,
        borderpad=0.6,
        sep=3,
        color=color,
        frameon=True,
        size_vertical=0.018 * height,
        fontproperties=FontProperties(size=9, weight="bold"),
    )
    bar.patch.set_facecolor("black")
    bar.patch.set_alpha(0.55)
    bar.patch.set_edgecolor("none")
    bar.set_zorder(6)
    ax.add_artist(bar)
    return length


def map_extent(nav_axes, shape):
    """Calibrated ``imshow`` extent (left, right, bottom, top) and units of a (y, x) map.

    Parameters
    ----------
    nav_axes : sequence of dict
        HyperSpy-style axis dictionaries (``scale``, ``offset``, ``units``), y then x.
    shape : tuple of int
        The map's (rows, columns).

    Returns
    -------
    extent : tuple of float
    units : str
        The x axis units (``"px"`` when there are none).

    Examples
    --------
    >>> map_extent([{"scale": 2.0, "units": "nm"}, {"scale": 2.0, "units": "nm"}], (3, 4))
    ((-1.0, 7.0, 5.0, -1.0), 'nm')
    """
    if len(nav_axes) != 2:
        return (-0.5, shape[1] - 0.5, shape[0] - 0.5, -0.5), "px"
    y, x = nav_axes
    sx, ox = float(x.get("scale", 1.0)), float(x.get("offset", 0.0))
    sy, oy = float(y.get("scale", 1.0)), float(y.get("offset", 0.0))
    units = x.get("units")
    units = units if isinstance(units, str) and units not in ("", "<undefined>") else "px"
    return (ox - sx / 2, ox + (shape[1] - 0.5) * sx, oy + (shape[0] - 0.5) * sy, oy - sy / 2), units


def draw_outlines(ax, seg, extent, *, core=True, linewidth=None, color="white"):
    """Draw particle edges (solid) and the interface/core boundary (dashed) on an image.

    The default line width shrinks for large images, so that thin rims stay visible.
    """
    if linewidth is None:
        linewidth = float(np.clip(160.0 / max(seg.shape), 0.35, 0.8))
    h, w = seg.shape
    xs = np.linspace(extent[0], extent[1], 2 * w + 1)[1::2]
    ys = np.linspace(extent[3], extent[2], 2 * h + 1)[1::2]
    if seg.n == 0:
        return
    many = seg.n > 200
    labels = seg.labels
    if many:
        ax.contour(
            xs, ys, (labels > 0).astype(float), levels=[0.5], colors=color, linewidths=linewidth
        )
    else:
        for k in range(1, seg.n + 1):
            ax.contour(
                xs,
                ys,
                (labels == k).astype(float),
                levels=[0.5],
                colors=color,
                linewidths=linewidth,
            )
    if core and seg.interface_width > 0:
        ax.contour(
            xs,
            ys,
            seg.mask("core").astype(float),
            levels=[0.5],
            colors=color,
            linewidths=0.6 * linewidth,
            linestyles="--",
        )


def empty_reason(res, name=None, mask=None, *, detected=True):
    """Why a map (or the pixels a figure uses) has no value to show, in words.

    Parameters
    ----------
    res : FitResult
    name : str, optional
        The map; without it, only the pixels are judged.
    mask : array_like of bool, optional
        The pixels the figure keeps, with those with a detected peak.
    detected : bool
        As in :func:`hyperlum.stats.valid_mask`.

    Returns
    -------
    str
        ``"no pixel with a detected peak"``, ``"no converged pixel"``, ``"none of the 3
        pixels with a detected peak is kept"`` (by ``mask``) or ``"no finite sigma"``; ``""``
        when there is a value to show.

    Examples
    --------
    >>> maps = {"sigma": np.array([9.0, np.nan]), "converged": np.array([True, True]),
    ...         "detected": np.array([False, False])}
    >>> empty_reason(maps, "sigma")
    'no pixel with a detected peak'
    >>> empty_reason(maps, "sigma", detected=False)
    ''
    """
    from hyperlum.analysis.stats import maps_of, valid_mask

    maps = maps_of(res)
    verdict = detected and "detected" in maps
    some = valid_mask(maps, (), None, detected=verdict)
    if not some.any():
        return "no pixel with a detected peak" if verdict else "no converged pixel"
    kept = valid_mask(maps, (), mask, detected=verdict)
    if not kept.any():
        what = "with a detected peak" if verdict else "converged"
        n = int(some.sum())
        if n == 1:
            return f"the one pixel {what} is not kept"
        return f"none of the {n} pixels {what} is kept"
    if name is not None and not valid_mask(maps, (name,), mask, detected=verdict).any():
        return f"no finite {name}"
    return ""


def note_empty(ax, reason):
    """Write ``reason`` in the middle of an axes that has nothing to show, without ticks
    (the default 0..1 scales would read as data)."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(
        0.5,
        0.5,
        reason,
        ha="center",
        va="center",
        wrap=True,
        transform=ax.transAxes,
        bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"},
    )


def _robust_limits(values, lo=2, hi=98, pad=0.0):
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None, None
    a, b = np.percentile(v, [lo, hi])
    a, b = a - pad * (b - a), b + pad * (b - a)
    return (float(a), float(b)) if b > a else (None, None)


def plot_maps(
    res,
    seg=None,
    image=None,
    *,
    names=("centre", "sigma"),
    mask=None,
    image_title=None,
    cmaps=None,
    figsize=None,
    detected=True,
):
    """A panel of maps: the image (HAADF or intensity), then the maps ``names``.

    Parameters
    ----------
    res : FitResult
    seg : Segmentation, optional
        Its particle edges (solid) and core boundaries (dashed) are drawn on every panel;
        the colour limits of the maps are taken over the particle pixels.
    image : hyperspy Signal2D or array_like, optional
        Shown first (default: the intensity map).
    names : sequence of str
        Maps to show after the image.
    mask : array_like of bool, optional
        Pixels to show on the maps, with those with a detected peak (see ``detected``);
        the others are grey and left out of the colour limits. A panel with no pixel to
        show says why (:func:`empty_reason`) and has no colour bar.
    image_title : str, optional
        Title of the first panel.
    detected : bool
        Show only pixels where the fit's verdict says a peak was detected
        (:func:`hyperlum.stats.valid_mask`); ``False``: every converged pixel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from hyperlum.analysis.stats import maps_of, units_of, valid_mask

    maps = maps_of(res)
    shape = np.shape(maps["converged"])
    nav_axes = getattr(res, "nav_axes", [])
    extent, units = map_extent(nav_axes, shape)
    fitted_image = image is None
    if image is None:
        img = (
            np.where(
                valid_mask(maps, ("intensity",), mask, detected=detected),
                maps.get("intensity"),
                np.nan,
            )
            if "intensity" in maps
            else np.zeros(shape)
        )
        image_title = image_title or _label("intensity", units_of(res, "intensity"))
    else:
        img = np.asarray(getattr(image, "data", image), dtype=float)
        image_title = image_title or "HAADF"
    panels = [("image", img, image_title, "inferno" if fitted_image else "gray", "")] + [
        (
            n,
            maps[n],
            _label(n, units_of(res, n)),
            (cmaps or {}).get(n, _default_cmap(n)),
            units_of(res, n),
        )
        for n in names
    ]
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=figsize or (4.2 * n, 4.0), layout="constrained")
    axes = np.atleast_1d(axes)
    for ax, (name, data, title, cmap, _u) in zip(axes, panels, strict=True):
        data = np.asarray(data, dtype=float)
        if name != "image":
            ok = valid_mask(maps, (name,), mask, detected=detected)
            data = np.where(ok, data, np.nan)
            sel = data[seg.mask("particles")] if seg is not None and seg.n else data
            vmin, vmax = _robust_limits(sel)
        else:
            vmin, vmax = _robust_limits(data, *((2, 98) if fitted_image else (0.5, 99.5)))
        cm = plt.get_cmap(cmap).with_extremes(bad="#b0b0b0")
        im = ax.imshow(data, extent=extent, cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
        if seg is not None:
            draw_outlines(
                ax,
                seg,
                extent,
                core=name != "image",
                color="#ffd700" if name == "image" and not fitted_image else "white",
            )
        add_scalebar(ax, extent, units)
        ax.set_axis_off()
        ax.set_title(title)
        if not np.isfinite(data).any():  # all grey: a colour bar would scale nothing
            if name != "image":
                reason = empty_reason(maps, name, mask, detected=detected)
            elif fitted_image:
                reason = empty_reason(maps, "intensity", mask, detected=detected)
            else:
                reason = "no finite value in the image"
            note_empty(ax, reason)
        elif name != "image" or fitted_image:
            bar = fig.colorbar(im, ax=ax, shrink=0.85, label=title)
            if np.nanmin(data) == np.nanmax(data):  # one value: only it is marked on the bar
                bar.set_ticks([np.nanmin(data)])
    return fig


def _default_cmap(name):
    stem = name.rstrip("_0123456789")
    return {"centre": "Spectral_r", "sigma": "viridis", "fwhm": "viridis"}.get(stem, "inferno")


def fitted_range(res, x):
    """Boolean mask of the channels ``x`` inside the range the fit used (all without one)."""
    x = np.asarray(x, dtype=float)
    rng = (getattr(res, "options", None) or {}).get("signal_range")
    if rng is None:
        return np.ones(x.shape, dtype=bool)
    return (x >= min(rng)) & (x <= max(rng))


def model_spectra(res, x, pixels):
    """The fitted model at ``pixels`` (a boolean mask or ``(rows, cols)`` index arrays).

    Parameters
    ----------
    res : FitResult
    x : array_like
        Channel positions (same units as the fit).
    pixels : tuple of arrays or array_like of bool
        Which pixels.

    Returns
    -------
    numpy.ndarray
        ``(n_pixels, len(x))``.
    """
    from hyperlum.analysis.stats import maps_of

    maps = maps_of(res)
    x = np.asarray(x, dtype=float)
    opts = getattr(res, "options", {})
    xr = x[fitted_range(res, x)]
    xref = 0.5 * (xr[0] + xr[-1]) if xr.size else 0.0
    from hyperlum.fitting.model_cubes import evaluate, param_map_names
    from hyperlum.fitting.options import DEFAULTS
    from hyperlum.kernels.shapes import get_shape

    peaks = int(opts.get("peaks", DEFAULTS.peaks))
    shape = opts.get("shape", DEFAULTS.shape)
    background = opts.get("background", DEFAULTS.background)
    names = param_map_names(peaks, shape, background)
    params = np.stack([np.asarray(maps[n], dtype=float)[pixels].ravel() for n in names], -1)
    nbg = len(names) - peaks * get_shape(shape).n_params
    return evaluate(params, x, xref, range(peaks), nbg, peaks, shape=shape, background=background)


def _nav_positions(res, shape):
    """Calibrated positions of the pixels along each navigation axis, and their units."""
    axes = list(getattr(res, "nav_axes", []) or [])
    out, units = [], []
    for k, n in enumerate(shape):
        a = axes[k] if k < len(axes) else {}
        out.append(float(a.get("offset", 0.0)) + float(a.get("scale", 1.0)) * np.arange(n))
        u = a.get("units")
        units.append(u if isinstance(u, str) and u not in ("", "<undefined>") else "px")
    return out, units


def _pixel_name(res, shape, p):
    """``"(y, x) = (12.5, 40) nm"``: a pixel's calibrated position."""
    if not shape:
        return "the spectrum"
    pos, units = _nav_positions(res, shape)
    vals = ", ".join(f"{pos[k][i]:.4g}" for k, i in enumerate(p))
    names = [a.get("name") or "xyz"[k] for k, a in enumerate(getattr(res, "nav_axes", []))]
    names = names if len(names) == len(shape) else ["position"] * len(shape)
    u = units[-1] if units[-1] != "px" else "px"
    if len(shape) == 1:
        return f"{names[0]} = {vals} {u}"
    return f"({', '.join(names)}) = ({vals}) {u}"


def _signal_label(sax):
    name = sax.name if isinstance(sax.name, str) and sax.name != "<undefined>" else "Signal"
    u = sax.units if isinstance(sax.units, str) and sax.units != "<undefined>" else ""
    return (f"{name} ({u})" if u else name), u


def plot_spectra(
    signal,
    res,
    *,
    pixels=None,
    seg=None,
    regions=("core", "interface"),
    mask=None,
    normalise=False,
    ax=None,
    detected=True,
):
    """Spectra with the fit drawn over them: chosen pixels, or region means.

    The fitted range is shaded and the model is drawn only over it. Works on maps, line
    scans and single spectra.

    Parameters
    ----------
    signal : hyperspy Signal1D
        The spectrum image, line scan or spectrum that was fitted.
    res : FitResult
    pixels : sequence of index tuples, optional
        Pixels to show, each with its own fit: ``(row, col)`` on a map, ``(i,)`` or ``i`` on
        a line scan. Default for a single spectrum: the spectrum.
    seg : Segmentation, optional
        With ``regions``: the mean spectrum of each region (valid pixels) and the mean of the
        fitted models over the same pixels (maps only).
    mask : array_like of bool, optional
        Pixels to keep in the region means, with those with a detected peak.
    normalise : bool
        Divide each region's mean spectrum and model by the model's peak above its
        background, so that widths and positions compare at a glance.
    detected : bool
        Region means over pixels with a detected peak only (see
        :func:`hyperlum.stats.valid_mask`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from hyperlum.analysis.stats import maps_of, valid_mask

    ax = _axes(ax)
    sax = signal.axes_manager.signal_axes[0]
    x = np.asarray(sax.axis, dtype=float)
    data = np.asarray(signal.data)
    maps = maps_of(res)
    shape = np.shape(maps["converged"])
    if data.shape[:-1] != shape:
        raise ValueError(
            f"the spectra have navigation shape {data.shape[:-1]}, the maps {shape}: give the "
            "spectra that were fitted"
        )
    inside = fitted_range(res, x)
    xl, xunits = _signal_label(sax)
    if not inside.all():
        ax.axvspan(x[inside].min(), x[inside].max(), color="#ffd700", alpha=0.15, lw=0)
    if pixels is None and seg is None:
        pixels = [()] if not shape else []
    for i, p in enumerate(pixels or []):
        p = tuple(int(q) for q in np.atleast_1d(p)) if shape else ()
        colour = _PIXEL_COLOURS[i % len(_PIXEL_COLOURS)]
        ax.plot(x, data[p], ".", ms=2.5, color=colour, alpha=0.6)
        idx = tuple(np.array([q]) for q in p) if p else ()
        model = model_spectra(res, x, idx)
        s = f": \u03c3 = {np.asarray(maps['sigma'])[p]:.3g} {xunits}" if "sigma" in maps else ""
        ax.plot(x[inside], model[0][inside], color=colour, label=_pixel_name(res, shape, p) + s)
    if seg is not None:
        for region in regions:
            m = valid_mask(
                maps,
                ("centre",),
                seg.mask(region) if mask is None else seg.mask(region) & mask,
                detected=detected,
            )
            if not m.any():
                continue
            colour = REGION_COLOURS.get(region, "k")
            mean = data[m].astype(float).mean(axis=0)
            model = model_spectra(res, x, m).mean(axis=0)
            if normalise:
                base = np.median(np.asarray(maps["background"])[m]) if "background" in maps else 0.0
                scale = max(model[inside].max() - base, 1e-300)
                mean, model = (mean - base) / scale, (model - base) / scale
            ax.plot(x, mean, ".", ms=2.5, color=colour, alpha=0.6)
            ax.plot(
                x[inside], model[inside], color=colour, label=f"{region}: mean of {int(m.sum())} px"
            )
    ax.set_xlabel(xl)
    ax.set_ylabel(
        "Counts / model peak above background" if normalise and seg is not None else "Counts"
    )
    if not inside.all():
        ax.plot([], [], color="#ffd700", alpha=0.4, lw=6, label="fitted range")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, frameon=False)
    return ax.figure


def plot_region_histograms(
    res,
    seg=None,
    *,
    names=("centre", "sigma", "intensity"),
    regions=("core", "interface", "shell", "matrix"),
    mask=None,
    bins=60,
    min_pixels=20,
    detected=True,
):
    """1D histograms of maps, one curve per region (normalised to unit area).

    Without ``seg``, one curve of every valid pixel. Regions with fewer than ``min_pixels``
    valid pixels are left out. Pixels count when a peak was detected there (``detected``,
    see :func:`hyperlum.stats.valid_mask`) and ``mask`` is True.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from hyperlum.analysis.stats import hist1d, units_of, valid_mask

    maps, full, groups = _region_groups(res, seg, regions, mask, detected)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), layout="constrained")
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, names, strict=True):
        part = valid_mask(
            maps, (name,), full if seg is None else seg.mask("particles") & full, detected=detected
        )
        lo, hi = _robust_limits(np.asarray(maps[name], dtype=float)[part], 0.2, 99.8, 0.05)
        rng = (lo, hi) if lo is not None else None
        units = units_of(res, name)
        for region, m in groups:
            h = hist1d(maps, name, bins=bins, range=rng, mask=m, detected=detected)
            if h.n < min_pixels or h.counts.sum() == 0:
                continue
            widths = np.diff(h.edges)
            dens = h.counts / (h.counts.sum() * widths)
            ax.stairs(
                dens,
                h.edges,
                color=REGION_COLOURS.get(region, "k"),
                label=f"{region} (n={h.n}, median {h.median:.4g})",
                linewidth=1.4,
            )
        ax.set_xlabel(_label(name, units))
        ax.set_ylabel(f"fraction of pixels per {units}" if units else "fraction of pixels per unit")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, frameon=False)
        else:
            n = int(part.sum())
            note_empty(
                ax,
                f"{n} pixel{'s' * (n != 1)}: no {'region' if seg is not None else 'group'} "
                f"with {min_pixels} or more"
                if n
                else empty_reason(maps, name, full, detected=detected),
            )
    return fig


def _region_groups(res, seg, regions, mask, detected):
    """The maps of ``res``, the user's ``mask`` (all True without one) and the pixel groups
    to draw: ``(label, mask)`` per region of ``seg``, or one group of every pixel."""
    from hyperlum.analysis.stats import maps_of

    maps = maps_of(res)
    full = np.ones(np.shape(maps["converged"]), bool) if mask is None else np.asarray(mask, bool)
    if seg is not None:
        return maps, full, [(r, seg.mask(r) & full) for r in regions]
    label = "detected pixels" if detected and "detected" in maps else "converged pixels"
    return maps, full, [(label, full)]


def plot_hist2d_regions(
    res,
    seg=None,
    *,
    pairs=(("centre", "sigma"), ("centre", "intensity")),
    regions=("core", "interface"),
    mask=None,
    bins=50,
    detected=True,
):
    """2D histograms of pairs of maps, one column per region (one without ``seg``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from hyperlum.analysis.stats import hist2d, valid_mask

    maps, full, groups = _region_groups(res, seg, regions, mask, detected)
    fig, axes = plt.subplots(
        len(pairs),
        len(groups),
        figsize=(4.3 * len(groups), 3.6 * len(pairs)),
        layout="constrained",
        squeeze=False,
    )
    for row, (x, y) in enumerate(pairs):
        part = valid_mask(
            maps, (x, y), full if seg is None else seg.mask("particles") & full, detected=detected
        )
        xl = _robust_limits(np.asarray(maps[x], dtype=float)[part], 0.2, 99.8, 0.05)
        yl = _robust_limits(np.asarray(maps[y], dtype=float)[part], 0.2, 99.8, 0.05)
        rng = [list(xl), list(yl)] if None not in xl + yl else None
        for col, (region, m) in enumerate(groups):
            ax = axes[row, col]
            h = hist2d(res, x, y, bins=bins, range=rng, mask=m, detected=detected)
            h.plot(ax=ax, annotate=False, colorbar=h.n > 0)
            if not h.n:
                note_empty(ax, empty_reason(maps, None, m, detected=detected) or "no pixel")
            r = (
                f", r = {h.pearson:.2f}, \u03c1 = {h.spearman:.2f}"
                if np.isfinite(h.pearson)
                else ""
            )
            colour = REGION_COLOURS.get(region, "k")
            ax.set_title(f"{region}: n = {h.n}{r}", color=colour, fontsize=10)
    return fig


def plot_profile(
    res,
    signal=None,
    *,
    names=("centre", "sigma", "intensity"),
    pixels=None,
    min_snr=3.0,
    min_sigma=None,
    mask=None,
    detected=True,
):
    """A line scan: maps along the scan, and spectra with their fits.

    Pixels are shown where a peak was detected (``detected``, see
    :func:`hyperlum.stats.valid_mask`) with an amplitude of at least ``min_snr`` standard
    errors and a sigma of at least ``min_sigma`` (axis units; narrower fits are spikes or
    noise), see :func:`hyperlum.stats.quality_mask`; or, when ``mask`` is given, where it is
    True and a peak was detected.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from hyperlum.analysis.stats import maps_of, quality_mask, units_of, valid_mask

    maps = maps_of(res)
    if mask is None:
        good = quality_mask(maps, min_snr=min_snr, min_sigma=min_sigma, detected=detected)
    else:
        good = valid_mask(maps, (), mask, detected=detected)
    n = np.shape(maps["converged"])[0]
    (pos,), (units,) = _nav_positions(res, (n,))
    extra = 1 if signal is not None else 0
    fig, axes = plt.subplots(
        len(names) + extra,
        1,
        figsize=(6.4, 1.8 * (len(names) + extra) + 0.6),
        layout="constrained",
        sharex=False,
    )
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, names, strict=False):
        ok = valid_mask(maps, (name,), good, detected=detected)
        v = np.asarray(maps[name], dtype=float)
        ax.plot(pos, np.where(ok, v, np.nan), ".-", ms=3, lw=0.8)  # gaps where left out
        if f"{name}_std" in maps:
            sd = np.asarray(maps[f"{name}_std"], dtype=float)
            ax.fill_between(pos[ok], (v - sd)[ok], (v + sd)[ok], alpha=0.3, lw=0)
        ax.set_ylabel(_label(name, units_of(res, name)), fontsize=8)
        ax.set_xlim(pos[0], pos[-1])
        ax.set_xlabel(f"Position ({units}); {int(ok.sum())} of {n} pixels shown", fontsize=8)
        if not ok.any():
            note_empty(ax, empty_reason(maps, name, good, detected=detected))
    if signal is not None:
        if pixels is None:
            inten = np.where(valid_mask(maps, ("intensity",), good), maps["intensity"], -np.inf)
            first = int(np.argmax(inten[: max(1, n // 2)]))
            pixels = list(dict.fromkeys([int(np.argmax(inten)), first]))
        plot_spectra(signal, res, pixels=[(p,) for p in pixels], ax=axes[-1])
    return fig
