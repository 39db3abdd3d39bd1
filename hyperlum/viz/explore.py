"""``hl.explore``: fitted maps next to the selected pixel's spectrum, its fit and residual.

One matplotlib figure: the maps on the left (pixels without a detected peak in grey, a scale
bar), on the right the spectrum of the selected pixel with the data, the model, each
component, the residual below and the fitted range shaded. Clicking a map (or a profile, for
a line scan) selects a pixel, the arrow keys move it, and dragging a rectangle (a span on a
profile) shows that region's mean spectrum with its mean model. It works with any
interactive matplotlib backend (ipympl's ``%matplotlib widget`` in Jupyter); with a static
backend the figure shows the selection made with :meth:`Explorer.select`.
"""

import numpy as np

from hyperlum.analysis.stats import units_of
from hyperlum.fitting.model_cubes import PeakModel, fitted_channels
from hyperlum.io.cube import as_cube
from hyperlum.viz.plot import add_scalebar

_MOVES = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
_CMAPS = {"centre": "Spectral_r", "sigma": "viridis", "fwhm": "viridis"}
_COMPONENT_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f")


def _units(d):
    u = d.get("units")
    return u if isinstance(u, str) and u not in ("", "<undefined>") else "px"


def _calibration(ax_dict):
    return float(ax_dict.get("offset", 0.0)), float(ax_dict.get("scale", 1.0))


def _valid(maps, name):
    """Pixels shown in colour: the detection verdict of the map's peak, else converged."""
    stem = name.removesuffix("_std")
    sfx = stem[len(stem.rstrip("_0123456789")) :]
    for key in (f"detected{sfx}", "detected", "converged"):
        if key in maps:
            return np.asarray(maps[key], dtype=bool)
    return np.ones(np.shape(maps[name]), dtype=bool)


