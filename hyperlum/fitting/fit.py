"""``hyperlum.fit``: one Gaussian (or up to four) plus background fitted at every pixel.

Three tiers, as in kikuchipy: the one-pixel fit (:mod:`hyperlum.kernels.pixel`), one chunk of
pixels (:func:`fit_block`, what ``dask.array.map_blocks`` runs), and :func:`fit`, which checks
the arguments, chunks the cube over its navigation axes (the spectral axis is never split) and
assembles a :class:`~hyperlum.fitting.result.FitResult`.
"""

import functools
from typing import NamedTuple

import numpy as np

from hyperlum._validate import choice, integer, positive
from hyperlum.fitting import _backend, detect, engine, resume
from hyperlum.fitting.options import CHOICES, DEFAULTS, LIMITS
from hyperlum.fitting.result import FitResult, load_result
from hyperlum.io.cube import as_cube, map_spectra
from hyperlum.kernels.backgrounds import BACKGROUNDS as BACKGROUND_MODELS
from hyperlum.kernels.constants import BACKGROUNDS, ESTIMATORS, n_outputs, n_params, output_rows
from hyperlum.kernels.shapes import get_shape
from hyperlum.preprocess.cl import despike_spectra


class FitSpec(NamedTuple):
    """What to fit, as the kernels take it."""

    peaks: int
    background: int
    estimator: int
    max_iterations: int
    tolerance: float
    saturation: float
    device: str
    #: CPU threads per chunk; None: every CPU this process may use. Lazy fits with at least
    #: as many chunks as CPUs use 1, since dask already runs one chunk per CPU (oversubscribed
    #: threads cost 20% here).
    threads: int | None = None
    #: Replace cosmic-ray spikes in each chunk before fitting (:func:`hl.cl.despike_spectra`).
    despike: bool = DEFAULTS.despike
    #: The spike filter's ``counts`` (:func:`hl.cl.despike_spectra`): True, False or None.
    counts: bool | None = DEFAULTS.counts
    #: ``peaks="auto"``: fit 1 to ``peaks`` Gaussians, keep per pixel what the data support.
    auto: bool = False
    #: Instrument resolution (FWHM, axis units) for the detection verdict; 0: one channel.
    resolution: float = 0.0
    false_alarm: float = DEFAULTS.false_alarm
    #: Peak shape (a key of :data:`hyperlum.kernels.shapes.SHAPES`).
    shape: str = DEFAULTS.shape
    #: The background's kernel module (:data:`hyperlum.kernels.backgrounds.MODULES`);
    #: ``background`` is its number of terms.
    bg_kind: str = "polynomial"
    #: Working precision of the kernels: "float32" or "float64".
    precision: str = "float64"

    @property
    def peak_params(self):
        """Parameters of one peak of the shape."""
        return get_shape(self.shape).n_params

    @property
    def n_params(self):
        return n_params(self.peaks, self.background, self.peak_params)

    @property
    def kernel_outputs(self):
        """Rows the kernels write (see :func:`hyperlum.kernels.pixel.fit_pixel`)."""
        return n_outputs(self.peaks, self.background, self.peak_params)

    @property
    def n_outputs(self):
        """Rows of :func:`fit_block`: the kernel rows, ``detected`` per peak, spikes replaced,
        and with ``auto`` the number of peaks kept."""
        return self.kernel_outputs + self.peaks + 1 + int(self.auto)


