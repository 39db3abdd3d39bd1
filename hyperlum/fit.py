"""``hyperlum.fit``: one Gaussian (or up to four) plus background fitted at every pixel.

Three tiers, as in kikuchipy: the one-pixel fit (:mod:`hyperlum.kernels.pixel`), one chunk of
pixels (:func:`fit_block`, what ``dask.array.map_blocks`` runs), and :func:`fit`, which checks
the arguments, chunks the cube over its navigation axes (the spectral axis is never split) and
assembles a :class:`~hyperlum.result.FitResult`.
"""

import functools
import os
import sys
from typing import NamedTuple

import numpy as np

from hyperlum import _backend
from hyperlum._validate import choice, integer, positive
from hyperlum.cube import as_cube
from hyperlum.kernels.constants import BACKGROUNDS, ESTIMATORS, MAX_PEAKS, n_outputs, n_params
from hyperlum.result import FitResult

#: Default size of the chunks the cube is cut into (input bytes per chunk).
CHUNK_BYTES = 32 * 2**20
#: The same on the GPU: a chunk must hold enough pixels to fill the GPU (131,072 pixels at
#: 1024 channels); the CUDA launcher pipelines it in slabs.
GPU_CHUNK_BYTES = 2**30


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

    @property
    def n_params(self):
        return n_params(self.peaks, self.background)

    @property
    def n_outputs(self):
        return n_outputs(self.peaks, self.background)


def fit_block(block, x, spec):
    """Fit one chunk: ``block[..., channel]`` -> ``out[..., row]`` (rows of the kernel output).

    This is the function ``map_blocks`` runs. On the CPU path the block is read as float32 or
    float64 (:func:`kernel_dtype`); on the CUDA path it goes to the GPU in its own dtype (e.g.
    uint16) and the kernel converts it there; a CuPy block is fitted where it lies. The maps
    come back as numpy.
    """
    nav = block.shape[:-1]
    if spec.device == "cuda":
        from hyperlum.kernels import cuda

        out = cuda.fit_chunk(
            block.reshape(-1, block.shape[-1]),
            x,
            spec.peaks,
            spec.background,
            spec.estimator,
            spec.max_iterations,
            spec.tolerance,
            spec.saturation,
        )
        return out.T.reshape(*nav, spec.n_outputs)
    if hasattr(block, "__cuda_array_interface__") and hasattr(block, "get"):
        block = block.get()  # a CuPy block fitted on the CPU
    flat = np.ascontiguousarray(block.reshape(-1, block.shape[-1]), dtype=kernel_dtype(block))
    out = np.empty((spec.n_outputs, flat.shape[0]))
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
    )
    return out.T.reshape(*nav, spec.n_outputs)


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


