"""``hyperlum info``: versions, CPU threads and whether a GPU can be used."""

import os
import platform
import sys

_PACKAGES = (
    "hyperlum",
    "numpy",
    "numba",
    "numba-cuda",
    "cupy-cuda13x",
    "cupy-cuda12x",
    "dask",
    "distributed",
    "hyperspy",
    "rosettasciio",
    "exspy",
    "lumispy",
    "zarr",
    "scikit-image",
    "scipy",
)


def register(subparsers):
    p = subparsers.add_parser("info", help="versions, CPU threads and GPU availability")
    p.set_defaults(func=run)


def _version(name):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _numba_cuda():
    try:
        from numba import cuda
    except ImportError:
        return "not installed"
    try:
        if not cuda.is_available():
            return "no CUDA GPU seen (no driver or no device)"
        names = [d.name.decode() if isinstance(d.name, bytes) else d.name for d in cuda.gpus]
        return f"{len(names)} GPU(s): {', '.join(names)}"
    except Exception as err:  # driver errors come in many types
        return f"no usable GPU ({type(err).__name__}: {err})"


def _cupy():
    try:
        import cupy
    except ImportError:
        return "not installed"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
        names = [cupy.cuda.runtime.getDeviceProperties(i)["name"].decode() for i in range(n)]
        return f"{n} GPU(s): {', '.join(names)}"
    except Exception as err:
        return f"no usable GPU ({type(err).__name__}: {err})"


def report():
    """The lines ``hyperlum info`` prints, as (label, value) pairs."""
    import numba

    from hyperlum.fitting import _backend

    rows = [("python", f"{platform.python_version()} ({sys.executable})")]
    rows += [(n, v) for n in _PACKAGES if (v := _version(n)) is not None]
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rows.append(
        (
            "CPU threads",
            f"{usable} usable of {os.cpu_count()} (numba: {numba.config.NUMBA_NUM_THREADS})",
        )
    )
    rows.append(("numba-cuda GPU", _numba_cuda()))
    rows.append(("CuPy GPU", _cupy()))
    ok, reason = _backend.cuda_status()
    rows.append(("device 'auto'", f"cuda ({reason})" if ok else f"cpu ({reason})"))
    return rows


def run(args):
    rows = report()
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0
