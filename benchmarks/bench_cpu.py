"""CPU fit throughput and precision against HyperSpy, SciPy, lumafit and a JAX batched LM.

A 128 x 128 x 1024 Poisson cube of one Gaussian + constant (centres 680-740 nm, sigma 6-20 nm,
amplitudes 40-400 counts, background 2-20 counts, axis 600-820 nm). hyperlum fits the whole
cube; HyperSpy, SciPy, lumafit and JAX fit a random subset of pixels in the same run (every
figure the best of ``--repeats``), and the throughput ratios use pixels per second. Precision
is measured against the Poisson Cramer-Rao bound computed at the true parameters of each pixel.

For hyperlum the table also gives the passes over the channels per pixel (counted by running
the very same kernel source as plain Python on ``--count`` pixels) and the time of one pass
per channel (the compiled pass alone, at the true parameters, in CPU time of its thread), and
the pixels per second of the kernel alone (``fit_chunk`` over the whole cube: ``hl.fit`` also
replaces spikes and gives a detection verdict, work that differs between commits). That work
is measured too: ``hl.fit`` with ``despike=False``, and the spike filter and the detection
verdict alone over the whole cube, as shares of the ``hl.fit`` time with its defaults.
``--baseline REF`` (repeatable) also measures git commit ``REF`` of this repository in the
same run (in a subprocess importing that commit's ``hyperlum``): before / after rows.

Run: ``python benchmarks/bench_cpu.py [--size 128] [--baseline 0856930 [--baseline REF]]``
(``pip install -e ".[bench]"`` first: numexpr for HyperSpy, lumafit, JAX; a missing tool's
row says so).
"""

import argparse
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numba
import numpy as np

import hyperlum as hl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import jax_lm  # noqa: E402  (the benchmark's own JAX batched LM, next to this file)

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


