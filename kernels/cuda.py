"""CUDA driver: the shared one-pixel fit compiled with ``numba.cuda.jit(device=True)``.

One thread fits one pixel, running :func:`hyperlum.kernels.pixel.fit_pixel`, the very function
the CPU driver runs, on a column of a channel-major copy of the chunk (neighbouring threads read
neighbouring addresses: coalesced loads). The counts stay in their native dtype (e.g. uint16)
all the way to the kernel, which converts each value to float64 as it reads it: half the
host-to-device bytes of float32 for 16-bit detectors. Kernels are compiled per model,
estimator, input dtype and working precision, with those as constants (see
:data:`UNROLLED_PEAKS`). The working precision is float32 by default (``precision=``, see
:func:`hyperlum.kernels.compile.jit_functions`): workstation GPUs run float64 at 1/32 to 1/64
of the float32 rate. The maps come back as float64 either way.

:func:`fit_chunk` moves a host chunk to the device in slabs of pixels (:data:`SLAB_BYTES`),
cycled over a few CUDA streams (:data:`STREAMS`), each with its own page-locked (pinned)
staging buffers and device buffers: while one slab is fitted, the next is copied in and the
maps of the previous one are copied out. At most :data:`CONCURRENT_CHUNKS` chunks (dask
threads) are on the GPU at once, each on its own set of lanes, so that one chunk's copies also
overlap another's fit while pinned and device memory stay bounded. Device buffers are CuPy
arrays when CuPy is installed (numba kernels take them through ``__cuda_array_interface__``,
no copy) and numba device arrays otherwise, which is also what numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) runs: the tests prove the kernels and the launcher there, and
:func:`compile_ptx` compiles the kernels to PTX without a GPU.
"""

import contextlib
import functools
import os
import re
import subprocess
import threading
from pathlib import Path

import numba
import numpy as np
from numba import cuda, types

from hyperlum.kernels.backgrounds import BACKGROUNDS
from hyperlum.kernels.compile import check_precision, jit_model
from hyperlum.kernels.constants import (
    ESTIMATORS,
    MAX_PEAKS,
    N_MATRICES,
    N_VECTORS,
    n_outputs,
    n_params,
)
from hyperlum.kernels.pixel import uniform_step
from hyperlum.kernels.shapes import get_shape

#: Threads per block of the fit kernel.
THREADS = 128
#: Pixels of one slab: the unit of copy / fit pipelining (input bytes, at most).
SLAB_BYTES = 128 * 2**20
#: CUDA streams (slabs in flight) per calling thread.
STREAMS = 3
#: Tile of the transpose kernel (TILE x TILE elements, TILE x ROWS threads).
TILE = 32
ROWS = 8
TILE_PAD = TILE + 1  # padded row: no shared-memory bank conflicts
#: Input dtypes the kernels read natively; others are converted to float64 on the host.
DTYPES = ("uint8", "uint16", "uint32", "int8", "int16", "int32", "float32", "float64")

_float64 = types.float64
#: numba's type of the floats of each working precision.
_REAL = {"float32": types.float32, "float64": types.float64}

# Host-side numba.cuda calls, bound once: while a simulated kernel runs, numba's simulator swaps
# every module global that *is* numba.cuda (here: ``cuda``) for its per-kernel fake, which a
# second host thread would otherwise call into.
_jit = cuda.jit
_stream = cuda.stream
_pinned_array = cuda.pinned_array
_device_array = cuda.device_array
_external_stream = cuda.external_stream
_as_cuda_array = getattr(cuda, "as_cuda_array", None)  # not in the simulator


@functools.cache
def _device_functions(shape, background, precision):
    # one segment per smoothed-residual scan: four took a 1-peak kernel from 96 to 130
    # registers a thread (sm_90), and a GPU hides a thread's latency behind other threads
    return jit_model(
        _jit(device=True), shape, background, precision, constants={"SCAN_SEGMENTS": 1}
    )


