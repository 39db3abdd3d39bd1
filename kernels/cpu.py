"""CPU driver: the shared one-pixel fit compiled with ``numba.njit``, threads over pixel blocks.

The compiled loop releases the GIL; :func:`fit_chunk` splits the pixels of a chunk over a pool
of threads. (A ``prange`` loop was measured 4x slower per thread here: the parallel lowering
hands the rows to the pixel fit as non-contiguous arrays.)
"""

import functools
import hashlib
import inspect
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from hyperlum.kernels import compile as _compile
from hyperlum.kernels import constants
from hyperlum.kernels.compile import jit_all
from hyperlum.kernels.constants import MAX_PARAMS, N_MATRICES, N_VECTORS

#: Compiler options of the shared maths. ``error_model="numpy"``: a division by zero gives
#: inf/nan as on a GPU, instead of a check and a branch per division, which kept loops with a
#: division (the Poisson terms, the logarithm) from vectorising.
JIT_OPTIONS = {"error_model": "numpy", "fastmath": {"contract", "arcp", "reassoc"}}

_fns = jit_all(numba.njit(cache=True, nogil=True, **JIT_OPTIONS))
_fit_pixel = _fns["fit_pixel"]
_uniform_step = _fns["uniform_step"]

#: Digest of the kernel sources. Numba's disk cache checks only the file of the cached function;
#: the row loops capture this digest, so an edit of any shared kernel function invalidates them.
SOURCE_DIGEST = int(
    hashlib.sha256(
        "".join(inspect.getsource(m) for m in (constants, _compile, *_compile.MODULES)).encode()
    ).hexdigest()[:15],
    16,
)

#: Channels per block in the normal-equation sums: 64 measured 1.5x faster than 14, and 128
#: (with the recurrence on chains) ~1.4x faster per pass than 64 (thread CPU time, 1024 channels).
CHANNEL_BLOCK = 128


@functools.cache
def _rows_kernel(npk, nbg, est):
    """The row loop for one model and estimator, compiled with those as constants.

    Constant sizes let LLVM unroll the small parameter loops: 2.5x faster than one loop taking
    them as arguments (measured on 1 Gaussian + constant, 1024 channels).
    """

    digest = SOURCE_DIGEST

    @numba.njit(cache=True, nogil=True)
    def rows(data, x, max_iter, tol, saturation, out, start, stop):
        if digest < 0:  # never true: ties the disk cache entry to the kernel sources
            return
        M = np.empty((N_MATRICES, MAX_PARAMS, CHANNEL_BLOCK))
        V = np.empty((N_VECTORS, CHANNEL_BLOCK))
        h = _uniform_step(x)
        for pix in range(start, stop):
            _fit_pixel(out, pix, data[pix], x, h, npk, nbg, est, max_iter, tol, saturation, M, V)

    return rows


def fit_chunk(data, x, npk, nbg, est, max_iter, tol, saturation, out, threads=None):
    """Fit every row of ``data`` (pixels x channels, float32 or float64, C order) into ``out``.

    ``threads`` defaults to the CPUs this process may use. See
    :func:`hyperlum.kernels.pixel.fit_pixel` for the rows of ``out``.
    """
    npix = data.shape[0]
    threads = threads or len(os.sched_getaffinity(0))
    nblocks = max(1, min(npix // 16, 4 * threads))
    bounds = [b * npix // nblocks for b in range(nblocks + 1)]
    rows = _rows_kernel(npk, nbg, est)
    args = (data, x, max_iter, tol, saturation, out)
    if nblocks == 1 or threads == 1:
        rows(*args, 0, npix)
        return out
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda b: rows(*args, bounds[b], bounds[b + 1]), range(nblocks)))
    return out
