"""The report: figures (PNG), tables (CSV) and the findings in words.

:func:`make_report` keeps the pixels where the fit detected a peak, and then, for a map,
segments the particles (on a HAADF image, or on the fitted intensity), tabulates every fitted
parameter per region, tests interface against core over particles and draws the figures; for
a line scan, or a map without credible particles, it describes the detected pixels without
regions. Everything goes into one folder. It never replaces a file that is already there
unless asked to, and it checks every input before it writes anything.
"""

import functools
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from hyperlum.io import outputs

#: Files the report writes (PNG figures, CSV tables, the findings).
REPORT_FILES = (
    "maps.png",
    "spectra.png",
    "histograms.png",
    "hist2d.png",
    "regions.csv",
    "tests.csv",
    "particles.csv",
    "findings.txt",
)
#: Files of a report without regions (a line scan, or a map without credible particles).
PIXEL_REPORT_FILES = (
    "maps.png",
    "spectra.png",
    "histograms.png",
    "hist2d.png",
    "pixels.csv",
    "findings.txt",
)


@dataclass
class Report:
    """What :func:`make_report` returns: the files written and what was found."""

    paths: list
    findings: str
    segmentation: object = None
    stats: object = None
    extra: dict = field(default_factory=dict)


def check_free(outdir, names, overwrite):
    """Raise FileExistsError if any of ``names`` exists in ``outdir``, unless ``overwrite``;
    even then, a file that hyperlum did not write is never replaced
    (:func:`hyperlum.io.outputs.check_replaceable`)."""
    taken = [n for n in names if os.path.lexists(os.path.join(outdir, n))]
    if taken and not overwrite:
        raise FileExistsError(
            f"{outdir} already holds {', '.join(taken)}; choose another folder or pass "
            "--overwrite (overwrite=True in Python) to replace them"
        )
    for n in taken:
        outputs.check_replaceable(os.path.join(outdir, n), overwrite=True)


def _pixel_size(result):
    axes = getattr(result, "nav_axes", [])
    if len(axes) == 2:
        u = axes[-1].get("units")
        return float(axes[-1].get("scale", 1.0)), u if u and u != "<undefined>" else "px"
    return 1.0, "px"


def _check_signal(signal, shape):
    """Refuse a spectrum image that is not the one fitted (other navigation shape)."""
    if signal is None:
        return
    am = getattr(signal, "axes_manager", None)
    if am is None or am.signal_dimension != 1:
        raise ValueError(f"signal must be the fitted spectrum image (a Signal1D), got {signal}")
    nav = tuple(np.shape(signal.data)[:-1])
    if nav != tuple(shape):
        raise ValueError(
            f"the spectra have {'x'.join(map(str, nav)) or 'no'} navigation pixels, the maps "
            f"{'x'.join(map(str, shape))}: give the spectrum image that was fitted"
        )


def _representative_pixels(maps, seg, valid):
    """A core pixel and an interface pixel with sigma closest to their region's median."""
    out = []
    sigma = np.asarray(maps["sigma"] if "sigma" in maps else maps["sigma_1"], dtype=float)
    for region in ("core", "interface"):
        m = seg.mask(region) & valid & np.isfinite(sigma)
        if m.any():
            med = np.median(sigma[m])
            idx = np.flatnonzero(m.ravel())
            best = idx[np.argmin(np.abs(sigma.ravel()[idx] - med))]
            out.append(tuple(int(v) for v in np.unravel_index(best, sigma.shape)))
    return out