def _kernel_name(shape, npk, background, est, dtype, precision):
    """``fit_1peak_constant_lse_uint16_f32`` (a Gaussian reading uint16 counts, computing in
    float32), ``fit_lorentzian_1peak_...``."""
    es = {v: k for k, v in ESTIMATORS.items()}[est]
    model = "" if shape == "gaussian" else f"{shape}_"
    bits = precision.removeprefix("float")
    return f"fit_{model}{npk}peak_{background}_{es}_{np.dtype(dtype).name}_f{bits}"


#: Kernels for up to this many peaks take the peak count as a compile-time constant: fully
#: unrolled, their scratch lives in registers (no stack, no spills at 3-5 parameters). Above
#: it the count is a kernel argument: unrolling 6+ parameter loops needs more than the 255
#: registers a thread has, and ptxas spills; not unrolled, 120 registers and no spills.
UNROLLED_PEAKS = 1


def _source_key(npk):
    """The peak count a kernel is compiled for: itself if unrolled, else -1 (an argument)."""
    return npk if npk <= UNROLLED_PEAKS else -1


def channel_block(npk, nbg, peak_params=3):
    """Channels per block of the normal-equation sums in a kernel (``B`` of the scratch), and
    rows of its scratch matrices: the parameters of the model.

    The unrolled kernels (``npk >= 0``) take their parameter count (the blocks' derivatives
    then fit in registers); the others (``npk == -1``) that of ``MAX_PEAKS`` peaks.
    """
    return n_params(npk if npk >= 0 else MAX_PEAKS, nbg, peak_params)


@functools.cache
def _fit_source(shape, background, npk, nbg, est, precision):
    """The fit kernel for one model, estimator and working precision, with those as
    compile-time constants.

    ``npk == -1`` makes the peak count the kernel's ``n_peaks`` argument instead. The channel
    positions ``x``, their uniform step ``h`` (0 if not uniform, computed once on the host),
    ``tol`` and ``saturation`` come in the working precision.
    """
    fit_pixel = _device_functions(shape, background, precision)["fit_pixel"]
    block = channel_block(npk, nbg, get_shape(shape).n_params)
    tile_rows = block + 2  # the tiles' weights, weighted residuals and derivatives
    real = _REAL[precision]

    def fit_kernel(data, x, h, n_peaks, max_iter, tol, saturation, out):
        pix = cuda.grid(1)
        if pix < data.shape[1]:
            M = cuda.local.array((N_MATRICES, block, block), real)
            V = cuda.local.array((N_VECTORS, block), real)
            T = cuda.local.array((tile_rows, block), real)
            y = data[:, pix]
            k = npk if npk >= 0 else n_peaks  # a constant once numba prunes the dead branch
            fit_pixel(out, pix, y, x, h, k, nbg, est, max_iter, tol, saturation, M, V, T)

    return fit_kernel


def _fit_signature(dtype, precision):
    c2 = types.Array(numba.from_dtype(np.dtype(dtype)), 2, "C")
    real = _REAL[precision]
    return types.void(
        c2,
        types.Array(real, 1, "C"),
        real,
        types.int64,
        types.int64,
        real,
        real,
        types.Array(_float64, 2, "C"),
    )


@functools.cache
def _transpose_source(dtype):
    """``dst[j, i] = src[i, j]`` through a shared-memory tile (both sides coalesced)."""
    nbtype = numba.from_dtype(np.dtype(dtype))

    def transpose(src, dst):
        tile = cuda.shared.array((TILE, TILE_PAD), nbtype)
        bx = cuda.blockIdx.x * TILE
        by = cuda.blockIdx.y * TILE
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        for k in range(0, TILE, ROWS):
            r = by + ty + k
            c = bx + tx
            if r < src.shape[0] and c < src.shape[1]:
                tile[ty + k, tx] = src[r, c]
        cuda.syncthreads()
        for k in range(0, TILE, ROWS):
            r = bx + ty + k
            c = by + tx
            if r < dst.shape[0] and c < dst.shape[1]:
                dst[r, c] = tile[tx, ty + k]

    return transpose


