"""The CUDA kernels agree with the CPU path: run under numba's CUDA simulator, without a GPU.

The simulator must be switched on before numba.cuda is first imported, so the device="cuda"
fits run in a subprocess (``_cuda_cases.simulate``) that saves its maps; the CPU fits run here.
The shape x background x estimator grid in both precisions: ``test_cuda_grid.py``.
"""

import numpy as np
import pytest
from _cuda_cases import (
    CASES,
    LAUNCHES,
    LAZY_CASE,
    N_BAD,
    N_GOOD,
    THREADED,
    case_name,
    cube,
    fit_case,
    kernel_args,
    simulate,
)

from hyperlum.kernels import cpu
from hyperlum.kernels.constants import (
    BAD_INPUT,
    CONVERGED,
    MAX_ITERATIONS,
    n_outputs,
)

#: Least-squares standard deviations, CPU against GPU: the CPU takes the sandwich middle from
#: its last pass that summed it (one predicted to lower the objective by less than 1e-2 of it,
#: ``kernels.pixel.QTOL``), a GPU thread from one more pass at the solution. The largest gap
#: seen over these cases is 2.03e-4 relative.
SANDWICH_RTOL = 5e-4

#: Poisson MLE standard deviations, CPU against GPU: the CPU sums the normal matrix (the Fisher
#: information, whose inverse is the covariance) over each block of channels in float32
#: (``kernels.cpu.TILES``), a GPU thread in the working precision. The inverse carries that
#: rounding (about 1e-7) times the matrix's condition. The largest gap seen over these cases
#: is 3.3e-6 relative (an exponentially modified Gaussian's centre and tau).
FISHER_RTOL = 2e-5

#: Parameters, CPU against GPU: both stop within the convergence tolerance (1e-7) of the same
#: minimum, by steps that rounding (float32 tiles on the CPU, fused multiply-adds, reassociated
#: sums) makes differ. A parameter agrees to 1e-6 of its value, or to this share of its
#: standard deviation: a coefficient near zero (the cubic term of a background), whose step
#: tolerance is set by the background's size over the span, not by its own value, differed by
#: 2.9e-6 of its value.
STD_SHARE = 1e-5


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """Maps of every case fitted with device="cuda" under NUMBA_ENABLE_CUDASIM=1."""
    return simulate(tmp_path_factory.mktemp("cudasim"), "cases")


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
        elif name.endswith("_std"):
            # the sandwich middle (SANDWICH_RTOL), the float32 sums of the Fisher matrix
            rtol = SANDWICH_RTOL if est == "lse" else FISHER_RTOL
            np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-9, err_msg=name)
        else:
            std = cpu.get(name + "_std", np.zeros_like(want))
            assert_values_close(got, want, std, name)
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


def assert_values_close(got, want, std, name=""):
    """``got`` equal to ``want`` to 1e-6 of its value or :data:`STD_SHARE` of ``std``."""
    tol = 1e-9 + 1e-6 * np.abs(want) + STD_SHARE * np.nan_to_num(std)
    bad = ~((np.abs(got - want) <= tol) | (np.isnan(got) & np.isnan(want)))
    assert not bad.any(), (name, got[bad], want[bad], std[bad])


def assert_rows_close(got, want, case):
    """Kernel output rows: parameters by :func:`assert_values_close`, standard deviations to
    :data:`SANDWICH_RTOL` (least squares) or :data:`FISHER_RTOL`, the rest to rounding."""
    est, _, peaks, _, _ = case
    m = kernel_args(case)[1] * 3 + kernel_args(case)[2]
    stds = np.zeros(got.shape[0], bool)
    stds[m : 2 * m + 2 * peaks] = True  # and the area's and FWHM's per peak
    rtol = SANDWICH_RTOL if est == "lse" else FISHER_RTOL
    np.testing.assert_allclose(got[stds], want[stds], rtol=rtol, atol=1e-9)
    assert_values_close(got[:m], want[:m], want[m : 2 * m])
    np.testing.assert_allclose(got[2 * m + 2 * peaks :], want[2 * m + 2 * peaks :], rtol=1e-6)


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
            np.testing.assert_allclose(got, w, rtol=SANDWICH_RTOL, atol=1e-9, err_msg=name)
        else:
            np.testing.assert_allclose(got, w, rtol=1e-6, atol=1e-9, err_msg=name)
