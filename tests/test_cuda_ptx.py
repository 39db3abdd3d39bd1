"""The CUDA kernels compile to PTX for sm_80 and sm_90 without a GPU, and ptxas spills nothing."""

import numba
import pytest

from hyperlum.kernels import cuda as kcuda

pytestmark = pytest.mark.skipif(
    numba.config.ENABLE_CUDASIM, reason="PTX needs numba-cuda's compiler, not the simulator"
)

#: 1 peak (unrolled kernels) and 2 peaks (the kernel that 2, 3 and 4 peaks share): every
#: distinct fit kernel, each background and estimator.
NAMES = kcuda.kernel_names(peaks=[1, 2]) + ["transpose_float32"]


@pytest.fixture(scope="module", params=[(8, 0), (9, 0)], ids=["sm_80", "sm_90"])
def ptx(request):
    cc = request.param
    return cc, kcuda.compile_ptx(cc, peaks=[1, 2])


def test_compile_ptx_gives_every_kernel(ptx):
    cc, texts = ptx
    assert sorted(texts) == sorted(NAMES)
    for name, text in texts.items():
        assert f".target sm_{cc[0]}{cc[1]}" in text, name
        assert ".entry" in text, name


def test_ptx_peak_counts_above_one_share_a_kernel():
    texts = kcuda.compile_ptx((9, 0), peaks=[2, 4], backgrounds=["linear"], estimators=["mle"])
    assert texts["fit_2peak_linear_mle_float32"] == texts["fit_4peak_linear_mle_float32"]


def test_ptxas_is_found():
    path = kcuda.find_ptxas()
    assert path is not None, "ptxas not found: install the test extra (nvidia-cuda-nvcc)"


@pytest.mark.parametrize("name", NAMES)
def test_ptxas_reports_no_spills(ptx, name):
    cc, texts = ptx
    info = kcuda.ptxas_info(texts[name], cc)
    assert f"for 'sm_{cc[0]}{cc[1]}'" in info["log"]
    assert info["spill_stores"] == 0 and info["spill_loads"] == 0, info["log"]
    assert 0 < info["registers"] <= 255
    if name.startswith("fit_1peak"):
        # unrolled: the scratch matrices live in registers, no local memory at all
        assert info["stack"] == 0, info["log"]


def test_ptxas_info_rejects_bad_ptx():
    with pytest.raises(RuntimeError, match=r"ptxas -arch=sm_90 failed"):
        kcuda.ptxas_info("this is not PTX", (9, 0))
