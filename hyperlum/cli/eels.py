"""``hyperlum eels``: ZLP alignment, power-law subtraction, edge maps, a profile and figures."""

import csv
from pathlib import Path

from hyperlum.cli import UsageError, finite_float

OUTPUTS = ("eels_maps.hspy", "profile.csv", "edge_map.png", "profile.png", "spectra.png")


def register(subparsers):
    p = subparsers.add_parser(
        "eels",
        help="EELS edge maps: power-law background per pixel, edge intensity, profile",
        description=(
            "Align the zero-loss peak (with --low-loss), fit and subtract a power law per "
            "pixel in --fit-range, integrate the edge in --edge, normalise by the total "
            "core-loss intensity, and write the maps, a line profile and figures to OUT."
        ),
    )
    p.add_argument("input", help="core-loss EELS spectrum image or line scan (any HyperSpy file)")
    p.add_argument("--low-loss", metavar="LL", help="low-loss file recorded with IN (DualEELS)")
    p.add_argument(
        "--fit-range",
        nargs=2,
        type=finite_float,
        required=True,
        metavar=("LO", "HI"),
        help="power-law window before the edge (eV)",
    )
    p.add_argument(
        "--edge",
        nargs=2,
        type=finite_float,
        required=True,
        metavar=("LO", "HI"),
        help="edge integration window (eV)",
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
        "--width", type=finite_float, help="width of the profile band (calibrated units)"
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in OUT")
    p.set_defaults(func=run)


def _load(path, what):
    if not Path(path).is_file():
        raise UsageError(f"{what} {path!r} is not a file")
    import warnings

    try:
        from hyperlum.io import load
    except ImportError:
        import hyperspy.api as hs

        load = hs.load
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = load(path)
    if isinstance(s, list) or getattr(s.axes_manager, "signal_dimension", 0) != 1:
        raise UsageError(f"{what} {path!r} does not hold one set of spectra (1 signal axis)")
    return s


def run(args):
    import numpy as np

    import hyperlum as hl
    from hyperlum.result import FitResult

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out} exists and is not a folder")
    clash = [n for n in OUTPUTS if (out / n).exists()]
    if clash and not args.overwrite:
        raise UsageError(f"{out / clash[0]} exists; pass --overwrite to replace it")
    core = _load(args.input, "IN")
    notes = []
    if args.low_loss:
        ll = _load(args.low_loss, "--low-loss")
        _, core = hl.eels.align_zlp(ll, core)
        notes.append(f"ZLP aligned (median shift {core.metadata.Signal.zlp_shift_median:.3f} eV)")
    sub, bg = hl.eels.subtract_powerlaw(core, fit_range=args.fit_range)
    edge = hl.eels.edge_intensity(sub, window=args.edge)
    total = hl.eels.edge_intensity(core, window=_full_range(core))
    ok = np.isfinite(total.data) & (total.data > 0)
    norm = np.where(ok, edge.data / np.where(ok, total.data, 1.0), np.nan)
    maps = dict(bg.maps)
    maps.update(edge=edge.data, total=total.data, edge_normalised=norm)
    opts = dict(bg.options, edge=list(args.edge), low_loss=args.low_loss or "")
    result = FitResult(maps, bg.nav_axes, opts, bg.signal_axis, bg.title)
    out.mkdir(parents=True, exist_ok=True)
    result.save(out / "eels_maps.hspy", overwrite=True)
    nav = core.data.shape[:-1]
    norm_sig = result["edge_normalised"]
    if len(nav) == 1:
        ax = core.axes_manager.navigation_axes[0]
        prof = hl.eels.line_profile(norm_sig, ax.axis[0], ax.axis[-1])
    elif len(nav) == 2:
        prof = hl.eels.line_profile(norm_sig, *_profile_line(core, args.profile), width=args.width)
    else:
        raise UsageError(f"IN must be a line scan or a map, it has {len(nav)} navigation axes")
    dist = prof.axes_manager[0].axis
    with open(out / "profile.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"distance ({prof.axes_manager[0].units})", "edge_normalised"])
        w.writerows(zip(dist.tolist(), prof.data.tolist(), strict=True))
    _figures(out, core, sub, bg, result, prof, args)
    counts = hl.eels.state_counts(bg)
    print(
        f"hyperlum eels: {int(np.prod(nav))} pixels, power law {counts['converged']} converged,"
        f" {counts['bad_input']} bad input; " + "; ".join(notes + [f"wrote {out}"])
    )
    return 0


def _full_range(s):
    e = s.axes_manager.signal_axes[0].axis
    return float(e.min()), float(e.max())


def _profile_line(core, line):
    xa, ya = core.axes_manager.navigation_axes[:2]
    if line is not None:
        return (line[0], line[1]), (line[2], line[3])
    ymid = ya.axis[ya.size // 2]
    return (xa.axis[0], ymid), (xa.axis[-1], ymid)


def _figures(out, core, sub, bg, result, prof, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    e = core.axes_manager.signal_axes[0].axis
    units = core.axes_manager.signal_axes[0].units or ""
    norm = result.maps["edge_normalised"]
    fig, ax = plt.subplots(figsize=(5, 4))
    if norm.ndim == 2:
        im = ax.imshow(norm, cmap="viridis")
        fig.colorbar(im, ax=ax, label="edge / total")
    else:
        ax.plot(norm, "o-")
        ax.set_xlabel("pixel")
        ax.set_ylabel("edge / total")
    ax.set_title(f"edge {args.edge[0]:g}-{args.edge[1]:g} {units}")
    fig.tight_layout()
    fig.savefig(out / "edge_map.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(prof.axes_manager[0].axis, prof.data, "o-")
    ax.set_xlabel(f"distance ({prof.axes_manager[0].units or 'px'})")
    ax.set_ylabel("edge / total")
    fig.tight_layout()
    fig.savefig(out / "profile.png", dpi=100)
    plt.close(fig)
    flat = core.data.reshape(-1, e.size)
    flat_sub = np.asarray(sub.data).reshape(-1, e.size)
    mean = np.nanmean(flat, axis=0)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(e, mean, label="mean spectrum")
    ax.plot(e, mean - np.nanmean(flat_sub, axis=0), label="mean power law")
    ax.plot(e, np.nanmean(flat_sub, axis=0), label="mean subtracted")
    for lo, hi, c in ((*args.fit_range, "0.85"), (*args.edge, "C3")):
        ax.axvspan(lo, hi, color=c, alpha=0.3)
    ax.set_xlabel(f"energy loss ({units})")
    ax.set_ylabel("counts")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "spectra.png", dpi=100)
    plt.close(fig)