class Explorer:
    """The figure made by :func:`explore` and its selection (see there)."""

    def __init__(self, signal, res, *, maps, axis=None, figsize=None):
        import matplotlib.pyplot as plt

        self.res = res.compute()
        self.model = PeakModel(self.res)
        cube = as_cube(signal, axis)
        fitted_channels(self.res, signal, axis)  # checks that the signal is the fitted one
        self.data, self.x = cube.data, cube.x
        self.params = self.model.params(self.res)
        self.shape = self.res.shape
        if len(self.shape) not in (1, 2):
            raise ValueError(
                f"explore shows maps (2 navigation axes) or line scans (1), this fit has "
                f"{len(self.shape)}"
            )
        maps = (maps,) if isinstance(maps, str) else tuple(maps)
        for n in maps:
            if n not in self.res.maps:
                raise KeyError(f"no map named {n!r}; the maps are: {', '.join(self.res.maps)}")
        self.names = maps
        self.fig = plt.figure(figsize=figsize or (11, max(4.5, 2.6 * len(maps))))
        gs = self.fig.add_gridspec(len(maps) * 3, 2, width_ratios=(1, 1.7), wspace=0.25, hspace=1.2)
        self.map_axes = [self.fig.add_subplot(gs[3 * k : 3 * k + 3, 0]) for k in range(len(maps))]
        n = len(maps) * 3
        self.spectrum_ax = self.fig.add_subplot(gs[: n - max(1, n // 4), 1])
        self.residual_ax = self.fig.add_subplot(
            gs[n - max(1, n // 4) :, 1], sharex=self.spectrum_ax
        )
        self._markers, self._regions, self._press = [], [], None
        for ax, name in zip(self.map_axes, maps, strict=True):
            (self._draw_map if len(self.shape) == 2 else self._draw_profile)(ax, name)
        self._draw_spectrum_axes()
        canvas = self.fig.canvas
        # plain functions (not bound methods): matplotlib keeps them alive with the figure
        canvas.mpl_connect("button_press_event", lambda e: self._on_press(e))
        canvas.mpl_connect("button_release_event", lambda e: self._on_release(e))
        canvas.mpl_connect("motion_notify_event", lambda e: self._on_motion(e))
        canvas.mpl_connect("key_press_event", lambda e: self._on_key(e))
        self.pixel = None
        self.region = None
        best = np.nanargmax(np.where(self._valid_any(), self._first_map(), -np.inf))
        self.select(*np.unravel_index(best, self.shape))

    # -- drawing ------------------------------------------------------------------------
    def _first_map(self):
        return np.asarray(self.res.maps[self.names[0]], dtype=float)

    def _valid_any(self):
        return _valid(self.res.maps, self.names[0])

    def _draw_map(self, ax, name):
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle

        values = np.asarray(self.res.maps[name], dtype=float)
        shown = np.ma.masked_where(~_valid(self.res.maps, name) | ~np.isfinite(values), values)
        (oy, sy), (ox, sx) = (_calibration(a) for a in self.res.nav_axes)
        ny, nx = self.shape
        extent = (ox - sx / 2, ox + (nx - 0.5) * sx, oy + (ny - 0.5) * sy, oy - sy / 2)
        stem = name.rstrip("_0123456789")
        cmap = plt.get_cmap(_CMAPS.get(stem, "inferno")).with_extremes(bad="0.72")
        lo, hi = np.percentile(shown.compressed(), (2, 98)) if shown.count() else (0, 1)
        im = ax.imshow(shown, extent=extent, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        self.fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        ax.set_title(_title(name, self.res), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        add_scalebar(ax, extent, _units(self.res.nav_axes[1]))
        marker = Rectangle((0, 0), sx, sy, fill=False, ec="cyan", lw=1.5, zorder=7)
        region = Rectangle((0, 0), 0, 0, fill=False, ec="white", ls="--", lw=1.2, zorder=7)
        region.set_visible(False)
        ax.add_patch(marker)
        ax.add_patch(region)
        self._markers.append(marker)
        self._regions.append(region)

    def _draw_profile(self, ax, name):
        values = np.asarray(self.res.maps[name], dtype=float)
        ok = _valid(self.res.maps, name)
        o, s = _calibration(self.res.nav_axes[0])
        pos = o + s * np.arange(self.shape[0])
        ax.plot(pos, np.where(ok, values, np.nan), ".-", color="k", ms=3, lw=0.8)
        ax.plot(pos[~ok], values[~ok], ".", color="0.72", ms=3, label="no detected peak")
        ax.set_ylabel(_title(name, self.res), fontsize=9)
        ax.set_xlabel(f"position ({_units(self.res.nav_axes[0])})", fontsize=8)
        self._markers.append(ax.axvline(pos[0], color="c", lw=1.5))
        region = ax.axvspan(pos[0], pos[0], color="c", alpha=0.2)
        region.set_visible(False)
        self._regions.append(region)

    def _draw_spectrum_axes(self):
        ax, rax = self.spectrum_ax, self.residual_ax
        xf = self.model.x
        lo, hi = min(xf[0], xf[-1]), max(xf[0], xf[-1])
        for a in (ax, rax):
            a.axvspan(lo, hi, color="#ffd54f", alpha=0.15, lw=0, label="fitted range")
        (self.data_line,) = ax.plot([], [], ".", ms=3, color="k", label="data")
        (self.model_line,) = ax.plot([], [], "-", color="#d62728", lw=1.6, label="model")
        self.component_lines = []
        for k, name in enumerate(self.model.component_names()):
            colour = _COMPONENT_COLOURS[k % len(_COMPONENT_COLOURS)]
            (line,) = ax.plot([], [], "--", lw=1.0, color=colour, label=name)
            self.component_lines.append(line)
        (self.residual_line,) = rax.plot([], [], "-", lw=0.8, color="0.3")
        rax.axhline(0, color="#d62728", lw=0.8)
        margin = 0.25 * (hi - lo)
        xmin, xmax = float(np.min(self.x)), float(np.max(self.x))
        ax.set_xlim(max(xmin, lo - margin), min(xmax, hi + margin))
        sa = self.res.signal_axis
        label = sa.get("name") or "Signal axis"
        rax.set_xlabel(f"{label} ({sa['units']})" if sa.get("units") else label)
        ax.set_ylabel("Counts")
        rax.set_ylabel("Residual")
        ax.legend(fontsize=8, frameon=False, loc="upper right")

    # -- selection ----------------------------------------------------------------------
    def select(self, i, j=None):
        """Show pixel ``(i, j)`` (a map) or ``i`` (a line scan)."""
        idx = (int(i),) if len(self.shape) == 1 else (int(i), int(j))
        idx = tuple(int(np.clip(v, 0, n - 1)) for v, n in zip(idx, self.shape, strict=True))
        self.pixel, self.region = idx, None
        data = np.asarray(self.data[idx], dtype=float)
        params = self.params[idx]
        self._show(data, [params], f"pixel {idx if len(idx) > 1 else idx[0]}", idx)
        self._move_markers(idx)

    def select_region(self, rows, cols=None):
        """Show the mean spectrum and mean model of pixels ``rows[0]:rows[1]`` (x ``cols``)."""
        sl = tuple(
            slice(int(max(0, min(r))), int(min(n, max(r) + 1)))
            for r, n in zip((rows,) if cols is None else (rows, cols), self.shape, strict=False)
        )
        params = self.params[sl].reshape(-1, self.params.shape[-1])
        ok = np.all(np.isfinite(params), axis=-1)
        if not ok.any():
            return
        block = np.asarray(self.data[sl], dtype=float).reshape(-1, self.x.size)
        data = block[ok].mean(axis=0)
        self.region, self.pixel = sl, None
        what = " x ".join(f"{s.start}:{s.stop}" for s in sl)
        self._show(data, params[ok], f"mean of {int(ok.sum())} pixels [{what}]", None)
        self._move_region(sl)

    def _show(self, data, params, title, idx):
        xf = self.model.x
        model = self.model.evaluate(params).mean(axis=0)
        self.data_line.set_data(self.x, data)
        self.model_line.set_data(xf, model)
        names = self.model.component_names()
        for line, name in zip(self.component_lines, names, strict=True):
            comp = "background" if name == "background" else int(name.split("_")[1])
            line.set_data(xf, self.model.evaluate(params, comp).mean(axis=0))
        ch = fitted_slice(self.x, xf)
        self.residual_line.set_data(xf, data[ch] - model)
        if idx is not None:
            title += _summary(self.res, idx)
        self.spectrum_ax.set_title(title, fontsize=9)
        view = (self.x >= min(self.spectrum_ax.get_xlim())) & (
            self.x <= max(self.spectrum_ax.get_xlim())
        )
        for ax, ys in (
            (self.spectrum_ax, (data[view], model)),
            (self.residual_ax, (data[ch] - model,)),
        ):
            y = np.concatenate([np.ravel(v) for v in ys])
            y = y[np.isfinite(y)]
            if y.size:
                pad = 0.06 * (np.ptp(y) or 1.0)
                ax.set_ylim(y.min() - pad, y.max() + pad)
        self.fig.canvas.draw_idle()

    def _move_markers(self, idx):
        for marker, region in zip(self._markers, self._regions, strict=True):
            region.set_visible(False)
            marker.set_visible(True)
            if len(self.shape) == 1:
                o, s = _calibration(self.res.nav_axes[0])
                marker.set_xdata([o + s * idx[0]] * 2)
            else:
                (oy, sy), (ox, sx) = (_calibration(a) for a in self.res.nav_axes)
                marker.set_xy((ox + (idx[1] - 0.5) * sx, oy + (idx[0] - 0.5) * sy))

    def _move_region(self, sl):
        for marker, region in zip(self._markers, self._regions, strict=True):
            marker.set_visible(False)
            region.set_visible(True)
            if len(self.shape) == 1:
                o, s = _calibration(self.res.nav_axes[0])
                a, b = o + s * (sl[0].start - 0.5), o + s * (sl[0].stop - 0.5)
                region.set_xy([(a, 0), (a, 1), (b, 1), (b, 0)])
            else:
                (oy, sy), (ox, sx) = (_calibration(a) for a in self.res.nav_axes)
                region.set_xy((ox + (sl[1].start - 0.5) * sx, oy + (sl[0].start - 0.5) * sy))
                region.set_width((sl[1].stop - sl[1].start) * sx)
                region.set_height((sl[0].stop - sl[0].start) * sy)

    # -- events -------------------------------------------------------------------------
    def pixel_at(self, xdata, ydata):
        """The pixel under data coordinates ``(xdata, ydata)`` of a map (or profile)."""
        if len(self.shape) == 1:
            o, s = _calibration(self.res.nav_axes[0])
            return (int(np.clip(round((xdata - o) / s), 0, self.shape[0] - 1)),)
        (oy, sy), (ox, sx) = (_calibration(a) for a in self.res.nav_axes)
        i = int(np.clip(round((ydata - oy) / sy), 0, self.shape[0] - 1))
        j = int(np.clip(round((xdata - ox) / sx), 0, self.shape[1] - 1))
        return i, j

    def _usable(self, event):
        toolbar = getattr(self.fig.canvas, "toolbar", None)
        busy = toolbar is not None and str(getattr(toolbar, "mode", "")) != ""
        return event.inaxes in self.map_axes and event.xdata is not None and not busy

    def _on_press(self, event):
        if event.button == 1 and self._usable(event):
            self._press = (event.inaxes, self.pixel_at(event.xdata, event.ydata))

    def _on_motion(self, event):
        if self._press is not None and self._usable(event) and event.inaxes is self._press[0]:
            now = self.pixel_at(event.xdata, event.ydata)
            if now != self._press[1]:
                self._move_region(self._span(self._press[1], now))
                self.fig.canvas.draw_idle()

    def _on_release(self, event):
        if self._press is None:
            return
        ax, start = self._press
        self._press = None
        end = start
        if event.inaxes is ax and event.xdata is not None:
            end = self.pixel_at(event.xdata, event.ydata)
        if end == start:
            self.select(*start)
        else:
            sl = self._span(start, end)
            self.select_region(*[(s.start, s.stop - 1) for s in sl])

    @staticmethod
    def _span(a, b):
        return tuple(slice(min(p, q), max(p, q) + 1) for p, q in zip(a, b, strict=True))

    def _on_key(self, event):
        if event.key not in _MOVES:
            return
        di, dj = _MOVES[event.key]
        start = self.pixel or tuple(s.start for s in self.region)
        if len(self.shape) == 1:
            self.select(start[0] + (dj or di))
        else:
            self.select(start[0] + di, start[1] + dj)


def fitted_slice(x, xf):
    """The slice of ``x`` whose positions are ``xf`` (the fitted range)."""
    i0 = int(np.argmin(np.abs(x - xf[0])))
    return slice(i0, i0 + xf.size)


def _title(name, res):
    units = units_of(res, name)
    return f"{name} ({units})" if units else name


def _summary(res, idx):
    maps = res.maps
    parts = []
    for n in ("centre", "sigma", "centre_1", "sigma_1"):
        if n in maps and f"{n}_std" in maps:
            v, sd = float(maps[n][idx]), float(maps[f"{n}_std"][idx])
            parts.append(f"{n} {v:.4g} \u00b1 {sd:.2g}")
    state = "converged" if bool(maps["converged"][idx]) else "not converged"
    if "detected" in maps:
        state += ", detected" if bool(maps["detected"][idx]) else ", not detected"
    return "\n" + ", ".join(parts + [state])


def explore(signal, res, *, maps=("intensity", "centre", "sigma"), axis=None, figsize=None):
    """Explore a fit: maps on the left, the selected pixel's spectrum and fit on the right.

    Click a map to select a pixel, move it with the arrow keys, drag a rectangle to see the
    region's mean spectrum and mean model. Pixels without a detected peak (``detected``
    map, else not ``converged``) are grey. For a line scan the maps are profiles: click or
    drag along them. In Jupyter use ``%matplotlib widget`` (ipympl) to click; any interactive
    matplotlib backend works, and a static one shows the selection made in code.

    Parameters
    ----------
    signal : hyperspy Signal1D or array
        The data that was fitted (lazy or not: only the shown spectra are read).
    res : FitResult
        Its fit.
    maps : sequence of str
        Maps to show, top to bottom.
    axis : array_like, optional
        Channel positions for an array ``signal``.
    figsize : (float, float), optional
        Figure size in inches.

    Returns
    -------
    Explorer
        ``.fig`` the figure; ``.select(i, j)`` and ``.select_region((i0, i1), (j0, j1))``
        change the selection; ``.pixel`` / ``.region`` say what is shown; ``.data_line``,
        ``.model_line``, ``.component_lines``, ``.residual_line`` are the spectrum's lines.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> import hyperlum as hl
    >>> x = np.linspace(650.0, 770.0, 121)
    >>> c = np.array([[700.0, 705.0], [710.0, 715.0]])[..., None]
    >>> cube = 100 * np.exp(-0.5 * ((x - c) / 8.0) ** 2) + 5
    >>> ex = hl.explore(cube, hl.fit(cube, axis=x, device="cpu"), axis=x)
    >>> ex.select(1, 0)
    >>> ex.pixel, bool(np.array_equal(ex.data_line.get_ydata(), cube[1, 0]))
    ((1, 0), True)
    """
    return Explorer(signal, res, maps=maps, axis=axis, figsize=figsize)
