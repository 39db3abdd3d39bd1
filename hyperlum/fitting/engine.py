"""One execution engine for ``hl.fit`` and ``hyperlum fit``: chunk plan, prefetching runner,
and the resumable output behind ``hl.fit(..., out="maps.zspy")``.

- **Plan** (:func:`chunk_plan`): the navigation axes are cut into chunks of about
  ``chunk_bytes`` of float64 spectra (32 MiB on the CPU, 1 GiB on a GPU, which needs many
  pixels at once), made of whole chunks of the file's storage (zarr, ``.zspy``, HDF5), or of
  equal parts of one, so that no stored chunk is cut across two reads
  (:func:`hyperlum.fitting.resume.chunk_grid`).
- **Run** (:func:`run_chunks`): one thread reads ahead, a whole stored chunk at a time, while
  the fit runs; with at least as many chunks as CPUs the chunks are fitted side by side, one
  CPU each (the spike filter and the detection verdict then run in parallel too), else one at
  a time on every CPU. Results are handed back in order.
  :func:`fit_chunks` runs them so, or one at a time in the calling thread, or on a
  dask.distributed cluster (:mod:`hyperlum.fitting.cluster`): the ``scheduler`` of ``hl.fit``
  and ``hyperlum fit`` (:func:`parse_scheduler`).
- **Output** (:func:`fit_to_file`): each finished chunk goes to the checksummed partial store
  ``OUT.partial`` (:mod:`hyperlum.fitting.resume`) under a writer lock; a run killed at any
  point and started again fits only what is missing; the maps are written under a temporary
  name and renamed to ``OUT`` when complete.

Examples
--------
>>> import numpy as np, os, tempfile
>>> import hyperlum as hl
>>> x = np.linspace(650.0, 770.0, 120)
>>> cube = 100 * np.exp(-0.5 * ((x - np.array([[700.0], [710.0]])) / 8.0) ** 2) + 5
>>> out = os.path.join(tempfile.mkdtemp(), "maps.zspy")
>>> res = hl.fit(cube, axis=x, device="cpu", out=out)
>>> np.round(hl.load_result(out).maps["centre"], 3)
array([700., 710.])
"""

import collections
import functools
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hyperlum.fitting import resume
from hyperlum.fitting.options import DEFAULTS
from hyperlum.io import outputs
from hyperlum.io.cube import as_numpy, is_dask, is_signal

#: Most bytes (as stored, e.g. uint16) one read may bring into memory: a stored chunk up to
#: this is read once, whole, for all the chunks cut from it; a larger one is read part by part
#: (each read decompresses it again, but the memory stays bounded).
READ_BYTES = 256 * 2**20
#: Output file types.
RESULT_EXTENSIONS = (".zspy", ".hspy")


# -- the plan --------------------------------------------------------------------------------
def default_chunk_bytes(device):
    """Bytes of float64 spectra per chunk: 32 MiB on the CPU, 1 GiB on ``"cuda"``."""
    return DEFAULTS.gpu_chunk_bytes if device == "cuda" else DEFAULTS.chunk_bytes


def stored_chunks(data):
    """The first chunk size of each navigation axis of a dask array (its stored chunks, for an
    array read from a chunked file), or None for an array held in memory.

    Examples
    --------
    >>> import dask.array as da
    >>> stored_chunks(da.zeros((10, 6, 4), chunks=(4, 6, 4)))
    (4, 6)
    >>> stored_chunks(np.zeros((10, 6, 4))) is None
    True
    """
    if not is_dask(data):
        return None
    return tuple(c[0] if c else None for c in data.chunks[:-1])


def chunk_plan(nav_shape, n_channels, *, device="cpu", chunk_bytes=None, stored=None):
    """The chunk grid of a fit (dask's ``chunks`` form over the navigation axes).

    Parameters
    ----------
    nav_shape : tuple of int
        Navigation shape of the cube.
    n_channels : int
        Channels fitted.
    device : {"cpu", "cuda"}
        Sets the default size.
    chunk_bytes : float, optional
        Bytes of float64 spectra per chunk (default :func:`default_chunk_bytes`).
    stored : tuple of int, optional
        The stored chunks of the input (:func:`stored_chunks`): chunks are aligned to them.

    Examples
    --------
    >>> chunk_plan((256, 256), 1024, stored=(220, 220))[0][:3]
    (11, 11, 11)
    >>> chunk_plan((256, 256), 1024, device="cuda")[0]
    (256,)
    """
    if chunk_bytes is None:
        chunk_bytes = default_chunk_bytes(device)
    return resume.chunk_grid(nav_shape, n_channels, chunk_bytes=chunk_bytes, stored_chunks=stored)