def best_times(fn, repeats):
    """``fn``'s last result, and the best wall time and the best CPU time of this process
    (all its threads) of ``repeats`` calls. The CPU time hardly moves with the machine's
    other load, which the wall time does on a shared machine."""
    wall = cpu = np.inf
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        res = fn()
        wall = min(wall, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    return res, wall, cpu


def best_rate(fn, npix, repeats):
    """Best pixels per second of ``repeats`` calls of ``fn`` (returns its last result)."""
    res, wall, _ = best_times(fn, repeats)
    return res, npix / wall


def run_hyperlum(cube, estimator, repeats, **options):
    """``hl.fit``'s result, pixels per second, CPU microseconds per pixel."""
    hl.fit(cube[:2, :2], axis=X, estimator=estimator, device="cpu", **options)  # compile
    npix = cube.shape[0] * cube.shape[1]
    res, wall, cpu = best_times(
        lambda: hl.fit(cube, axis=X, estimator=estimator, device="cpu", progress=False, **options),
        repeats,
    )
    return res, npix / wall, 1e6 * cpu / npix


def best_seconds(fn, repeats):
    """Best wall time and best CPU time of ``repeats`` calls of ``fn``."""
    return best_times(fn, repeats)[1:]


def side_work(flat, rows, repeats):
    """(wall, CPU) seconds of the work ``hl.fit`` does beside the kernel, over the whole cube:
    the spike filter (:func:`hyperlum.cl.despike_spectra`) and the detection verdict (the
    residual sums of one pass and the rule). None where this commit has no such step."""
    try:
        from hyperlum.fitting import detect
        from hyperlum.preprocess.cl import despike_spectra
    except ImportError:
        return (None, None), (None, None)
    despike_spectra(flat[:4])  # compile / load cache
    t_despike = best_seconds(lambda: despike_spectra(flat), repeats)

    def verdict():
        rss0, rss1 = detect.smooth_rss(flat, X, rows[:3])
        detect.verdict(rows, rss0, rss1, X, peaks=1, background=1)

    verdict()
    return t_despike, best_seconds(verdict, repeats)


def kernel_rate(flat, estimator, repeats):
    """Pixels per second of the CPU kernel alone (``fit_chunk`` over the whole cube).

    ``hl.fit`` does more than the kernel (spikes replaced, the detection verdict, dask), and
    that work differs between commits; this figure compares the kernels alone.
    """
    from hyperlum.kernels import constants as kc
    from hyperlum.kernels import cpu

    est = kc.ESTIMATORS[estimator]
    out = np.empty((kc.n_outputs(1, 1), flat.shape[0]))
    cpu.fit_chunk(flat[:4], X, 1, 1, est, 50, 1e-7, np.inf, out[:, :4])  # compile / cache
    _, wall, cpu_s = best_times(
        lambda: cpu.fit_chunk(flat, X, 1, 1, est, 50, 1e-7, np.inf, out), repeats
    )
    return flat.shape[0] / wall, 1e6 * cpu_s / flat.shape[0], out


def passes_per_pixel(flat, estimator, count):
    """Passes over the channels per pixel: the kernel source run as plain Python, counted."""
    from hyperlum.kernels import compile as kcompile
    from hyperlum.kernels import constants as kc
    from hyperlum.kernels import cpu

    calls = [0]

    def counting(fn):
        if fn.__name__ != "accumulate":
            return fn

        def counted(*args):
            calls[0] += 1
            return fn(*args)

        return counted

    fit_pixel = kcompile.jit_functions(kcompile.SHARED, counting)["fit_pixel"]
    M = np.zeros((kc.N_MATRICES, kc.MAX_PARAMS, cpu.CHANNEL_BLOCK))
    V = np.zeros((kc.N_VECTORS, cpu.CHANNEL_BLOCK))
    out = np.zeros((kc.n_outputs(1, 1), count))
    est = kc.ESTIMATORS[estimator]
    # this issue's kernels take the axis step from the driver, and later the tiles' scratch
    step = (X[-1] - X[0]) / (X.size - 1)
    signature = inspect.signature(fit_pixel).parameters
    lead = (step,) if "h" in signature else ()
    tail = (np.zeros((kc.N_TILE_ROWS, cpu.CHANNEL_BLOCK)),) if "T" in signature else ()
    for i in range(count):
        y = flat[i].astype(np.float64)
        fit_pixel(out, i, y, X, *lead, 1, 1, est, 50, 1e-7, np.inf, M, V, *tail)
    return calls[0] / count


def ns_per_channel_pass(flat, params, estimator, repeats):
    """CPU time of one compiled pass (objective, gradient, normal matrix) per channel."""
    from hyperlum.kernels import compile as kcompile
    from hyperlum.kernels import constants as kc
    from hyperlum.kernels import cpu

    shared = kcompile.SHARED[: [f.__name__ for f in kcompile.SHARED].index("accumulate") + 1]
    options = getattr(cpu, "JIT_OPTIONS", {"fastmath": {"contract", "arcp", "reassoc"}})
    # the CPU's type of the normal-equation tiles, where the tree has one (float64 before)
    tile = getattr(cpu, "TILES", {}).get("polynomial", np.float64)
    bound = {"constants": {"TILE": tile}} if hasattr(cpu, "TILES") else {}
    acc = kcompile.jit_functions(shared, numba.njit(nogil=True, **options), **bound)["accumulate"]
    est = kc.ESTIMATORS[estimator]
    parameters = inspect.signature(shared[-1]).parameters

    if "F" in parameters:  # the tiles' derivatives and weights in a scratch of their own

        def call(y, x, xref, p, M, V, T, h):
            return acc(y, x, xref, p, 1, 1, est, M[0], V[0], V[6], h, T[2:], T[:2], V[7], M[3], 0)
    elif "middle" in parameters:  # this kernels
        # least squares summed the sandwich middle in every pass on a CPU; since QTOL only the
        # passes near the solution do (about 1.3 of 3.6): time the usual pass of the tree
        from hyperlum.kernels import pixel

        every = not hasattr(pixel, "QTOL")
        middle = 2 if est == kc.LSE and every else 0

        def call(y, x, xref, p, M, V, T, h):
            return acc(y, x, xref, p, 1, 1, est, M[0], V[0], V[6], h, M[3], V[7:10], M[4], middle)
    else:

        def call(y, x, xref, p, M, V, T, h):
            return acc(y, x, xref, p, 1, 1, est, M[0], V[0], V[6], h, M[3], V[7:10], M[4])

    call = numba.njit(call)

    block = cpu.CHANNEL_BLOCK

    @numba.njit(nogil=True)
    def one_pass(data, x, P):
        M = np.zeros((6, 14, block))
        V = np.zeros((10, block))
        T = np.zeros((18, block), tile)
        n = x.shape[0]
        xref = 0.5 * (x[0] + x[n - 1])
        h = (x[n - 1] - x[0]) / (n - 1)
        total = 0.0
        for i in range(data.shape[0]):
            p = V[5]
            for a in range(4):
                p[a] = P[i, a]
            total += call(data[i], x, xref, p, M, V, T, h)
        return total

    one_pass(flat[:2], X, params[:2])
    best = np.inf
    for _ in range(repeats):  # CPU time of this thread: the machine's other load does not count
        t = time.thread_time()
        one_pass(flat, X, params)
        best = min(best, time.thread_time() - t)
    return 1e9 * best / flat.shape[0] / X.size


def kernel_figures(n, repeats, count):
    """hyperlum's rows: throughput, precision, passes per pixel and ns per channel per pass."""
    truth, cube, _ = make_cube(n)
    flat = cube.reshape(-1, X.size)
    params = np.stack([truth[k].ravel() for k in FIELDS], -1)
    crb = cramer_rao(truth)
    from hyperlum.kernels import pixel

    figures = {"hyperlum_source": pixel.__file__}
    has_despike = "despike" in inspect.signature(hl.fit).parameters
    for est in ("lse", "mle"):
        res, rate, cpu_fit = run_hyperlum(cube, est, repeats)
        bare = (None, None, None)
        if has_despike:
            bare = run_hyperlum(cube, est, repeats, despike=False)
        krate, cpu_kernel, rows = kernel_rate(flat, est, repeats)
        (t_despike, c_despike), (t_verdict, c_verdict) = side_work(flat, rows, repeats)
        npix = flat.shape[0]
        figures[f"hyperlum_{est}"] = {
            "px_per_s": rate,
            "no_despike_px_per_s": bare[1],
            "kernel_px_per_s": krate,
            # CPU time of the process per pixel (all threads), microseconds
            "cpu_us_per_px": {
                "fit": cpu_fit,
                "fit_no_despike": bare[2],
                "kernel": cpu_kernel,
                "despike": None if c_despike is None else 1e6 * c_despike / npix,
                "verdict": None if c_verdict is None else 1e6 * c_verdict / npix,
            },
            # shares of the hl.fit time (defaults) and ns per channel, the whole cube
            "despike_share": None if t_despike is None else t_despike * rate / npix,
            "verdict_share": None if t_verdict is None else t_verdict * rate / npix,
            "despike_ns_per_channel": None if t_despike is None else 1e9 * t_despike / flat.size,
            "verdict_ns_per_channel": None if t_verdict is None else 1e9 * t_verdict / flat.size,
            "converged": float(res.maps["converged"].mean()),
            "passes_per_px": passes_per_pixel(flat, est, count),
            "ns_per_channel_pass": ns_per_channel_pass(flat, params, est, repeats),
            **precision(res.maps, truth, crb),
        }
    # Peak memory of the process up to here: the cube, its fits and the imports.
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def baseline_figures(ref, n, repeats, count):
    """:func:`kernel_figures` of git commit ``ref``, in a subprocess importing that commit."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(HERE.parent), "archive", ref, "hyperlum", "kernels"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        os.rename(os.path.join(tmp, "kernels"), os.path.join(tmp, "hyperlum", "kernels"))
        out = os.path.join(tmp, "figures.json")
        argv = [str(Path(__file__).resolve()), "--kernel-only", out, "--size", str(n)]
        argv += ["--repeats", str(repeats), "--count", str(count)]
        # An editable install of this tree maps hyperlum.kernels here: drop its finder.
        boot = (
            "import runpy, sys; "
            "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
            f"sys.argv = {argv!r}; runpy.run_path(sys.argv[0], run_name='__main__')"
        )
        cmd = [sys.executable, "-c", boot]
        env = dict(os.environ, PYTHONPATH=tmp)
        subprocess.run(cmd, check=True, env=env, cwd=tmp)
        with open(out) as fh:
            figures = json.load(fh)
    if not figures["hyperlum_source"].startswith(tmp):
        raise RuntimeError(f"the baseline imported {figures['hyperlum_source']}, not {ref}")
    return figures


def starting_values(flat):
    """The same simple starting values for SciPy, lumafit and JAX (A, c, s, b per pixel)."""
    b0 = np.median(flat[:, :50], axis=1)
    k = np.argmax(flat, axis=1)
    return np.stack([flat[np.arange(len(k)), k] - b0, X[k], np.full(len(k), 10.0), b0], -1)


def run_hyperspy(cube, idx, repeats):
    import hyperspy.api as hs

    s = hs.signals.Signal1D(cube.reshape(-1, X.size)[idx])
    ax = s.axes_manager.signal_axes[0]
    ax.scale, ax.offset, ax.units = X[1] - X[0], X[0], "nm"

    def fit():
        m = s.create_model()
        g = hs.model.components1D.Gaussian()
        o = hs.model.components1D.Offset()
        m.extend([g, o])
        o.estimate_parameters(s, 600, 630, only_current=False)
        g.estimate_parameters(s, 600, 820, only_current=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.multifit(optimizer="lm", show_progressbar=False, iterpath="flyback")
        return g

    g, rate = best_rate(fit, len(idx), repeats)
    sigma = g.sigma.map["values"]
    amp = g.A.map["values"] / (sigma * np.sqrt(2 * np.pi))
    return {"centre": g.centre.map["values"], "sigma": sigma, "amplitude": amp}, rate


def run_scipy(cube, idx, repeats):
    from scipy.optimize import curve_fit

    def f(x, a, c, s, b):
        return a * np.exp(-0.5 * ((x - c) / s) ** 2) + b

    flat = cube.reshape(-1, X.size)[idx].astype(np.float64)

    def fit():
        out = np.full((len(idx), 4), np.nan)
        for i, (y, p0) in enumerate(zip(flat, starting_values(flat), strict=True)):
            try:
                out[i] = curve_fit(f, X, y, p0=p0)[0]
            except RuntimeError:
                pass
        return out

    out, rate = best_rate(fit, len(idx), repeats)
    return {"amplitude": out[:, 0], "centre": out[:, 1], "sigma": np.abs(out[:, 2])}, rate


def run_lumafit(cube, idx, repeats):
    """lumafit's numba LM per pixel (analytic Jacobian), over pixels with ``prange``."""
    try:
        import lumafit
    except ImportError:
        return None, None

    @numba.njit(fastmath=True)
    def model(p, x):
        return p[0] * np.exp(-0.5 * ((x - p[1]) / p[2]) ** 2) + p[3]

    @numba.njit(fastmath=True)
    def jac(p, x):
        J = np.empty((x.size, 4))
        u = (x - p[1]) / p[2]
        e = np.exp(-0.5 * u * u)
        J[:, 0] = e
        J[:, 1] = p[0] * e * u / p[2]
        J[:, 2] = p[0] * e * u * u / p[2]
        J[:, 3] = 1.0
        return J

    core = lumafit.levenberg_marquardt_core

    @numba.njit(parallel=True)
    def fit_all(flat, p0, x):
        out = np.full((flat.shape[0], 4), np.nan)
        for i in numba.prange(flat.shape[0]):
            p = core(model, p0[i], flat[i], None, 100, jac_func=jac, args=(x,))[0]
            out[i] = p
        return out

    flat = cube.reshape(-1, X.size)[idx].astype(np.float64)
    p0 = starting_values(flat)
    fit_all(flat[:2], p0[:2], X)  # compile
    out, rate = best_rate(lambda: fit_all(flat, p0, X), len(idx), repeats)
    return {"amplitude": out[:, 0], "centre": out[:, 1], "sigma": np.abs(out[:, 2])}, rate


def run_jax(cube, idx, repeats):
    """The hand-written JAX batched LM of :mod:`jax_lm` (float32, vmapped over pixels)."""
    if not jax_lm.available():
        return None, None
    flat = cube.reshape(-1, X.size)[idx].astype(np.float32)
    p0 = starting_values(flat).astype(np.float32)
    jax_lm.fit(flat[:8], p0[:8], X)  # compile for a small batch, then the measured one
    jax_lm.fit(flat, p0, X)
    out, rate = best_rate(lambda: jax_lm.fit(flat, p0, X), len(idx), repeats)
    return {"amplitude": out[:, 0], "centre": out[:, 1], "sigma": np.abs(out[:, 2])}, rate


def _fmt(value, spec, none="n/a"):
    return none if value is None else format(value, spec)


def hyperlum_rows(figures, rate_h, rate_s, label=""):
    rows = []
    for est in ("lse", "mle"):
        f = figures[f"hyperlum_{est}"]
        rows.append(
            f"| hyperlum {est}{label} | {f['px_per_s']:,.0f} | "
            f"{_fmt(f.get('no_despike_px_per_s'), ',.0f', 'no filter')} | "
            f"{f['kernel_px_per_s']:,.0f} | {_fmt(f.get('despike_share'), '.0%', 'none')} | "
            f"{_fmt(f.get('verdict_share'), '.0%', 'none')} | "
            f"{f['px_per_s'] / rate_h:,.0f}x | "
            f"{f['px_per_s'] / rate_s:,.1f}x | {f['passes_per_px']:.2f} | "
            f"{f['ns_per_channel_pass']:.2f} | {f['centre']['rms_over_crb']:.3f} | "
            f"{f['sigma']['rms_over_crb']:.3f} | {f['converged']:.4f} |"
        )
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128, help="cube is size x size x 1024")
    ap.add_argument("--hyperspy", type=int, default=150, help="pixels fitted by HyperSpy")
    ap.add_argument("--scipy", type=int, default=600, help="pixels fitted by SciPy")
    ap.add_argument("--peers", type=int, default=4096, help="pixels fitted by lumafit, JAX")
    ap.add_argument("--repeats", type=int, default=3, help="every figure is the best of these")
    ap.add_argument("--count", type=int, default=32, help="pixels whose passes are counted")
    ap.add_argument(
        "--baseline",
        action="append",
        default=[],
        help="git commit measured too, in the same run (before); may be repeated",
    )
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument("--kernel-only", metavar="JSON", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.kernel_only:  # the baseline's subprocess
        with open(args.kernel_only, "w") as fh:
            json.dump(kernel_figures(args.size, args.repeats, args.count), fh)
        return 0
    figures = kernel_figures(args.size, args.repeats, args.count)
    figures["cpus"] = len(os.sched_getaffinity(0))
    figures["baselines"] = {
        ref: baseline_figures(ref, args.size, args.repeats, args.count) for ref in args.baseline
    }
    truth, cube, rng = make_cube(args.size)
    npix = cube.shape[0] * cube.shape[1]
    crb = cramer_rao(truth)
    peers = {}
    subsets = {
        "HyperSpy multifit": (run_hyperspy, args.hyperspy),
        "SciPy curve_fit loop": (run_scipy, args.scipy),
        "lumafit (numba LM, analytic Jacobian)": (run_lumafit, min(args.peers, npix)),
        "JAX batched LM (float32)": (run_jax, min(args.peers, npix)),
    }
    for name, (run, count) in subsets.items():
        idx = rng.choice(npix, count, replace=False)
        est, rate = run(cube, idx, args.repeats)
        if rate is not None:
            rate = {"px_per_s": rate, **precision(est, truth, crb, idx)}
        peers[name] = rate
    figures["peers"] = peers
    rate_h = peers["HyperSpy multifit"]["px_per_s"]
    rate_s = peers["SciPy curve_fit loop"]["px_per_s"]

    print(
        f"# CPU fit benchmark: {args.size}x{args.size}x{X.size} Poisson cube, "
        f"{figures['cpus']} CPUs, 1 Gaussian + constant, best of {args.repeats}"
    )
    print(
        "| method | px/s | px/s despike=False | kernel px/s | despike | verdict | vs HyperSpy "
        "| vs SciPy | passes/px | ns/channel/pass | centre RMS/CRB | sigma RMS/CRB | converged |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for ref, then in figures["baselines"].items():
        rows += hyperlum_rows(then, rate_h, rate_s, f" (before, {ref})")
    rows += hyperlum_rows(figures, rate_h, rate_s, " (this tree)" if args.baseline else "")
    for name, f in peers.items():
        if f is None:
            rows.append(f"| {name} | not installed | | | | | | | | | | | |")
            continue
        rows.append(
            f"| {name} | {f['px_per_s']:,.0f} | | | | | {f['px_per_s'] / rate_h:,.1f}x | "
            f"{f['px_per_s'] / rate_s:,.2f}x | | | {f['centre']['rms_over_crb']:.3f} | "
            f"{f['sigma']['rms_over_crb']:.3f} | |"
        )
    print("\n".join(rows))
    print(
        "\nCPU time per pixel (us, all threads of the process; hardly moved by the machine's "
        "other load):\n| hyperlum | hl.fit | hl.fit despike=False | kernel | spike filter | "
        "verdict |\n|---|---:|---:|---:|---:|---:|"
    )
    runs = [(f" (before, {ref})", then) for ref, then in figures["baselines"].items()]
    for label, figs in [*runs, (" (this tree)" if runs else "", figures)]:
        for est in ("lse", "mle"):
            c = figs[f"hyperlum_{est}"].get("cpu_us_per_px", {})
            cells = [_fmt(c.get(k), ".1f") for k in ("fit", "fit_no_despike", "kernel")]
            cells += [_fmt(c.get(k), ".2f") for k in ("despike", "verdict")]
            print(f"| {est}{label} | " + " | ".join(cells) + " |")
    for ref, then_all in figures["baselines"].items():
        for est in ("lse", "mle"):
            now, then = figures[f"hyperlum_{est}"], then_all[f"hyperlum_{est}"]
            print(
                f"hyperlum {est}: {now['px_per_s'] / then['px_per_s']:.2f}x the pixels per second "
                f"of {ref} (hl.fit), "
                f"{now['kernel_px_per_s'] / then['kernel_px_per_s']:.2f}x (kernel alone)"
            )
    f = figures["hyperlum_lse"]
    if f.get("despike_ns_per_channel") is not None:
        print(
            f"Beside the kernel, over the whole cube: spike filter "
            f"{f['despike_ns_per_channel']:.2f} ns per channel, detection verdict "
            f"{f['verdict_ns_per_channel']:.2f} ns per channel (shares above: of the hl.fit time)"
        )
    for est in ("lse", "mle"):
        f = figures[f"hyperlum_{est}"]
        print(
            f"hyperlum {est}: max |error| / CRB centre {f['centre']['max_over_crb']:.2f}, "
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
