"""The interface-vs-core report: figures (PNG), tables (CSV) and the findings in words.

:func:`make_report` segments the particles (on a HAADF image, or on the fitted intensity),
keeps the pixels with a detected peak, tabulates every fitted parameter per region, tests
interface against core and draws the figures, into one folder. It never replaces a file that
is already there unless asked to.
"""

import os
from dataclasses import dataclass, field

import numpy as np

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


@dataclass
class Report:
    """What :func:`make_report` returns: the files written and what was found."""

    paths: list
    findings: str
    segmentation: object = None
    stats: object = None
    extra: dict = field(default_factory=dict)


def check_free(outdir, names, overwrite):
    """Raise FileExistsError if any of ``names`` exists in ``outdir`` (unless ``overwrite``)."""
    taken = [n for n in names if os.path.exists(os.path.join(outdir, n))]
    if taken and not overwrite:
        raise FileExistsError(
            f"{outdir} already holds {', '.join(taken)}; choose another folder or pass "
            "--overwrite (overwrite=True in Python) to replace them"
        )


def _pixel_size(result):
    axes = getattr(result, "nav_axes", [])
    if len(axes) == 2:
        return float(axes[-1].get("scale", 1.0)), axes[-1].get("units") or ""
    return 1.0, "px"


def _representative_pixels(maps, seg, quality):
    """A core pixel and an interface pixel with sigma closest to their region's median."""
    out = []
    sigma = np.asarray(maps["sigma"] if "sigma" in maps else maps["sigma_1"], dtype=float)
    for region in ("core", "interface"):
        m = seg.mask(region) & quality & np.isfinite(sigma)
        if m.any():
            med = np.median(sigma[m])
            idx = np.flatnonzero(m.ravel())
            best = idx[np.argmin(np.abs(sigma.ravel()[idx] - med))]
            out.append(tuple(int(v) for v in np.unravel_index(best, sigma.shape)))
    return out


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
    overwrite=False,
    dpi=150,
):
    """Segment, compare interface and core, and write figures and tables to ``outdir``.

    Parameters
    ----------
    result : FitResult
        A fitted map (two navigation axes), e.g. from :func:`hyperlum.fit`.
    image : hyperspy Signal2D or array_like, optional
        HAADF image of the same pixels, particles bright. Default: the fitted intensity.
    outdir : str or os.PathLike
        Folder for the files (made if missing).
    signal : hyperspy Signal1D, optional
        The fitted spectrum image; with it, ``spectra.png`` shows spectra and their fits.
    seg : Segmentation, optional
        Use this segmentation instead of segmenting ``image``.
    interface_width, shell_width : float, optional
        Widths of the interface and shell bands in the maps' units; default three pixels.
    min_snr : float
        Pixels count when the fit converged and the amplitude is at least ``min_snr`` times
        its standard error (a detected peak); the others are left out of every statistic.
    overwrite : bool
        Replace report files already in ``outdir``. Without it, nothing is written when one
        of them exists.
    dpi : int
        Resolution of the PNG figures.

    Returns
    -------
    Report
        ``paths`` (files written), ``findings`` (text), ``segmentation``, ``stats``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hyperlum import plot
    from hyperlum.segment import segment
    from hyperlum.stats import _maps, quality_mask, region_stats

    if not hasattr(result, "maps"):
        raise TypeError(f"result must be a FitResult, got {type(result).__name__}")
    res = result.compute()
    maps = _maps(res)
    shape = np.shape(maps["converged"])
    if len(shape) != 2:
        raise ValueError(
            f"the report needs a map (two navigation axes), the result has shape {shape}"
        )
    outdir = os.fspath(outdir)
    names = [n for n in REPORT_FILES if signal is not None or n != "spectra.png"]
    check_free(outdir, names, overwrite)
    px, units = _pixel_size(res)
    interface_width = 3 * px if interface_width is None else interface_width
    shell_width = 3 * px if shell_width is None else shell_width
    quality = quality_mask(res, min_snr=min_snr)

    if seg is None:
        if image is None:
            inten = np.asarray(
                maps["intensity"] if "intensity" in maps else maps["intensity_1"], dtype=float
            )
            img = np.where(quality, inten, np.nan)
            seg = segment(
                img, pixel_size=px, interface_width=interface_width, shell_width=shell_width
            )
            source = "the fitted intensity map"
        else:
            img_shape = np.shape(getattr(image, "data", image))
            if tuple(img_shape) != tuple(shape):
                raise ValueError(
                    f"the image has {img_shape[0]}x{img_shape[1]} pixels, the maps "
                    f"{shape[0]}x{shape[1]}: give the HAADF image of the same scan"
                )
            calibrated = hasattr(image, "axes_manager")
            seg = segment(
                image,
                pixel_size=None if calibrated else px,
                interface_width=interface_width,
                shell_width=shell_width,
            )
            source = "the HAADF image"
    else:
        source = "the given segmentation"
    if tuple(seg.shape) != tuple(shape):
        raise ValueError(f"the segmentation has shape {seg.shape}, the maps {shape}")

    st = region_stats(res, seg, mask=quality)
    os.makedirs(outdir, exist_ok=True)
    written = []

    def save(fig, name):
        path = os.path.join(outdir, name)
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        written.append(path)

    fig = plot.plot_maps(res, seg, image, names=_names(maps, ("centre", "sigma")), mask=quality)
    save(fig, "maps.png")
    if signal is not None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
        plot.plot_spectra(
            signal, res, pixels=_representative_pixels(maps, seg, quality), ax=axes[0]
        )
        axes[0].set_title("Pixels (points) and their fits (lines)")
        plot.plot_spectra(signal, res, seg=seg, mask=quality, normalise=True, ax=axes[1])
        axes[1].set_title("Region means, normalised")
        save(fig, "spectra.png")
    save(
        plot.plot_region_histograms(
            res, seg, names=_names(maps, ("centre", "sigma", "intensity")), mask=quality
        ),
        "histograms.png",
    )
    c, s, i = _names(maps, ("centre", "sigma", "intensity"))
    save(plot.plot_hist2d_regions(res, seg, pairs=((c, s), (c, i)), mask=quality), "hist2d.png")

    for name, df in (
        ("regions.csv", st.table),
        ("tests.csv", st.tests),
        ("particles.csv", seg.particles.join(st.particles)),
    ):
        path = os.path.join(outdir, name)
        df.to_csv(path)
        written.append(path)

    n_q = int(quality.sum())
    lines = [
        f"Particles: {seg.n} found on {source} (threshold {seg.threshold:.4g}), median "
        f"equivalent diameter {np.median(seg.particles['equivalent_diameter']):.4g} {units}"
        if seg.n
        else f"Particles: none found on {source}.",
        f"Regions: interface = the outer {seg.interface_width:.4g} {units} of each particle, "
        f"core = the rest, shell = matrix within {seg.shell_width:.4g} {units} of a particle.",
        f"Pixels used: {n_q} of {quality.size} (fit converged and amplitude >= "
        f"{min_snr:g} x its standard error).",
        "",
        st.summary(),
    ]
    findings = "\n".join(lines) + "\n"
    path = os.path.join(outdir, "findings.txt")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(findings)
    written.append(path)
    return Report(written, findings, seg, st)


def _names(maps, bases):
    return tuple(b if b in maps else f"{b}_1" for b in bases)
