"""The kernels' FWHM and area std rows on the CUDA path equal the CPU's, under the simulator.

The EMG's FWHM is solved for inside the kernel (Newton steps on its half-maximum conditions)
and its gradient differentiated implicitly; the Gaussian's is a multiple of sigma. The
simulator must be on before numba.cuda is first imported, so the ``device="cuda"`` chunks are
fitted in a subprocess (this file run as a script by ``_cuda_cases.simulate``) that saves the rows; the CPU fits run here.
"""

import sys

import numpy as np
import pytest
from _cuda_cases import N_GOOD, cube, kernel_args, simulate

from hyperlum.kernels.constants import CONVERGED, output_rows
from hyperlum.kernels.shapes import get_shape

#: (estimator, background, peaks, max_iterations, shape), working precision on the device.
CASES = [
    (("lse", "constant", 1, 50, "gaussian"), "float64"),
    (("lse", "constant", 1, 50, "emg_low"), "float64"),
    (("mle", "constant", 1, 50, "emg_low"), "float64"),
    (("mle", "constant", 1, 50, "emg_low"), "float32"),
]


def rows(index, device):
    """The kernel rows of case ``index`` fitted on ``device``."""
    case, precision = CASES[index]
    est, bg, peaks, _, shape = case
    data = cube(index, est, bg, peaks, shape)[0]
    args = kernel_args(case)
    model = {"shape": shape, "background": "polynomial"}
    if device == "cuda":
        from hyperlum.kernels import cuda

        return cuda.fit_chunk(data, *args, precision=precision, **model)
    from hyperlum.kernels import cpu

    out = np.empty((output_rows(peaks, args[2], get_shape(shape).n_params).total, len(data)))
    cpu.fit_chunk(np.asarray(data, dtype=np.float64), *args, out, **model)
    return out


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("fwhmsim"), "rows", script=__file__)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c[4]}-{c[0]}-{p}" for c, p in CASES])
def test_fwhm_std_row_matches_cpu(simulated, index):
    (est, _, peaks, _, shape), precision = CASES[index]
    want = rows(index, "cpu")
    got = simulated[str(index)]
    layout = output_rows(peaks, 1, get_shape(shape).n_params)
    assert (want[layout.state, :N_GOOD] == CONVERGED).all()
    assert (got[layout.state, :N_GOOD] == CONVERGED).all()
    for first in (layout.area_std, layout.fwhm_std):
        w, g = want[first, :N_GOOD], got[first, :N_GOOD]
        assert np.isfinite(w).all() and (w > 0).all()
        if precision == "float32":
            # float32 rounding of the whole fit (the parameters agree within 0.1 std error)
            np.testing.assert_allclose(g, w, rtol=2e-2)
        elif est == "lse":
            # the sandwich middle: the CPU's from its last pass, the GPU's from one more pass
            np.testing.assert_allclose(g, w, rtol=2e-4)
        else:
            np.testing.assert_allclose(g, w, rtol=1e-6)
    # bad pixels: no std
    assert np.isnan(got[layout.fwhm_std, N_GOOD:]).all()


if __name__ == "__main__":
    np.savez(sys.argv[1], **{str(i): rows(i, "cuda") for i in range(len(CASES))})
