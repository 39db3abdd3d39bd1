"""Out-of-core benchmarks of ``hyperlum fit``: speed against the API, start-up, memory.

``--speed`` (the default): on a ``--size`` x ``--size`` x 1024 uint16 cube saved by HyperSpy as
``.zspy`` (its own chunking), the pixels/s of, each in a fresh process and the start-up of the
same run on a 4 x 4 file taken off:

- ``hyperlum fit CUBE -o maps.zspy -q --device cpu``
- ``hl.fit(hl.load(CUBE, lazy=True), device="cpu").compute()``
- ``hl.fit(hl.load(CUBE, lazy=True), device="cpu", out="maps.zspy")``

then the fixed start-up of ``hyperlum fit`` on the 4 x 4 file, broken down (interpreter,
imports, first load, first fit: numba's cache, the rest).

    python benchmarks/bench_outofcore.py --dir /tmp/ooc --speed --size 256 --repeat 3

``--memory``: writes a synthetic CL cube of about ``--gib`` GiB (float32, one Gaussian on a
constant, with Gaussian noise that compresses poorly) to a ``.zspy`` store, block by block
(the default 2.7 GiB of data take 2.1 GiB on disk after Blosc compression), then fits it with
``hyperlum fit`` under GNU time (``/usr/bin/time -v``; ``apt-get install -y time`` if missing)
and reports the peak resident memory of the fitting process.

    python benchmarks/bench_outofcore.py --dir /tmp/ooc --memory            # 2.1 GiB on disk
    python benchmarks/bench_outofcore.py --dir /tmp/ooc --memory --gib 0.25 # a quick look

The cube is kept in ``--dir`` for later runs (delete it yourself); the maps are removed unless
``--keep``.
"""

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NX = 512
CHANNELS = 2048
ROWS_PER_BLOCK = 8


def _block(block, block_info=None):
    (r0, _), _, _ = block_info[None]["array-location"]
    rng = np.random.default_rng(1000 + r0)
    ny = block.shape[0]
    x = np.linspace(500.0, 900.0, CHANNELS, dtype=np.float32)
    centre = rng.uniform(650, 750, (ny, NX, 1)).astype(np.float32)
    sigma = rng.uniform(10, 30, (ny, NX, 1)).astype(np.float32)
    amp = rng.uniform(100, 400, (ny, NX, 1)).astype(np.float32)
    mu = amp * np.exp(-0.5 * ((x - centre) / sigma) ** 2) + 20
    return mu + rng.normal(0, 5, mu.shape).astype(np.float32)


def make_cube(path, gib):
    import dask.array as da
    import hyperspy.api as hs

    ny = math.ceil(gib * 2**30 / (NX * CHANNELS * 4) / ROWS_PER_BLOCK) * ROWS_PER_BLOCK
    shape = (ny, NX, CHANNELS)
    data = da.zeros(shape, dtype=np.float32, chunks=(ROWS_PER_BLOCK, NX, CHANNELS))
    data = data.map_blocks(_block, dtype=np.float32)
    s = hs.signals.Signal1D(data).as_lazy()
    s.set_signal_type("CL")
    sax = s.axes_manager.signal_axes[0]
    sax.name, sax.units = "Wavelength", "nm"
    sax.offset, sax.scale = 500.0, 400.0 / (CHANNELS - 1)
    for ax, name in zip(s.axes_manager.navigation_axes, ("x", "y"), strict=True):
        ax.name, ax.units, ax.scale = name, "nm", 20.0
    s.save(str(path), chunks=(ROWS_PER_BLOCK, NX, CHANNELS), overwrite=True)
    return shape


def du(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/tmp/hyperlum-ooc", help="where the cube and maps go")
    ap.add_argument("--memory", action="store_true", help="the peak-memory benchmark")
    ap.add_argument("--speed", action="store_true", help="CLI against API (the default)")
    ap.add_argument("--size", type=int, default=256, help="--speed: cube of SIZE x SIZE (256)")
    ap.add_argument("--repeat", type=int, default=3, help="--speed: runs of each, best kept")
    ap.add_argument("--gib", type=float, default=2.7, help="size of the data in GiB (2.7)")
    ap.add_argument("--keep", action="store_true", help="keep the maps")
    ap.add_argument("fit_args", nargs="*", help="more options for hyperlum fit (after --)")
    args = ap.parse_args()
    if not args.memory:
        return speed(Path(args.dir), args.size, args.repeat)
    if not Path("/usr/bin/time").exists():
        sys.exit("GNU time is missing: apt-get install -y time")
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    cube = d / f"cube-{args.gib:g}GiB.zspy"
    if not cube.exists():
        t = time.perf_counter()
        shape = make_cube(cube, args.gib)
        print(f"wrote {cube} {shape} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    maps = d / "maps.zspy"
    shutil.rmtree(maps, ignore_errors=True)
    shutil.rmtree(str(maps) + ".partial", ignore_errors=True)
    cmd = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "hyperlum.cli",
        "fit",
        str(cube),
        "-o",
        str(maps),
        "-q",
        "--device",
        "cpu",
        *args.fit_args,
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore")
    )
    if proc.returncode:
        sys.exit(proc.stderr)
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)[1])
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", proc.stderr)[1]
    raw = math.prod(_shape(cube)) * 4
    print(proc.stdout.strip())
    print(
        f"cube: {_shape(cube)} float32, {raw / 2**30:.2f} GiB of data, "
        f"{du(cube) / 2**30:.2f} GiB on disk"
    )
    print(
        f"peak resident memory of `hyperlum fit`: {rss_kib / 2**20:.2f} GiB "
        f"({rss_kib / 1024:.0f} MiB); wall clock {wall}; CPUs {len(os.sched_getaffinity(0))}"
    )
    if not args.keep:
        shutil.rmtree(maps, ignore_errors=True)


