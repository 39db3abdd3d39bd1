"""Statistics of fitted maps: per-region tables, interface-vs-core tests, 1D and 2D histograms.

Every statistic is taken over the *valid* pixels (:func:`valid_mask`): the fit detected a peak
there (the ``detected`` map of the result; ``converged`` for results that have none), every
map involved is finite there, and the pixel is inside the mask (a region) when one is given.

The interface-vs-core test is taken over particles, not pixels: the pixels of one particle
are not independent (the probe and carrier diffusion blur the map, and each particle has its
own composition), so a pixel-level test counts one particle's peculiarity many times over.
"""

import numbers
import warnings

import numpy as np

#: Maps that are not fitted parameters (left out of the region tables).
_NOT_PARAMETERS = ("state", "converged", "iterations", "detected")
#: Parameters compared between interface and core by default.
TESTED = ("sigma", "centre", "intensity")
#: Fewest particles over which a difference between interface and core is tested.
MIN_PARTICLES = 5


def maps_of(res):
    """The maps of ``res`` as numpy arrays, by name (a FitResult, or a dict of arrays)."""
    if hasattr(res, "compute") and hasattr(res, "maps"):
        return {k: np.asarray(v) for k, v in res.compute().maps.items()}
    if isinstance(res, dict):
        return {k: np.asarray(v) for k, v in res.items()}
    raise TypeError(f"res must be a FitResult (from hyperlum.fit), got {type(res).__name__}")


def units_of(res, name):
    """Units of the map ``name`` of ``res``: the signal axis units for positions and widths,
    ``counts x <axis units>`` for the intensity (the area under the peak), else ``""``."""
    if not hasattr(res, "options"):
        return ""
    base = name.removesuffix("_std").rstrip("_0123456789")
    axis = (getattr(res, "options", None) or {}).get("axis_units") or ""
    axis = "" if axis == "<undefined>" else axis
    if base in ("centre", "sigma", "fwhm"):
        return axis
    if base == "intensity":
        return f"counts \u00d7 {axis}" if axis else "counts \u00d7 channel"
    if base in ("amplitude", "background"):
        return "counts"
    return ""


def _values(maps, name):
    if isinstance(name, str):
        if name not in maps:
            raise KeyError(f"no map named {name!r}; the maps are: {', '.join(maps)}")
        return np.asarray(maps[name], dtype=np.float64)
    raise TypeError(f"map names must be strings, got {name!r}")


def _mask(mask, shape):
    if mask is None:
        return np.ones(shape, dtype=bool)
    m = np.asarray(getattr(mask, "data", mask))
    if m.dtype != bool:
        raise TypeError(f"mask must be a boolean array, got dtype {m.dtype}")
    if m.shape != tuple(shape):
        raise ValueError(f"mask has shape {m.shape}, the maps have shape {tuple(shape)}")
    return m


def _detected_name(maps, name):
    """The verdict map for ``name``: ``detected_k`` for ``<map>_k`` when there is one."""
    stem = name.removesuffix("_std")
    head, _, k = stem.rpartition("_")
    if k.isdigit() and f"detected_{k}" in maps and head:
        return f"detected_{k}"
    return "detected"


def valid_mask(res, names=(), mask=None, *, detected=True):
    """Pixels with a detected peak where the maps ``names`` are finite and ``mask`` is True.

    The one rule every statistic, figure and report of hyperlum uses to choose its pixels.

    Parameters
    ----------
    res : FitResult
    names : sequence of str
        Maps that must be finite. With several peaks, ``sigma_2`` is judged by the map
        ``detected_2`` (and every other name by ``detected``, any peak detected).
    mask : array_like of bool, optional
        Pixels to keep (e.g. ``seg.mask("core")``).
    detected : bool
        Keep only the pixels where the fit's verdict says a peak was detected (the
        ``detected`` maps). ``False`` keeps every converged pixel, as hyperlum before 0.2 did.
        A result without ``detected`` maps (a file from an older hyperlum) falls back to the
        converged pixels, with a warning.

    Returns
    -------
    numpy.ndarray of bool

    Examples
    --------
    >>> import numpy as np
    >>> maps = {"sigma": np.array([9.0, 9.5, np.nan]), "converged": np.array([True, True, True]),
    ...         "detected": np.array([True, False, True])}
    >>> valid_mask(maps, ("sigma",)).tolist()
    [True, False, False]
    >>> valid_mask(maps, ("sigma",), detected=False).tolist()
    [True, True, False]
    """
    maps = maps_of(res)
    if "converged" not in maps:
        raise KeyError("res has no 'converged' map; is it a hyperlum FitResult?")
    shape = np.shape(maps["converged"])
    ok = _mask(mask, shape) & np.asarray(maps["converged"], dtype=bool)
    if detected:
        if "detected" in maps:
            for verdict in {_detected_name(maps, n) for n in names} or {"detected"}:
                ok &= np.asarray(maps[verdict], dtype=bool)
        else:
            warnings.warn(
                "the result has no 'detected' map (fitted by an older hyperlum): using every "
                "converged pixel, also those without a peak; refit to judge detection",
                UserWarning,
                stacklevel=2,
            )
    for n in names:
        ok &= np.isfinite(_values(maps, n))
    return ok


