"""``hyperlum report MAPS -o DIR``: figures, tables and findings from fitted maps.

MAPS is a result file written by ``hyperlum fit`` (or ``FitResult.save``), a map or a line
scan. On a map the particles are found on the HAADF image given with ``--image`` (same scan),
else on the fitted intensity, and interface and core are compared over particles.
"""

from hyperlum.cli import finite_float


def register(subparsers):
    p = subparsers.add_parser(
        "report",
        help="figures (PNG), tables (CSV) and findings from fitted maps or line scans",
        description=(
            "Figures (PNG), tables (CSV) and findings from fitted maps or line scans, over the "
            "pixels with a detected peak. On a map, the particles are found on the HAADF image "
            "(--image), else on the fitted intensity, and interface and core are compared over "
            "particles (no claim with fewer than 5)."
        ),
    )
    p.add_argument("maps", metavar="MAPS", help="fitted maps (.zspy or .hspy)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the report")
    p.add_argument(
        "--image", metavar="HAADF", help="HAADF image of the same scan (any file HyperSpy reads)"
    )
    p.add_argument(
        "--spectra",
        metavar="FILE",
        help="the fitted spectrum image, to draw spectra with their fits (same scan)",
    )
    p.add_argument(
        "--all-converged",
        action="store_true",
        help="use every converged pixel, not only those where a peak was detected",
    )
    p.add_argument(
        "--interface-width",
        type=finite_float,
        default=None,
        metavar="W",
        help="interface (rim) thickness in the maps' units (default: 3 pixels)",
    )
    p.add_argument(
        "--shell-width",
        type=finite_float,
        default=None,
        metavar="W",
        help="shell (matrix band) thickness in the maps' units (default: 3 pixels)",
    )
    p.add_argument(
        "--min-snr",
        type=finite_float,
        default=3.0,
        metavar="S",
        help="keep pixels whose amplitude is at least S standard errors (default 3)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace report files in DIR")
    p.set_defaults(func=run)


def _load_signal(path, what):
    import os

    import hyperspy.api as hs

    if not os.path.exists(path):
        raise FileNotFoundError(f"no such {what} file: {path}")
    try:
        return hs.load(path)
    except Exception as err:
        raise ValueError(f"{path} could not be read as a {what} ({err})") from err


def run(args):
    """Run ``hyperlum report`` holding the writer lock of DIR (one writer at a time)."""
    from pathlib import Path

    from hyperlum.io import outputs

    out = Path(args.output)
    if not out.parent.exists():
        out.parent.mkdir(parents=True)
    with outputs.writer_lock(out):
        return _run(args)


def _run(args):
    import os

    from hyperlum.fitting.result import load_result
    from hyperlum.io import outputs
    from hyperlum.viz.report import PIXEL_REPORT_FILES, REPORT_FILES, make_report

    names = list(dict.fromkeys(REPORT_FILES + PIXEL_REPORT_FILES))
    outputs.check_not_input(
        [os.path.join(args.output, n) for n in REPORT_FILES],
        [args.maps, args.image, args.spectra],
        option="-o",
    )
    for n in names:  # --overwrite: only what hyperlum wrote
        outputs.check_replaceable(os.path.join(args.output, n), overwrite=args.overwrite)
    res = load_result(args.maps)
    image = _load_signal(args.image, "HAADF image") if args.image else None
    if image is not None and image.axes_manager.signal_dimension != 2:
        raise ValueError(f"{args.image} is not a 2D image: {image}")
    signal = None
    if args.spectra:
        import hyperlum as hl

        signal = hl.load(args.spectra)
    import sys
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = make_report(
            res,
            image,
            args.output,
            signal=signal,
            interface_width=args.interface_width,
            shell_width=args.shell_width,
            min_snr=args.min_snr,
            detected=not args.all_converged,
            overwrite=args.overwrite,
        )
    for w in caught:
        print(f"hyperlum report: warning: {w.message}", file=sys.stderr)
    print(rep.findings.strip())
    print(
        f"\nWrote {len(rep.paths)} files to {os.path.abspath(args.output)}: "
        + ", ".join(os.path.basename(p) for p in rep.paths)
    )
    return 0
