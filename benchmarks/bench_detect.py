"""What the detection verdict and the default despiking cost, next to the fit itself (CPU).

A Poisson cube of one Gaussian + constant (as ``bench_cpu.py``: 1024 channels, 600-820 nm)
is fitted chunk by chunk as :func:`hyperlum.fit` does; the parts of the per-chunk work are
timed separately: the kernel fit, the detection post-pass (residual sums of squares and
verdict: one numba pass) and the spike filter. Detection should cost at most 10% of the fit.
Besides the wall times (every CPU), each part is also timed in one thread, in CPU time of
that thread (``*_ns_per_channel``): figures that the machine's other load hardly moves.

Run: ``python benchmarks/bench_detect.py [--size 96] [--estimator lse]``
"""

import argparse
import json
import time

import numpy as np

from hyperlum.fitting.detect import smooth_rss, verdict
from hyperlum.fitting.fit import fit_block, kernel_dtype, plan
from hyperlum.io.cube import as_cube
from hyperlum.kernels import cpu
from hyperlum.preprocess.cl import despike_spectra

X = np.linspace(600.0, 820.0, 1024)


def make_cube(n, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n * n, 1)
    mu = rng.uniform(40, 400, shape) * np.exp(
        -0.5 * ((X - rng.uniform(680, 740, shape)) / rng.uniform(6, 20, shape)) ** 2
    ) + rng.uniform(2, 20, shape)
    return rng.poisson(mu).astype(np.uint16)


def cpu_rows(data, spec, threads=None):
    """The kernel fit alone, as :func:`hyperlum.fitting.fit.fit_block` runs it on the CPU."""
    flat = np.ascontiguousarray(data, dtype=kernel_dtype(data))
    out = np.empty((spec.kernel_outputs, flat.shape[0]))
    args = (spec.peaks, spec.background, spec.estimator, spec.max_iterations, spec.tolerance)
    return cpu.fit_chunk(flat, X, *args, spec.saturation, out, threads=threads)


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def thread_ns(fn, channels, repeat=3):
    """Best CPU time of this thread per channel (ns) of ``repeat`` calls of ``fn``."""
    best = np.inf
    for _ in range(repeat):
        t = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t)
    return round(1e9 * best / channels, 3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=96, help="map side (pixels)")
    ap.add_argument("--estimator", choices=("lse", "mle"), default="lse")
    args = ap.parse_args()
    data = make_cube(args.size)
    spec, _ = plan(as_cube(data, X), estimator=args.estimator, device="cpu")
    fit_block(data[:64], X, spec)  # compile outside the timing
    t_fit, rows = best_of(lambda: cpu_rows(data, spec))

    def detection():
        rss0, rss1 = smooth_rss(data, X, rows[:3])
        return verdict(rows, rss0, rss1, X, peaks=1, background=spec.background)

    t_detect, det = best_of(detection)
    t_despike, _ = best_of(lambda: despike_spectra(data))
    size = data.size
    one = {
        "fit_ns_per_channel": thread_ns(lambda: cpu_rows(data, spec, threads=1), size),
        "detect_ns_per_channel": thread_ns(lambda: smooth_rss(data, X, rows[:3], threads=1), size),
        "despike_ns_per_channel": thread_ns(lambda: despike_spectra(data, threads=1), size),
    }
    out = {
        "pixels": int(data.shape[0]),
        "channels": int(data.shape[1]),
        "estimator": args.estimator,
        "fit_s": round(t_fit, 3),
        "detect_s": round(t_detect, 4),
        "despike_s": round(t_despike, 3),
        "detect_share_of_fit": round(t_detect / t_fit, 4),
        "despike_share_of_fit": round(t_despike / t_fit, 3),
        "detected": float(det.mean()),
        **one,
        "detect_share_of_fit_one_thread": round(
            one["detect_ns_per_channel"] / one["fit_ns_per_channel"], 4
        ),
        "despike_share_of_fit_one_thread": round(
            one["despike_ns_per_channel"] / one["fit_ns_per_channel"], 4
        ),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
