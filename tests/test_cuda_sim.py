"""The CUDA kernels agree with the CPU path: run under numba's CUDA simulator, without a GPU.

The simulator must be switched on before numba.cuda is first imported, so the device="cuda"
fits run in a subprocess (``_cuda_cases.py``) that saves its maps; the CPU fits run here.
"""

import functools
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from _cuda_cases import (
    API_CASE,
    CASES,
    LAUNCHES,
    LAZY_CASE,
    N_BAD,
    N_GOOD,
    PRECISION_GRID,
    THREADED,
    XP,
    case_name,
    cube,
    fit_case,
    kernel_args,
    precision_args,
    precision_cube,
)

from hyperlum.kernels import cpu
from hyperlum.kernels.compile import jit_model
from hyperlum.kernels.constants import (
    BACKGROUNDS,
    BAD_INPUT,
    CONVERGED,
    MAX_ITERATIONS,
    N_MATRICES,
    N_VECTORS,
    n_outputs,
    n_params,
)
from hyperlum.kernels.cuda import channel_block
from hyperlum.kernels.pixel import uniform_step
from hyperlum.kernels.shapes import get_shape

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """Maps of every case fitted with device="cuda" under NUMBA_ENABLE_CUDASIM=1."""
    path = tmp_path_factory.mktemp("cudasim") / "maps.npz"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run(
        [sys.executable, str(HERE / "_cuda_cases.py"), str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    with np.load(path) as f:
        return dict(f)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case_name(*c) for c in CASES])
def test_cuda_simulator_matches_cpu(simulated, index):
    case = CASES[index]
    est, bg, peaks, max_iter, shape = case
    cpu = fit_case(index, case, "cpu")
    key = case_name(*case)
    names = [k.split("/", 1)[1] for k in simulated if k.startswith(key + "/")]
    assert sorted(cpu) == sorted(names)
    for name, want in cpu.items():
        got = simulated[f"{key}/{name}"]
        assert got.shape == want.shape, name
        if name == "iterations":
            # Rounding (the CPU sums 64-channel blocks, a GPU thread a few channels at a time)
            # can leave a step at the minimum rejected on one side only: a few more iterations.
            assert np.count_nonzero(got != want) <= 1, (got, want)
            assert np.abs(got.astype(int) - want).max() <= 5, (got, want)
            continue
        if name in ("state", "converged", "spikes") or name.startswith("detected"):
            np.testing.assert_array_equal(got, want, err_msg=name)
        elif est == "lse" and name.endswith("_std"):
            # the sandwich middle: see assert_rows_close
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-9, err_msg=name)
        else:
            # both stop within the convergence tolerance (1e-7) of the same minimum; rounding
            # (fused multiply-adds, reassociated sums on the CPU) moves the last digits
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, err_msg=name)
    state = cpu["state"][0]
    assert list(state[N_GOOD:]) == [BAD_INPUT] * N_BAD
    assert not cpu["converged"][0, N_GOOD:].any()
    good = state[:N_GOOD]
    if max_iter == 2:
        assert (good == MAX_ITERATIONS).any(), good
    else:
        assert (good == CONVERGED).all(), good
        # the fits found the peaks: centres inside the ranges the cubes drew them from
        centre = cpu["centre"] if peaks == 1 else cpu["centre_1"]
        assert np.all((centre[0, :N_GOOD] > 675) & (centre[0, :N_GOOD] < 705))
        # and the detection verdict, computed after the CUDA kernel, says so
        assert cpu["detected"][0, :N_GOOD].all() and not cpu["detected"][0, N_GOOD:].any()


def cpu_chunk(index):
    case = CASES[index]
    data = cube(index, *case[:3])[0]
    args = kernel_args(case)
    want = np.empty((n_outputs(args[1], args[2]), data.shape[0]))
    cpu.fit_chunk(np.asarray(data, dtype=np.float64), *args, want)
    return want