def _transpose_signature(dtype):
    c2 = types.Array(numba.from_dtype(np.dtype(dtype)), 2, "C")
    return types.void(c2, c2)


def _fit_kernel(npk, nbg, est, dtype, shape, background, precision):
    return _compiled_fit_kernel(shape, background, _source_key(npk), nbg, est, dtype, precision)


@functools.cache
def _compiled_fit_kernel(shape, background, npk, nbg, est, dtype, precision):
    source = _fit_source(shape, background, npk, nbg, est, precision)
    return _jit(_fit_signature(dtype, precision))(source)


@functools.cache
def _transpose_kernel(dtype):
    return _jit(_transpose_signature(dtype))(_transpose_source(dtype))


# --------------------------------------------------------------------------------------------
# Device memory: CuPy when it is there, numba's device arrays otherwise (and in the simulator).


def _cupy():
    if numba.config.ENABLE_CUDASIM:
        return None
    try:
        import cupy
    except ImportError:
        return None
    return cupy


class _NumbaMemory:
    """Streams, pinned host buffers and device arrays from numba.cuda."""

    name = "numba"

    def stream(self):
        return _stream()

    def launch_stream(self, stream):
        return stream

    def pinned(self, shape, dtype):
        return _pinned_array(shape, dtype)

    def empty(self, shape, dtype, stream):
        return _device_array(shape, dtype, stream=stream)

    def to_device(self, host, dev, stream):
        dev.copy_to_device(host, stream=stream)

    def to_host(self, dev, host, stream):
        dev.copy_to_host(host, stream=stream)

    def view(self, dev):
        return dev


class _CupyMemory:
    """Streams, pinned host buffers and device arrays from CuPy (its memory pools)."""

    name = "cupy"

    def __init__(self, cupy):
        import cupyx

        self.cp = cupy
        self.cupyx = cupyx

    def stream(self):
        return self.cp.cuda.Stream(non_blocking=True)

    def launch_stream(self, stream):
        return _external_stream(stream.ptr)

    def pinned(self, shape, dtype):
        return self.cupyx.empty_pinned(shape, dtype)

    def empty(self, shape, dtype, stream):
        with stream:
            return self.cp.empty(shape, dtype)

    def to_device(self, host, dev, stream):
        dev.set(host, stream=stream)

    def to_host(self, dev, host, stream):
        dev.get(stream=stream, out=host, blocking=False)  # CuPy >= 13: asynchronous

    def view(self, dev):
        # Zero-copy numba view; no synchronisation on the array's stream (ours, in order).
        return _as_cuda_array(dev, sync=False)


def _memory():
    cp = _cupy()
    return _NumbaMemory() if cp is None else _CupyMemory(cp)


class _Lane:
    """One stream with its staging buffers, grown on demand; slabs cycle over the lanes."""

    def __init__(self, mem):
        self.mem = mem
        self.stream = mem.stream()
        self.bufs = {}
        self.pending = None  # (host destination, pinned maps) of the slab in flight

    def array(self, key, shape, dtype, host):
        """A C-contiguous ``shape`` view of a flat pinned (``host=True``) or device buffer.

        Buffers are kept per key and reused while large enough.
        """
        dtype = np.dtype(dtype)
        size = int(np.prod(shape))
        have = self.bufs.get(key)
        if have is None or have.dtype != dtype or have.shape[0] < size:
            if host:
                have = self.mem.pinned((size,), dtype)
            else:
                have = self.mem.empty((size,), dtype, self.stream)
            self.bufs[key] = have
        return have[:size].reshape(shape)

    def finish(self):
        """Wait for this lane's slab in flight and move its maps to their destination."""
        if self.pending is not None:
            self.stream.synchronize()
            dest, pinned = self.pending
            dest[...] = pinned
            self.pending = None