def _brightest_pixels(maps, valid, k=2):
    """The brightest valid pixel and the one of median intensity (index tuples)."""
    inten = np.asarray(maps["intensity"] if "intensity" in maps else maps["intensity_1"], float)
    ok = valid & np.isfinite(inten)
    if not ok.any():
        return []
    idx = np.flatnonzero(ok.ravel())
    v = inten.ravel()[idx]
    picks = [idx[np.argmax(v)], idx[np.argsort(v)[v.size // 2]]]
    out = [tuple(int(q) for q in np.unravel_index(i, inten.shape)) for i in dict.fromkeys(picks)]
    return out[:k]


def _each_warning_once(func):
    """Run ``func`` giving each warning it raises once, in order, pointed at its caller."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = func(*args, **kwargs)
        for message in dict.fromkeys(str(w.message) for w in caught):  # once each, in order
            kind = next(w.category for w in caught if str(w.message) == message)
            warnings.warn(message, kind, stacklevel=2)
        return out

    return run


@_each_warning_once
def make_report(
    result,
    image=None,
    outdir=".",
    *,
    signal=None,
    seg=None,
    interface_width=None,
    shell_width=None,
    min_snr=3.0,
    detected=True,
    overwrite=False,
    dpi=150,
):
    """Write figures, tables and findings about fitted maps to ``outdir``.

    For a map: segment the particles, tabulate every parameter per region (core, interface,
    shell, matrix) and test interface against core over particles. For a line scan, or a map
    on which no credible particle is found: describe the detected pixels, without regions
    (``PIXEL_REPORT_FILES``).

    Parameters
    ----------
    result : FitResult
        A fitted map (two navigation axes) or line scan (one), e.g. from :func:`hyperlum.fit`.
    image : hyperspy Signal2D or array_like, optional
        HAADF image of the same pixels, particles bright. Default: the fitted intensity.
    outdir : str or os.PathLike
        Folder for the files (made if missing).
    signal : hyperspy Signal1D, optional
        The fitted spectrum image; with it, ``spectra.png`` shows spectra and their fits.
        One of another navigation shape is refused before anything is written.
    seg : Segmentation, optional
        Use this segmentation instead of segmenting ``image``.
    interface_width, shell_width : float, optional
        Widths of the interface and shell bands in the maps' units; default three pixels.
    min_snr : float
        Of the pixels with a detected peak (see ``detected``), keep those whose amplitude is
        at least ``min_snr`` times its standard error; 0 keeps them all.
    detected : bool
        Use only the pixels where the fit's verdict says a peak was detected (the
        ``detected`` maps; for older results without them, the converged pixels, with a
        warning). ``False``: every converged pixel.
    overwrite : bool
        Replace report files already in ``outdir`` that hyperlum wrote (each file written is
        noted in the folder's ``.hyperlum-files`` list, :mod:`hyperlum.io.outputs`); a file of
        the user's under a report name is never replaced. Without it, nothing is written when
        one of them exists.
    dpi : int
        Resolution of the PNG figures.

    Returns
    -------
    Report
        ``paths`` (files written), ``findings`` (text), ``segmentation``, ``stats``.
    """
    import matplotlib

    matplotlib.use("Agg")

    from hyperlum.analysis.segment import segment
    from hyperlum.analysis.stats import maps_of, quality_mask

    if not hasattr(result, "maps"):
        raise TypeError(f"result must be a FitResult, got {type(result).__name__}")
    res = result.compute()
    maps = maps_of(res)
    shape = np.shape(maps["converged"])
    if len(shape) not in (1, 2):
        raise ValueError(
            f"the report needs a map or a line scan (two or one navigation axes), the result "
            f"has shape {shape}"
        )
    _check_signal(signal, shape)
    outdir = os.fspath(outdir)
    valid = quality_mask(res, min_snr=min_snr, detected=detected)
    rule = (
        ("the fit's verdict: peak detected" if "detected" in maps else "the fit converged")
        if detected
        else "the fit converged"
    )
    rule += f"; amplitude >= {min_snr:g} x its standard error" if min_snr else ""
    used = f"Pixels used: {int(valid.sum())} of {valid.size} ({rule})."

    if len(shape) == 1:
        if image is not None or seg is not None:
            raise ValueError("a line scan has no particles: leave out image and seg")
        names = [n for n in PIXEL_REPORT_FILES if n not in ("maps.png", "hist2d.png")]
        names = ["profile.png"] + [n for n in names if signal is not None or n != "spectra.png"]
        check_free(outdir, names, overwrite)
        return _pixel_report(res, signal, outdir, valid, dpi, ["Line scan.", used], None)

    px, units = _pixel_size(res)
    interface_width = 3 * px if interface_width is None else interface_width
    shell_width = 3 * px if shell_width is None else shell_width
    if seg is None:
        if image is None:
            inten = np.asarray(
                maps["intensity"] if "intensity" in maps else maps["intensity_1"], dtype=float
            )
            img = np.where(valid, inten, np.nan)
            source = "the fitted intensity map"
        else:
            img_shape = np.shape(getattr(image, "data", image))
            if tuple(img_shape) != tuple(shape):
                raise ValueError(
                    f"the image has {img_shape[0]}x{img_shape[1]} pixels, the maps "
                    f"{shape[0]}x{shape[1]}: give the HAADF image of the same scan"
                )
            img = image
            source = "the HAADF image"
        calibrated = hasattr(img, "axes_manager")
        if np.isfinite(np.asarray(getattr(img, "data", img), dtype=float)).any():
            seg = segment(
                img,
                pixel_size=None if calibrated else px,
                units=None if calibrated else units,
                interface_width=interface_width,
                shell_width=shell_width,
            )
        note = "no pixel with a detected peak" if seg is None else seg.note
    else:
        source, note = "the given segmentation", ""
    if seg is not None and tuple(seg.shape) != tuple(shape):
        raise ValueError(f"the segmentation has shape {seg.shape}, the maps {shape}")

    if seg is None or seg.n == 0:
        names = [n for n in PIXEL_REPORT_FILES if signal is not None or n != "spectra.png"]
        check_free(outdir, names, overwrite)
        why = note or "none found"
        lines = [
            f"Particles: none credible on {source} ({why}); the report describes the detected "
            "pixels without regions and makes no interface-vs-core comparison.",
            used,
        ]
        return _pixel_report(res, signal, outdir, valid, dpi, lines, seg)
    names = [n for n in REPORT_FILES if signal is not None or n != "spectra.png"]
    check_free(outdir, names, overwrite)
    return _region_report(res, seg, image, signal, outdir, valid, dpi, source, used)


def _saver(outdir, dpi, written):
    import matplotlib.pyplot as plt

    os.makedirs(outdir, exist_ok=True)

    def save(fig, name):
        path = os.path.join(outdir, name)
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        outputs.record(path)  # hyperlum's: a later overwrite may replace it
        written.append(path)

    return save


def _write(outdir, name, text_or_df, written):
    path = os.path.join(outdir, name)
    if isinstance(text_or_df, str):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text_or_df)
    else:
        text_or_df.to_csv(path)
    outputs.record(path)
    written.append(path)


def _pixel_report(res, signal, outdir, valid, dpi, lines, seg):
    """Figures and a table of the valid pixels, without regions (line scans, no particles)."""
    import matplotlib.pyplot as plt

    from hyperlum.analysis.stats import maps_of, parameter_names, pixel_table
    from hyperlum.viz import plot

    maps = maps_of(res)
    written = []
    save = _saver(outdir, dpi, written)
    params = [n for n in parameter_names(maps) if n != "chisq"]
    if len(valid.shape) == 1:
        save(plot.plot_profile(res, names=params, mask=valid), "profile.png")
    else:
        shown = _names(maps, ("centre", "sigma"))
        save(plot.plot_maps(res, seg, names=shown, mask=valid), "maps.png")
    if signal is not None:
        fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
        plot.plot_spectra(signal, res, pixels=_brightest_pixels(maps, valid), ax=ax)
        ax.set_title("Brightest and median-intensity pixels (points) and their fits (lines)")
        save(fig, "spectra.png")
    hist = _names(maps, ("centre", "sigma", "intensity"))
    save(plot.plot_region_histograms(res, None, names=hist, mask=valid), "histograms.png")
    if len(valid.shape) == 2:
        c, s, i = hist
        save(plot.plot_hist2d_regions(res, None, pairs=((c, s), (c, i)), mask=valid), "hist2d.png")
    table = pixel_table(res, mask=valid)
    _write(outdir, "pixels.csv", table, written)
    summary = [
        f"{n}: mean {r['mean']:.4g}{' ' + r['units'] if r['units'] else ''} (std {r['std']:.3g},"
        f" median {r['median']:.4g}) over {int(r['count'])} pixels."
        if r["count"] > 0
        else f"{n}: no statistic, no pixel to take it over."
        for n, r in table.loc[list(hist)].iterrows()
    ]
    findings = "\n".join([*lines, "", *summary]) + "\n"
    _write(outdir, "findings.txt", findings, written)
    return Report(written, findings, seg, None)


def _region_report(res, seg, image, signal, outdir, valid, dpi, source, used):
    import matplotlib.pyplot as plt

    from hyperlum.analysis.stats import MIN_PARTICLES, maps_of, region_stats
    from hyperlum.viz import plot

    maps = maps_of(res)
    units = seg.units
    st = region_stats(res, seg, mask=valid)
    written = []
    save = _saver(outdir, dpi, written)
    fig = plot.plot_maps(res, seg, image, names=_names(maps, ("centre", "sigma")), mask=valid)
    save(fig, "maps.png")
    if signal is not None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
        plot.plot_spectra(signal, res, pixels=_representative_pixels(maps, seg, valid), ax=axes[0])
        axes[0].set_title("Pixels (points) and their fits (lines)")
        plot.plot_spectra(signal, res, seg=seg, mask=valid, normalise=True, ax=axes[1])
        axes[1].set_title("Region means, normalised")
        save(fig, "spectra.png")
    c, s, i = _names(maps, ("centre", "sigma", "intensity"))
    save(plot.plot_region_histograms(res, seg, names=(c, s, i), mask=valid), "histograms.png")
    save(plot.plot_hist2d_regions(res, seg, pairs=((c, s), (c, i)), mask=valid), "hist2d.png")
    for name, df in (
        ("regions.csv", st.table),
        ("tests.csv", st.tests),
        ("particles.csv", seg.particles.join(st.particles)),
    ):
        _write(outdir, name, df, written)
    few = (
        f" Fewer than {MIN_PARTICLES} particles: differences are reported, no significance "
        f"is claimed (the test is over particles, and {seg.n} cannot carry it)."
        if seg.n < MIN_PARTICLES
        else ""
    )
    lines = [
        f"Particles: {seg.n} found on {source} (threshold {seg.threshold:.4g}), median "
        f"equivalent diameter {np.median(seg.particles['equivalent_diameter']):.4g} {units}." + few,
        f"Regions: interface = the outer {seg.interface_width:.4g} {units} of each particle, "
        f"core = the rest, shell = matrix within {seg.shell_width:.4g} {units} of a particle.",
        used,
        "Tests: over particles (each particle's interface mean - core mean; t-test, 95% CI); "
        "pixel-level figures are descriptive, as pixels of one particle are not independent.",
        "",
        st.summary(),
    ]
    findings = "\n".join(lines) + "\n"
    _write(outdir, "findings.txt", findings, written)
    return Report(written, findings, seg, st)


def _names(maps, bases):
    return tuple(b if b in maps else f"{b}_1" for b in bases)