def fit_block(block, x, spec):
    """Fit one chunk: ``block[..., channel]`` -> ``out[..., row]`` (:attr:`FitSpec.n_outputs`).

    This is the function ``map_blocks`` runs. Spikes are replaced first (``spec.despike``);
    then the kernel rows (on the CPU path the block is read as float32 or float64,
    :func:`kernel_dtype`; on the CUDA path it goes to the GPU in its own dtype, e.g. uint16,
    and the kernel converts it there; a CuPy block is fitted where it lies), then the
    detection verdict per peak (:mod:`hyperlum.fitting.detect`), the spikes replaced per pixel and,
    for ``peaks="auto"``, the number of peaks kept. The maps come back as numpy.
    """
    nav = block.shape[:-1]
    flat = block.reshape(-1, block.shape[-1])
    spikes = np.zeros(flat.shape[0])
    replaced = None
    if hasattr(flat, "__cuda_array_interface__") and hasattr(flat, "get"):
        if spec.despike or spec.auto:
            flat = flat.get()  # the spike filter and the model choice run on the host
    if flat.dtype == np.float16:  # numba reads no float16; float32 holds it exactly
        flat = flat.astype(np.float32)
    if spec.despike:
        flat, spikes, replaced = _despike(flat, spec.saturation, spec.threads, spec.counts)
    if spec.auto:
        rows, verdict, n_kept = _fit_auto(flat, x, spec)
        extra = [verdict, spikes[None], n_kept[None]]
    else:
        rows = _kernel_rows(flat, x, spec)
        rss0, rss1 = detect.peak_rss(
            flat, x, rows, peaks=spec.peaks, shape=spec.shape, threads=spec.threads
        )
        verdict = detect.verdict(
            rows,
            rss0,
            rss1,
            x,
            peaks=spec.peaks,
            background=spec.background,
            resolution=spec.resolution or None,
            false_alarm=spec.false_alarm,
            shape=spec.shape,
        )
        extra = [verdict, spikes[None]]
    if replaced is not None:  # a peak where a spike was cut out may be what is left of it
        detect.clear_spike_remnants(verdict, rows, *replaced, x, shape=spec.shape)
        if spec.auto:
            extra[2] = verdict.sum(axis=0)[None]
    out = np.concatenate([rows, *extra], axis=0)
    return out.T.reshape(*nav, spec.n_outputs)


def _despike(flat, saturation, threads, counts):
    """Spikes replaced (:func:`hyperlum.cl.despike_spectra`), except in spectra with a
    saturated or non-finite channel: those stay as they are, to be flagged bad input.
    Returns the cleaned spectra, the count per pixel, and ``(pixels, channels replaced)``
    of the spectra that held a spike (None when none did)."""
    cleaned, spikes = despike_spectra(flat, counts=counts, threads=threads)
    hit = np.flatnonzero(spikes)
    if not hit.size:
        return cleaned, spikes, None
    orig = np.asarray(flat[hit], dtype=np.float64)
    bad = ((orig >= saturation) | ~np.isfinite(orig)).any(axis=1)
    cleaned[hit[bad]] = flat[hit[bad]]
    spikes[hit[bad]] = 0
    hit, orig = hit[~bad], orig[~bad]
    return cleaned, spikes, (hit, np.asarray(cleaned[hit], dtype=np.float64) != orig)


def _kernel_rows(flat, x, spec):
    """The kernel's ``(rows, pixels)`` output for ``spec.peaks`` peaks of ``spec.shape``."""
    model = {"shape": spec.shape, "background": spec.bg_kind, "precision": spec.precision}
    if spec.device == "cuda":
        from hyperlum.kernels import cuda

        return cuda.fit_chunk(
            flat,
            x,
            spec.peaks,
            spec.background,
            spec.estimator,
            spec.max_iterations,
            spec.tolerance,
            spec.saturation,
            **model,
        )
    if hasattr(flat, "__cuda_array_interface__") and hasattr(flat, "get"):
        flat = flat.get()  # a CuPy block fitted on the CPU
    flat = np.ascontiguousarray(flat, dtype=kernel_dtype(flat))
    out = np.empty((spec.kernel_outputs, flat.shape[0]))
    from hyperlum.kernels import cpu

    cpu.fit_chunk(
        flat,
        x,
        spec.peaks,
        spec.background,
        spec.estimator,
        spec.max_iterations,
        spec.tolerance,
        spec.saturation,
        out,
        threads=spec.threads,
        **model,
    )
    return out