class Hist1D:
    """A histogram of one map over valid pixels: ``counts``, ``edges``, ``n`` and summaries."""

    def __init__(self, name, values, counts, edges, units=""):
        self.name, self.units = name, units
        self.counts, self.edges = counts, edges
        self.values = values
        self.n = int(values.size)

    @property
    def mean(self):
        return float(np.mean(self.values)) if self.n else float("nan")

    @property
    def median(self):
        return float(np.median(self.values)) if self.n else float("nan")

    @property
    def std(self):
        return float(np.std(self.values, ddof=1)) if self.n > 1 else float("nan")

    def plot(self, ax=None, **kwargs):
        """Draw the histogram as steps on ``ax`` (a new figure if none); return the axes."""
        from hyperlum.viz.labels import axis_label as _label
        from hyperlum.viz.labels import new_axes as _axes

        ax = _axes(ax)
        ax.stairs(self.counts, self.edges, **kwargs)
        ax.set_xlabel(_label(self.name, self.units))
        ax.set_ylabel("pixels")
        return ax

    def __repr__(self):
        return f"<Hist1D {self.name}: {self.n} pixels, {self.counts.size} bins>"


class Hist2D:
    """A 2D histogram of two maps over valid pixels, with their correlation coefficients.

    ``counts[i, j]`` counts the pixels with x in ``xedges[i:i+2]`` and y in ``yedges[j:j+2]``
    (as :func:`numpy.histogram2d`). ``pearson`` and ``spearman`` are taken over all ``n``
    valid pixels, also those outside ``range``.
    """

    def __init__(self, x, y, xv, yv, counts, xedges, yedges, xunits="", yunits=""):
        from scipy import stats

        self.x, self.y, self.xunits, self.yunits = x, y, xunits, yunits
        self.xvalues, self.yvalues = xv, yv
        self.counts, self.xedges, self.yedges = counts, xedges, yedges
        self.n = int(xv.size)
        if self.n > 2 and np.ptp(xv) > 0 and np.ptp(yv) > 0:
            self.pearson = float(stats.pearsonr(xv, yv)[0])
            self.spearman = float(stats.spearmanr(xv, yv)[0])
        else:
            self.pearson = self.spearman = float("nan")

    def plot(self, ax=None, *, log=True, cmap="magma", colorbar=True, annotate=True):
        """Draw the counts as an image on ``ax`` (a new figure if none); return the axes."""
        import matplotlib.colors as mcolors

        from hyperlum.viz.labels import axis_label as _label
        from hyperlum.viz.labels import new_axes as _axes

        ax = _axes(ax)
        c = np.ma.masked_equal(self.counts.T, 0)
        norm = mcolors.LogNorm(vmin=1, vmax=max(1, c.max())) if log and c.count() else None
        im = ax.pcolormesh(self.xedges, self.yedges, c, cmap=cmap, norm=norm)
        ax.set_xlabel(_label(self.x, self.xunits))
        ax.set_ylabel(_label(self.y, self.yunits))
        if annotate:
            ax.set_title(
                f"n = {self.n}\nPearson r = {self.pearson:.2f}\n"
                f"Spearman \u03c1 = {self.spearman:.2f}",
                transform=ax.transAxes,
                va="top",
                ha="left",
                fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
            )
        if colorbar:
            ax.figure.colorbar(im, ax=ax, label="pixels")
        return ax

    def __repr__(self):
        return (
            f"<Hist2D {self.y} vs {self.x}: {self.n} pixels, pearson {self.pearson:.3f}, "
            f"spearman {self.spearman:.3f}>"
        )


