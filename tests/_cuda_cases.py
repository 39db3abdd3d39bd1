"""Tiny cubes shared by the CUDA simulator parity test and the subprocess that fits them.

Run as a script (``python _cuda_cases.py OUT.npz PART`` with ``NUMBA_ENABLE_CUDASIM=1``, which
:func:`simulate` does) it fits the cases of ``PART`` with ``device="cuda"`` and saves the stacked
maps; the tests fit the same cubes on the CPU and compare. Two parts, two test files
(``test_cuda_sim.py``: ``"cases"``, ``test_cuda_grid.py``: ``"grid"``), so that pytest-xdist
runs them side by side. The parity cases run the float64 kernels (the CPU's maths to rounding);
:data:`PRECISION_GRID` runs the float32 and float64 kernels over every shape x background x
estimator, against the CPU-compiled maths in float64.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

X = np.linspace(650.0, 770.0, 150)
N_GOOD = 4
N_BAD = 2
#: (estimator, background, peaks, max_iterations, shape): for the Gaussian every background
#: and estimator, 1 and 2 peaks, and one run cut short so that the max-iterations state shows
#: up; every other shape with each estimator (constant background, one and two peaks). Each
#: (shape, background kind, size, estimator) is a numba compile on the CPU side: few cases.
CASES = (
    [
        (est, bg, peaks, 50, "gaussian")
        for est in ("lse", "mle")
        for bg in ("none", "constant", "linear")
        for peaks in (1, 2)
    ]
    + [("lse", "constant", 2, 2, "gaussian")]
    + [("lse", "poly3", 1, 50, "gaussian"), ("mle", "powerlaw", 1, 50, "gaussian")]
    + [
        (est, "constant", peaks, 50, shape)
        for shape in ("lorentzian", "pseudo_voigt", "emg_low")
        for est, peaks in (("lse", 2), ("mle", 1))
    ]
)
#: Extra parameters of each shape beyond amplitude, centre and width: drawn from these ranges.
EXTRA = {"pseudo_voigt": [(0.2, 0.8)], "emg_low": [(2.0, 5.0)], "emg_high": [(2.0, 5.0)]}
#: Width parameter ranges: a FWHM of about 12-21 channels of X.
WIDTH = {
    "gaussian": (5, 9),
    "lorentzian": (5, 9),
    "pseudo_voigt": (12, 21),
    "emg_low": (4, 7),
    "emg_high": (4, 7),
}


def case_name(est, bg, peaks, max_iter, shape="gaussian"):
    model = "" if shape == "gaussian" else f"{shape}_"
    return f"{model}{est}_{bg}_{peaks}_{max_iter}"


def cube(index, est, bg, peaks, shape="gaussian"):
    """``N_GOOD`` noisy pixels, then an all-zero one and a NaN (float) or saturated (uint16) one.

    LSE cubes are float32 with Gaussian noise; MLE cubes are uint16 Poisson counts, so both
    native dtypes go to the device as they are.
    """
    from hyperlum.kernels.shapes import get_shape

    rng = np.random.default_rng(1000 + index)
    n = N_GOOD
    centres = [rng.uniform(680, 700, n), rng.uniform(725, 745, n)][:peaks]
    mu = np.zeros((n, X.size))
    for c in centres:
        params = [rng.uniform(80, 300, n), c, rng.uniform(*WIDTH[shape], n)]
        params += [rng.uniform(*r, n) for r in EXTRA.get(shape, [])]
        mu += get_shape(shape).evaluate(X, np.column_stack(params))
    if bg == "powerlaw":
        mu += rng.uniform(5, 20, (n, 1)) * (X / 710.0) ** -rng.uniform(2, 4, (n, 1))
    elif bg != "none":
        mu += rng.uniform(5, 20, (n, 1))
    if bg in ("linear", "poly3"):
        mu += rng.uniform(0.02, 0.08, (n, 1)) * (X - X[0])
    if bg == "poly3":
        mu += 1e-5 * (X - 710.0) ** 3
    if est == "mle":
        data = rng.poisson(mu).astype(np.uint16)
        bad = np.zeros((N_BAD, X.size), np.uint16)  # all zero, then saturated
        bad[1, 40] = np.iinfo(np.uint16).max
    else:
        data = (mu + rng.normal(0, 2.0, mu.shape)).astype(np.float32)
        bad = np.zeros((N_BAD, X.size), np.float32)  # all zero, then a NaN
        bad[1, 30] = np.nan
    return np.concatenate([data, bad]).reshape(1, -1, X.size)


#: Case fitted once more as a dask array cut in chunks of this many pixels (device="cuda").
LAZY_CASE, LAZY_CHUNK = 1, 4


def fit_case(index, case, device, chunk=None):
    import hyperlum as hl

    est, bg, peaks, max_iter, shape = case
    data = cube(index, est, bg, peaks, shape)
    if chunk is not None:
        import dask.array as da

        data = da.from_array(data, chunks=(1, chunk, -1))
    res = hl.fit(
        data,
        axis=X,
        peaks=peaks,
        shape=shape,
        background=bg,
        estimator=est,
        max_iterations=max_iter,
        device=device,
        precision="float64",
    )
    res = res.compute() if chunk is not None else res
    return {name: np.asarray(res.maps[name]) for name in res.names}


#: Launcher runs: (name, case index, slab bytes, streams, data already on the device).
LAUNCHES = [
    ("slabs", 7, 3 * 150 * 2, 2, False),  # uint16 cube in 3-pixel slabs over 2 streams
    ("device", 0, None, None, True),  # float32 cube handed over as a device array
]


#: Cases fitted by ``fit_chunk`` from as many threads at once.
THREADED = (2, 3, 4)


def kernel_args(case):
    """Arguments of the kernels' ``fit_chunk`` after the data for ``case``."""
    from hyperlum.kernels.constants import BACKGROUNDS, ESTIMATORS

    est, bg, peaks, max_iter, _ = case
    sat = float(np.iinfo(np.uint16).max) if est == "mle" else np.inf
    return (X, peaks, BACKGROUNDS[bg], ESTIMATORS[est], max_iter, 1e-7, sat)


