"""Statistics of fitted maps: per-region tables, interface-vs-core tests, 1D and 2D histograms.

Every statistic is taken over the *valid* pixels: the fit converged, every map involved is
finite there, and the pixel is inside the mask (a region) when one is given.
"""

import numbers

import numpy as np

#: Maps that are not fitted parameters (left out of the region tables).
_NOT_PARAMETERS = ("state", "converged", "iterations")
#: Parameters compared between interface and core by default.
TESTED = ("sigma", "centre", "intensity")


def _maps(res):
    """The maps of ``res`` as numpy arrays, by name (a FitResult, or a dict of arrays)."""
    if hasattr(res, "compute") and hasattr(res, "maps"):
        return {k: np.asarray(v) for k, v in res.compute().maps.items()}
    if isinstance(res, dict):
        return {k: np.asarray(v) for k, v in res.items()}
    raise TypeError(f"res must be a FitResult (from hyperlum.fit), got {type(res).__name__}")


def _units(res, name):
    base = name.removesuffix("_std").rstrip("_0123456789")
    if base in ("centre", "sigma", "fwhm") and hasattr(res, "options"):
        return res.options.get("axis_units") or ""
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


def valid_mask(res, names=(), mask=None):
    """Pixels where the fit converged, the maps ``names`` are finite and ``mask`` is True.

    Parameters
    ----------
    res : FitResult
    names : sequence of str
        Maps that must be finite.
    mask : array_like of bool, optional
        Pixels to keep (e.g. ``seg.mask("core")``).

    Returns
    -------
    numpy.ndarray of bool
    """
    maps = _maps(res)
    shape = np.shape(maps["converged"]) if "converged" in maps else None
    if shape is None:
        raise KeyError("res has no 'converged' map; is it a hyperlum FitResult?")
    ok = _mask(mask, shape) & np.asarray(maps["converged"], dtype=bool)
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
        from hyperlum.plot import _axes, _label

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

        from hyperlum.plot import _axes, _label

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


def hist1d(res, name, *, bins=64, range=None, mask=None):
    """Histogram of one map over converged, finite pixels inside ``mask``.

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

    Returns
    -------
    Hist1D
        ``counts``, ``edges``, ``n``, ``mean``, ``median``, ``std``; ``.plot()``.

    Examples
    --------
    >>> import numpy as np
    >>> maps = {"sigma": np.array([[1.0, 2.0], [np.nan, 3.0]]),
    ...         "converged": np.array([[True, True], [True, False]])}
    >>> h = hist1d(maps, "sigma", bins=2, range=(0, 4))
    >>> h.counts.tolist(), h.n
    ([1, 1], 2)
    """
    maps = _maps(res)
    v = _values(maps, name)
    ok = valid_mask(maps, (name,), mask)
    values = v[ok]
    counts, edges = np.histogram(values, bins=_bins(bins), range=range)
    return Hist1D(name, values, counts, edges, _units(res, name))


def hist2d(res, x, y, *, bins=64, range=None, mask=None):
    """2D histogram of two maps over converged, finite pixels inside ``mask``.

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
    mask : array_like of bool, optional
        Pixels to keep, e.g. ``seg.mask("core")``.

    Returns
    -------
    Hist2D
        ``counts``, ``xedges``, ``yedges``, ``n``, ``pearson``, ``spearman``; ``.plot()``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> c = rng.normal(710, 2, (30, 30))
    >>> maps = {"centre": c, "sigma": 9 + 0.5 * (c - 710), "converged": np.ones((30, 30), bool)}
    >>> h = hist2d(maps, "centre", "sigma", bins=8)
    >>> int(h.counts.sum()), round(h.pearson, 6), round(h.spearman, 6)
    (900, 1.0, 1.0)
    """
    maps = _maps(res)
    xv, yv = _values(maps, x), _values(maps, y)
    ok = valid_mask(maps, (x, y), mask)
    xs, ys = xv[ok], yv[ok]
    b = bins if isinstance(bins, list | tuple) and len(bins) == 2 else _bins(bins)
    counts, xedges, yedges = np.histogram2d(xs, ys, bins=b, range=range)
    return Hist2D(x, y, xs, ys, counts, xedges, yedges, _units(res, x), _units(res, y))


