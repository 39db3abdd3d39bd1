"""CPU driver: the shared one-pixel fit compiled with ``numba.njit``, threads over pixel blocks.

The compiled loop releases the GIL; :func:`fit_chunk` splits the pixels of a chunk over a pool
of threads. (A ``prange`` loop was measured 4x slower per thread here: the parallel lowering
hands the rows to the pixel fit as non-contiguous arrays.)
"""

import functools
import hashlib
import inspect
import os
import types
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from hyperlum.kernels import backgrounds, constants, precision, shapes
from hyperlum.kernels import compile as _compile
from hyperlum.kernels.compile import jit_model
from hyperlum.kernels.constants import (
    MAX_PARAMS,
    N_MATRICES,
    N_TILE_ROWS,
    N_VECTORS,
    n_outputs,
)
from hyperlum.kernels.pixel import uniform_step
from hyperlum.kernels.precision import PRECISIONS, check_precision

#: Compiler options of the shared maths. ``error_model="numpy"``: a division by zero gives
#: inf/nan as on a GPU, instead of a check and a branch per division, which kept loops with a
#: division (the Poisson terms, the logarithm) from vectorising.
JIT_OPTIONS = {"error_model": "numpy", "fastmath": {"contract", "arcp", "reassoc"}}
_INLINE = frozenset(f.__name__ for f in _compile.CPU_INLINE)


def njit_shared(fn):
    """``numba.njit`` of one shared kernel function for the CPU: :data:`JIT_OPTIONS`, and
    inlined in numba's IR when named in :data:`hyperlum.kernels.compile.CPU_INLINE` (a decorator
    for :func:`~hyperlum.kernels.compile.jit_functions`).

    Examples
    --------
    >>> from hyperlum.kernels.compile import jit_model
    >>> fns = jit_model(njit_shared)
    >>> fns["smoothed_max"].targetoptions["inline"], fns["guess"].targetoptions["inline"]
    ('always', 'never')
    """
    inline = "always" if fn.__name__ in _INLINE else "never"
    return numba.njit(nogil=True, inline=inline, **JIT_OPTIONS)(fn)


#: Type of the normal-equation tiles' sums over a block of channels (``TILE`` of
#: :func:`hyperlum.kernels.lm.accumulate`) by background kernel module, whatever the working
#: precision. float32 sums take twice the lanes of the vector units: 15% less time a pass of
#: a float64 fit (1 Gaussian + constant, 1024 channels: 2.04 -> 1.74 us, thread CPU time); the
#: sums over blocks, the objective and the model stay in the working precision (see
#: ``docs/precision.md``). A power law keeps float64: its amplitude and exponent are so
#: correlated (``A E^-r`` over an energy window) that float32 sums moved the amplitude of
#: EELS background fits by 2.6e-6 of its value (the fits stop at a tolerance of 1e-10).
TILES = {"polynomial": np.float32, "power_law": np.float64}


def _tile(background, precision):
    """The tiles' type of a model: :data:`TILES`' in a float64 fit, float32 in a float32 one."""
    return TILES[background] if precision == "float64" else PRECISIONS[precision]


@functools.cache
def _model_functions(shape, background, precision):
    """The shared maths of one model compiled with :func:`njit_shared` (not cached on disk:
    only the row loops are, with the digest of every source they inline)."""
    bound = {"TILE": _tile(background, precision)}
    return jit_model(njit_shared, shape, background, precision, constants=bound)


def _sources():
    modules = [constants, _compile, precision, *_compile.MODULES, shapes, backgrounds]
    modules += [m for m, _ in shapes.SHAPES.values()] + list(backgrounds.MODULES.values())
    modules.append(shapes.common)
    return "".join(inspect.getsource(m) for m in dict.fromkeys(modules))


#: Digest of the kernel sources. Numba's disk cache checks only the file of the cached function;
#: the row loops capture this digest, so an edit of any shared kernel function invalidates them.
SOURCE_DIGEST = int(hashlib.sha256(_sources().encode()).hexdigest()[:15], 16)

#: Channels per block in the normal-equation sums: 64 measured 1.5x faster than 14, and 128
#: (with the recurrence on chains) ~1.4x faster per pass than 64 (thread CPU time, 1024 channels).
CHANNEL_BLOCK = 128


