"""The power-law subtraction on the GPU: :func:`hyperlum.kernels.powerlaw.subtract_block`,
the CPU's code, compiled as a CUDA device function
(:func:`hyperlum.kernels.compile.jit_functions`).

Its own module, so that the CPU path does not import ``numba.cuda``; ``cuda`` is a module
global because numba's CUDA simulator swaps such globals for its per-kernel fake.
"""

import functools

import numpy as np
from numba import cuda

from hyperlum.kernels.compile import jit_functions
from hyperlum.kernels.powerlaw import BLOCK, exp_small, log_axis, subtract_block

# Host-side calls bound once: while a simulated kernel runs, the simulator's fake replaces the
# module global ``cuda``, which another host thread (a dask chunk) would otherwise call into.
_to_device = cuda.to_device
_device_array = cuda.device_array
_jit = cuda.jit

#: Threads per CUDA block of :func:`subtract_chunk_cuda`: (channel blocks, pixels).
CUDA_THREADS = (8, 32)


@functools.cache
def _cuda_kernel():
    """The subtraction on the GPU: one thread per pixel and block of :data:`BLOCK` channels,
    running :func:`~hyperlum.kernels.powerlaw.subtract_block` as a CUDA device function."""
    block = jit_functions((exp_small, subtract_block), _jit(device=True))["subtract_block"]

    @_jit
    def kernel(data, t, params, sub):
        b, pix = cuda.grid(2)
        n = data.shape[1]
        i0 = b * BLOCK
        if pix < data.shape[0] and i0 < n:
            block(data, t, params[0, pix], params[1, pix], sub, pix, i0, min(i0 + BLOCK, n))

    return kernel


def subtract_chunk_cuda(data, x, xref, params, sub):
    """``sub = data - A (x / xref)**-r`` on the GPU, the rule of
    :func:`~hyperlum.kernels.powerlaw.subtract_chunk`.

    ``data``, ``params`` and ``sub`` may be device arrays (CuPy, numba), used where they lie,
    or host arrays, copied to the device (and ``sub`` back). ``sub``: float32 or float64.

    Examples
    --------
    >>> import os
    >>> if cuda.is_available() or os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    ...     e = np.array([-10.0, 500.0, 600.0, 700.0])
    ...     y = np.stack([2e10 * np.maximum(e, 1) ** -3.0, np.ones(4)])
    ...     params = np.array([[2e10 * 600.0**-3.0, np.nan], [3.0, 3.0]])
    ...     sub = subtract_chunk_cuda(y, e, 600.0, params, np.empty_like(y))
    ...     ok = bool(sub[0, 0] == y[0, 0]) and float(np.abs(sub[0, 1:]).max()) < 1e-9
    ...     ok = ok and bool(np.isnan(sub[1]).all())
    ... else:
    ...     ok = True
    >>> ok
    True
    """
    kernel = _cuda_kernel()
    npix, n = data.shape
    if npix == 0 or n == 0:
        return sub

    def device(a):
        return a if hasattr(a, "__cuda_array_interface__") else _to_device(a)

    host_sub = not hasattr(sub, "__cuda_array_interface__")
    d_sub = _device_array(sub.shape, sub.dtype) if host_sub else sub
    if not hasattr(params, "__cuda_array_interface__"):
        params = np.ascontiguousarray(params, dtype=np.float64)
    tx, ty = CUDA_THREADS
    grid = (-(-n // BLOCK) + tx - 1) // tx, (npix + ty - 1) // ty
    kernel[grid, CUDA_THREADS](device(data), device(log_axis(x, xref)), device(params), d_sub)
    if host_sub:
        d_sub.copy_to_host(sub)
    return sub