#: Chunks fitted at once in this process, each on its own set of lanes: while one drains
#: (last fit, maps back), the next one's first slab is already copied in. The cap bounds the
#: pinned and device memory however many dask threads fit chunks.
CONCURRENT_CHUNKS = 2
# numba's simulator runs kernels from one host thread at a time only.
_SLOTS = threading.BoundedSemaphore(1 if numba.config.ENABLE_CUDASIM else CONCURRENT_CHUNKS)
_FREE = []  # lane sets not in use
_FREE_LOCK = threading.Lock()


@contextlib.contextmanager
def _lane_set(count):
    """A set of ``count`` lanes for one chunk, waiting while ``CONCURRENT_CHUNKS`` are busy."""
    mem_name = "numba" if _cupy() is None else "cupy"
    with _SLOTS:
        with _FREE_LOCK:
            lanes = _FREE.pop() if _FREE else []
        if lanes and lanes[0].mem.name != mem_name:
            lanes = []
        if len(lanes) < count:
            mem = lanes[0].mem if lanes else _memory()
            lanes = lanes + [_Lane(mem) for _ in range(count - len(lanes))]
        try:
            yield lanes[:count]
        finally:
            with _FREE_LOCK:
                _FREE.append(lanes)


def _native(dtype):
    dtype = np.dtype(dtype)
    native = dtype.newbyteorder("=")
    return native if native.name in DTYPES else np.dtype(np.float64)