def assert_rows_close(got, want, case):
    """Kernel output rows equal to rounding; least-squares standard deviations to 2e-4.

    The CPU takes the sandwich middle from its last pass, the GPU (narrow blocks) from one
    more pass at the solution: a step below the convergence tolerance apart.
    """
    est, _, peaks, _, _ = case
    m = kernel_args(case)[1] * 3 + kernel_args(case)[2]
    stds = np.zeros(got.shape[0], bool)
    if est == "lse":
        stds[m : 2 * m + 2 * peaks] = True  # and the area's and FWHM's per peak
    np.testing.assert_allclose(got[stds], want[stds], rtol=2e-4, atol=1e-9)
    np.testing.assert_allclose(got[~stds], want[~stds], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("index", THREADED)
def test_cuda_launcher_from_several_threads(simulated, index):
    """Chunks fitted from several threads at once (more than the lane sets) stay apart."""
    want = cpu_chunk(index)
    got = simulated[f"threaded/{index}"]
    np.testing.assert_array_equal(got[-2], want[-2])  # state
    assert_rows_close(got, want, CASES[index])


@pytest.mark.parametrize("run", LAUNCHES, ids=[r[0] for r in LAUNCHES])
def test_cuda_launcher_slabs_and_device_input(simulated, run):
    """Several slabs over fewer streams, and data already on the device, give the CPU maps."""
    name, index, _, _, _ = run
    case = CASES[index]
    data = cube(index, *case[:3])[0]
    args = kernel_args(case)
    want = np.empty((n_outputs(args[1], args[2]), data.shape[0]))
    cpu.fit_chunk(np.asarray(data, dtype=np.float64), *args, want)
    got = simulated[f"launch/{name}"]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got[-2:], want[-2:])  # state, iterations
    assert_rows_close(got, want, case)


def test_cuda_lazy_fit_matches_cpu(simulated):
    """A dask cube in several chunks goes through map_blocks and the CUDA launcher."""
    want = fit_case(LAZY_CASE, CASES[LAZY_CASE], "cpu")
    for name, w in want.items():
        got = simulated[f"lazy/{name}"]
        if name in ("state", "converged", "iterations", "spikes") or name.startswith("detected"):
            np.testing.assert_array_equal(got, w, err_msg=name)
        elif CASES[LAZY_CASE][0] == "lse" and name.endswith("_std"):
            np.testing.assert_allclose(got, w, rtol=2e-4, atol=1e-9, err_msg=name)
        else:
            np.testing.assert_allclose(got, w, rtol=1e-6, atol=1e-9, err_msg=name)


@functools.cache
def cpu_pixel_fit(shape, kind):
    """The CPU's float64 one-pixel fit of a model, compiled as the CPU driver compiles it
    (``numba.njit``, the driver's options) but with the sizes and the estimator as arguments:
    one numba compile per (shape, background kind), 10 for the grid, instead of one row loop
    per (shape, background, estimator), 60."""
    return jit_model(numba.njit(nogil=True, **cpu.JIT_OPTIONS), shape, kind)["fit_pixel"]


@pytest.fixture(scope="module")
def cpu_grid():
    """Kernel output rows of every grid case from the CPU-compiled float64 maths, over the
    scratch of the CUDA kernel (blocks of ``channel_block`` channels: the sandwich middle from
    one more pass at the solution, as a GPU thread takes it)."""
    grid = []
    for index in range(len(PRECISION_GRID)):
        data, args, model = precision_args(index)
        x, npk, nbg = args[:3]
        n_peak = get_shape(model["shape"]).n_params
        fit_pixel = cpu_pixel_fit(model["shape"], model["background"])
        out = np.empty((n_outputs(npk, nbg, n_peak), len(data)))
        block = channel_block(npk, nbg, n_peak)
        M = np.empty((N_MATRICES, block, block))
        V = np.empty((N_VECTORS, block))
        y = data.astype(np.float64)  # as hl.fit hands counts to the CPU driver
        for pix in range(len(y)):
            fit_pixel(out, pix, y[pix], x, uniform_step(x), *args[1:], M, V)
        grid.append(out)
    return grid