def _row_loop(npk, nbg, est, digest):
    def rows(data, x, h, max_iter, tol, saturation, out, start, stop):
        if digest < 0:  # never true: ties the disk cache entry to the kernel sources
            return
        M = np.empty((N_MATRICES, MAX_PARAMS, CHANNEL_BLOCK), REAL)  # noqa: F821 (bound
        V = np.empty((N_VECTORS, CHANNEL_BLOCK), REAL)  # noqa: F821 per model by _rows_kernel)
        T = np.empty((N_TILE_ROWS, CHANNEL_BLOCK), TILE)  # noqa: F821 (bound per model)
        for pix in range(start, stop):
            fit_pixel(  # noqa: F821
                out, pix, data[pix], x, h, npk, nbg, est, max_iter, tol, saturation, M, V, T
            )

    return rows


@functools.cache
def _rows_kernel(npk, nbg, est, shape="gaussian", background="polynomial", precision="float64"):
    """The row loop for one model, estimator and working precision, compiled with those as
    constants.

    Constant sizes let LLVM unroll the small parameter loops: 2.5x faster than one loop taking
    them as arguments (measured on 1 Gaussian + constant, 1024 channels). The model's
    ``fit_pixel`` is bound as a global of the loop, whose qualified name names the model: each
    model has its own disk-cache file, and the closure's constants (sizes, estimator, source
    digest) key its entries.
    """
    fit_pixel = _model_functions(shape, background, precision)["fit_pixel"]
    loop = _row_loop(npk, nbg, est, SOURCE_DIGEST)
    real = PRECISIONS[precision]
    tile = _tile(background, precision)
    namespace = dict(loop.__globals__, fit_pixel=fit_pixel, REAL=real, TILE=tile)
    rows = types.FunctionType(loop.__code__, namespace, "rows", None, loop.__closure__)
    rows.__qualname__ = f"rows_{shape}_{background}_{precision}"
    return numba.njit(cache=True, nogil=True)(rows)


def fit_chunk(
    data,
    x,
    npk,
    nbg,
    est,
    max_iter,
    tol,
    saturation,
    out,
    threads=None,
    *,
    shape="gaussian",
    background="polynomial",
    precision="float64",
):
    """Fit every row of ``data`` (pixels x channels, float32 or float64, C order) into ``out``.

    ``threads`` defaults to the CPUs this process may use. ``shape`` names the peak shape (a
    key of :data:`hyperlum.kernels.shapes.SHAPES`), ``background`` the background's kernel
    module (``"polynomial"`` with ``nbg`` terms, or ``"power_law"``), ``precision`` the
    working precision of the maths (``"float64"`` or ``"float32"``; ``out`` is float64
    either way). See :func:`hyperlum.kernels.pixel.fit_pixel` for the rows of ``out``.
    """
    real = PRECISIONS[check_precision(precision)]
    npix = data.shape[0]
    # the row loop writes without bounds checks: a wrong size would corrupt memory
    want = (n_outputs(npk, nbg, shapes.get_shape(shape).n_params), npix)
    if data.ndim != 2 or np.shape(x) != (data.shape[1],):
        raise ValueError(
            f"data must be pixels x channels with x of one value per channel, got "
            f"data {data.shape} and x {np.shape(x)}"
        )
    if out.shape != want or out.dtype != np.float64:
        raise ValueError(f"out must be float64 of shape {want}, got {out.dtype} {out.shape}")
    threads = threads or len(os.sched_getaffinity(0))
    nblocks = max(1, min(npix // 16, 4 * threads))
    bounds = [b * npix // nblocks for b in range(nblocks + 1)]
    rows = _rows_kernel(npk, nbg, est, shape, background, precision)
    x64 = np.ascontiguousarray(x, dtype=np.float64)
    h = real(uniform_step(x64))
    args = (data, x64.astype(real, copy=False), h, max_iter, real(tol), real(saturation), out)
    if nblocks == 1 or threads == 1:
        rows(*args, 0, npix)
        return out
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda b: rows(*args, bounds[b], bounds[b + 1]), range(nblocks)))
    return out
