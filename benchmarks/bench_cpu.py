"""CPU fit throughput and precision against HyperSpy ``multifit`` and a SciPy ``curve_fit`` loop.

A 128 x 128 x 1024 Poisson cube of one Gaussian + constant (centres 680-740 nm, sigma 6-20 nm,
amplitudes 40-400 counts, background 2-20 counts, axis 600-820 nm). hyperlum fits the whole
cube; HyperSpy and SciPy, much slower, fit a random subset of pixels in the same run, and the
throughput ratios use pixels per second. Precision is measured against the Poisson Cramer-Rao
bound computed at the true parameters of each pixel.

Run: ``python benchmarks/bench_cpu.py [--size 128] [--hyperspy 150] [--scipy 600]``
(``pip install numexpr`` first: HyperSpy evaluates its components faster with it).
"""

import argparse
import json
import os
import resource
import sys
import time
import warnings

import numpy as np

import hyperlum as hl

X = np.linspace(600.0, 820.0, 1024)
FIELDS = ("amplitude", "centre", "sigma", "background")


def make_cube(n, seed=0):
    rng = np.random.default_rng(seed)
    truth = {
        "amplitude": rng.uniform(40, 400, (n, n)),
        "centre": rng.uniform(680, 740, (n, n)),
        "sigma": rng.uniform(6, 20, (n, n)),
        "background": rng.uniform(2, 20, (n, n)),
    }
    mu = (
        truth["amplitude"][..., None]
        * np.exp(-0.5 * ((X - truth["centre"][..., None]) / truth["sigma"][..., None]) ** 2)
        + truth["background"][..., None]
    )
    return truth, rng.poisson(mu).astype(np.float32), rng


def cramer_rao(truth):
    """Poisson CRB of (A, c, s, b) per pixel: the inverse Fisher information at the truth."""
    a, c, s, b = (truth[k].ravel()[:, None] for k in FIELDS)
    e = np.exp(-0.5 * ((X - c) / s) ** 2)
    mu = a * e + b
    J = np.stack([e, a * e * (X - c) / s**2, a * e * (X - c) ** 2 / s**3, np.ones_like(e)], -1)
    fisher = np.einsum("pci,pcj->pij", J / mu[..., None], J)
    crb = np.sqrt(np.diagonal(np.linalg.inv(fisher), axis1=1, axis2=2))
    return {k: crb[:, i].reshape(truth[k].shape) for i, k in enumerate(FIELDS)}


def precision(est, truth, crb, idx=None):
    out = {}
    for k in ("centre", "sigma"):
        e, t, b = est[k], truth[k], crb[k]
        if idx is not None:
            t, b = t.ravel()[idx], b.ravel()[idx]
        z = (np.asarray(e).ravel() - t.ravel()) / b.ravel()
        ok = np.isfinite(z)
        out[k] = {
            "rms_over_crb": float(np.sqrt(np.mean(z[ok] ** 2))),
            "max_over_crb": float(np.max(np.abs(z[ok]))),
            "rms_error": float(np.sqrt(np.mean((z[ok] * b.ravel()[ok]) ** 2))),
        }
    return out


def run_hyperlum(cube, estimator):
    hl.fit(cube[:2, :2], axis=X, estimator=estimator, device="cpu")  # compile / load cache
    t = time.perf_counter()
    res = hl.fit(cube, axis=X, estimator=estimator, device="cpu", progress=False)
    dt = time.perf_counter() - t
    return res, cube.shape[0] * cube.shape[1] / dt