def _fit_auto(flat, x, spec):
    """``peaks="auto"``: nested likelihood-ratio tests, 1 to ``spec.peaks`` Gaussians.

    Model ``k`` is fitted to the pixels where model ``k - 1`` was kept; it is kept where its
    likelihood ratio against model ``k - 1`` passes :func:`detect.threshold` and each of its
    peaks is converged, resolved and located. Returns the rows of the kept models in the
    layout of ``spec.peaks`` Gaussians (absent peaks NaN; model 1 where none is kept), the
    verdict per peak and the number of peaks kept.
    """
    big, nbg, n = spec.peaks, spec.background, flat.shape[-1]
    npix = flat.shape[0]
    rows = np.full((spec.kernel_outputs, npix), np.nan)
    kept = np.zeros(npix)
    alive = np.arange(npix)
    prev = None
    for k in range(1, big + 1):
        if alive.size == 0:
            break
        sub = spec._replace(peaks=k, auto=False)
        data = np.ascontiguousarray(flat[alive])
        part = _kernel_rows(data, x, sub)
        rss0, obj = detect.peak_rss(data, x, part, peaks=k, shape=spec.shape, threads=spec.threads)
        m = spec.peak_params * k + detect.NULL_TERMS
        t = detect.statistic(rss0 if prev is None else prev, obj, n, m)
        limit = detect.threshold(n, false_alarm=spec.false_alarm, dof=n - m)
        valid = detect.peaks_valid(
            part, k, nbg, x, resolution=spec.resolution or None, shape=spec.shape
        )
        with np.errstate(invalid="ignore"):
            ok = valid.all(axis=0) & (t > limit)
        take = ok if k > 1 else np.ones(alive.size, bool)
        rows[:, alive[take]] = _padded(part[:, take], k, big, nbg, spec.peak_params)
        kept[alive[ok]] = k
        alive, prev = alive[ok], obj[ok]
    verdict = (np.arange(big)[:, None] < kept[None, :]).astype(np.float64)
    return rows, verdict, kept


def _padded(part, k, big, nbg, npar=3):
    """Kernel rows of ``k`` peaks laid out as those of ``big`` (missing peaks NaN)."""
    rk, rb = output_rows(k, nbg, npar), output_rows(big, nbg, npar)
    out = np.full((rb.total, part.shape[1]), np.nan)
    for src, dst in ((rk.params, rb.params), (rk.stds, rb.stds)):  # peaks, then background
        out[dst : dst + npar * k] = part[src : src + npar * k]
        out[dst + npar * big : dst + npar * big + nbg] = part[src + npar * k : src + npar * k + nbg]
    for src, dst in ((rk.area_std, rb.area_std), (rk.fwhm_std, rb.fwhm_std)):  # per peak
        out[dst : dst + k] = part[src : src + k]
    out[rb.chisq :] = part[rk.chisq :]
    return out


def kernel_dtype(data):
    """The dtype the CPU kernel reads: float32 where exact (float32, 8- and 16-bit counts),
    else float64. Converting float32 data to float64 cost 15% of an eager fit.
    """
    dt = np.dtype(data.dtype)
    if dt == np.float32 or (dt.kind in "ui" and dt.itemsize <= 2):
        return np.float32
    return np.float64


def _saturation(value, dtype):
    if value is not None:
        return positive("saturation", value)
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    return np.inf


