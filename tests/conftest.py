"""Shared fixtures: seeded random numbers, the real-data folder, small synthetic cubes."""

import os
from pathlib import Path

import numpy as np
import pytest

SHIPPED = Path(__file__).parents[1] / "data"
REAL = Path(os.environ.get("HYPERLUM_REAL_DATA", Path(__file__).parents[2] / "shared/data/real"))


#: Test files whose module fixtures compile or simulate for minutes (PTX of every kernel, the
#: CUDA simulator's fits): run first, one per worker, so that the many short files fill in
#: around them instead of one of these running alone at the end (``--dist loadfile`` with
#: ``--no-loadscope-reorder``; xdist would otherwise start the files with most tests first).
HEAVY_FIRST = (
    "test_cuda_ptx.py",
    "test_cuda_sim.py",
    "test_cuda_grid.py",
    "test_cuda_fwhm_sim.py",
    "test_shapes.py",
    "test_fit.py",
)


def pytest_collection_modifyitems(items):
    """Put the files of :data:`HEAVY_FIRST` first, in that order (the rest as collected)."""
    rank = {name: k for k, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)


@pytest.fixture
def real_file():
    """Path of a real data file: shipped in ``data/``, else in ``../shared/data/real``; the
    test is skipped when it is in neither."""

    def get(name):
        shipped = SHIPPED / name
        if shipped.is_file():
            return shipped
        path = REAL / name
        if not path.is_file():
            pytest.skip(f"real data file {name} not found in {REAL}")
        return path

    return get


def gaussian_cube(rng, shape, x, *, centre=(680, 740), sigma=(6, 20), amp=(40, 400), bg=(2, 20)):
    """Truth parameters and noiseless model for a cube of one Gaussian + constant."""
    truth = {
        "centre": rng.uniform(*centre, shape),
        "sigma": rng.uniform(*sigma, shape),
        "amplitude": rng.uniform(*amp, shape),
        "background": rng.uniform(*bg, shape),
    }
    mu = (
        truth["amplitude"][..., None]
        * np.exp(-0.5 * ((x - truth["centre"][..., None]) / truth["sigma"][..., None]) ** 2)
        + truth["background"][..., None]
    )
    return truth, mu


#: The cube of the SIGKILL tests: 60 rows of 160 pixels x 1024 channels, one row per chunk
#: (60 chunks): about a second on one core, long enough to be killed part way.
BIG_SHAPE = (60, 160)
BIG_CHUNK_BYTES = 160 * 1024 * 8


def big_cube(tmp_path, shape=BIG_SHAPE):
    """Save a seeded Poisson cube ``big.npy`` and its axis ``big.axis.npy``; return the path."""
    rng = np.random.default_rng(7)
    x = np.linspace(600.0, 800.0, 1024)
    _, mu = gaussian_cube(rng, shape, x)
    path = tmp_path / "big.npy"
    np.save(path, rng.poisson(mu).astype(np.float32))
    np.save(tmp_path / "big.axis.npy", x)
    return path


def kill_after_chunks(cmd, out, *, env, chunks=3):
    """Run ``cmd`` (a fit into ``out``) on one CPU and SIGKILL it once ``chunks`` chunks are
    done; return how many were. Fails if the fit ends first."""
    import signal
    import subprocess
    import time

    from hyperlum.fitting import resume

    def one_core():  # the same speed on any machine: the fit threads follow the affinity
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    proc = subprocess.Popen(
        cmd, env=env, preexec_fn=one_core, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    marks = resume.partial_path(out) / "done"
    deadline = time.monotonic() + 120  # the first run may compile the kernels
    while time.monotonic() < deadline and proc.poll() is None:
        if marks.is_dir() and len(os.listdir(marks)) >= chunks:
            break
        time.sleep(0.005)
    assert proc.poll() is None, f"the fit ended before it could be killed: {proc.communicate()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return len([n for n in os.listdir(marks) if ".tmp-" not in n])  # a marker cut off: no


def cli(capsys, *argv):
    """Run ``hyperlum ARGV`` in this process; return (exit code, stdout, stderr)."""
    from hyperlum.cli import main

    try:
        rc = main([str(a) for a in argv])
    except SystemExit as stop:  # argparse errors
        rc = stop.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_same_maps(a, b):
    """Two fit results hold the same maps, bit for bit."""
    assert a.names == b.names
    for name in a.names:
        np.testing.assert_array_equal(np.asarray(a.maps[name]), np.asarray(b.maps[name]), name)
