"""The CUDA kernels compile to PTX for sm_80 and sm_90 without a GPU, and ptxas spills nothing."""

import numba
import pytest

from hyperlum.kernels import cuda as kcuda
from hyperlum.kernels.constants import BACKGROUNDS, MAX_PARAMS, N_MATRICES, N_VECTORS

pytestmark = pytest.mark.skipif(
    numba.config.ENABLE_CUDASIM, reason="PTX needs numba-cuda's compiler, not the simulator"
)

#: Every distinct fit kernel for sm_90: 1 peak (unrolled) and 2 peaks (the kernel that 2, 3 and
#: 4 peaks share), each background and estimator. For sm_80 the heaviest (linear background,
#: the most registers), to keep the compile time of this file near a minute.
SELECTION = {
    (9, 0): {"peaks": [1, 2]},
    (8, 0): {"peaks": [1, 2], "backgrounds": ["linear"]},
}
NAMES = {cc: kcuda.kernel_names(**sel) + ["transpose_float32"] for cc, sel in SELECTION.items()}
CASES = [(cc, name) for cc in SELECTION for name in NAMES[cc]]


@pytest.fixture(scope="module")
def ptx():
    """PTX texts by compute capability, compiled once for the module."""
    return {cc: kcuda.compile_ptx(cc, **sel) for cc, sel in SELECTION.items()}


@pytest.mark.parametrize("cc", list(SELECTION), ids=lambda cc: f"sm_{cc[0]}{cc[1]}")
def test_compile_ptx_gives_every_kernel(ptx, cc):
    texts = ptx[cc]
    assert sorted(texts) == sorted(NAMES[cc])
    for name, text in texts.items():
        assert f".target sm_{cc[0]}{cc[1]}" in text, name
        assert ".entry" in text, name


def test_ptx_peak_counts_above_one_share_a_kernel():
    texts = kcuda.compile_ptx((9, 0), peaks=[2, 4], backgrounds=["linear"], estimators=["mle"])
    assert texts["fit_2peak_linear_mle_float32"] == texts["fit_4peak_linear_mle_float32"]


def test_ptxas_is_found():
    path = kcuda.find_ptxas()
    assert path is not None, "ptxas not found: install the test extra (nvidia-cuda-nvcc)"


@pytest.mark.parametrize(("cc", "name"), CASES, ids=[f"sm_{c[0]}{c[1]}-{n}" for c, n in CASES])
def test_ptxas_reports_no_spills(ptx, cc, name):
    info = kcuda.ptxas_info(ptx[cc][name], cc)
    assert f"for 'sm_{cc[0]}{cc[1]}'" in info["log"]
    assert info["spill_stores"] == 0 and info["spill_loads"] == 0, info["log"]
    assert 0 < info["registers"] <= 255
    if name.startswith("fit_"):
        # local memory holds at most the per-thread scratch arrays M and V, nothing else
        peaks = int(name.split("_")[1][0])
        nbg = BACKGROUNDS[name.split("_")[2]]
        block = kcuda.channel_block(peaks if peaks <= kcuda.UNROLLED_PEAKS else 0, nbg)
        scratch = 8 * block * (N_MATRICES * MAX_PARAMS + N_VECTORS)
        assert info["stack"] <= scratch, info["log"]
    else:
        assert info["stack"] == 0, info["log"]


def test_ptxas_info_rejects_bad_ptx():
    with pytest.raises(RuntimeError, match=r"ptxas -arch=sm_90 failed"):
        kcuda.ptxas_info("this is not PTX", (9, 0))
