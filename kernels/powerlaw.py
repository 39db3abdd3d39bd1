"""Subtract a fitted power-law background ``A (E / E_ref)**-r`` from whole spectra.

The fit itself is the engine's: :func:`hyperlum.kernels.pixel.fit_pixel` with no peak and the
power-law background (:mod:`hyperlum.kernels.backgrounds.power_law`), run over the fit window
by the CPU or the CUDA driver. What is left here is the step after it, over every channel of
the spectrum, which the one-pixel fit does not see: ``y - A exp(-r t)`` with
``t = ln(E / E_ref)``, computed once per chunk (:func:`log_axis`). Its code is one plain
function, :func:`subtract_block`, compiled for the CPU here and for CUDA in
:mod:`hyperlum.kernels.powerlaw_cuda`.
"""

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from hyperlum.kernels.compile import jit_functions


def log_axis(x, xref):
    """``t = ln(x / xref)`` per channel; NaN at ``x <= 0``, where no power law is defined.

    Examples
    --------
    >>> log_axis(np.array([-1.0, 1.0, 4.0]), 2.0).round(4).tolist()
    [nan, -0.6931, 0.6931]
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, np.log(np.where(x > 0, x, 1.0) / xref), np.nan)


#: Channels per block: the first one's power is exact (``math.exp``), the others are stepped
#: from it by :func:`exp_small` where ``|r dt|`` stays within :data:`SMALL` over the block.
BLOCK = 32
SMALL = 0.25


def exp_small(z):
    """``exp(z)`` for ``|z| <= SMALL``: Taylor to degree 12 (remainder < 3e-18 relative).

    Plain arithmetic, so a loop over channels vectorises; ``math.exp`` is a scalar library
    call on a CPU (measured: a block of 32 channels costs a third).

    Examples
    --------
    >>> z = np.linspace(-SMALL, SMALL, 101)
    >>> float(np.max(np.abs(exp_small(z) / np.exp(z) - 1))) < 1e-15
    True
    """
    p = 1.0 / 479001600.0
    for k in (39916800.0, 3628800.0, 362880.0, 40320.0, 5040.0, 720.0, 120.0, 24.0, 6.0, 2.0):
        p = p * z + 1.0 / k
    return (p * z + 1.0) * z + 1.0


def subtract_block(data, t, a, r, sub, pix, i0, i1):
    """``sub[pix, i] = data[pix, i] - a exp(-r t[i])`` over channels ``i0:i1`` (a block of at
    most :data:`BLOCK`); NaN throughout when ``a`` or ``r`` is not finite (the fit failed),
    ``data`` as it is where ``t`` is NaN (``x <= 0``).

    Plain Python, compiled for the CPU and for CUDA from this one source
    (:func:`hyperlum.kernels.compile.jit_functions`): the two subtract alike to the last
    bits but for the ``exp`` of the block's first channel.
    """
    if not (math.isfinite(a) and math.isfinite(r)):
        for i in range(i0, i1):
            sub[pix, i] = math.nan
        return
    base = t[i0]
    # t is monotonic (NaN only at an end, x <= 0): finite ends, finite block
    if abs(r) * abs(t[i1 - 1] - base) <= SMALL:
        v0 = a * math.exp(-r * base)
        for i in range(i0, i1):
            sub[pix, i] = float(data[pix, i]) - v0 * exp_small(-r * (t[i] - base))
    else:
        for i in range(i0, i1):
            y = float(data[pix, i])
            if math.isfinite(t[i]):
                y -= a * math.exp(-r * t[i])
            sub[pix, i] = y


_cpu_block = jit_functions((exp_small, subtract_block), numba.njit(inline="always"))[
    "subtract_block"
]


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _rows(data, t, params, sub, start, stop):
    n = data.shape[1]
    for pix in range(start, stop):
        a = params[0, pix]
        r = params[1, pix]
        for i0 in range(0, n, BLOCK):
            _cpu_block(data, t, a, r, sub, pix, i0, min(i0 + BLOCK, n))


def subtract_chunk(data, x, xref, params, sub, threads=None):
    """``sub = data - A (x / xref)**-r`` for every row of ``data`` (pixels x channels).

    ``params`` holds ``A`` (the background at ``xref``) and ``r`` in rows 0 and 1, one column
    per pixel: the first rows of the engine's output. Channels at ``x <= 0`` keep their value
    (HyperSpy's ``PowerLaw`` is zero there); a pixel with a NaN parameter (its fit failed) is
    NaN throughout. ``data`` is C-ordered, any real dtype numba reads; ``sub`` a float array
    of its shape. Rows are split over ``threads`` (default: the CPUs this process may use).

    Examples
    --------
    >>> e = np.array([-10.0, 500.0, 600.0, 700.0])
    >>> y = np.stack([2e10 * np.maximum(e, 1) ** -3.0, np.ones(4)])
    >>> sub = np.empty_like(y)
    >>> params = np.array([[2e10 * 600.0**-3.0, np.nan], [3.0, 3.0]])
    >>> _ = subtract_chunk(y, e, 600.0, params, sub, threads=1)
    >>> bool(sub[0, 0] == y[0, 0]), float(np.abs(sub[0, 1:]).max()) < 1e-9, sub[1].tolist()
    (True, True, [nan, nan, nan, nan])
    """
    t = log_axis(x, xref)
    params = np.ascontiguousarray(params, dtype=np.float64)
    npix = data.shape[0]
    threads = threads or len(os.sched_getaffinity(0))
    nblocks = max(1, min(npix // 64, 4 * threads))
    bounds = [b * npix // nblocks for b in range(nblocks + 1)]
    if nblocks == 1 or threads == 1:
        _rows(data, t, params, sub, 0, npix)
        return sub
    with ThreadPoolExecutor(threads) as pool:
        list(
            pool.map(
                lambda b: _rows(data, t, params, sub, bounds[b], bounds[b + 1]), range(nblocks)
            )
        )
    return sub