def launch(name, index, slab_bytes, streams, on_device):
    from numba import cuda

    from hyperlum.kernels import cuda as kcuda

    case = CASES[index]
    data = cube(index, *case[:3])[0]
    if on_device:
        data = cuda.to_device(data)
    args = kernel_args(case)
    return kcuda.fit_chunk(data, *args, slab_bytes=slab_bytes, streams=streams, precision="float64")


#: Every shape x background x estimator, one peak, on tiny Poisson cubes of
#: ``PRECISION_PIXELS`` pixels over the channels ``XP``: the float32 and float64 kernels
#: against the CPU's float64 maths.
PRECISION_GRID = [
    (shape, bg, est)
    for shape in ("gaussian", "lorentzian", "pseudo_voigt", "emg_low", "emg_high")
    for bg in ("none", "constant", "linear", "poly2", "poly3", "powerlaw")
    for est in ("lse", "mle")
]
XP = np.linspace(650.0, 770.0, 48)
PRECISION_PIXELS = 6


def precision_cube(index, shape, bg):
    """Poisson counts of one peak of ``shape`` over background ``bg`` (``PRECISION_PIXELS``)."""
    from hyperlum.kernels.shapes import get_shape

    rng = np.random.default_rng(2000 + index)
    n = PRECISION_PIXELS
    params = [rng.uniform(200, 600, n), rng.uniform(695, 725, n), rng.uniform(*WIDTH[shape], n)]
    params += [rng.uniform(*r, n) for r in EXTRA.get(shape, [])]
    mu = get_shape(shape).evaluate(XP, np.column_stack(params))
    if bg == "powerlaw":
        mu += rng.uniform(20, 40, (n, 1)) * (XP / 710.0) ** -rng.uniform(2, 4, (n, 1))
    elif bg != "none":
        mu += rng.uniform(20, 40, (n, 1))
    if bg in ("linear", "poly2", "poly3"):
        mu += rng.uniform(0.05, 0.15, (n, 1)) * (XP - XP[0])
    if bg in ("poly2", "poly3"):
        mu += 1e-3 * (XP - 710.0) ** 2
    if bg == "poly3":
        mu += 2e-5 * (XP - 710.0) ** 3
    return rng.poisson(mu).astype(np.uint16)