def _bins(bins):
    if isinstance(bins, numbers.Integral) and not isinstance(bins, bool):
        if bins < 1:
            raise ValueError(
                f"bins must be a positive number of bins or an array of edges, got {bins}"
            )
        return int(bins)
    return np.asarray(bins, dtype=np.float64)


def hist1d(res, name, *, bins=64, range=None, mask=None, detected=True):
    """Histogram of one map over valid pixels (detected, finite) inside ``mask``.

    Parameters
    ----------
    res : FitResult
    name : str
        Map name, e.g. ``"sigma"``.
    bins : int or array_like
        Number of bins or their edges (as :func:`numpy.histogram`).
    range : (float, float), optional
        Lower and upper edge; default: the range of the values.
    mask : array_like of bool, optional
        Pixels to keep, e.g. ``seg.mask("interface")``.
    detected : bool
        Only pixels with a detected peak (see :func:`valid_mask`); ``False``: every converged
        pixel.

    Returns
    -------
    Hist1D
        ``counts``, ``edges``, ``n``, ``mean``, ``median``, ``std``; ``.plot()``.

    Examples
    --------
    >>> import numpy as np
    >>> maps = {"sigma": np.array([[1.0, 2.0], [np.nan, 3.0]]),
    ...         "converged": np.array([[True, True], [True, False]]),
    ...         "detected": np.array([[True, True], [True, True]])}
    >>> h = hist1d(maps, "sigma", bins=2, range=(0, 4))
    >>> h.counts.tolist(), h.n
    ([1, 1], 2)
    """
    maps = maps_of(res)
    v = _values(maps, name)
    ok = valid_mask(maps, (name,), mask, detected=detected)
    values = v[ok]
    counts, edges = np.histogram(values, bins=_bins(bins), range=range)
    return Hist1D(name, values, counts, edges, units_of(res, name))


def hist2d(res, x, y, *, bins=64, range=None, mask=None, detected=True):
    """2D histogram of two maps over valid pixels (detected, finite) inside ``mask``.

    The counts are those of :func:`numpy.histogram2d` over the same pixels.

    Parameters
    ----------
    res : FitResult
    x, y : str
        Map names, e.g. ``"centre"`` and ``"sigma"``: any pair of maps.
    bins : int, array_like or [int, int]
        As :func:`numpy.histogram2d`.
    range : [[xmin, xmax], [ymin, ymax]], optional
        As :func:`numpy.histogram2d`; default: the range of the values.
    mask, detected
        Which pixels count, as for :func:`hist1d`.

    Returns
    -------
    Hist2D
        ``counts``, ``xedges``, ``yedges``, ``n``, ``pearson``, ``spearman``; ``.plot()``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> c = rng.normal(710, 2, (30, 30))
    >>> ok = np.ones((30, 30), bool)
    >>> maps = {"centre": c, "sigma": 9 + 0.5 * (c - 710), "converged": ok, "detected": ok}
    >>> h = hist2d(maps, "centre", "sigma", bins=8)
    >>> int(h.counts.sum()), round(h.pearson, 6), round(h.spearman, 6)
    (900, 1.0, 1.0)
    """
    maps = maps_of(res)
    xv, yv = _values(maps, x), _values(maps, y)
    ok = valid_mask(maps, (x, y), mask, detected=detected)
    xs, ys = xv[ok], yv[ok]
    b = bins if isinstance(bins, list | tuple) and len(bins) == 2 else _bins(bins)
    counts, xedges, yedges = np.histogram2d(xs, ys, bins=b, range=range)
    return Hist2D(x, y, xs, ys, counts, xedges, yedges, units_of(res, x), units_of(res, y))


def parameter_names(res):
    """Names of the fitted parameters of ``res`` (no state, iterations or uncertainties)."""
    return [
        n
        for n in maps_of(res)
        if n not in _NOT_PARAMETERS and not n.endswith("_std") and not n.startswith("detected_")
    ]