def parameter_names(res):
    """Names of the fitted parameters of ``res`` (no state, iterations or uncertainties)."""
    return [n for n in _maps(res) if n not in _NOT_PARAMETERS and not n.endswith("_std")]


def _tested_name(maps, base):
    return base if base in maps else f"{base}_1"


def _p_text(p):
    """``p = 0.0032``, or ``p < 1e-300`` where the p-value underflows."""
    return "p < 1e-300" if p < 1e-300 else f"p = {p:.2g}"


def quality_mask(res, *, min_snr=3.0, min_sigma=None, mask=None):
    """Pixels with a detected peak: converged, and amplitude at least ``min_snr`` times its std.

    Parameters
    ----------
    res : FitResult
    min_snr : float
        Smallest amplitude / amplitude_std kept (3: the peak is detected at 3 sigma).
    min_sigma : float, optional
        Smallest width kept, in axis units (e.g. one channel: narrower "peaks" are spikes).
    mask : array_like of bool, optional
        Combined with the result.

    Returns
    -------
    numpy.ndarray of bool

    Examples
    --------
    >>> import numpy as np
    >>> maps = {"amplitude": np.array([100.0, 2.0]), "amplitude_std": np.array([5.0, 3.0]),
    ...         "converged": np.array([True, True])}
    >>> quality_mask(maps).tolist()
    [True, False]
    """
    maps = _maps(res)
    name = "amplitude" if "amplitude" in maps else "amplitude_1"
    ok = valid_mask(maps, (name, f"{name}_std"), mask)
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
        Index (region, parameter); columns count, mean, std, median, q25, q75, iqr.
    tests : pandas.DataFrame
        Index parameter; Mann-Whitney U test of interface vs core: n and median of each,
        difference of medians (interface - core), U, p_value, and the probability that an
        interface pixel exceeds a core pixel (``U / (n_interface * n_core)``); and over
        particles, ``n_particles`` and ``p_particles``, the Wilcoxon signed-rank test of the
        per-particle differences (interface mean - core mean; needs 5 particles or more).
        Neighbouring pixels are not independent (the probe and carrier diffusion blur the
        map), so the pixel test overstates the evidence; the per-particle test does not.
    particles : pandas.DataFrame
        Index particle label; per parameter tested, the mean over its core and over its
        interface pixels and their difference (interface - core).
    """

    def __init__(self, table, tests, particles):
        self.table, self.tests, self.particles = table, tests, particles

    def summary(self, alpha=0.01):
        """Sentences saying what the interface-vs-core tests found."""
        lines = []
        for name, row in self.tests.iterrows():
            if not (row["n_core"] and row["n_interface"]):
                lines.append(f"{name}: not enough valid pixels to compare interface and core.")
                continue
            units = row.get("units", "") or ""
            u = f" {units}" if units else ""
            d = row["difference"]
            sig = row["p_value"] < alpha
            word = "larger" if d > 0 else "smaller"
            verdict = (
                f"{word} at the interface than in the core (significant, p < {alpha:g})"
                if sig
                else f"not significantly different between interface and core (p >= {alpha:g})"
            )
            pp = self.particles
            col = f"{name}_difference"
            frac = ""
            if col in pp and pp[col].notna().any():
                k = int((np.sign(pp[col]) == np.sign(d)).sum())
                frac = f"; {word} in {k} of {int(pp[col].notna().sum())} particles"
                if np.isfinite(row.get("p_particles", np.nan)):
                    frac += f" (Wilcoxon signed-rank over particles {_p_text(row['p_particles'])})"
            lines.append(
                f"{name}: median {row['median_interface']:.4g}{u} at the interface vs "
                f"{row['median_core']:.4g}{u} in the core ({d:+.3g}{u}), {verdict}; "
                f"Mann-Whitney U {_p_text(row['p_value'])}, n = {int(row['n_interface'])} / "
                f"{int(row['n_core'])} pixels{frac}."
            )
        return "\n".join(lines)

    def __repr__(self):
        return f"<RegionStats: {len(self.table)} rows, tests of {', '.join(self.tests.index)}>"


def region_stats(res, seg, *, parameters=None, tested=TESTED, mask=None):
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
        Parameters compared between interface and core (two-sided Mann-Whitney U).
        With several peaks, ``"sigma"`` means ``"sigma_1"``.
    mask : array_like of bool, optional
        Extra pixels to keep (e.g. a quality mask); combined with each region.

    Returns
    -------
    RegionStats
        ``table``, ``tests``, ``particles`` (pandas DataFrames) and ``summary()``.
    """
    import pandas as pd
    from scipy import stats

    from hyperlum.segment import REGIONS

    maps = _maps(res)
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
            v = _values(maps, p)[valid_mask(maps, (p,), m)]
            q25, med, q75 = np.percentile(v, [25, 50, 75]) if v.size else (np.nan,) * 3
            rows.append(
                {
                    "region": region,
                    "parameter": p,
                    "count": int(v.size),
                    "mean": float(np.mean(v)) if v.size else np.nan,
                    "std": float(np.std(v, ddof=1)) if v.size > 1 else np.nan,
                    "median": float(med),
                    "q25": float(q25),
                    "q75": float(q75),
                    "iqr": float(q75 - q25),
                }
            )
    table = pd.DataFrame(rows).set_index(["region", "parameter"])

    core, iface = seg.mask("core") & extra, seg.mask("interface") & extra
    tests, per = [], {}
    labels = seg.labels
    for base in tested:
        p = _tested_name(maps, base)
        v = _values(maps, p)
        a = v[valid_mask(maps, (p,), iface)]
        b = v[valid_mask(maps, (p,), core)]
        if a.size and b.size:
            u, pv = stats.mannwhitneyu(a, b, alternative="two-sided")
            u, pv, prob = float(u), float(pv), float(u) / (a.size * b.size)
        else:
            u = pv = prob = np.nan
        tests.append(
            {
                "parameter": p,
                "units": _units(res, p),
                "n_interface": int(a.size),
                "n_core": int(b.size),
                "median_interface": float(np.median(a)) if a.size else np.nan,
                "median_core": float(np.median(b)) if b.size else np.nan,
                "difference": float(np.median(a) - np.median(b)) if a.size and b.size else np.nan,
                "U": u,
                "p_value": pv,
                "prob_interface_greater": prob,
            }
        )
        ok = valid_mask(maps, (p,))
        n = seg.n
        for region, m in (("core", core), ("interface", iface)):
            sel = ok & m
            s = np.bincount(labels[sel], weights=v[sel], minlength=n + 1)[1:]
            c = np.bincount(labels[sel], minlength=n + 1)[1:]
            with np.errstate(invalid="ignore", divide="ignore"):
                per[f"{p}_{region}"] = np.where(c > 0, s / np.maximum(c, 1), np.nan)
        diff = per[f"{p}_interface"] - per[f"{p}_core"]
        per[f"{p}_difference"] = diff
        d = diff[np.isfinite(diff)]
        paired = np.nan
        if d.size >= 5 and np.any(d != 0):
            paired = float(stats.wilcoxon(d).pvalue)
        tests[-1]["n_particles"] = int(d.size)
        tests[-1]["p_particles"] = paired
    particles = pd.DataFrame(per, index=pd.Index(np.arange(1, seg.n + 1), name="label"))
    return RegionStats(table, pd.DataFrame(tests).set_index("parameter"), particles)
