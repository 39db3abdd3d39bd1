"""Tiny cubes shared by the CUDA simulator parity test and the subprocess that fits them.

Run as a script (``python _cuda_cases.py OUT.npz`` with ``NUMBA_ENABLE_CUDASIM=1``) it fits
every case with ``device="cuda"`` and saves the stacked maps; the test fits the same cubes on
the CPU and compares.
"""

import sys

import numpy as np

X = np.linspace(650.0, 770.0, 150)
N_GOOD = 4
N_BAD = 2
#: (estimator, background, peaks, max_iterations): every background and estimator, 1 and 2
#: peaks, and one run cut short so that the max-iterations state shows up.
CASES = [
    (est, bg, peaks, 50)
    for est in ("lse", "mle")
    for bg in ("none", "constant", "linear")
    for peaks in (1, 2)
] + [("lse", "constant", 2, 2)]


def case_name(est, bg, peaks, max_iter):
    return f"{est}_{bg}_{peaks}_{max_iter}"


def cube(index, est, bg, peaks):
    """``N_GOOD`` noisy pixels, then an all-zero one and a NaN (float) or saturated (uint16) one.

    LSE cubes are float32 with Gaussian noise; MLE cubes are uint16 Poisson counts, so both
    native dtypes go to the device as they are.
    """
    rng = np.random.default_rng(1000 + index)
    n = N_GOOD
    centres = [rng.uniform(680, 700, n), rng.uniform(725, 745, n)][:peaks]
    mu = np.zeros((n, X.size))
    for c in centres:
        mu += rng.uniform(80, 300, (n, 1)) * np.exp(
            -0.5 * ((X - c[:, None]) / rng.uniform(5, 9, (n, 1))) ** 2
        )
    if bg != "none":
        mu += rng.uniform(5, 20, (n, 1))
    if bg == "linear":
        mu += rng.uniform(0.02, 0.08, (n, 1)) * (X - X[0])
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

    est, bg, peaks, max_iter = case
    data = cube(index, est, bg, peaks)
    if chunk is not None:
        import dask.array as da

        data = da.from_array(data, chunks=(1, chunk, -1))
    res = hl.fit(
        data,
        axis=X,
        peaks=peaks,
        background=bg,
        estimator=est,
        max_iterations=max_iter,
        device=device,
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

    est, bg, peaks, max_iter = case
    sat = float(np.iinfo(np.uint16).max) if est == "mle" else np.inf
    return (X, peaks, BACKGROUNDS[bg], ESTIMATORS[est], max_iter, 1e-7, sat)


def launch(name, index, slab_bytes, streams, on_device):
    from numba import cuda

    from hyperlum.kernels import cuda as kcuda

    case = CASES[index]
    data = cube(index, *case[:3])[0]
    if on_device:
        data = cuda.to_device(data)
    return kcuda.fit_chunk(data, *kernel_args(case), slab_bytes=slab_bytes, streams=streams)


def main(path):
    maps = {}
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
    main(sys.argv[1])
