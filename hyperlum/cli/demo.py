"""``hyperlum demo -o DIR``: make, fit and report the embedded demo, and fit a real line scan.

Writes into DIR: the demo spectrum image and HAADF image, the fitted maps, the report
(figures, tables, findings) and the fit of the CL line scan shipped in ``hyperlum.data``.
Nothing already in DIR is replaced unless ``--overwrite`` is given.
"""

import os
import time

from hyperlum.cli import seed

LINESCAN = "lumispydemos-Test-linescan_InGaAs-NWs.dm4"
DEMO_FILES = ("demo_cl.zspy", "demo_haadf.zspy", "demo_maps.zspy")
LINESCAN_FILES = ("linescan_maps.zspy", "linescan.png")


def register(subparsers):
    p = subparsers.add_parser(
        "demo",
        help="make, fit and report the demo spectrum image (start here)",
        description=(
            "Make, fit and report the embedded demo STEM-CL spectrum image, and fit a real CL line "
            "scan. Start here."
        ),
    )
    p.add_argument(
        "-o",
        "--output",
        default="hyperlum-demo",
        metavar="DIR",
        help="folder for the results (default: hyperlum-demo)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace result files already in DIR")
    p.add_argument(
        "--size",
        type=int,
        default=112,
        metavar="N",
        help="the demo map is N x N pixels, 32 to 256 (default 112)",
    )
    p.add_argument("--seed", type=seed, default=0, help="seed of the demo data (default 0)")
    p.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="where to fit (default auto)",
    )
    p.set_defaults(func=run)


def _ious(labels, truth):
    """Per true particle, the IoU with the found particle that overlaps it most."""
    import numpy as np

    out = []
    for k in range(1, int(truth.max()) + 1):
        t = truth == k
        found = labels[t]
        found = found[found > 0]
        if found.size == 0:
            out.append(0.0)
            continue
        p = labels == np.bincount(found).argmax()
        out.append(float((t & p).sum() / (t | p).sum()))
    return np.array(out)


def run(args):
    from hyperlum.cli import UsageError
    from hyperlum.io import outputs
    from hyperlum.viz.report import PIXEL_REPORT_FILES, REPORT_FILES, check_free

    if not 32 <= args.size <= 256:
        raise UsageError(f"--size must be from 32 to 256 pixels, got {args.size}")
    out = args.output
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"{out} exists and is not a folder")
    check_free(out, DEMO_FILES + REPORT_FILES + LINESCAN_FILES, args.overwrite)
    names = dict.fromkeys(DEMO_FILES + LINESCAN_FILES + REPORT_FILES + PIXEL_REPORT_FILES)
    for name in names:  # --overwrite: only what hyperlum wrote
        outputs.check_replaceable(os.path.join(out, name), overwrite=args.overwrite)
    import sys
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = demo(
            out, size=args.size, seed=args.seed, device=args.device, overwrite=args.overwrite
        )
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"hyperlum demo: warning: {message}", file=sys.stderr)
    print(summary)
    return 0