def precision_args(index):
    """Grid case ``index`` as the kernels' drivers take it: the counts, the arguments of
    ``fit_chunk`` after the data (one peak), and the model's keywords."""
    from hyperlum.kernels.backgrounds import BACKGROUNDS
    from hyperlum.kernels.constants import ESTIMATORS

    shape, bg, est = PRECISION_GRID[index]
    kind, nbg = BACKGROUNDS[bg]
    sat = float(np.iinfo(np.uint16).max)
    args = (XP, 1, nbg, ESTIMATORS[est], 50, 1e-7, sat)
    return precision_cube(index, shape, bg), args, {"shape": shape, "background": kind}


def fit_precision(index, precision):
    """Kernel output rows of grid case ``index`` fitted by the CUDA driver in ``precision``."""
    from hyperlum.kernels import cuda as kcuda

    data, args, model = precision_args(index)
    return kcuda.fit_chunk(data, *args, **model, precision=precision)


#: Grid case fitted once more through ``hl.fit(device="cuda")`` with the default precision.
API_CASE = PRECISION_GRID.index(("gaussian", "constant", "mle"))


def fit_api(index):
    """Maps of grid case ``index`` from ``hl.fit(device="cuda")`` (precision left to it)."""
    import hyperlum as hl

    shape, bg, est = PRECISION_GRID[index]
    data = precision_cube(index, shape, bg)
    res = hl.fit(
        data, axis=XP, shape=shape, background=bg, estimator=est, device="cuda", despike=False
    )
    return {name: np.asarray(res.maps[name]) for name in res.names}


def simulate(folder, part, script=__file__):
    """Maps of ``part`` (``"cases"`` or ``"grid"``) fitted with ``device="cuda"`` under
    ``NUMBA_ENABLE_CUDASIM=1``, in a subprocess: the simulator must be switched on before
    numba.cuda is first imported. ``script`` (run as ``script OUT.npz PART``) is this file or
    another test file that fits its own cases."""
    path = Path(folder) / f"{part}.npz"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run(
        [sys.executable, str(script), str(path), part],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    with np.load(path) as f:
        return dict(f)


def main(path, part):
    maps = {}
    if part == "grid":
        for i, case in enumerate(PRECISION_GRID):
            for precision in ("float32", "float64"):
                maps[f"precision/{'_'.join(case)}/{precision}"] = fit_precision(i, precision)
        for name, m in fit_api(API_CASE).items():
            maps[f"api/{name}"] = m
        np.savez(path, **maps)
        return
    for i, case in enumerate(CASES):
        for name, m in fit_case(i, case, "cuda").items():
            maps[f"{case_name(*case)}/{name}"] = m
    for name, m in fit_case(LAZY_CASE, CASES[LAZY_CASE], "cuda", LAZY_CHUNK).items():
        maps[f"lazy/{name}"] = m
    for run in LAUNCHES:
        maps[f"launch/{run[0]}"] = launch(*run)
    # chunks fitted from several threads at once, as dask threads do (more than the slots)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(THREADED)) as pool:
        outs = pool.map(lambda i: launch("threaded", i, 2 * 150 * 4, 2, False), THREADED)
        for i, m in zip(THREADED, outs, strict=True):
            maps[f"threaded/{i}"] = m
    np.savez(path, **maps)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
