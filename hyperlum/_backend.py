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

    Returns
    -------
    ok : bool
        True when CuPy and numba-cuda are installed and see a GPU.
    reason : str
        What was found, or what is missing.

    Examples
    --------
    >>> ok, reason = cuda_status()
    >>> isinstance(ok, bool) and isinstance(reason, str)
    True
    """
    try:
        import cupy
    except ImportError:
        return False, "CuPy is not installed (pip install 'hyperlum[gpu]')"
    try:
        from numba import cuda
    except ImportError:  # pragma: no cover - numba is a hard dependency
        return False, "numba-cuda is not installed (pip install 'hyperlum[gpu]')"
    try:
        if not cuda.is_available():
            return False, "numba-cuda sees no CUDA GPU (no driver or no device)"
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # driver errors come in many types
        return False, f"no usable CUDA GPU ({type(err).__name__}: {err})"
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
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
        print(f"hyperlum: fitting on the CPU: {reason}", file=sys.stderr)
    return "cpu"