def demo(outdir, *, size=112, seed=0, device="auto", overwrite=False):
    """Run the whole demo into ``outdir``; return the summary text."""
    import matplotlib

    matplotlib.use("Agg")
    import warnings

    import matplotlib.pyplot as plt

    import hyperlum as hl
    from hyperlum import data
    from hyperlum.demo import make_demo
    from hyperlum.io import outputs
    from hyperlum.viz.plot import plot_profile
    from hyperlum.viz.report import make_report

    warnings.filterwarnings("ignore", category=FutureWarning, module="rsciio")
    warnings.filterwarnings("ignore", category=FutureWarning, module="zarr")
    t0 = time.perf_counter()
    os.makedirs(outdir, exist_ok=True)
    n_particles = max(1, round(8 * (size / 112) ** 2))
    signal, image, truth = make_demo(
        (size, size), 512, n_particles=n_particles, n_touching=min(2, n_particles // 2), seed=seed
    )
    path = lambda name: os.path.join(outdir, name)  # noqa: E731
    signal.save(path("demo_cl.zspy"), overwrite=overwrite)
    outputs.mark(path("demo_cl.zspy"))
    image.save(path("demo_haadf.zspy"), overwrite=overwrite)
    outputs.mark(path("demo_haadf.zspy"))
    t_jit = time.perf_counter()  # compile (or load from numba's cache) on two pixels first
    x = signal.axes_manager.signal_axes[0].axis
    hl.fit(signal.data[:1, :2], axis=x, estimator="mle", device=device, progress=False)
    t_jit = time.perf_counter() - t_jit
    t_fit = time.perf_counter()
    res = hl.fit(signal, estimator="mle", device=device, progress=False)
    t_fit = time.perf_counter() - t_fit
    res.save(path("demo_maps.zspy"), overwrite=overwrite)
    rep = make_report(
        res, image, outdir, signal=signal, interface_width=truth["rim_width"], overwrite=overwrite
    )
    ious = _ious(rep.segmentation.labels, truth["labels"])

    scan = hl.load(data.path(LINESCAN))
    line = hl.fit(scan, device=device, progress=False)
    line.save(path("linescan_maps.zspy"), overwrite=overwrite)
    fig = plot_profile(line, scan)  # pixels with a detected peak (the fit's verdict)
    fig.suptitle("Real CL line scan of InGaAs nanowires (LumiSpy demo file)")
    fig.savefig(path("linescan.png"), dpi=150)
    plt.close(fig)
    outputs.record(path("linescan.png"))
    lc = line.state_counts()
    import numpy as np

    from hyperlum.analysis.stats import valid_mask

    ok = valid_mask(line, ("centre", "sigma"))
    centre = np.asarray(line.maps["centre"])[ok]
    sigma = np.asarray(line.maps["sigma"])[ok]

    states = res.state_counts()
    npx = signal.data.shape[0] * signal.data.shape[1]
    not_conv = ~np.asarray(res.maps["converged"], dtype=bool)
    in_matrix = int(np.sum(not_conv & (truth["labels"] == 0)))
    why = ", ".join(f"{v} {k}" for k, v in states.items() if k != "converged" and v)
    lines = [
        f"hyperlum demo: {size}x{size} pixels x {signal.data.shape[-1]} channels "
        f"(perovskite-like particles in glass, seed {seed}), fitted on "
        f"{res.options['device']} in {t_fit:.1f} s ({npx / t_fit:,.0f} pixels/s, after "
        f"{t_jit:.1f} s of compilation or cache loading): "
        f"{states['converged']} converged, {npx - states['converged']} not"
        + (f" ({why}; {in_matrix} of them in the matrix, which has no emission)" if why else "")
        + ".",
        f"Segmentation: {rep.segmentation.n} particles found ({truth['n_particles']} placed), "
        f"IoU with the truth: min {ious.min():.3f}, mean {ious.mean():.3f}.",
        "",
        rep.findings.strip(),
        "",
        f"Line scan {LINESCAN}: {lc['converged']} of {sum(lc.values())} pixels converged, "
        f"{int(ok.sum())} with a detected peak, "
        f"centre {np.min(centre):.1f} to {np.max(centre):.1f} nm, sigma "
        f"{np.min(sigma):.1f} to {np.max(sigma):.1f} nm.",
        "",
        f"Files in {os.path.abspath(outdir)}:",
        "  demo_cl.zspy, demo_haadf.zspy  the demo spectrum image and HAADF image",
        "  demo_maps.zspy                  fitted maps (hyperlum.load_result)",
        "  maps.png, spectra.png, histograms.png, hist2d.png  figures",
        "  regions.csv, tests.csv, particles.csv, findings.txt  tables and findings",
        "  linescan_maps.zspy, linescan.png  the real line scan",
        f"Done in {time.perf_counter() - t0:.1f} s.",
    ]
    return "\n".join(lines)
