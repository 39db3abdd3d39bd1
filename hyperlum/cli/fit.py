"""``hyperlum fit IN -o OUT``: fit every pixel of a spectrum-image file, resumably.

The cube is read lazily and fitted chunk by chunk over its navigation axes; each finished
chunk is stored in ``OUT.partial/`` (see :mod:`hyperlum.fitting.resume`), so a run that is killed
continues where it stopped when the same command is run again. The maps are written to
``OUT`` (``.zspy`` or ``.hspy``) only when every chunk is done.
"""

import argparse
import contextlib
import functools
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from hyperlum.cli import UsageError, finite_float
from hyperlum.io import outputs
from hyperlum.io.cube import is_dask
from hyperlum.kernels.constants import BACKGROUNDS
from hyperlum.kernels.shapes import SHAPES

_RESULT_EXTENSIONS = (".zspy", ".hspy")
SCHEDULER_TIMEOUT = 10.0  # seconds for a scheduler address to answer as a dask scheduler


def register(subparsers):
    p = subparsers.add_parser(
        "fit",
        help="fit Gaussian peak(s) + background at every pixel of a file",
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
    p.add_argument(
        "--peaks",
        type=_peaks,
        default=1,
        metavar="N",
        help="Gaussians, 1 to 4, or auto: per pixel as many as the data support (1)",
    )
    p.add_argument(
        "--max-peaks", type=int, default=2, metavar="N", help="most Gaussians for --peaks auto (2)"
    )
    p.add_argument(
        "--no-despike",
        dest="despike",
        action="store_false",
        help="do not replace cosmic-ray spikes before fitting",
    )
    p.add_argument(
        "--resolution",
        type=finite_float,
        metavar="FWHM",
        help="instrument resolution (axis units) for the detection verdict (one channel)",
    )
    p.add_argument("--shape", choices=tuple(SHAPES), default="gaussian", help="peak shape")
    p.add_argument("--background", choices=tuple(BACKGROUNDS), default="constant")
    p.add_argument("--estimator", choices=("lse", "mle"), default="lse")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="fit on a dask.distributed cluster: a scheduler address, or local:N for N local "
        "worker processes (default: in this process)",
    )
    p.add_argument("--max-iterations", type=int, default=50, metavar="N")
    p.add_argument("--tolerance", type=finite_float, default=1e-7, metavar="T")
    p.add_argument(
        "--chunk-mb",
        type=finite_float,
        default=32.0,
        metavar="MB",
        help="size of a chunk, as float64 spectra (32)",
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
    raise argparse.ArgumentTypeError(f"give 1 to 4 or auto, not {value!r}")


def _check_output(out):
    if out.suffix.lower() not in _RESULT_EXTENSIONS:
        raise UsageError(f"the output must be a .zspy or .hspy file, got {str(out)!r}")
    parent = out.parent
    if not parent.exists():
        raise OSError(f"cannot write {out}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise OSError(f"cannot write {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OSError(f"cannot write {out}: the folder {parent} is not writable")


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


def _scheduler(value):
    if value is None:
        return None
    if value.startswith("local:"):
        n = value.split(":", 1)[1]
        if not n.isdigit() or not 1 <= int(n) <= 256:
            raise UsageError(f"--scheduler {value}: local:N needs N worker processes, 1 to 256")
        return ("local", int(n))
    if ":" not in value:
        raise UsageError(
            f"--scheduler {value}: give a scheduler address (tcp://host:8786) or local:N"
        )
    return ("address", value)


def _output_fingerprint(out):
    """The fingerprint stored in an existing result file, or None when it is not a result."""
    import hyperspy.api as hs

    from hyperlum.io.loader import quiet

    try:
        with quiet():
            sig = hs.load(str(out), lazy=True)
        return json.loads(sig.metadata.hyperlum.options).get("fingerprint")
    except Exception:
        return None


def _plan(args, cube):
    """Check the fit options against the cube; return (FitSpec, options as hl.fit has them)."""
    from hyperlum.fitting import _backend
    from hyperlum.fitting.fit import plan

    if args.device == "cuda":
        ok, reason = _backend.cuda_status()
        if not ok:
            raise UsageError(f"--device cuda was asked for, but {reason}")
    spec, options = plan(
        cube,
        peaks=args.peaks,
        shape=args.shape,
        background=args.background,
        estimator=args.estimator,
        device=args.device,
        max_iterations=args.max_iterations,
        tolerance=args.tolerance,
        signal_range=args.range,
        max_peaks=args.max_peaks,
        despike=args.despike,
        resolution=args.resolution,
        label=lambda name: "--" + name.replace("_", "-"),
    )
    return spec, options


def _cube(signal, rng):
    from hyperlum.io.cube import as_cube

    cube = as_cube(signal)
    channels = cube.channels(rng, name="--range")
    return cube.select(channels), channels


def _compute(a):
    if is_dask(a):
        return np.asarray(a.compute(scheduler="threads"))
    return np.asarray(a)


@functools.lru_cache(maxsize=4)
def _open_lazy(path, hints_json):
    from hyperlum.io.cube import as_cube
    from hyperlum.io.loader import load

    return as_cube(load(path, lazy=True, **json.loads(hints_json))).data


def fit_file_chunk(path, hints_json, channels, x, spec, nav):
    """Read one chunk of a file and fit it: what a dask.distributed worker runs."""
    from hyperlum.fitting.fit import fit_block

    data = _open_lazy(path, hints_json)
    block = _compute(data[(*nav, channels)])
    return fit_block(block, x, spec)


def _fit_here(store, todo, cube, spec, bar):
    from concurrent.futures import ThreadPoolExecutor

    from hyperlum.fitting.fit import fit_block
    from hyperlum.fitting.resume import block_slices

    def read(idx):
        return _compute(cube.data[block_slices(store.grid, idx)])

    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(read, todo[0]) if todo else None
        for k, idx in enumerate(todo):
            block = ahead.result()
            ahead = pool.submit(read, todo[k + 1]) if k + 1 < len(todo) else None
            store.write(idx, fit_block(block, cube.x, spec))
            del block
            bar.update(store.pixels(idx))


def _probe_scheduler(address, *, timeout):
    """Raise OSError unless ``address`` answers as a dask scheduler within ``timeout`` s.

    ``Client`` alone may wait for ever on a port that accepts and says nothing.
    """
    import asyncio

    from distributed.comm import connect

    async def identity():
        comm = await connect(address, timeout=2 * timeout)  # the wait_for below decides
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    try:
        reply = asyncio.run(asyncio.wait_for(identity(), timeout))
    except asyncio.TimeoutError:
        raise OSError(
            f"the dask scheduler {address} does not answer within {timeout:g} s"
        ) from None
    except OSError as err:  # refused, unreachable, reset
        raise OSError(f"cannot reach the dask scheduler {address}: {err}") from None
    except Exception as err:  # garbage where a dask message should be
        reply = type(err).__name__
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise OSError(f"{address} does not answer as a dask scheduler")


def _fit_distributed(store, todo, sched, path, hints, channels, cube, spec, bar):
    from dask.distributed import Client, LocalCluster, as_completed

    from hyperlum.fitting.resume import block_slices

    kind, value = sched
    cluster = None
    try:
        if kind == "local":
            cluster = LocalCluster(
                n_workers=value, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)
        else:
            client = Client(value, timeout=f"{SCHEDULER_TIMEOUT}s")
    except Exception as err:
        if cluster is not None:
            cluster.close()
        raise OSError(f"cannot reach the dask scheduler {value}: {err}") from None
    if kind == "local":  # N single-task workers share the CPUs of this machine
        spec = spec._replace(threads=max(1, len(os.sched_getaffinity(0)) // value))
    try:
        hints_json = json.dumps(hints, sort_keys=True)
        futures = {
            client.submit(
                fit_file_chunk,
                path,
                hints_json,
                channels,
                cube.x,
                spec,
                block_slices(store.grid, idx),
                pure=False,
            ): idx
            for idx in todo
        }
        for fut in as_completed(futures):
            idx = futures[fut]
            store.write(idx, fut.result())
            fut.release()
            bar.update(store.pixels(idx))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run(args):
    """Run ``hyperlum fit``; notices are held back so that an error is the only stderr line."""
    notes = io.StringIO()
    with contextlib.ExitStack() as held:
        rc = _run(args, held, notes)
    sys.stderr.write(notes.getvalue())
    return rc


def _run(args, held, notes):
    from tqdm.auto import tqdm

    from hyperlum.fitting import resume
    from hyperlum.fitting.result import FitResult
    from hyperlum.io.loader import load, quiet

    t_start = time.perf_counter()
    out = Path(args.output)
    _check_output(out)
    sched = _scheduler(args.scheduler)
    if not args.chunk_mb > 0:
        raise UsageError(f"--chunk-mb must be a positive number, got {args.chunk_mb:g}")
    hints = _hints(args)
    if "axis" in hints:
        hints["axis"] = str(Path(hints["axis"]).resolve())
    src = Path(args.input)
    outputs.check_not_input([out, resume.partial_path(out)], [src, hints.get("axis")], option="-o")
    signal = load(src, lazy=True, **hints)
    cube, channels = _cube(signal, args.range)
    with contextlib.redirect_stderr(notes):  # the device notice waits for the fit to succeed
        spec, options = _plan(args, cube)
    if sched is not None and sched[0] == "address":  # before anything is written
        _probe_scheduler(sched[1], timeout=SCHEDULER_TIMEOUT)
    held.enter_context(outputs.writer_lock(out))
    for p in resume.leftovers(out):  # of killed runs: this run holds the lock
        outputs.remove(p)

    hint_id = dict(hints)
    if "axis" in hint_id:
        hint_id["axis"] = resume.input_identity(hint_id["axis"])
    fit_id = {
        "input": resume.input_identity(src),
        "reader": hint_id,
        "options": options,
        "saturation": spec.saturation,
        "shape": list(cube.data.shape),
        "dtype": str(cube.data.dtype),
    }
    fp = resume.fingerprint(fit_id)

    if out.exists():
        old = _output_fingerprint(out)
        if old == fp and not args.overwrite:
            store = _open_store(out, io.StringIO())  # a damaged one goes without a word
            if store is not None and store.manifest.get("fingerprint") == fp:
                store.remove()  # left behind by a run killed just after it wrote OUT
            print(f"hyperlum fit: {out} is already complete for this input and these options")
            return 0
        if not args.overwrite:
            what = "the fit of another input or other options" if old else "no hyperlum fit"
            raise UsageError(f"{out} exists and holds {what}; pass --overwrite to replace it")
        outputs.check_replaceable(out, overwrite=True)

    store = _open_store(out, notes)
    if store is not None and store.manifest.get("fingerprint") != fp:
        if not args.overwrite:
            raise UsageError(
                f"{store.root} holds an interrupted fit of another input or other options; "
                "finish it with its own command, or pass --overwrite to discard it"
            )
        store.remove()
        store = None
    resumed = store is not None
    if store is None:
        grid = resume.chunk_grid(
            cube.nav_shape,
            cube.x.size,
            chunk_bytes=args.chunk_mb * 2**20,
            stored_chunks=_stored_chunks(cube.data),
        )
        command = {k: v for k, v in vars(args).items() if k != "func"}
        manifest = {"fingerprint": fp, "fit": fit_id, "command": command}
        try:
            store = resume.PartialStore.create(out, manifest, grid, spec.n_outputs)
        except OSError as err:
            raise OSError(f"cannot write {out}: {err.strerror or err}") from None

    damaged = len(store.verify()) if resumed else 0  # reused chunks must match their checksum
    todo = store.missing()
    npix = int(np.prod(cube.nav_shape, dtype=np.int64))
    done_before = store.done_pixels()
    if resumed:
        refit = f" ({damaged} damaged, fitted again)" if damaged else ""
        notes.write(
            f"hyperlum fit: resumed {out}: {store.n_chunks() - len(todo)} of "
            f"{store.n_chunks()} chunks were already done{refit}\n"
        )
    t_fit = time.perf_counter()
    with tqdm(
        total=npix,
        initial=done_before,
        unit="px",
        desc="fit",
        file=sys.stderr,
        disable=args.quiet,
        dynamic_ncols=True,
    ) as bar:
        for _ in range(3):  # the output is made of verified chunks only
            if sched is None:
                _fit_here(store, todo, cube, spec, bar)
            else:
                _fit_distributed(
                    store, todo, sched, str(src.resolve()), hints, channels, cube, spec, bar
                )
            stacked, todo = store.stacked()
            if not todo:
                break
            damaged += len(todo)
            bar.update(-sum(store.pixels(i) for i in todo))
        else:
            raise OSError(f"cannot write {store.root}: chunks read back differ from those written")
    t_fit = time.perf_counter() - t_fit

    saved_options = dict(options, input=str(src.resolve()), fingerprint=fp)
    result = FitResult.from_stacked(stacked, spec.peaks, spec.background, cube, saved_options)
    with quiet():
        result.save(out, overwrite=True)  # under a temporary name, then renamed into place
    store.remove()

    converged = int(np.sum(result.maps["converged"]))
    detected = int(np.sum(result.maps["detected"]))
    spikes = int(np.sum(result.maps["spikes"]))
    fitted = npix - done_before
    rate = fitted / t_fit if t_fit > 0 else float("nan")
    share = 100.0 * converged / npix if npix else 0.0
    found = 100.0 * detected / npix if npix else 0.0
    resumed_txt = f" ({done_before} resumed)" if done_before else ""
    if damaged:
        resumed_txt += f" ({damaged} damaged chunks fitted again)"
    print(
        f"hyperlum fit: {npix} pixels{resumed_txt}, {share:.1f}% converged, "
        f"{found:.1f}% with a detected peak, {spikes} spike channels replaced; "
        f"{fitted} fitted in {t_fit:.1f} s ({rate:,.0f} pixels/s), "
        f"{time.perf_counter() - t_start:.1f} s in all; maps written to {out}"
    )
    return 0


def _open_store(out, notes):
    """The partial store of ``out``; a damaged one (ours, by its files) is removed: None."""
    from hyperlum.fitting import resume

    try:
        return resume.PartialStore.open(out)
    except resume.DamagedStore as err:
        notes.write(f"hyperlum fit: {err}; it was removed and the fit starts anew\n")
        outputs.remove(resume.partial_path(out))
        return None


def _stored_chunks(data):
    chunks = getattr(data, "chunks", None)
    if chunks is None or not is_dask(data):
        return None
    return tuple(c[0] if c else None for c in chunks[:-1])