def fit(
    data,
    *,
    axis=None,
    peaks=DEFAULTS.peaks,
    shape=DEFAULTS.shape,
    background=DEFAULTS.background,
    estimator=DEFAULTS.estimator,
    precision=DEFAULTS.precision,
    device=DEFAULTS.device,
    signal_range=None,
    max_iterations=DEFAULTS.max_iterations,
    tolerance=DEFAULTS.tolerance,
    saturation=None,
    chunk_bytes=None,
    progress=None,
    max_peaks=DEFAULTS.max_peaks,
    despike=DEFAULTS.despike,
    counts=DEFAULTS.counts,
    resolution=None,
    false_alarm=DEFAULTS.false_alarm,
    out=None,
    overwrite=False,
    scheduler=None,
):
    """Fit peak(s) of one shape plus a background to the spectrum of every pixel.

    Parameters
    ----------
    data : hyperspy Signal1D, numpy.ndarray or dask.array.Array
        Spectrum image, line scan or single spectrum, lazy or not. Arrays have the spectral
        axis last. Float or integer counts.
    axis : array_like, optional
        Channel positions for array input (ignored for a signal). Default: channel indices.
    peaks : int or "auto"
        Number of Gaussians, 1 to 4 (sorted by centre), or ``"auto"``: per pixel, as many
        as the data support, 1 to ``max_peaks``, chosen by nested likelihood-ratio tests
        (model ``k`` is kept over ``k - 1`` when its likelihood ratio passes the detection
        threshold and each of its peaks is resolved); the number is the map ``n_peaks``.
    shape : {"gaussian", "lorentzian", "pseudo_voigt", "emg_low", "emg_high"}
        Peak shape (:mod:`hyperlum.kernels.shapes`): its parameters name the maps.
        ``"lorentzian"``: amplitude, centre, ``gamma`` (HWHM); ``"pseudo_voigt"``: amplitude,
        centre, ``fwhm``, ``eta`` (Lorentzian fraction, fitted in [0, 1]); ``"emg_low"`` /
        ``"emg_high"``: an exponentially modified Gaussian (amplitude, centre, sigma, ``tau``)
        whose tail lies towards lower / higher axis values (a band edge's low-energy tail is
        ``"emg_low"`` on an eV axis, ``"emg_high"`` on a nm axis).
    background : {"constant", "none", "linear", "poly2", "poly3", "powerlaw"}
        Background under the peaks: a polynomial in ``x - middle of range`` (``background``,
        ``background_slope``, ``background_quadratic``, ``background_cubic``), or the power
        law ``background * (x / middle)^-background_exponent`` (positive axis only).
    estimator : {"lse", "mle"}
        Least squares, or Poisson maximum likelihood (counts; negative values count as zero).
    precision : {None, "float32", "float64"}
        Working precision of the fit kernels (the maps are float64 either way). Default:
        float32 on a GPU (workstation GPUs run float64 at 1/32 to 1/64 of the rate; the
        results agree with float64 to well within 0.1 standard error), float64 on the CPU.
    device : {"auto", "cpu", "cuda"}
        Where to fit. ``"auto"`` takes a CUDA GPU when one is usable, else the CPU.
    signal_range : (float, float), optional
        Keep only the channels from ``low`` to ``high`` (axis units) for the fit.
    max_iterations : int
        Levenberg-Marquardt iterations at most per pixel.
    tolerance : float
        Convergence: relative decrease of the objective, or relative step, below this.
    saturation : float, optional
        Pixels with a value at or above this are flagged bad input. Default: the largest value
        of an integer dtype (a saturated detector), none for floats.
    chunk_bytes : int, optional
        Size of the chunks the navigation axes are cut into (bytes of float64 spectra),
        aligned to the chunks the data is stored in (:mod:`hyperlum.fitting.engine`).
        Default: 32 MiB on the CPU, 1 GiB on the GPU.
    progress : bool, optional
        Show a progress bar for an eager fit or one with ``out``; default: for fits of
        65,536 pixels or more. (On the GPU an eager fit is one pipelined call.)
    max_peaks : int
        Most Gaussians per pixel with ``peaks="auto"``, 1 to 4.
    despike : bool
        Replace cosmic-ray spikes (:func:`hyperlum.cl.despike_spectra`) in each chunk before
        fitting; the channels replaced per pixel are the map ``spikes``.
    counts : bool, optional
        Whether the spike filter takes the spectra as counts, with the Poisson noise of the
        running median as the floor of its noise estimate: True, False, or None to decide
        per spectrum (whole numbers of at least 0, always for unsigned integers; see
        :func:`hyperlum.cl.remove_spikes`). Counts on a camera offset (a bias of hundreds)
        pass the automatic rule, and the floor, too high there, lets spikes through: give
        ``counts=False``. Only with ``despike``.
    resolution : float, optional
        The instrument's resolution (FWHM, axis units): a peak narrower than 0.75 of it is
        not detected. Default: one channel is the narrowest resolved peak.
    false_alarm : float
        Probability, per pixel, that noise alone is detected as a peak (see
        :mod:`hyperlum.fitting.detect`).
    out : str or os.PathLike, optional
        Fit into this maps file (``.zspy`` or ``.hspy``), resumably: each finished chunk is
        kept, checksummed, in ``OUT.partial/``; a fit that is interrupted (Ctrl-C, a crash, a
        killed process) and called again with the same data and options fits only what is
        missing and gives the maps of an uninterrupted fit. ``OUT`` appears when complete;
        a call whose ``OUT`` already holds this fit just loads it. Lazy input is read chunk
        by chunk, a whole stored chunk at a time, ahead of the fit.
    overwrite : bool
        With ``out``: replace an ``OUT`` that holds another fit (never a file or folder
        hyperlum did not write), and discard the interrupted fit of other data or options.
    scheduler : str, optional
        Where the chunks of an eager fit or one with ``out`` are fitted, as ``hyperlum fit
        --scheduler`` takes it (:func:`hyperlum.fitting.engine.parse_scheduler`). None: in
        this process, reads ahead of fits, chunks side by side on the CPUs;
        ``"synchronous"``: in this process, one chunk at a time in the calling thread (for
        debuggers and profilers); ``"local:N"``: a dask.distributed cluster of N worker
        processes started for this fit; ``"tcp://host:port"``: the dask scheduler there
        (workers read their chunks from the file of a signal loaded with
        ``hl.load(path, lazy=True)``, else the chunks are sent to them). A lazy fit without
        ``out`` gives lazy maps: compute them under the scheduler of your choice instead.
        The maps do not depend on the scheduler.

    Returns
    -------
    FitResult
        Maps by name (``res["centre"]``): the shape's parameters (the Gaussian's
        ``amplitude``, ``centre``, ``sigma``), ``fwhm`` (unless a parameter), ``intensity``
        (area), the background's (``background``, ``background_slope``...), each with ``_std``,
        plus ``chisq`` (reduced), ``state``, ``converged`` and ``iterations``, ``spikes``
        (channels replaced per pixel) and ``detected``: a real, resolved peak, significant
        against the background alone (rule in :mod:`hyperlum.fitting.detect`); ``state`` only says
        how the optimiser ended. With several peaks the peak maps are numbered:
        ``centre_1``, ``centre_2``, ..., ``detected_1``, ``detected_2``, ... and
        ``detected`` is true where any peak is. With ``peaks="auto"`` the maps of
        ``max_peaks`` peaks are numbered so (NaN where a pixel has fewer) and ``n_peaks``
        counts the detected peaks. Lazy input gives lazy maps, unless ``out`` is given:
        then the maps are in memory, as written to ``out``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(650.0, 770.0, 240)
    >>> centres = np.array([[700.0, 705.0], [710.0, 715.0]])
    >>> cube = 100 * np.exp(-0.5 * ((x - centres[..., None]) / 8.0) ** 2) + 5
    >>> res = fit(cube, axis=x, device="cpu")
    >>> np.round(res["centre"].data, 3)
    array([[700., 705.],
           [710., 715.]])
    >>> bool(res["converged"].data.all()), bool(res["detected"].data.all())
    (True, True)
    """
    if chunk_bytes is not None:
        chunk_bytes = positive("chunk_bytes", chunk_bytes)
    if out is not None:
        engine.check_output(out)
    sched = engine.parse_scheduler(scheduler)
    cube = as_cube(data, axis).crop(signal_range)
    if sched is not None and cube.lazy and out is None:
        raise ValueError(
            "scheduler is for fits made now: a lazy fit without out gives lazy maps; give out, "
            "or compute the maps under a dask scheduler of your own"
        )
    spec, options = plan(
        cube,
        peaks=peaks,
        shape=shape,
        background=background,
        estimator=estimator,
        precision=precision,
        device=device,
        signal_range=signal_range,
        max_iterations=max_iterations,
        tolerance=tolerance,
        saturation=saturation,
        max_peaks=max_peaks,
        despike=despike,
        counts=counts,
        resolution=resolution,
        false_alarm=false_alarm,
    )
    npix = int(np.prod(cube.nav_shape, dtype=np.int64))
    if progress is None:
        progress = npix >= 65536
    if out is not None:
        path = engine.source_file(data)
        done = engine.fit_to_file(
            cube,
            spec,
            options,
            out,
            kernel=fit_block,
            identity=engine.data_identity(data),
            source=None if path is None else engine.Source(path),
            overwrite=overwrite,
            chunk_bytes=chunk_bytes,
            progress=progress,
            scheduler=sched,
        )
        return load_result(out) if done.complete else done.result
    if cube.lazy:
        stacked = _fit_lazy(cube, spec, chunk_bytes)
    else:
        stacked = _fit_eager(cube, spec, chunk_bytes, progress, sched)
    return FitResult.from_stacked(stacked, spec.peaks, spec.background, cube, options)


