"""``hyperlum eels``: ZLP alignment, power-law subtraction, edge maps, a profile and figures."""

import csv
from pathlib import Path

from hyperlum.cli import UsageError, finite_float
from hyperlum.io import outputs

OUTPUTS = ("eels_maps.hspy", "profile.csv", "edge_map.png", "profile.png", "spectra.png")


def register(subparsers):
    p = subparsers.add_parser(
        "eels",
        help="EELS edge maps: power-law background per pixel, edge intensity, profile",
        description=(
            "Align the zero-loss peak (with --low-loss), fit and subtract a power law per "
            "pixel in --fit-range, integrate the edge in --edge, normalise by the total "
            "core-loss intensity, and write the maps, a line profile and figures to OUT. "
            "Several edges: repeat --edge (and --fit-range once per edge, in the same order, "
            "when each edge needs its own pre-edge window)."
        ),
    )
    p.add_argument("input", help="core-loss EELS spectrum image or line scan (any HyperSpy file)")
    p.add_argument("--low-loss", metavar="LL", help="low-loss file recorded with IN (DualEELS)")
    p.add_argument(
        "--fit-range",
        nargs=2,
        type=finite_float,
        required=True,
        action="append",
        metavar=("LO", "HI"),
        help="power-law window before the edge (eV); once for all edges, or once per --edge",
    )
    p.add_argument(
        "--edge",
        nargs=2,
        type=finite_float,
        required=True,
        action="append",
        metavar=("LO", "HI"),
        help="edge integration window (eV); repeat for several edges, one map and profile each",
    )
    p.add_argument(
        "--profile",
        nargs=4,
        type=finite_float,
        metavar=("X0", "Y0", "X1", "Y1"),
        help="line of the profile on a 2-D map, calibrated units "
        "(default: the middle row, left to right)",
    )
    p.add_argument(
        "--width",
        type=_width,
        help="width of the profile band on a 2-D map (calibrated units, > 0; default 1 pixel)",
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the power laws are fitted and subtracted (default: auto, the GPU when one "
        "is usable)",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in OUT")
    p.set_defaults(func=run)


def _width(text):
    """``--width``: a finite number above zero (argparse reports the message)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _load(path, what):
    if not Path(path).is_file():
        raise UsageError(f"{what} {path!r} is not a file")
    import warnings

    try:
        from hyperlum.io.loader import load
    except ImportError:
        import hyperspy.api as hs

        load = hs.load
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = load(path)
    if isinstance(s, list) or getattr(s.axes_manager, "signal_dimension", 0) != 1:
        raise UsageError(f"{what} {path!r} does not hold one set of spectra (1 signal axis)")
    return s


def _edge_name(edge):
    """Name of an edge's map: ``edge_636_670`` for ``--edge 636 670``."""
    return "edge_" + "_".join(f"{v:g}".replace(".", "p").replace("-", "m") for v in edge)


def run(args):
    """Run ``hyperlum eels`` holding the writer lock of OUT (one writer at a time)."""
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out} exists and is not a folder")
    if not out.parent.exists():
        out.parent.mkdir(parents=True)
    with outputs.writer_lock(out):
        return _run(args, out)


def _run(args, out):
    import numpy as np

    import hyperlum as hl
    from hyperlum._validate import value_range
    from hyperlum.fitting.result import FitResult
    from hyperlum.io.result_files import is_result

    outputs.check_not_input([out / n for n in OUTPUTS], [args.input, args.low_loss], option="-o")
    for n in OUTPUTS:  # --overwrite: only what hyperlum wrote
        known = n.endswith(".hspy") and (out / n).is_file() and is_result(out / n)
        outputs.check_replaceable(out / n, overwrite=args.overwrite, known=known)
    core = _load(args.input, "IN")
    nav = core.data.shape[:-1]
    if len(nav) not in (1, 2):
        raise UsageError(f"IN must be a line scan or a map, it has {len(nav)} navigation axes")
    if len(nav) == 1 and (args.width is not None or args.profile is not None):
        raise UsageError("--width and --profile apply to 2-D maps; IN is a line scan")
    sax = core.axes_manager.signal_axes[0]
    edges = [tuple(edge) for edge in args.edge]
    for edge in edges:
        value_range("--edge", edge, sax.axis, sax.units)
    if len(set(map(_edge_name, edges))) < len(edges):
        raise UsageError("--edge is given twice with the same window")
    ranges = [tuple(r) for r in args.fit_range]
    if len(ranges) not in (1, len(edges)):
        raise UsageError(
            f"--fit-range is given {len(ranges)} times for {len(edges)} --edge windows: "
            "give it once, or once per --edge"
        )
    pairs = list(zip(ranges * len(edges) if len(ranges) == 1 else ranges, edges, strict=True))
    for (lo, hi), edge in pairs:
        if edge[0] < hi:
            raise UsageError(
                f"--edge {edge[0]:g} {edge[1]:g} starts before the end of its --fit-range "
                f"{lo:g} {hi:g}: the power law is fitted before the edge"
            )
    device = _device(args.device)
    notes = []
    if args.low_loss:
        ll = _load(args.low_loss, "--low-loss")
        _, core = hl.eels.align_zlp(ll, core)
        meta = core.metadata.Signal
        note = f"ZLP aligned (median shift {meta.zlp_shift_median:.3f} eV"
        if meta.zlp_unaligned_pixels:
            note += f"; {meta.zlp_unaligned_pixels} pixels with a bad ZLP only recalibrated"
        notes.append(note + ")")
    fits = {}  # fit range -> (subtracted, power-law maps), each range fitted once
    for fit_range in dict.fromkeys(ranges):
        fits[fit_range] = hl.eels.subtract_powerlaw(core, fit_range=fit_range, device=device)
    total = hl.eels.edge_intensity(core, window=_full_range(core))
    ok = np.isfinite(total.data) & (total.data > 0)
    maps = {}
    for fit_range, (_, bg) in fits.items():
        prefix = "" if len(fits) == 1 else _edge_name(fit_range).replace("edge", "bg", 1) + "_"
        maps.update({prefix + k: v for k, v in bg.maps.items()})
        notes.append(_fit_sentence(fit_range, bg, device))
    maps["total"] = total.data
    names = []
    for fit_range, edge in pairs:
        name = _edge_name(edge)
        names.append(name)
        m = hl.eels.edge_intensity(fits[fit_range][0], window=edge).data
        maps[name] = m
        maps[f"{name}_normalised"] = np.where(ok, m / np.where(ok, total.data, 1.0), np.nan)
        notes.append(f"{name}: {int(np.isfinite(maps[name]).sum())} pixels with a value")
    bg = fits[ranges[0]][1]
    opts = dict(
        bg.options,
        fit_range=[list(r) for r, _ in pairs],
        edges=[list(e) for e in edges],
        low_loss=args.low_loss or "",
    )
    result = FitResult(maps, bg.nav_axes, opts, bg.signal_axis, bg.title)
    if len(nav) == 1:
        ax = core.axes_manager.navigation_axes[0]
        line = (ax.axis[0], ax.axis[-1])
        profiles = [hl.eels.line_profile(result[f"{n}_normalised"], *line) for n in names]
        line = None
    else:
        line = _profile_line(core, args.profile)
        try:
            profiles = [
                hl.eels.line_profile(result[f"{n}_normalised"], *line, width=args.width)
                for n in names
            ]
        except ValueError as err:
            raise UsageError(f"--profile: {err}") from None
    out.mkdir(parents=True, exist_ok=True)
    result.save(out / "eels_maps.hspy", overwrite=True)
    dist = profiles[0].axes_manager[0].axis
    with open(out / "profile.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [f"distance ({profiles[0].axes_manager[0].units})"] + [f"{n}_normalised" for n in names]
        )
        w.writerows(zip(dist.tolist(), *(p.data.tolist() for p in profiles), strict=True))
    outputs.record(out / "profile.csv")
    _figures(out, core, fits, pairs, result, names, profiles, line, args)
    print(f"hyperlum eels: {int(np.prod(nav))} pixels; " + "; ".join(notes + [f"wrote {out}"]))
    return 0


def _device(device):
    """The device of ``--device``, resolved without a notice (the summary names it): the GPU
    for ``auto`` when one is usable; for ``cuda`` without one, a usage error saying why."""
    from hyperlum.fitting import _backend

    if device == "cpu":
        return "cpu"
    ok, reason = _backend.cuda_status()
    if device == "cuda" and not ok:
        raise UsageError(f"--device cuda was asked for, but {reason}")
    return "cuda" if ok else "cpu"


_NAMES = {"cpu": "CPU", "cuda": "GPU"}


def _fit_sentence(fit_range, bg, device):
    """``power law 600-635 on the CPU: 10 converged, 0 bad input (0 with a saturated channel,
    ...)``."""
    import numpy as np

    import hyperlum as hl

    counts = hl.eels.state_counts(bg)
    flags = [
        f"{int(np.sum(np.asarray(bg.maps[k]) > 0))} with a {what} channel"
        for k, what in (("saturated", "saturated"), ("nonfinite", "NaN or inf"))
    ]
    return (
        f"power law {fit_range[0]:g}-{fit_range[1]:g} on the {_NAMES[device]}: "
        f"{counts['converged']} converged, "
        f"{counts['bad_input']} bad input ({', '.join(flags)})"
    )


def _full_range(s):
    e = s.axes_manager.signal_axes[0].axis
    return float(e.min()), float(e.max())


def _profile_line(core, line):
    xa, ya = core.axes_manager.navigation_axes[:2]
    if line is not None:
        return (line[0], line[1]), (line[2], line[3])
    ymid = ya.axis[ya.size // 2]
    return (xa.axis[0], ymid), (xa.axis[-1], ymid)


def _figures(out, core, fits, pairs, result, names, profiles, line, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hyperlum.viz.eels_plot import plot_edge_maps, plot_mean_spectra, plot_profiles

    units = core.axes_manager.signal_axes[0].units or ""
    labels = [f"edge {e[0]:g}-{e[1]:g} {units}".strip() for _, e in pairs]
    spectra, axes = plt.subplots(
        len(fits), 1, figsize=(7, 4.2 * len(fits)), layout="constrained", squeeze=False
    )
    for ax, (fit_range, (sub, bg)) in zip(axes[:, 0], fits.items(), strict=True):
        edges = [e for r, e in pairs if r == fit_range]
        plot_mean_spectra(core, sub, bg, fit_range=fit_range, edges=edges, ax=ax)
    figures = {
        "edge_map.png": plot_edge_maps(
            [result.maps[f"{n}_normalised"] for n in names],
            result.nav_axes,
            labels=labels,
            line=line,
            width=args.width,
        ),
        "profile.png": plot_profiles(profiles, labels=labels),
        "spectra.png": spectra,
    }
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        outputs.record(out / name)