def test_cuda_float64_grid_matches_cpu(simulated, cpu_grid):
    """Every shape x background x estimator: the float64 kernels give the CPU-compiled float64
    maths over the same scratch to rounding (every row to 1e-6), the same states, iterations
    within 5 (a step at the minimum may be decided on either side of rounding)."""
    for case, want in zip(PRECISION_GRID, cpu_grid, strict=True):
        got = simulated["precision/" + "_".join(case) + "/float64"]
        assert got.shape == want.shape, case
        np.testing.assert_array_equal(got[-2], want[-2], err_msg=f"state of {case}")
        assert (want[-2] == CONVERGED).all(), (case, want[-2])
        assert np.abs(got[-1] - want[-1]).max() <= 5, (case, got[-1], want[-1])
        np.testing.assert_allclose(got[:-2], want[:-2], rtol=1e-6, atol=1e-9, err_msg=str(case))


def test_cuda_float32_grid_agrees_with_cpu_float64(simulated, cpu_grid):
    """Float32 kernels give the CPU's float64 fit within 0.1 standard error (amplitude, centre,
    width) for at least 99% of the pixels over every shape x background x estimator, and the
    same states (issue 13's target)."""
    far, total, report = 0, 0, []
    for case, want in zip(PRECISION_GRID, cpu_grid, strict=True):
        got = simulated["precision/" + "_".join(case) + "/float32"]
        np.testing.assert_array_equal(got[-2], want[-2], err_msg=f"state of {case}")
        m = n_params(1, BACKGROUNDS[case[1]], get_shape(case[0]).n_params)
        z = np.abs(got[:3] - want[:3]) / want[m : m + 3]
        off = ~(z <= 0.1).all(axis=0)
        report.append(f"{case}: max {z.max():.3g} SE")
        far += int(off.sum())
        total += off.size
    assert far <= 0.01 * total, "\n".join(report)


def test_cuda_fit_computes_in_float32_by_default(simulated):
    """hl.fit(device="cuda") without precision= runs the float32 kernels (the grid's)."""
    case = PRECISION_GRID[API_CASE]
    f32 = simulated["precision/" + "_".join(case) + "/float32"]
    f64 = simulated["precision/" + "_".join(case) + "/float64"]
    names = ["amplitude", "centre", "sigma", "background"]
    got = np.array([simulated[f"api/{name}"].ravel() for name in names])
    np.testing.assert_array_equal(got, f32[:4])
    assert not np.array_equal(got, f64[:4])


@pytest.mark.parametrize("est", ["lse", "mle"])
def test_cpu_float32_agrees_with_float64(est):
    """The CPU kernels in float32 give the float64 fit within 0.05 standard error (centre,
    width, amplitude) and the same states (issue 14's bar for float32 on the CPU)."""
    import hyperlum as hl

    index = PRECISION_GRID.index(("gaussian", "constant", est))
    data = np.concatenate([precision_cube(index + k, "gaussian", "constant") for k in range(4)])
    fits = {
        p: hl.fit(data, axis=XP, estimator=est, device="cpu", precision=p, despike=False)
        for p in ("float32", "float64")
    }
    assert fits["float32"].options["precision"] == "float32"
    np.testing.assert_array_equal(fits["float32"].maps["state"], fits["float64"].maps["state"])
    assert (np.asarray(fits["float64"].maps["state"]) == CONVERGED).all()
    for name in ("amplitude", "centre", "sigma"):
        f32, f64 = (np.asarray(f.maps[name]) for f in fits.values())
        z = np.abs(f32 - f64) / np.asarray(fits["float64"].maps[name + "_std"])
        assert z.max() <= 0.05, (name, z.max())
