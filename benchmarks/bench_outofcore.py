"""Out-of-core benchmark: ``hyperlum fit`` of a cube larger than the memory it may use.

Writes a synthetic CL cube of about ``--gib`` GiB (float32, one Gaussian on a constant, with
Gaussian noise that compresses poorly) to a ``.zspy`` store, block by block (the default 2.7 GiB
of data take 2.1 GiB on disk after Blosc compression), then fits it with
``hyperlum fit`` under GNU time (``/usr/bin/time -v``; ``apt-get install -y time`` if missing)
and reports the peak resident memory of the fitting process.

    python benchmarks/bench_outofcore.py --dir /tmp/ooc            # 2.1 GiB on disk
    python benchmarks/bench_outofcore.py --dir /tmp/ooc --gib 0.25 # a quick look

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
    ap.add_argument("--gib", type=float, default=2.7, help="size of the data in GiB (2.7)")
    ap.add_argument("--keep", action="store_true", help="keep the maps")
    ap.add_argument("fit_args", nargs="*", help="more options for hyperlum fit (after --)")
    args = ap.parse_args()
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


def _shape(cube):
    import zarr

    group = zarr.open_group(str(cube), mode="r")
    arr = next(a for _, a in group.arrays(recurse=True) if a.ndim == 3)
    return arr.shape


if __name__ == "__main__":
    main()