def _read_span(grid, idx, stored, nav_shape):
    """The slices of chunk ``idx`` widened to whole stored chunks: what one read covers."""
    span = []
    for sl, s, n in zip(resume.block_slices(grid, idx), stored, nav_shape, strict=True):
        if s and s < n:
            lo, hi = sl.start - sl.start % s, min(n, -(-sl.stop // s) * s)
            span.append(slice(lo, hi))
        else:
            span.append(sl)
    return tuple(span)


def read_groups(grid, todo, stored, nav_shape, *, max_pixels=None):
    """Group the chunks ``todo`` by the stored chunks they lie in, keeping their order.

    Returns a list of ``(span, [idx, ...])``: each span is read once and every chunk in it
    fitted from that read. Without stored chunks, or where a span would hold more than
    ``max_pixels`` pixels, each chunk is its own read.

    Examples
    --------
    >>> grid = ((2, 2, 2), (4,))
    >>> [(span[0], members) for span, members in read_groups(grid, [(0, 0), (1, 0), (2, 0)],
    ...                                                       (4, 4), (6, 4))]
    [(slice(0, 4, None), [(0, 0), (1, 0)]), (slice(4, 6, None), [(2, 0)])]
    >>> len(read_groups(grid, [(0, 0), (1, 0), (2, 0)], (4, 4), (6, 4), max_pixels=8))
    3
    """
    groups = {}
    for idx in todo:
        span = resume.block_slices(grid, idx)
        if stored:
            wide = _read_span(grid, idx, stored, nav_shape)
            if max_pixels is None or np.prod([w.stop - w.start for w in wide]) <= max_pixels:
                span = wide
        key = tuple((s.start, s.stop) for s in span)  # slices are not hashable before 3.12
        groups.setdefault(key, (span, []))[1].append(idx)
    return list(groups.values())


def workers_for(spec, n_chunks):
    """How many chunks to fit at once, and the spec they run with.

    On the CPU with at least as many chunks as CPUs: one chunk per CPU, one thread each (the
    spike filter and the verdict run in parallel too; oversubscribed threads cost 20%).
    Otherwise one chunk at a time on every CPU (or on the GPU).
    """
    ncpu = len(os.sched_getaffinity(0))
    if spec.device == "cpu" and ncpu > 1 and n_chunks >= ncpu:
        return ncpu, spec._replace(threads=1)
    return 1, spec


def run_chunks(
    todo, grid, read, fit, done, *, workers=1, stored=None, nav_shape=None, max_read_pixels=None
):
    """Fit the chunks ``todo`` of ``grid``; reads run ahead of the fits.

    Parameters
    ----------
    todo : list of tuple
        Chunk indices, in the order their results are handed to ``done``.
    grid : tuple of tuple of int
        The chunk grid.
    read : callable
        ``read(slices)`` -> the spectra under those navigation slices (in memory).
    fit : callable
        ``fit(block)`` -> the rows of the block (run in worker threads).
    done : callable
        ``done(idx, rows)``, called in this thread, in the order of ``todo``.
    workers : int
        Chunks fitted at once.
    stored, nav_shape
        Stored chunks of the input and navigation shape: one read per stored chunk.
    max_read_pixels : int, optional
        Pixels one read may hold at most (:data:`READ_BYTES`): a larger stored chunk is read
        part by part.

    Examples
    --------
    >>> grid = ((2, 2), (3,))
    >>> data = np.arange(4 * 3 * 2).reshape(4, 3, 2)
    >>> got = {}
    >>> run_chunks([(0, 0), (1, 0)], grid, lambda s: data[s], lambda b: b.sum(-1),
    ...            got.__setitem__)
    >>> got[(1, 0)].tolist()
    [[25, 29, 33], [37, 41, 45]]
    """
    groups = read_groups(grid, todo, stored, nav_shape, max_pixels=max_read_pixels)
    owner = {idx: k for k, (_, members) in enumerate(groups) for idx in members}
    left = [len(members) for _, members in groups]  # chunks of each read still to fit
    ahead = workers + 1  # chunks in flight: the fits running and one more
    queue = collections.deque(todo)
    reads, pending = {}, collections.deque()
    with (
        ThreadPoolExecutor(1, thread_name_prefix="hyperlum-read") as reader,
        ThreadPoolExecutor(workers, thread_name_prefix="hyperlum-fit") as fitter,
    ):

        def start_read(k):
            if k not in reads:
                reads[k] = reader.submit(read, groups[k][0])

        def fit_one(got, local):
            return fit(got.result()[local])

        try:
            while queue or pending:
                while queue and len(pending) < ahead:
                    idx = queue.popleft()
                    k = owner[idx]
                    start_read(k)
                    span = groups[k][0]
                    here = resume.block_slices(grid, idx)
                    local = tuple(
                        slice(h.start - s.start, h.stop - s.start)
                        for h, s in zip(here, span, strict=True)
                    )
                    pending.append((idx, fitter.submit(fit_one, reads[k], local)))
                if queue:  # the next read starts while these chunks are fitted
                    start_read(owner[queue[0]])
                idx, fut = pending.popleft()
                rows = fut.result()
                k = owner[idx]
                left[k] -= 1
                if not left[k]:
                    del reads[k]  # every chunk of this read is fitted: let it go
                done(idx, rows)
        finally:
            for _, fut in pending:
                fut.cancel()
            for fut in reads.values():
                fut.cancel()


# -- the resumable output --------------------------------------------------------------------
@dataclass
class Source:
    """The file a cube was read from: it names the input of a fit, and workers of a
    dask.distributed cluster read their chunks from it."""

    path: str
    #: Reader hints given to :func:`hyperlum.load` (``file_format``, ``axis``, ...).
    hints: dict = field(default_factory=dict)
    #: The channels fitted (the ``--range`` / ``signal_range``).
    channels: slice = field(default_factory=lambda: slice(None))


@dataclass
class Outcome:
    """What :func:`fit_to_file` did."""

    #: The maps written (None when ``out`` already held them: load them from ``out``).
    result: object
    #: True when ``out`` already held this fit: nothing was fitted.
    complete: bool
    pixels: int
    #: Pixels taken from the partial store of an interrupted run.
    resumed: int = 0
    #: Chunks found damaged (in the store, or read back) and fitted again.
    damaged: int = 0
    fitted: int = 0
    #: Seconds spent fitting.
    seconds: float = 0.0


def check_output(out, *, option="out"):
    """Raise unless ``out`` names a ``.zspy`` / ``.hspy`` file in a writable folder.

    Examples
    --------
    >>> check_output("maps.tif")
    Traceback (most recent call last):
    ...
    ValueError: the output must be a .zspy or .hspy file, got 'maps.tif'
    """
    out = Path(out)
    if out.suffix.lower() not in RESULT_EXTENSIONS:
        raise ValueError(f"the output must be a .zspy or .hspy file, got {str(out)!r}")
    parent = out.parent
    if not parent.exists():
        raise OSError(f"cannot write {out}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise OSError(f"cannot write {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OSError(f"cannot write {out}: the folder {parent} is not writable")


def source_file(data):
    """The file a HyperSpy signal was loaded from, or None."""
    if not is_signal(data):
        return None
    tp = data.tmp_parameters
    folder, name, ext = (tp.get_item(k) for k in ("folder", "filename", "extension"))
    if not (folder and name and ext):
        return None
    path = Path(folder) / f"{name}{ext if ext.startswith('.') else '.' + ext}"
    return str(path) if path.exists() else None


def data_identity(data, path=None):
    """Say which data a fit reads, so that a rerun resumes only the same fit.

    Lazy data read from a file (``path``, by default the file a signal was loaded from) counts
    by that file (:func:`resume.input_identity`) and the kinds of dask operation between the
    file and the fit; other dask arrays by their dask name; data in memory by the SHA-256 of
    its bytes. ``hyperlum fit`` and ``hl.fit(hl.load(path, lazy=True), out=...)`` name the
    same file alike, so either may finish what the other began.
    """
    raw = data.data if is_signal(data) else data
    if path is None:
        path = source_file(data)
    if is_dask(raw):
        from dask.utils import key_split

        ops = sorted({key_split(name) for name in raw.dask.layers})
        if path is not None:
            return {"input": resume.input_identity(path), "operations": ops}
        return {"dask": raw.name}
    if hasattr(raw, "__cuda_array_interface__") and hasattr(raw, "get"):
        raw = raw.get()
    h = hashlib.sha256(np.ascontiguousarray(raw).view(np.uint8).data)
    return {"sha256": h.hexdigest()}


def output_fingerprint(out):
    """The fingerprint stored in an existing result file (``""`` when it has none), or None
    when ``out`` is not a hyperlum result."""
    import hyperspy.api as hs

    from hyperlum.io.loader import quiet

    try:
        with quiet():
            sig = hs.load(str(out), lazy=True)
        return json.loads(sig.metadata.hyperlum.options).get("fingerprint") or ""
    except Exception:
        return None


def _open_store(out, note):
    """The partial store of ``out``; a damaged one (ours, by its files) is removed: None."""
    try:
        return resume.PartialStore.open(out)
    except resume.DamagedStore as err:
        note(f"{err}; it was removed and the fit starts anew")
        outputs.remove(resume.partial_path(out))
        return None


def fit_to_file(
    cube,
    spec,
    options,
    out,
    *,
    kernel,
    identity,
    source=None,
    overwrite=False,
    chunk_bytes=None,
    progress=True,
    scheduler=None,
    timeout=DEFAULTS.scheduler_timeout,
    note=None,
    switch="overwrite=True",
    manifest=None,
):
    """Fit ``cube`` chunk by chunk into the resumable store of ``out``, then write ``out``.

    Parameters
    ----------
    cube : hyperlum.io.cube.Cube
        The data, restricted to the fitted channels.
    spec : FitSpec
        What to fit (:func:`hyperlum.fitting.fit.plan`).
    options : dict
        The options as the user gave them (kept with the result).
    out : str or os.PathLike
        The maps file (``.zspy`` or ``.hspy``).
    kernel : callable
        ``kernel(block, x, spec)`` -> rows (:func:`hyperlum.fitting.fit.fit_block`).
    identity : dict
        What the fit reads (:func:`data_identity`, or the input file and reader hints).
    source : Source, optional
        The file the cube was read from: recorded as the input, read by cluster workers.
    overwrite : bool
        Replace an ``out`` holding another fit, discard another fit's partial store.
    chunk_bytes : float, optional
        Bytes of float64 spectra per chunk (:func:`chunk_plan`).
    progress : bool
        Show a progress bar (pixels) on stderr.
    scheduler : tuple, optional
        Where the chunks are fitted (:func:`parse_scheduler`); None: in this process.
    timeout : float
        Seconds a scheduler address has to answer.
    note : callable, optional
        Receives the notices (resumed, damaged store); default: stderr.
    switch : str
        How ``overwrite`` is spelled for the user, in messages.
    manifest : dict, optional
        More to record in the partial store (e.g. the command line).

    Returns
    -------
    Outcome
    """
    from tqdm.auto import tqdm

    from hyperlum.fitting.result import FitResult
    from hyperlum.io.loader import quiet

    if scheduler is not None and scheduler[0] == "address":  # before anything is written
        from hyperlum.fitting.cluster import probe_scheduler

        probe_scheduler(scheduler[1], timeout=timeout)
    if note is None:
        note = lambda text: print(f"hyperlum: {text}", file=sys.stderr)  # noqa: E731
    again = "its own command" if switch.startswith("-") else "the same call"
    out = Path(out)
    inputs = [source.path, source.hints.get("axis")] if source else []
    outputs.check_not_input([out, resume.partial_path(out)], inputs, option=_option(switch))
    npix = int(np.prod(cube.nav_shape, dtype=np.int64))
    with outputs.writer_lock(out):
        for p in resume.leftovers(out):  # of killed runs: this run holds the lock
            outputs.remove(p)
        fit_id = dict(
            identity,
            options=options,
            saturation=spec.saturation,
            shape=list(cube.data.shape),
            dtype=str(cube.data.dtype),
            axis=hashlib.sha256(np.ascontiguousarray(cube.x, np.float64)).hexdigest(),
        )
        fp = resume.fingerprint(fit_id)
        if out.exists():
            old = output_fingerprint(out)
            if old == fp and not overwrite:
                try:  # a damaged one goes without a word, an outdated one stays
                    store = _open_store(out, lambda text: None)
                except resume.OutdatedStore:
                    store = None
                if store is not None and store.manifest.get("fingerprint") == fp:
                    store.remove()  # left behind by a run killed just after it wrote OUT
                return Outcome(None, True, npix)  # the caller loads it if it wants it
            if old is None and not outputs.is_ours(out):
                if overwrite:  # says whether a file or a folder of the user's is in the way
                    outputs.check_replaceable(out, overwrite=True, option=switch)
                raise FileExistsError(
                    f"{out} exists and holds no hyperlum fit; move it away or choose another output"
                )
            if not overwrite:
                what = (
                    "no hyperlum fit"
                    if old is None
                    else "the fit of another input or other options"
                )
                raise FileExistsError(f"{out} exists and holds {what}; pass {switch} to replace it")
            outputs.check_replaceable(out, overwrite=True, option=switch, known=old is not None)

        try:  # rows laid out otherwise are never read: refused, or discarded when asked
            store = _open_store(out, note)
            if store is not None:
                store.check_rows(spec.n_outputs)
        except resume.OutdatedStore as err:
            if not overwrite:
                raise ValueError(f"{err}; pass {switch} to discard it and fit anew") from None
            outputs.remove(resume.partial_path(out))
            store = None
        if store is not None and store.manifest.get("fingerprint") != fp:
            if not overwrite:
                raise ValueError(
                    f"{store.root} holds an interrupted fit of another input or other options; "
                    f"finish it with {again}, or pass {switch} to discard it"
                )
            store.remove()
            store = None
        resumed = store is not None
        if store is None:
            grid = chunk_plan(
                cube.nav_shape,
                cube.x.size,
                device=spec.device,
                chunk_bytes=chunk_bytes,
                stored=stored_chunks(cube.data),
            )
            record = dict(manifest or {}, fingerprint=fp, fit=fit_id)
            try:
                store = resume.PartialStore.create(out, record, grid, spec.n_outputs)
            except OSError as err:
                raise OSError(f"cannot write {out}: {err.strerror or err}") from None

        damaged = len(store.verify()) if resumed else 0  # reused chunks must match their checksum
        todo = store.missing()
        done_before = store.done_pixels()
        if resumed:
            refit = f" ({damaged} damaged, fitted again)" if damaged else ""
            note(
                f"resumed {out}: {store.n_chunks() - len(todo)} of "
                f"{store.n_chunks()} chunks were already done{refit}"
            )
        t_fit = time.perf_counter()
        bar = tqdm(
            total=npix,
            initial=done_before,
            unit="px",
            desc="fit",
            file=sys.stderr,
            disable=not progress,
            dynamic_ncols=True,
        )

        def done(idx, rows):
            store.write(idx, rows)
            bar.update(store.pixels(idx))

        with bar:
            for _ in range(3):  # the output is made of verified chunks only
                fit_chunks(
                    cube,
                    spec,
                    kernel,
                    store.grid,
                    todo,
                    done,
                    scheduler=scheduler,
                    source=source,
                    timeout=timeout,
                )
                stacked, todo = store.stacked()
                if not todo:
                    break
                damaged += len(todo)
                bar.update(-sum(store.pixels(i) for i in todo))
            else:
                raise OSError(
                    f"cannot write {store.root}: chunks read back differ from those written"
                )
        t_fit = time.perf_counter() - t_fit

        saved = dict(options, fingerprint=fp)
        if source is not None:
            saved["input"] = str(Path(source.path).resolve())
        result = FitResult.from_stacked(stacked, spec.peaks, spec.background, cube, saved)
        with quiet():
            result.save(out, overwrite=True)  # under a temporary name, then renamed into place
        store.remove()
    return Outcome(result, False, npix, done_before, damaged, npix - done_before, t_fit)


def _option(switch):
    return "-o" if switch.startswith("-") else "out"


def fit_chunks(
    cube,
    spec,
    kernel,
    grid,
    todo,
    done,
    *,
    scheduler=None,
    source=None,
    timeout=DEFAULTS.scheduler_timeout,
):
    """Fit the chunks ``todo`` of ``grid`` where ``scheduler`` says.

    Parameters
    ----------
    cube : hyperlum.io.cube.Cube
        The data, restricted to the fitted channels.
    spec : FitSpec
        What to fit.
    kernel : callable
        ``kernel(block, x, spec)`` -> rows (:func:`hyperlum.fitting.fit.fit_block`).
    grid : tuple of tuple of int
        The chunk grid.
    todo : list of tuple
        Chunk indices.
    done : callable
        ``done(idx, rows)``, called in this thread as each chunk is fitted.
    scheduler : tuple, optional
        As :func:`parse_scheduler` gives it. None: in this process, reads ahead of fits
        (:func:`run_chunks`), in the order of ``todo``.
    source : Source, optional
        The file the cube was read from: dask.distributed workers read their chunks from it.
    timeout : float
        Seconds a scheduler address has to answer.

    Examples
    --------
    >>> from hyperlum.io.cube import as_cube
    >>> from hyperlum.fitting.fit import fit_block, plan
    >>> x = np.linspace(650.0, 770.0, 120)
    >>> cube = as_cube(100 * np.exp(-0.5 * ((x - np.array([[700.0], [710.0]])) / 8.0) ** 2), x)
    >>> spec, _ = plan(cube, device="cpu")
    >>> got = {}
    >>> fit_chunks(cube, spec, fit_block, ((1, 1),), [(0,), (1,)], got.__setitem__,
    ...            scheduler=parse_scheduler("synchronous"))
    >>> [round(float(got[idx][0, 1]), 3) for idx in [(0,), (1,)]]  # the centres
    [700.0, 710.0]
    """
    if scheduler is not None and scheduler[0] in ("local", "address"):
        from hyperlum.fitting import cluster

        cluster.fit_chunks(cube, spec, kernel, grid, todo, done, scheduler, source, timeout)
        return
    data = cube.data
    read = lambda slices: as_numpy(data[slices])  # noqa: E731
    if scheduler is not None:  # "synchronous": one chunk at a time, in this thread
        fit = functools.partial(kernel, x=cube.x, spec=spec)
        for idx in todo:
            done(idx, fit(read(resume.block_slices(grid, idx))))
        return
    workers, spec = workers_for(spec, len(todo))
    run_chunks(
        todo,
        grid,
        read,
        functools.partial(kernel, x=cube.x, spec=spec),
        done,
        workers=workers,
        stored=stored_chunks(data),
        nav_shape=cube.nav_shape,
        max_read_pixels=max(1, READ_BYTES // (data.shape[-1] * data.dtype.itemsize)),
    )


def parse_scheduler(value, *, label=None):
    """Where chunks are fitted, from ``hl.fit(scheduler=...)`` or ``hyperlum fit --scheduler``.

    ``None``: in this process, a thread reading ahead of the fits, chunks side by side on the
    CPUs (:func:`run_chunks`); ``"synchronous"``: in this process, one chunk at a time, read
    and fitted in the calling thread (for debuggers and profilers; the kernels still use
    every CPU); ``"local:N"``: a dask.distributed cluster of N worker processes on this
    machine; ``"tcp://host:port"`` (any address with ``:``): the dask scheduler there.
    ``label`` starts the error messages (default ``scheduler='...'``).

    Examples
    --------
    >>> parse_scheduler("local:4"), parse_scheduler("tcp://10.0.0.2:8786")
    (('local', 4), ('address', 'tcp://10.0.0.2:8786'))
    >>> parse_scheduler("local:0")
    Traceback (most recent call last):
    ...
    ValueError: scheduler='local:0': local:N needs N worker processes, 1 to 256
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(
            "scheduler must be None, 'synchronous', 'local:N' or a dask scheduler address, "
            f"got {value!r}"
        )
    if label is None:
        label = f"scheduler={value!r}"
    if value == "synchronous":
        return ("synchronous", None)
    if value.startswith("local:"):
        n = value.split(":", 1)[1]
        if not n.isdigit() or not 1 <= int(n) <= 256:
            raise ValueError(f"{label}: local:N needs N worker processes, 1 to 256")
        return ("local", int(n))
    if ":" not in value:
        raise ValueError(
            f"{label}: give a scheduler address (tcp://host:8786), local:N or synchronous"
        )
    return ("address", value)