def _describe(v):
    q25, med, q75 = np.percentile(v, [25, 50, 75]) if v.size else (np.nan,) * 3
    return {
        "count": int(v.size),
        "mean": float(np.mean(v)) if v.size else np.nan,
        "std": float(np.std(v, ddof=1)) if v.size > 1 else np.nan,
        "median": float(med),
        "q25": float(q25),
        "q75": float(q75),
        "iqr": float(q75 - q25),
    }


def pixel_table(res, *, parameters=None, mask=None, detected=True):
    """Count, mean, std, median and quartiles of every fitted parameter over valid pixels.

    Parameters
    ----------
    res : FitResult
    parameters : sequence of str, optional
        Maps to tabulate; default: every fitted parameter.
    mask : array_like of bool, optional
        Pixels to keep.
    detected : bool
        Only pixels with a detected peak (see :func:`valid_mask`).

    Returns
    -------
    pandas.DataFrame
        Index parameter; columns units, count, mean, std, median, q25, q75, iqr.

    Examples
    --------
    >>> import numpy as np
    >>> maps = {"sigma": np.array([8.0, 10.0, 30.0]), "converged": np.ones(3, bool),
    ...         "detected": np.array([True, True, False])}
    >>> t = pixel_table(maps)
    >>> int(t.loc["sigma", "count"]), float(t.loc["sigma", "mean"])
    (2, 9.0)
    """
    import pandas as pd

    maps = maps_of(res)
    params = parameter_names(maps) if parameters is None else list(parameters)
    rows = []
    for p in params:
        v = _values(maps, p)[valid_mask(maps, (p,), mask, detected=detected)]
        rows.append({"parameter": p, "units": units_of(res, p), **_describe(v)})
    return pd.DataFrame(rows).set_index("parameter")


def _tested_name(maps, base):
    return base if base in maps else f"{base}_1"


def _p_text(p):
    """``p = 0.0032``, or ``p < 1e-300`` where the p-value underflows."""
    return "p < 1e-300" if p < 1e-300 else f"p = {p:.2g}"


