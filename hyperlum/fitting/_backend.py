"""Device choice for the fitting kernels: ``"auto"``, ``"cpu"`` or ``"cuda"``.

CuPy and numba-cuda are optional: they are imported under a guard, and only when a GPU is asked
for or probed.
"""

import functools
import sys

DEVICES = ("auto", "cpu", "cuda")


@functools.cache
def cuda_status():
    """Say whether the CUDA path can run here.

    Under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the kernels run on the CPU,
    slowly, through numba's own device arrays: that counts as usable, for tests.

    Returns
    -------
    ok : bool
        True when numba-cuda sees a GPU and CuPy is installed, or under the simulator.
    reason : str
        What was found, or what is missing.

    Examples
    --------
    >>> ok, reason = cuda_status()
    >>> isinstance(ok, bool) and isinstance(reason, str)
    True
    """
    import numba

    if numba.config.ENABLE_CUDASIM:
        return True, "numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1): usable, slow, for tests"
    try:
        from numba import cuda
    except ImportError:  # pragma: no cover - numba ships numba.cuda
        return False, "numba-cuda is not installed (pip install 'hyperlum[gpu]')"
    try:
        gpu = cuda.is_available()
    except Exception as err:  # driver errors come in many types
        return False, f"numba-cuda cannot reach a CUDA driver ({type(err).__name__}: {err})"
    if not gpu:
        return False, "numba-cuda sees no CUDA GPU (no NVIDIA driver or no device)"
    try:
        import cupy
    except ImportError:
        return False, "CuPy is not installed (pip install 'hyperlum[gpu]')"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception as err:  # driver errors come in many types
        return False, f"CuPy sees no usable CUDA GPU ({type(err).__name__}: {err})"
    return True, f"{n} CUDA GPU(s), device 0: {name}"


_notified = []


def resolve_device(device):
    """Turn ``"auto"`` / ``"cpu"`` / ``"cuda"`` into the device the fit will run on.

    ``"cuda"`` without a usable GPU raises RuntimeError saying what is missing; ``"auto"``
    without one falls back to the CPU and says so once, on stderr.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    """
    if device == "cpu":
        return "cpu"
    ok, reason = cuda_status()
    if device == "cuda":
        if not ok:
            raise RuntimeError(f"device='cuda' was asked for, but {reason}")
        return "cuda"
    if ok:
        return "cuda"
    if not _notified:
        _notified.append(reason)
        print(f"hyperlum: device='auto' fits on the CPU: {reason}", file=sys.stderr)
    return "cpu"