def _pixels_per_chunk(n_channels, itemsize, chunk_bytes):
    return max(1, int(chunk_bytes // max(1, n_channels * max(itemsize, 8))))


def fit(
    data,
    *,
    axis=None,
    peaks=1,
    background="constant",
    estimator="lse",
    device="auto",
    signal_range=None,
    max_iterations=50,
    tolerance=1e-7,
    saturation=None,
    chunk_bytes=None,
    progress=None,
):
    """Fit Gaussian peak(s) plus a background to the spectrum of every pixel.

    Parameters
    ----------
    data : hyperspy Signal1D, numpy.ndarray or dask.array.Array
        Spectrum image, line scan or single spectrum, lazy or not. Arrays have the spectral
        axis last. Float or integer counts.
    axis : array_like, optional
        Channel positions for array input (ignored for a signal). Default: channel indices.
    peaks : int
        Number of Gaussians, 1 to 4. They come out sorted by centre.
    background : {"constant", "none", "linear"}
        Background under the peaks; a linear one is ``b0 + slope * (x - middle of range)``.
    estimator : {"lse", "mle"}
        Least squares, or Poisson maximum likelihood (counts; negative values count as zero).
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
        Size of the chunks the navigation axes are cut into (bytes of float64 spectra).
        Default: 32 MiB on the CPU, 1 GiB on the GPU.
    progress : bool, optional
        Show a progress bar for an eager fit on the CPU; default: for fits of 65,536 pixels
        or more. (On the GPU an eager fit is one pipelined call.)

    Returns
    -------
    FitResult
        Maps by name (``res["centre"]``): ``amplitude``, ``centre``, ``sigma``, ``fwhm``,
        ``intensity`` (area), ``background`` (and ``background_slope``), each with ``_std``,
        plus ``chisq`` (reduced), ``state``, ``converged`` and ``iterations``. With several
        peaks the peak maps are numbered: ``centre_1``, ``centre_2``, ... Lazy input gives
        lazy maps.

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
    >>> bool(res["converged"].data.all())
    True
    """
    if chunk_bytes is not None:
        chunk_bytes = positive("chunk_bytes", chunk_bytes)
    cube = as_cube(data, axis).crop(signal_range)
    spec, options = plan(
        cube,
        peaks=peaks,
        background=background,
        estimator=estimator,
        device=device,
        signal_range=signal_range,
        max_iterations=max_iterations,
        tolerance=tolerance,
        saturation=saturation,
    )
    if chunk_bytes is None:
        chunk_bytes = GPU_CHUNK_BYTES if spec.device == "cuda" else CHUNK_BYTES
    if cube.lazy:
        stacked = _fit_lazy(cube, spec, chunk_bytes)
    else:
        stacked = _fit_eager(cube, spec, chunk_bytes, progress)
    return FitResult.from_stacked(stacked, spec.peaks, spec.background, cube, options)


def plan(
    cube,
    *,
    peaks=1,
    background="constant",
    estimator="lse",
    device="auto",
    signal_range=None,
    max_iterations=50,
    tolerance=1e-7,
    saturation=None,
    label=str,
):
    """Check the fit options against a cube; say what the kernels will be asked to do.

    Parameters
    ----------
    cube : hyperlum.cube.Cube
        The data to fit, already restricted to ``signal_range``.
    peaks, background, estimator, device, max_iterations, tolerance, saturation
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
    >>> from hyperlum.cube import as_cube
    >>> spec, options = plan(as_cube(np.zeros((3, 100), np.uint16)), device="cpu")
    >>> spec.n_params, spec.saturation, options["estimator"]
    (4, 65535.0, 'lse')
    """
    peaks = integer(label("peaks"), peaks, 1, MAX_PEAKS)
    choice(label("background"), background, tuple(BACKGROUNDS))
    choice(label("estimator"), estimator, tuple(ESTIMATORS))
    choice(label("device"), device, _backend.DEVICES)
    max_iterations = integer(label("max_iterations"), max_iterations, 1, 10_000)
    tolerance = positive(label("tolerance"), tolerance)
    m = n_params(peaks, BACKGROUNDS[background])
    if cube.x.size < m + 2:
        raise ValueError(
            f"the fit needs at least {m + 2} channels for {m} parameters, "
            f"the spectrum has {cube.x.size}"
        )
    used = _backend.resolve_device(device)
    spec = FitSpec(
        peaks,
        BACKGROUNDS[background],
        ESTIMATORS[estimator],
        max_iterations,
        tolerance,
        _saturation(saturation, cube.data.dtype),
        used,
    )
    options = {
        "peaks": peaks,
        "background": background,
        "estimator": estimator,
        "device": used,
        "signal_range": None if signal_range is None else [float(v) for v in signal_range],
        "max_iterations": max_iterations,
        "tolerance": tolerance,
    }
    return spec, options


def _fit_lazy(cube, spec, chunk_bytes):
    import dask.array as da

    data = cube.data
    nav = data.ndim - 1
    per = _pixels_per_chunk(data.shape[-1], data.dtype.itemsize, chunk_bytes)
    chunks = da.core.normalize_chunks(
        ("auto",) * nav + (-1,),
        data.shape,
        limit=per * data.shape[-1] * data.dtype.itemsize,
        dtype=data.dtype,
    )
    data = data.rechunk(chunks)
    if spec.device == "cpu" and np.prod(data.numblocks[:-1]) >= len(os.sched_getaffinity(0)):
        spec = spec._replace(threads=1)
    return da.map_blocks(
        functools.partial(fit_block, x=cube.x, spec=spec),
        data,
        dtype=np.float64,
        chunks=data.chunks[:-1] + ((spec.n_outputs,),),
        meta=np.empty((0,) * data.ndim, dtype=np.float64),
    )


def _fit_eager(cube, spec, chunk_bytes, progress):
    data = cube.data
    nch = data.shape[-1]
    flat = data.reshape(-1, nch)
    npix = flat.shape[0]
    per = _pixels_per_chunk(nch, data.dtype.itemsize, chunk_bytes)
    if spec.device == "cuda":
        # One call: the CUDA launcher slabs the pixels itself and overlaps the copies of one
        # slab with the fit of another, which separate calls could not.
        return fit_block(flat, cube.x, spec).reshape(*cube.nav_shape, spec.n_outputs)
    out = np.empty((npix, spec.n_outputs))
    starts = range(0, npix, per)
    if progress is None:
        progress = npix >= 65536
    if progress and len(starts) > 1:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="fit", unit="chunk", file=sys.stderr)
    for s in starts:
        out[s : s + per] = fit_block(flat[s : s + per], cube.x, spec)
    return out.reshape(*cube.nav_shape, spec.n_outputs)