def run_hyperspy(cube, idx):
    import hyperspy.api as hs

    s = hs.signals.Signal1D(cube.reshape(-1, X.size)[idx])
    ax = s.axes_manager.signal_axes[0]
    ax.scale, ax.offset, ax.units = X[1] - X[0], X[0], "nm"
    m = s.create_model()
    g = hs.model.components1D.Gaussian()
    o = hs.model.components1D.Offset()
    m.extend([g, o])
    t = time.perf_counter()
    o.estimate_parameters(s, 600, 630, only_current=False)
    g.estimate_parameters(s, 600, 820, only_current=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.multifit(optimizer="lm", show_progressbar=False, iterpath="flyback")
    dt = time.perf_counter() - t
    sigma = g.sigma.map["values"]
    amp = g.A.map["values"] / (sigma * np.sqrt(2 * np.pi))
    est = {"centre": g.centre.map["values"], "sigma": sigma, "amplitude": amp}
    return est, len(idx) / dt


def run_scipy(cube, idx):
    from scipy.optimize import curve_fit

    def f(x, a, c, s, b):
        return a * np.exp(-0.5 * ((x - c) / s) ** 2) + b

    flat = cube.reshape(-1, X.size)[idx].astype(np.float64)
    out = np.full((len(idx), 4), np.nan)
    t = time.perf_counter()
    for i, y in enumerate(flat):
        b0 = np.median(y[:50])
        k = np.argmax(y)
        p0 = (y[k] - b0, X[k], 10.0, b0)
        try:
            out[i] = curve_fit(f, X, y, p0=p0)[0]
        except RuntimeError:
            pass
    dt = time.perf_counter() - t
    return {"amplitude": out[:, 0], "centre": out[:, 1], "sigma": np.abs(out[:, 2])}, len(idx) / dt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128, help="cube is size x size x 1024")
    ap.add_argument("--hyperspy", type=int, default=150, help="pixels fitted by HyperSpy")
    ap.add_argument("--scipy", type=int, default=600, help="pixels fitted by SciPy")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    truth, cube, rng = make_cube(args.size)
    npix = cube.shape[0] * cube.shape[1]
    rows, figures = [], {"pixels": npix, "channels": X.size, "cpus": len(os.sched_getaffinity(0))}
    results = {}
    for est in ("lse", "mle"):
        results[est] = run_hyperlum(cube, est)
    # Peak memory of the process up to here: the cube, its fits and the imports.
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    crb = cramer_rao(truth)
    for est, (res, rate) in results.items():
        conv = float(res.maps["converged"].mean())
        figures[f"hyperlum_{est}"] = {
            "px_per_s": rate,
            "converged": conv,
            **precision(res.maps, truth, crb),
        }
    idx_h = rng.choice(npix, args.hyperspy, replace=False)
    est_h, rate_h = run_hyperspy(cube, idx_h)
    figures["hyperspy_multifit"] = {"px_per_s": rate_h, **precision(est_h, truth, crb, idx_h)}
    idx_s = rng.choice(npix, args.scipy, replace=False)
    est_s, rate_s = run_scipy(cube, idx_s)
    figures["scipy_curve_fit"] = {"px_per_s": rate_s, **precision(est_s, truth, crb, idx_s)}
    # hyperlum LSE on the HyperSpy subset, for a like-for-like precision comparison
    res_l = hl.fit(cube.reshape(-1, X.size)[idx_h], axis=X, device="cpu")
    figures["hyperlum_lse_on_hyperspy_subset"] = precision(res_l.maps, truth, crb, idx_h)

    print(
        f"# CPU fit benchmark: {args.size}x{args.size}x{X.size} Poisson cube, "
        f"{figures['cpus']} CPUs, 1 Gaussian + constant"
    )
    print("| method | px/s | vs HyperSpy | vs SciPy | centre RMS/CRB | sigma RMS/CRB | converged |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in ("hyperlum_lse", "hyperlum_mle", "hyperspy_multifit", "scipy_curve_fit"):
        f = figures[name]
        rows.append(
            f"| {name} | {f['px_per_s']:,.0f} | {f['px_per_s'] / rate_h:,.0f}x | "
            f"{f['px_per_s'] / rate_s:,.1f}x | {f['centre']['rms_over_crb']:.3f} | "
            f"{f['sigma']['rms_over_crb']:.3f} | {f.get('converged', float('nan')):.4f} |"
        )
    print("\n".join(rows))
    sub = figures["hyperlum_lse_on_hyperspy_subset"]
    hsp = figures["hyperspy_multifit"]
    print(
        f"\nOn HyperSpy's {args.hyperspy} pixels, RMS error hyperlum-lse vs HyperSpy: centre "
        f"{sub['centre']['rms_error']:.4f} vs {hsp['centre']['rms_error']:.4f} nm, "
        f"sigma {sub['sigma']['rms_error']:.4f} vs {hsp['sigma']['rms_error']:.4f} nm"
    )
    for est in ("lse", "mle"):
        f = figures[f"hyperlum_{est}"]
        print(
            f"hyperlum-{est}: max |error| / CRB centre {f['centre']['max_over_crb']:.2f}, "
            f"sigma {f['sigma']['max_over_crb']:.2f}"
        )
    print(
        f"Peak resident memory after the hyperlum fits: {figures['peak_rss_mib']:.0f} MiB "
        f"(cube: {cube.nbytes / 2**20:.0f} MiB float32; imports of numba, dask, HyperSpy included)"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