def plan(
    cube,
    *,
    peaks=DEFAULTS.peaks,
    shape=DEFAULTS.shape,
    background=DEFAULTS.background,
    estimator=DEFAULTS.estimator,
    precision=DEFAULTS.precision,
    device=DEFAULTS.device,
    signal_range=None,
    max_iterations=DEFAULTS.max_iterations,
    tolerance=DEFAULTS.tolerance,
    saturation=None,
    max_peaks=DEFAULTS.max_peaks,
    despike=DEFAULTS.despike,
    counts=DEFAULTS.counts,
    resolution=None,
    false_alarm=DEFAULTS.false_alarm,
    label=str,
):
    """Check the fit options against a cube; say what the kernels will be asked to do.

    Parameters
    ----------
    cube : hyperlum.io.cube.Cube
        The data to fit, already restricted to ``signal_range``.
    peaks, shape, background, estimator, precision, device, max_iterations, tolerance
        As for :func:`fit`.
    saturation
        As for :func:`fit`.
    max_peaks, despike, counts, resolution, false_alarm
        As for :func:`fit`.
    signal_range : (float, float), optional
        The range the cube was cropped to, kept in ``options``.
    label : callable
        Turns an option's name into the name used in error messages (e.g. ``"--peaks"`` on the
        command line).

    Returns
    -------
    spec : FitSpec
        The options as the kernels take them, with the device resolved.
    options : dict
        The options as the user gave them (kept with the result).

    Examples
    --------
    >>> import numpy as np
    >>> from hyperlum.io.cube import as_cube, map_spectra
    >>> spec, options = plan(as_cube(np.zeros((3, 100), np.uint16)), device="cpu")
    >>> spec.n_params, spec.saturation, options["estimator"], spec.precision
    (4, 65535.0, 'lse', 'float64')
    >>> plan(as_cube(np.zeros((3, 100))), precision="half")
    Traceback (most recent call last):
    ...
    ValueError: precision='half' is not one of 'float32', 'float64'
    """
    auto = isinstance(peaks, str) and peaks == "auto"
    if auto:
        peaks = integer(label("max_peaks"), max_peaks, *LIMITS["max_peaks"])
    elif isinstance(peaks, str):
        lo, hi = LIMITS["peaks"]
        raise ValueError(f"{label('peaks')} must be {lo} to {hi} or 'auto', got {peaks!r}")
    else:
        peaks = integer(label("peaks"), peaks, *LIMITS["peaks"])
    if not isinstance(despike, bool):
        raise TypeError(f"{label('despike')} must be True or False, got {despike!r}")
    if counts is not None and not isinstance(counts, (bool, np.bool_)):
        raise TypeError(
            f"{label('counts')} must be True, False or None (decide per spectrum), got {counts!r}"
        )
    if counts is not None and not despike:
        raise ValueError(
            f"{label('counts')}={counts!r} sets the spike filter's noise floor, but "
            f"{label('despike')}=False turns the filter off: leave counts out, or despike"
        )
    if resolution is not None:
        resolution = positive(label("resolution"), resolution)
    false_alarm = positive(label("false_alarm"), false_alarm)
    if not false_alarm < 1:
        raise ValueError(f"{label('false_alarm')} must be below 1, got {false_alarm!r}")
    choice(label("shape"), shape, CHOICES["shape"])
    choice(label("background"), background, CHOICES["background"])
    if background == "powerlaw" and not np.min(cube.x) > 0:
        raise ValueError(
            f"{label('background')}='powerlaw' needs positive axis positions, the fitted "
            f"range starts at {np.min(cube.x):g}"
        )
    choice(label("estimator"), estimator, CHOICES["estimator"])
    if precision is not None:
        choice(label("precision"), precision, CHOICES["precision"])
    choice(label("device"), device, CHOICES["device"])
    max_iterations = integer(label("max_iterations"), max_iterations, *LIMITS["max_iterations"])
    tolerance = positive(label("tolerance"), tolerance)
    m = n_params(peaks, BACKGROUNDS[background], get_shape(shape).n_params)
    if cube.x.size < m + 2:
        raise ValueError(
            f"the fit needs at least {m + 2} channels for {m} parameters, "
            f"the spectrum has {cube.x.size}"
        )
    used = _backend.resolve_device(device)
    if precision is None:
        precision = "float32" if used == "cuda" else "float64"
    spec = FitSpec(
        peaks,
        BACKGROUNDS[background],
        ESTIMATORS[estimator],
        max_iterations,
        tolerance,
        _saturation(saturation, cube.data.dtype),
        used,
        despike=despike,
        counts=None if counts is None else bool(counts),
        auto=auto,
        resolution=resolution or 0.0,
        false_alarm=false_alarm,
        shape=shape,
        bg_kind=BACKGROUND_MODELS[background][0],
        precision=precision,
    )
    options = {
        "peaks": "auto" if auto else peaks,
        "max_peaks": peaks if auto else None,
        "shape": shape,
        "background": background,
        "estimator": estimator,
        "precision": precision,
        "device": used,
        "signal_range": None if signal_range is None else [float(v) for v in signal_range],
        "max_iterations": max_iterations,
        "tolerance": tolerance,
        "despike": despike,
        "counts": None if counts is None else bool(counts),
        "resolution": resolution,
        "false_alarm": false_alarm,
    }
    return spec, options