def quality_mask(res, *, min_snr=3.0, min_sigma=None, mask=None, detected=True):
    """Valid pixels (:func:`valid_mask`) whose amplitude is at least ``min_snr`` times its std.

    Parameters
    ----------
    res : FitResult
    min_snr : float
        Smallest amplitude / amplitude_std kept (3: the peak is detected at 3 sigma).
    min_sigma : float, optional
        Smallest width kept, in axis units (e.g. one channel: narrower "peaks" are spikes).
    mask : array_like of bool, optional
        Combined with the result.
    detected : bool
        Start from the pixels with a detected peak (see :func:`valid_mask`).

    Returns
    -------
    numpy.ndarray of bool

    Examples
    --------
    >>> import numpy as np
    >>> maps = {"amplitude": np.array([100.0, 2.0]), "amplitude_std": np.array([5.0, 3.0]),
    ...         "converged": np.array([True, True]), "detected": np.array([True, True])}
    >>> quality_mask(maps).tolist()
    [True, False]
    """
    maps = maps_of(res)
    name = "amplitude" if "amplitude" in maps else "amplitude_1"
    ok = valid_mask(maps, (name, f"{name}_std"), mask, detected=detected)
    a, sd = np.asarray(maps[name], float), np.asarray(maps[f"{name}_std"], float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok &= (a >= min_snr * sd) & (sd > 0)
    if min_sigma is not None:
        sname = name.replace("amplitude", "sigma")
        ok &= np.asarray(maps[sname], float) >= min_sigma
    return ok


class RegionStats:
    """What :func:`region_stats` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        Index (region, parameter); columns count, mean, std, median, q25, q75, iqr (over
        pixels).
    tests : pandas.DataFrame
        Index parameter. The effect and the test are taken over particles: for each particle,
        the mean over its interface pixels minus the mean over its core pixels;
        ``difference`` is the mean of these over the ``n_particles`` particles that have both,
        ``ci_low`` and ``ci_high`` its 95% confidence interval (Student t), ``p_value`` the
        two-sided one-sample t-test of the differences against 0. Each particle counts once,
        however many pixels it has, so pixels of one particle being alike (the probe blur,
        each particle's own composition) does not inflate the evidence. With fewer than
        :data:`MIN_PARTICLES` particles, ``p_value``, ``ci_low`` and ``ci_high`` are NaN: no
        claim is made. Descriptive, over pixels: ``n_interface``, ``n_core``, ``mean_*``,
        ``median_*``, and ``p_pixels``, the Mann-Whitney U test of interface against core
        pixels, which treats correlated pixels as independent and overstates the evidence.
    particles : pandas.DataFrame
        Index particle label; per parameter tested, the mean over its core and over its
        interface pixels and their difference (interface - core).
    """

    def __init__(self, table, tests, particles):
        self.table, self.tests, self.particles = table, tests, particles

    def summary(self, alpha=0.05):
        """Sentences saying what the interface-vs-core tests found, in means throughout."""
        lines = []
        for name, row in self.tests.iterrows():
            units = row.get("units", "") or ""
            u = f" {units}" if units else ""
            n = int(row["n_particles"])
            if not (row["n_core"] and row["n_interface"]):
                lines.append(f"{name}: not enough valid pixels to compare interface and core.")
                continue
            pixels = (
                f"over pixels (descriptive): mean {row['mean_interface']:.4g}{u} at the "
                f"interface vs {row['mean_core']:.4g}{u} in the core, n = "
                f"{int(row['n_interface'])} / {int(row['n_core'])} pixels"
            )
            d = row["difference"]
            if n < MIN_PARTICLES:
                effect = (
                    f"mean interface - core difference {d:+.3g}{u} over {n} particle"
                    f"{'' if n == 1 else 's'}"
                    if n
                    else "no particle has both interface and core pixels"
                )
                lines.append(
                    f"{name}: {effect}; no significance claimed: a difference is tested over "
                    f"particles and needs {MIN_PARTICLES} or more ({pixels})."
                )
                continue
            ci = f"95% CI {row['ci_low']:+.3g} to {row['ci_high']:+.3g}{u}"
            if row["p_value"] < alpha:
                word = "larger" if d > 0 else "smaller"
                verdict = f"{word} at the interface than in the core (significant at {alpha:g})"
            else:
                verdict = f"no significant difference between interface and core at {alpha:g}"
            same = int((np.sign(self.particles[f"{name}_difference"]) == np.sign(d)).sum())
            lines.append(
                f"{name}: {verdict}; mean over {n} particles of (interface mean - core mean) "
                f"= {d:+.3g}{u} ({ci}), t-test over particles {_p_text(row['p_value'])}; "
                f"the same sign in {same} of {n} particles; {pixels}."
            )
        return "\n".join(lines)

    def __repr__(self):
        return f"<RegionStats: {len(self.table)} rows, tests of {', '.join(self.tests.index)}>"


def _over_particles(d):
    """Mean of the per-particle differences ``d``, its 95% CI and the t-test p-value."""
    from scipy import stats

    n = d.size
    mean = float(np.mean(d)) if n else np.nan
    if n < MIN_PARTICLES:
        return mean, np.nan, np.nan, np.nan
    sem = float(np.std(d, ddof=1)) / np.sqrt(n)
    if sem == 0:
        return mean, mean, mean, (1.0 if mean == 0 else 0.0)
    half = float(stats.t.ppf(0.975, n - 1)) * sem
    p = float(2 * stats.t.sf(abs(mean) / sem, n - 1))
    return mean, mean - half, mean + half, p


def region_stats(res, seg, *, parameters=None, tested=TESTED, mask=None, detected=True):
    """Statistics of every fitted parameter in each region, and interface-vs-core tests.

    Parameters
    ----------
    res : FitResult
        Fitted maps, on the same pixel grid as ``seg``.
    seg : Segmentation
        From :func:`hyperlum.segment`.
    parameters : sequence of str, optional
        Maps to tabulate; default: every fitted parameter.
    tested : sequence of str
        Parameters compared between interface and core, over particles (see
        :class:`RegionStats`). With several peaks, ``"sigma"`` means ``"sigma_1"``.
    mask : array_like of bool, optional
        Extra pixels to keep (e.g. a quality mask); combined with each region.
    detected : bool
        Only pixels with a detected peak (see :func:`valid_mask`); ``False``: every converged
        pixel.

    Returns
    -------
    RegionStats
        ``table``, ``tests``, ``particles`` (pandas DataFrames) and ``summary()``.

    Examples
    --------
    Six particles whose rim is 3 units wider than their core, each particle with its own
    width:

    >>> import numpy as np
    >>> from hyperlum.analysis.segment import segment
    >>> yy, xx = np.mgrid[0:60, 0:90]
    >>> centres = [(15, 15), (15, 45), (15, 75), (45, 15), (45, 45), (45, 75)]
    >>> img = sum(1.0 * (np.hypot(yy - y, xx - x) < 11) for y, x in centres)
    >>> seg = segment(img, interface_width=3.0)
    >>> rng = np.random.default_rng(1)
    >>> own = np.concatenate([[0.0], rng.normal(9, 2, seg.n)])[seg.labels]
    >>> sigma = own + 3.0 * seg.mask("interface") + rng.normal(0, 0.5, img.shape)
    >>> maps = {"sigma": sigma, "converged": np.ones(img.shape, bool),
    ...         "detected": img > 0}
    >>> t = region_stats(maps, seg, tested=("sigma",)).tests.loc["sigma"]
    >>> int(t["n_particles"]), bool(t["ci_low"] < 3.0 < t["ci_high"]), bool(t["p_value"] < 0.05)
    (6, True, True)
    """
    import pandas as pd
    from scipy import stats

    from hyperlum.analysis.segment import REGIONS

    maps = maps_of(res)
    shape = np.shape(maps["converged"])
    if tuple(seg.shape) != tuple(shape):
        raise ValueError(
            f"the segmentation has shape {tuple(seg.shape)}, the maps {tuple(shape)}: "
            "segment an image of the same pixels as the spectrum image"
        )
    extra = _mask(mask, shape)
    params = parameter_names(maps) if parameters is None else list(parameters)
    rows = []
    for region in REGIONS:
        m = seg.mask(region) & extra
        for p in params:
            v = _values(maps, p)[valid_mask(maps, (p,), m, detected=detected)]
            rows.append({"region": region, "parameter": p, **_describe(v)})
    table = pd.DataFrame(rows).set_index(["region", "parameter"])

    core, iface = seg.mask("core") & extra, seg.mask("interface") & extra
    tests, per = [], {}
    labels = seg.labels
    for base in tested:
        p = _tested_name(maps, base)
        v = _values(maps, p)
        ok = valid_mask(maps, (p,), detected=detected)
        a, b = v[ok & iface], v[ok & core]
        if a.size and b.size:
            u, pv = stats.mannwhitneyu(a, b, alternative="two-sided")
            u, pv = float(u), float(pv)
        else:
            u = pv = np.nan
        for region, m in (("core", core), ("interface", iface)):
            sel = ok & m
            s = np.bincount(labels[sel], weights=v[sel], minlength=seg.n + 1)[1:]
            c = np.bincount(labels[sel], minlength=seg.n + 1)[1:]
            with np.errstate(invalid="ignore", divide="ignore"):
                per[f"{p}_{region}"] = np.where(c > 0, s / np.maximum(c, 1), np.nan)
        diff = per[f"{p}_interface"] - per[f"{p}_core"]
        per[f"{p}_difference"] = diff
        d = diff[np.isfinite(diff)]
        mean, lo, hi, p_value = _over_particles(d)
        tests.append(
            {
                "parameter": p,
                "units": units_of(res, p),
                "n_particles": int(d.size),
                "difference": mean,
                "ci_low": lo,
                "ci_high": hi,
                "p_value": p_value,
                "n_interface": int(a.size),
                "n_core": int(b.size),
                "mean_interface": float(np.mean(a)) if a.size else np.nan,
                "mean_core": float(np.mean(b)) if b.size else np.nan,
                "median_interface": float(np.median(a)) if a.size else np.nan,
                "median_core": float(np.median(b)) if b.size else np.nan,
                "U": u,
                "p_pixels": pv,
            }
        )
    particles = pd.DataFrame(per, index=pd.Index(np.arange(1, seg.n + 1), name="label"))
    return RegionStats(table, pd.DataFrame(tests).set_index("parameter"), particles)
