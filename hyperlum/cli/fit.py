"""``hyperlum fit IN -o OUT``: fit every pixel of a spectrum-image file, resumably.

The cube is read lazily and fitted chunk by chunk over its navigation axes; each finished
chunk is stored in ``OUT.partial/`` (see :mod:`hyperlum.fitting.resume`), so a run that is killed
continues where it stopped when the same command is run again. The maps are written to
``OUT`` (``.zspy`` or ``.hspy``) only when every chunk is done. The work is done by the
library's engine (:func:`hyperlum.fitting.engine.fit_to_file`, what ``hl.fit(..., out=OUT)``
runs); this module parses the command line and prints.
"""

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

from hyperlum.cli import UsageError, finite_float
from hyperlum.fitting.options import CHOICES, DEFAULTS, LIMITS

SCHEDULER_TIMEOUT = DEFAULTS.scheduler_timeout  # seconds for a scheduler address to answer
MIB = 2**20


def register(subparsers):
    p = subparsers.add_parser(
        "fit",
        help="fit peak(s) + background at every pixel of a file",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
    )
    p.add_argument("input", metavar="IN", help="spectrum image: .dm3/.dm4, .sur, .h5, .hspy, ...")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="maps file, .zspy or .hspy")
    p.add_argument(
        "--range",
        nargs=2,
        type=finite_float,
        metavar=("LO", "HI"),
        help="fit only this part of the axis",
    )
    lo, hi = LIMITS["peaks"]
    p.add_argument(
        "--peaks",
        type=_peaks,
        default=DEFAULTS.peaks,
        metavar="N",
        help=f"peaks, {lo} to {hi}, or auto: per pixel as many as the data support "
        f"({DEFAULTS.peaks})",
    )
    p.add_argument(
        "--max-peaks",
        type=int,
        default=DEFAULTS.max_peaks,
        metavar="N",
        help=f"most peaks for --peaks auto ({DEFAULTS.max_peaks})",
    )
    p.add_argument(
        "--no-despike",
        dest="despike",
        action="store_false",
        default=DEFAULTS.despike,
        help="do not replace cosmic-ray spikes before fitting",
    )
    p.add_argument(
        "--counts",
        action=argparse.BooleanOptionalAction,
        default=DEFAULTS.counts,
        help="take the spectra as counts for the spike filter's Poisson noise floor, or not "
        "(--no-counts: e.g. counts on a camera offset); default: per spectrum, counts when "
        "its values are whole numbers of at least 0",
    )
    p.add_argument(
        "--resolution",
        type=finite_float,
        metavar="FWHM",
        help="instrument resolution (axis units) for the detection verdict (one channel)",
    )
    for name, what in (
        ("shape", "peak shape"),
        ("background", "background under the peaks"),
        ("estimator", "least squares or Poisson maximum likelihood"),
        ("device", "where to fit"),
    ):
        default = getattr(DEFAULTS, name)
        p.add_argument(
            f"--{name}", choices=CHOICES[name], default=default, help=f"{what} ({default})"
        )
    p.add_argument(
        "--precision",
        choices=CHOICES["precision"],
        default=DEFAULTS.precision,
        help="working precision of the fit kernels (float32 on a GPU, float64 on the CPU)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="fit on a dask.distributed cluster: a scheduler address, or local:N for N local "
        "worker processes; synchronous: one chunk at a time in this thread (default: in this "
        "process, chunks side by side)",
    )
    p.add_argument(
        "--max-iterations",
        type=int,
        default=DEFAULTS.max_iterations,
        metavar="N",
        help=f"Levenberg-Marquardt iterations at most per pixel ({DEFAULTS.max_iterations})",
    )
    p.add_argument(
        "--tolerance",
        type=finite_float,
        default=DEFAULTS.tolerance,
        metavar="T",
        help=f"convergence: relative decrease of the objective or step ({DEFAULTS.tolerance:g})",
    )
    p.add_argument(
        "--chunk-mb",
        type=finite_float,
        metavar="MB",
        help=f"size of a chunk, as float64 spectra ({DEFAULTS.chunk_bytes / MIB:g} on the CPU, "
        f"{DEFAULTS.gpu_chunk_bytes / MIB:g} on a GPU)",
    )
    p.add_argument("--format", metavar="READER", help="RosettaSciIO reader, e.g. Delmic")
    p.add_argument("--axis", metavar="FILE", help="channel positions of a .npy input")
    p.add_argument("--axis-units", metavar="U", help="units of --axis (nm, eV, ...)")
    p.add_argument("--signal-type", metavar="T", help="signal type of a .npy input (CL, EELS)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace OUT / discard another fit's partial store"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _peaks(value):
    if value == "auto" or value.isdigit():
        return value if value == "auto" else int(value)
    lo, hi = LIMITS["peaks"]
    raise argparse.ArgumentTypeError(f"give {lo} to {hi} or auto, not {value!r}")


def _hints(args):
    hints = {}
    if args.format:
        hints["file_format"] = args.format
    if args.axis:
        hints["axis"] = args.axis
    if args.axis_units:
        hints["axis_units"] = args.axis_units
    if args.signal_type:
        hints["signal_type"] = args.signal_type
    return hints


def _plan(args, cube):
    """Check the fit options against the cube; return (FitSpec, options as hl.fit has them)."""
    from hyperlum.fitting import _backend
    from hyperlum.fitting.fit import plan

    if args.counts is not None and not args.despike:
        flag = "--counts" if args.counts else "--no-counts"
        raise UsageError(
            f"{flag} sets the spike filter's noise floor, --no-despike turns the "
            "filter off: give one or the other"
        )
    if args.device == "cuda":
        ok, reason = _backend.cuda_status()
        if not ok:
            raise UsageError(f"--device cuda was asked for, but {reason}")
    return plan(
        cube,
        peaks=args.peaks,
        shape=args.shape,
        background=args.background,
        estimator=args.estimator,
        precision=args.precision,
        device=args.device,
        max_iterations=args.max_iterations,
        tolerance=args.tolerance,
        signal_range=args.range,
        max_peaks=args.max_peaks,
        despike=args.despike,
        counts=args.counts,
        resolution=args.resolution,
        label=lambda name: "--" + name.replace("_", "-"),
    )


def run(args):
    """Run ``hyperlum fit``; notices are held back so that an error is the only stderr line."""
    notes = io.StringIO()
    rc = _run(args, notes)
    sys.stderr.write(notes.getvalue())
    return rc


def _run(args, notes):
    from hyperlum.fitting import engine, resume
    from hyperlum.fitting.fit import fit_block
    from hyperlum.io import outputs
    from hyperlum.io.cube import as_cube
    from hyperlum.io.loader import load

    t_start = time.perf_counter()
    out = Path(args.output)
    engine.check_output(out)
    sched = engine.parse_scheduler(args.scheduler, label=f"--scheduler {args.scheduler}")
    if args.chunk_mb is not None and not args.chunk_mb > 0:
        raise UsageError(f"--chunk-mb must be a positive number, got {args.chunk_mb:g}")
    hints = _hints(args)
    if "axis" in hints:
        hints["axis"] = str(Path(hints["axis"]).resolve())
    src = Path(args.input)
    outputs.check_not_input([out, resume.partial_path(out)], [src, hints.get("axis")], option="-o")
    signal = load(src, lazy=True, **hints)
    full = as_cube(signal)
    channels = full.channels(args.range, name="--range")
    cube = full.select(channels)
    with contextlib.redirect_stderr(notes):  # the device notice waits for the fit to succeed
        spec, options = _plan(args, cube)

    identity = engine.data_identity(signal, src)
    if hints:  # what a reader hint names counts too: a changed axis file is another fit
        identity["reader"] = dict(hints)
        if "axis" in hints:
            identity["reader"]["axis"] = resume.input_identity(hints["axis"])
    done = engine.fit_to_file(
        cube,
        spec,
        options,
        out,
        kernel=fit_block,
        identity=identity,
        source=engine.Source(str(src), hints, channels),
        overwrite=args.overwrite,
        chunk_bytes=None if args.chunk_mb is None else args.chunk_mb * MIB,
        progress=not args.quiet,
        scheduler=sched,
        timeout=SCHEDULER_TIMEOUT,
        note=lambda text: notes.write(f"hyperlum fit: {text}\n"),
        switch="--overwrite",
        manifest={"command": {k: v for k, v in vars(args).items() if k != "func"}},
    )
    if done.complete:
        print(f"hyperlum fit: {out} is already complete for this input and these options")
        return 0
    maps, npix = done.result.maps, done.pixels
    converged = int(maps["converged"].sum())
    detected = int(maps["detected"].sum())
    spikes = int(maps["spikes"].sum())
    rate = done.fitted / done.seconds if done.seconds > 0 else float("nan")
    share = 100.0 * converged / npix if npix else 0.0
    found = 100.0 * detected / npix if npix else 0.0
    resumed_txt = f" ({done.resumed} resumed)" if done.resumed else ""
    if done.damaged:
        resumed_txt += f" ({done.damaged} damaged chunks fitted again)"
    print(
        f"hyperlum fit: {npix} pixels{resumed_txt}, {share:.1f}% converged, "
        f"{found:.1f}% with a detected peak, {spikes} spike channels replaced; "
        f"{done.fitted} fitted in {done.seconds:.1f} s ({rate:,.0f} pixels/s), "
        f"{time.perf_counter() - t_start:.1f} s in all; maps written to {out}"
    )
    return 0