def _fit_lazy(cube, spec, chunk_bytes):
    grid = engine.chunk_plan(
        cube.nav_shape,
        cube.x.size,
        device=spec.device,
        chunk_bytes=chunk_bytes,
        stored=engine.stored_chunks(cube.data),
    )
    _, spec = engine.workers_for(spec, int(np.prod([len(c) for c in grid])))
    fn = functools.partial(fit_block, x=cube.x, spec=spec)
    return map_spectra(fn, cube.data, spec.n_outputs, nav_chunks=grid)


def _fit_eager(cube, spec, chunk_bytes, progress, scheduler):
    data = cube.data
    if spec.device == "cuda" and scheduler is None:
        # One call: the CUDA launcher slabs the pixels itself and overlaps the copies of one
        # slab with the fit of another, which separate calls could not.
        flat = data.reshape(-1, data.shape[-1])
        return fit_block(flat, cube.x, spec).reshape(*cube.nav_shape, spec.n_outputs)
    grid = engine.chunk_plan(
        cube.nav_shape, cube.x.size, device=spec.device, chunk_bytes=chunk_bytes
    )
    todo = list(np.ndindex(*(len(c) for c in grid)))
    out = np.empty((*cube.nav_shape, spec.n_outputs))
    from tqdm.auto import tqdm

    with tqdm(
        total=out[..., 0].size, unit="px", desc="fit", disable=not progress or len(todo) < 2
    ) as bar:

        def done(idx, rows):
            out[resume.block_slices(grid, idx)] = rows
            bar.update(rows[..., 0].size)

        engine.fit_chunks(cube, spec, fit_block, grid, todo, done, scheduler=scheduler)
    return out