# -- CLI against API ---------------------------------------------------------------------------
SPEED_CHANNELS = 1024


def make_uint16_cube(path, n):
    """An n x n x 1024 uint16 CL cube (Poisson counts of one Gaussian on a constant), saved by
    HyperSpy as .zspy with its own chunking."""
    import hyperspy.api as hs

    rng = np.random.default_rng(1)
    x = np.linspace(500.0, 900.0, SPEED_CHANNELS)
    c, w, a = (rng.uniform(lo, hi, (n, n, 1)) for lo, hi in ((650, 750), (10, 30), (100, 400)))
    s = hs.signals.Signal1D(rng.poisson(a * np.exp(-0.5 * ((x - c) / w) ** 2) + 20))
    s.change_dtype("uint16")
    s.set_signal_type("CL")
    ax = s.axes_manager.signal_axes[0]
    ax.name, ax.units, ax.offset, ax.scale = "Wavelength", "nm", 500.0, 400.0 / 1023
    s.save(str(path), overwrite=True)


_API = (
    "import sys, hyperlum as hl\n"
    "s = hl.load(sys.argv[1], lazy=True)\n"
    "hl.fit(s, device='cpu').compute(progress=False)\n"
)
_OUT = (
    "import sys, hyperlum as hl\n"
    "s = hl.load(sys.argv[1], lazy=True)\n"
    "hl.fit(s, device='cpu', out=sys.argv[2], progress=False)\n"
)
_STARTUP = """
import sys, time
t0 = time.perf_counter()
import hyperlum.cli, hyperlum.cli.fit
t1 = time.perf_counter()
from hyperlum.io.loader import load
s = load(sys.argv[1], lazy=True)
t2 = time.perf_counter()
import hyperlum as hl
hl.fit(s.data[:1, :1].compute(), axis=s.axes_manager[-1].axis, device="cpu")
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def _wall(cmd, out=None):
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(f"{cmd} failed: {proc.stderr}")
    return wall, proc.stdout


def speed(d, size, repeat):
    d.mkdir(parents=True, exist_ok=True)
    big, tiny = d / f"cube{size}-u16.zspy", d / "cube4-u16.zspy"
    for path, n in ((big, size), (tiny, 4)):
        if not path.exists():
            make_uint16_cube(path, n)
    maps = d / "maps.zspy"
    py = sys.executable
    runs = {
        "hyperlum fit": lambda c: (
            [py, "-m", "hyperlum.cli", "fit", str(c), "-o", str(maps)] + ["-q", "--device", "cpu"]
        ),
        "hl.fit(hl.load(path, lazy=True)).compute()": lambda c: [py, "-c", _API, str(c)],
        "hl.fit(hl.load(path, lazy=True), out=...)": lambda c: [py, "-c", _OUT, str(c), str(maps)],
    }
    _wall(runs["hyperlum fit"](tiny), maps)  # numba's cache warm
    best = {k: [math.inf, math.inf] for k in runs}
    for _ in range(repeat):  # interleaved, best of each: the machine is shared
        for name, cmd in runs.items():
            for k, cube in enumerate((big, tiny)):
                best[name][k] = min(best[name][k], _wall(cmd(cube), maps)[0])
    npix = size * size
    api = npix / (
        best["hl.fit(hl.load(path, lazy=True)).compute()"][0]
        - best["hl.fit(hl.load(path, lazy=True)).compute()"][1]
    )
    print(
        f"{size} x {size} x {SPEED_CHANNELS} uint16 .zspy saved by HyperSpy, "
        f"{len(os.sched_getaffinity(0))} CPUs, best of {repeat}, start-up (4 x 4 run) taken off"
    )
    print("| run | wall (s) | 4 x 4 run (s) | pixels/s | vs API |\n|---|---|---|---|---|")
    for name, (w_big, w_tiny) in best.items():
        rate = npix / (w_big - w_tiny)
        print(f"| `{name}` | {w_big:.2f} | {w_tiny:.2f} | {rate:,.0f} | {rate / api:.2f}x |")
    interp = min(_wall([py, "-c", "pass"])[0] for _ in range(3))
    parts = [
        [float(v) for v in _wall([py, "-c", _STARTUP, str(tiny)])[1].split()] for _ in range(repeat)
    ]
    imports, first_load, first_fit = (min(p[k] for p in parts) for k in range(3))
    total = best["hyperlum fit"][1]
    rest = total - interp - imports - first_load - first_fit
    print(
        f"start-up of `hyperlum fit` on a 4 x 4 file: {total:.2f} s = interpreter {interp:.2f}"
        f" + imports {imports:.2f} + first load (HyperSpy/RosettaSciIO) {first_load:.2f}"
        f" + first fit (numba cache) {first_fit:.2f} + rest (write maps, lock, store) {rest:.2f}"
    )
    shutil.rmtree(maps, ignore_errors=True)


def _shape(cube):
    import zarr

    group = zarr.open_group(str(cube), mode="r")
    arr = next(a for _, a in group.arrays(recurse=True) if a.ndim == 3)
    return arr.shape


if __name__ == "__main__":
    main()