def slab_pixels(n_channels, itemsize, slab_bytes=None):
    """Pixels per slab for ``n_channels`` of ``itemsize`` bytes (at least one)."""
    slab_bytes = SLAB_BYTES if slab_bytes is None else slab_bytes
    return max(1, int(slab_bytes // (n_channels * itemsize)))


def _launch_fit(lane, kernel, transpose, d_in, d_x, args, nout):
    """Transpose one device slab (pixels x channels) and fit it, on ``lane``'s stream.

    ``args`` are the fit kernel's arguments after ``x``.
    """
    mem = lane.mem
    n, nch = d_in.shape
    d_cm = lane.array("cm", (nch, n), d_in.dtype, host=False)
    d_out = lane.array("out", (nout, n), np.float64, host=False)
    s = mem.launch_stream(lane.stream)
    grid_t = ((nch + TILE - 1) // TILE, (n + TILE - 1) // TILE)
    transpose[grid_t, (TILE, ROWS), s](mem.view(d_in), mem.view(d_cm))
    threads = min(THREADS, 32 * ((n + 31) // 32))  # small slabs: no idle warps
    grid_f = (n + threads - 1) // threads
    kernel[grid_f, threads, s](mem.view(d_cm), mem.view(d_x), *args, mem.view(d_out))
    return d_out


def fit_chunk(
    data,
    x,
    npk,
    nbg,
    est,
    max_iter,
    tol,
    saturation,
    *,
    slab_bytes=None,
    streams=None,
    shape="gaussian",
    background="polynomial",
    precision="float32",
):
    """Fit every row of ``data`` (pixels x channels) on the GPU; return ``(rows, pixels)`` maps.

    Parameters
    ----------
    data : numpy.ndarray or device array
        Pixels x channels, any real dtype; uint8/16/32, int8/16/32, float32 and float64 are
        copied as they are and converted on the device. A CuPy (or numba) device array,
        C-contiguous, is fitted where it lies, without a copy.
    x : numpy.ndarray
        Channel positions (float64).
    npk, nbg, est, max_iter, tol, saturation
        As for :func:`hyperlum.kernels.pixel.fit_pixel`.
    slab_bytes : int, optional
        Input bytes per slab (default :data:`SLAB_BYTES`).
    streams : int, optional
        Slabs in flight at once (default :data:`STREAMS`).
    shape, background : str
        The peak shape and the background's kernel module, as for
        :func:`hyperlum.kernels.cpu.fit_chunk`.
    precision : {"float32", "float64"}
        The kernels' working precision (the maps are float64 either way).

    Returns
    -------
    numpy.ndarray
        ``(n_outputs, pixels)`` float64, rows as in :func:`~hyperlum.kernels.pixel.fit_pixel`.
    """
    check_precision(precision)
    nout = n_outputs(npk, nbg, get_shape(shape).n_params)
    npix, nch = data.shape
    out = np.empty((nout, npix))
    if npix == 0:
        return out
    on_device = hasattr(data, "__cuda_array_interface__")
    if on_device:
        dtype = np.dtype(data.dtype)
        cp = _cupy()
        if cp is not None and isinstance(data, cp.ndarray):
            data = cp.ascontiguousarray(data)
        if dtype.name not in DTYPES:
            raise TypeError(f"device data of dtype {dtype} cannot be fitted; expected {DTYPES}")
    else:
        data = np.asarray(data)
        dtype = _native(data.dtype)
        if data.dtype != dtype:
            data = data.astype(dtype)
    kernel = _fit_kernel(npk, nbg, est, dtype.name, shape, background, precision)
    transpose = _transpose_kernel(dtype.name)
    per = slab_pixels(nch, dtype.itemsize, slab_bytes)
    real = np.dtype(precision).type
    x64 = np.ascontiguousarray(x, dtype=np.float64)
    xh = x64.astype(real)
    h = real(uniform_step(x64))
    args = (h, int(npk), int(max_iter), real(tol), real(saturation))
    with _lane_set(streams or STREAMS) as lanes:
        _fit_slabs(data, on_device, dtype, xh, kernel, transpose, args, nout, per, lanes, out)
    return out


#: Threads that copy a slab into pinned memory (numpy copies release the GIL): one thread
#: copies ~5-10 GB/s, less than a PCIe 4/5 link takes.
STAGING_THREADS = 4
_STAGING_MIN_BYTES = 8 * 2**20


@functools.cache
def _staging_pool():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(STAGING_THREADS, thread_name_prefix="hyperlum-staging")


def _stage(dst, src):
    """``dst[...] = src`` (rows), in parallel row blocks when large."""
    parts = min(STAGING_THREADS, max(1, src.nbytes // _STAGING_MIN_BYTES), src.shape[0])
    if parts <= 1:
        dst[...] = src
        return
    bounds = [src.shape[0] * k // parts for k in range(parts + 1)]

    def copy(k):
        dst[bounds[k] : bounds[k + 1]] = src[bounds[k] : bounds[k + 1]]

    list(_staging_pool().map(copy, range(parts)))


def _fit_slabs(data, on_device, dtype, xh, kernel, transpose, args, nout, per, lanes, out):
    """Slab after slab over the lanes: stage, copy, transpose, fit, copy back; then drain."""
    npix, nch = data.shape
    mem = lanes[0].mem
    try:
        for i, start in enumerate(range(0, npix, per)):
            stop = min(start + per, npix)
            n = stop - start
            lane = lanes[i % len(lanes)]
            lane.finish()
            d_x = lane.array("x", (nch,), xh.dtype, host=False)
            mem.to_device(xh, d_x, lane.stream)
            if on_device:
                d_in = data[start:stop]
            else:
                pin = lane.array("in_h", (n, nch), dtype, host=True)
                _stage(pin, data[start:stop])
                d_in = lane.array("in_d", (n, nch), dtype, host=False)
                mem.to_device(pin, d_in, lane.stream)
            d_out = _launch_fit(lane, kernel, transpose, d_in, d_x, args, nout)
            pout = lane.array("out_h", (nout, n), np.float64, host=True)
            mem.to_host(d_out, pout, lane.stream)
            lane.pending = (out[:, start:stop], pout)
    finally:
        for lane in lanes:
            lane.finish()


# --------------------------------------------------------------------------------------------
# PTX without a GPU, and what ptxas makes of it.


class _Device:
    """Stands in for the current device: only its compute capability is looked up."""

    def __init__(self, cc):
        self.compute_capability = tuple(cc)


@contextlib.contextmanager
def _compute_capability(cc):
    """Make numba-cuda's device-function compiles see compute capability ``cc``.

    numba-cuda looks up the current device's capability when it compiles a device function
    that a kernel calls; without a GPU that lookup fails, so it is replaced for the compile.
    """
    from numba.cuda import dispatcher

    saved = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: _Device(cc)
    try:
        yield
    finally:
        dispatcher.get_current_device = saved


def kernel_names(
    peaks=None,
    backgrounds=None,
    estimators=None,
    dtypes=("float32",),
    shapes=("gaussian",),
    precisions=("float32",),
):
    """Names of the fit kernels for the given models, estimators, input dtypes and working
    precisions (``_f32``, ``_f64`` at the end).

    Examples
    --------
    >>> kernel_names(peaks=[1], backgrounds=["constant"], estimators=["lse", "mle"])
    ['fit_1peak_constant_lse_float32_f32', 'fit_1peak_constant_mle_float32_f32']
    >>> kernel_names(peaks=[2], backgrounds=["poly2"], estimators=["mle"], shapes=["emg_low"],
    ...              dtypes=["uint16"], precisions=["float64"])
    ['fit_emg_low_2peak_poly2_mle_uint16_f64']
    """
    sel = _selection(peaks, backgrounds, estimators, dtypes, shapes, precisions)
    return [name for name, _ in sel]


def _selection(peaks, backgrounds, estimators, dtypes, shapes, precisions):
    peaks = range(1, MAX_PEAKS + 1) if peaks is None else peaks
    backgrounds = tuple(BACKGROUNDS) if backgrounds is None else backgrounds
    estimators = tuple(ESTIMATORS) if estimators is None else estimators
    sel = []
    for shape in shapes:
        for precision in map(check_precision, precisions):
            for dtype in dtypes:
                for npk in peaks:
                    for bg in backgrounds:
                        kind, nbg = BACKGROUNDS[bg]
                        for es in estimators:
                            est = ESTIMATORS[es]
                            name = _kernel_name(shape, int(npk), bg, est, dtype, precision)
                            dt = np.dtype(dtype).name
                            sel.append((name, (shape, kind, int(npk), nbg, est, dt, precision)))
    return sel


def compile_ptx(
    cc=(9, 0),
    *,
    peaks=None,
    backgrounds=None,
    estimators=None,
    dtypes=("float32",),
    shapes=("gaussian",),
    precisions=("float32",),
):
    """PTX of the fit kernels for compute capability ``cc``, compiled without a GPU.

    Parameters
    ----------
    cc : (int, int)
        Compute capability, e.g. ``(8, 0)`` (A100) or ``(9, 0)`` (H100).
    peaks, backgrounds, estimators : sequence, optional
        The kernels to compile (default: all: 1-4 peaks, every background and estimator).
    dtypes : sequence of str
        Input dtypes (one kernel each); the channel-major transpose kernel of each comes too.
    shapes : sequence of str
        Peak shapes (default: the Gaussian).
    precisions : sequence of str
        Working precisions, ``"float32"`` (default) and/or ``"float64"``.

    Returns
    -------
    dict
        Kernel name (e.g. ``"fit_1peak_constant_lse_float32_f32"``, ``"transpose_uint16"``)
        to PTX text. Kernels above :data:`UNROLLED_PEAKS` peaks take the peak count as an
        argument: 2, 3 and 4 peaks share one PTX text.

    Examples
    --------
    >>> ptx = compile_ptx((9, 0), peaks=[1], backgrounds=["constant"], estimators=["lse"])
    >>> sorted(ptx)
    ['fit_1peak_constant_lse_float32_f32', 'transpose_float32']
    >>> ".target sm_90" in ptx["fit_1peak_constant_lse_float32_f32"]
    True
    """
    if numba.config.ENABLE_CUDASIM:
        raise RuntimeError("compile_ptx needs numba-cuda's compiler; unset NUMBA_ENABLE_CUDASIM")
    cc = tuple(int(v) for v in cc)
    result = {}
    with _compute_capability(cc):
        done = {}
        selection = _selection(peaks, backgrounds, estimators, dtypes, shapes, precisions)
        for name, (shape, kind, npk, nbg, est, dtype, precision) in selection:
            key = (shape, kind, _source_key(npk), nbg, est, dtype, precision)
            if key not in done:
                src = _fit_source(*key[:5], precision)
                sig = _fit_signature(dtype, precision)
                done[key], _ = cuda.compile_ptx(src, sig, cc=cc)
            result[name] = done[key]
        for dtype in dtypes:
            name = f"transpose_{np.dtype(dtype).name}"
            src = _transpose_source(np.dtype(dtype).name)
            result[name], _ = cuda.compile_ptx(src, _transpose_signature(dtype), cc=cc)
    return result


def find_ptxas():
    """Path of the ptxas that reads numba-cuda's PTX (pip's ``nvidia-cuda-nvcc``), or None.

    Looked for in the ``nvidia`` package (``nvidia/cu*/bin/ptxas``, ``nvidia/cuda_nvcc/bin``),
    then ``$CUDA_HOME/bin``. Its version should match the NVVM's (``nvidia-nvvm``): an older
    ptxas rejects the newer PTX.
    """
    found = []
    try:
        import nvidia

        for root in nvidia.__path__:
            found += sorted(Path(root).glob("cu*/bin/ptxas"), reverse=True)
            found += sorted(Path(root).glob("cuda_nvcc/bin/ptxas"))
    except ImportError:
        pass
    if os.environ.get("CUDA_HOME"):
        found.append(Path(os.environ["CUDA_HOME"]) / "bin" / "ptxas")
    for path in found:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


_PTXAS_LINE = re.compile(
    r"(?P<stack>\d+) bytes stack frame, (?P<spill_stores>\d+) bytes spill stores, "
    r"(?P<spill_loads>\d+) bytes spill loads"
)
_PTXAS_REGS = re.compile(r"Used (?P<registers>\d+) registers")


def ptxas_info(ptx, cc=(9, 0), ptxas=None):
    """Registers, stack and spills that ``ptxas -v`` reports for one PTX text.

    Returns
    -------
    dict
        ``registers``, ``stack`` (bytes of stack frame per thread), ``spill_stores`` and
        ``spill_loads`` (bytes), summed over the entry points of the PTX (one here), and
        ``log``, the text ptxas printed.
    """
    ptxas = ptxas or find_ptxas()
    if ptxas is None:
        raise FileNotFoundError(
            "ptxas not found: install nvidia-cuda-nvcc at the version of nvidia-nvvm"
        )
    arch = f"sm_{cc[0]}{cc[1]}"
    proc = subprocess.run(
        [ptxas, "-v", f"-arch={arch}", "-o", os.devnull, "-"],
        input=ptx,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ptxas -arch={arch} failed: {proc.stderr.strip()}")
    log = proc.stdout + proc.stderr
    info = {"registers": 0, "stack": 0, "spill_stores": 0, "spill_loads": 0}
    for m in _PTXAS_LINE.finditer(log):
        for k in ("stack", "spill_stores", "spill_loads"):
            info[k] += int(m[k])
    for m in _PTXAS_REGS.finditer(log):
        info["registers"] = max(info["registers"], int(m["registers"]))
    info["log"] = log
    return info
