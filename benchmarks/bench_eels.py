"""EELS preprocessing benchmark: power-law subtraction against exSpy, ZLP centre accuracy.

Run: ``python benchmarks/bench_eels.py [--exspy-pixels N] [--shape NY NX NCH] [--device D]``

* Power law: a synthetic 64 x 64 x 1024 core-loss cube (Poisson counts, ``A E**-r`` with ``r``
  from 2.5 to 4 per pixel, plus an edge at 640 eV), fitted in 560-630 eV and subtracted by
  ``hl.eels.subtract_powerlaw`` (whole cube, on ``--device``, default the CPU) and by exSpy's
  ``remove_background(fast=False)`` (non-linear least squares per pixel through HyperSpy's
  ``multifit``, on the CPU).
  ``--exspy-pixels`` (default: all) lets exSpy run on the first rows only, its time then
  scaled to the whole cube (per-pixel cost is constant in ``multifit``). Agreement is
  measured on the pixels exSpy fitted. hyperlum's time is the best of 3 runs.
* ZLP: bright synthetic zero-loss peaks (2e5 counts, sigma 3 channels, Poisson noise) with
  random sub-channel shifts; the error of ``hl.eels.zlp_centre`` in channels.
"""

import argparse
import time
import warnings

import numpy as np

import hyperlum as hl


def powerlaw_cube(rng, ny, nx, nch, e0=400.0, de=0.5):
    e = e0 + de * np.arange(nch)
    r = rng.uniform(2.5, 4.0, (ny, nx))
    a = 3e4 * 600.0**r
    edge = np.where(e > 640, 4e3 * np.exp(-(e - 640) / 80.0), 0.0)
    mu = a[..., None] * e ** -r[..., None] + edge
    return e, rng.poisson(mu).astype(np.float64)


def bench_powerlaw(shape, exspy_pixels, fit_range=(560.0, 630.0), device="cpu"):
    import hyperspy.api as hs

    rng = np.random.default_rng(1)
    ny, nx, nch = shape
    e, data = powerlaw_cube(rng, ny, nx, nch)
    s = hs.signals.Signal1D(data)
    s.set_signal_type("EELS")
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = e[0], e[1] - e[0], "eV"

    hl.eels.subtract_powerlaw(s.inav[:2, :2], fit_range=fit_range, device=device)  # compile
    t_hl = c_hl = np.inf
    for _ in range(3):  # best of 3: the machine is shared
        t0, c0 = time.perf_counter(), time.process_time()
        sub, maps = hl.eels.subtract_powerlaw(s, fit_range=fit_range, device=device)
        t_hl = min(t_hl, time.perf_counter() - t0)
        c_hl = min(c_hl, time.process_time() - c0)

    rows = max(1, exspy_pixels // nx)
    sub_s = s.inav[:, :rows]
    n_ex = rows * nx
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0, c0 = time.perf_counter(), time.process_time()
        ref, model = sub_s.remove_background(
            signal_range=fit_range, fast=False, return_model=True, show_progressbar=False
        )
        t_ex = time.perf_counter() - t0
        c_ex = (time.process_time() - c0) * (ny * nx) / n_ex
    t_ex_full = t_ex * (ny * nx) / n_ex
    comp = model[0]
    r_ex, a_ex = comp.r.map["values"], comp.A.map["values"]
    if ax.is_binned:  # HyperSpy's A is then per eV; hyperlum's per channel
        a_ex = a_ex * ax.scale
    r_hl, a_hl = maps.maps["r"][:rows], maps.maps["A"][:rows]
    diff = np.abs(sub.data[:rows] - ref.data)
    print(f"power law, {ny} x {nx} x {nch} (fit {fit_range[0]:g}-{fit_range[1]:g} eV):")
    print(
        f"  hyperlum subtract_powerlaw ({device}): {t_hl:.3f} s ({ny * nx / t_hl:,.0f} px/s, "
        f"{c_hl / (ny * nx) * 1e6:.1f} us CPU time per pixel), "
        f"states {hl.eels.state_counts(maps)}"
    )
    scaled = f" -> {t_ex_full:.1f} s for {ny * nx} px (scaled)" if n_ex < ny * nx else ""
    print(
        f"  exSpy remove_background(fast=False): {t_ex:.1f} s on {n_ex} px "
        f"({n_ex / t_ex:,.0f} px/s){scaled}"
    )
    print(
        f"  speed ratio: {t_ex_full / t_hl:,.0f}x wall clock; CPU time (all threads) "
        f"{c_hl:.3f} s vs {c_ex:.1f} s: {c_ex / c_hl:,.0f}x"
    )
    print(
        f"  agreement on {n_ex} px: max |dr| = {np.abs(r_hl - r_ex).max():.2e}, "
        f"max |dA|/A = {np.max(np.abs(a_hl - a_ex) / a_ex):.2e}, "
        f"max |d subtracted| = {diff.max():.3g} counts "
        f"({diff.max() / np.abs(s.data).max():.1e} of the data maximum)"
    )


def bench_zlp(n=64, nch=1024, sigma_ch=3.0):
    rng = np.random.default_rng(2)
    e = -50.0 + 0.1 * np.arange(nch)
    truth = rng.uniform(-0.5, 0.5, (n, n)) + rng.integers(-20, 20, (n, n)) * 0.1
    mu = 2e5 * np.exp(-0.5 * ((e - truth[..., None]) / (sigma_ch * 0.1)) ** 2) + 20
    data = rng.poisson(mu).astype(np.float64)
    hl.eels.zlp_centre(data[:2, :2], axis=e, device="cpu")
    t0 = time.perf_counter()
    res = hl.eels.zlp_centre(data, axis=e, device="cpu")
    t = time.perf_counter() - t0
    err = np.abs(res.maps["centre"] - truth) / 0.1
    print(f"ZLP centre, {n} x {n} x {nch}, bright peaks (2e5 counts, sigma {sigma_ch:g} ch):")
    print(
        f"  {t:.2f} s; error in channels: max {err.max():.4f}, rms "
        f"{np.sqrt(np.mean(err**2)):.4f}; converged {int(res.maps['converged'].sum())}"
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--exspy-pixels", type=int, default=None)
    p.add_argument("--shape", type=int, nargs=3, default=(64, 64, 1024))
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = p.parse_args()
    shape = tuple(args.shape)
    bench_powerlaw(shape, args.exspy_pixels or shape[0] * shape[1], device=args.device)
    bench_zlp()


if __name__ == "__main__":
    main()
