"""The CUDA kernels compile to PTX for sm_80 and sm_90 without a GPU, and ptxas spills nothing."""

import numba
import pytest

from hyperlum.kernels import cuda as kcuda
from hyperlum.kernels.backgrounds import BACKGROUNDS
from hyperlum.kernels.constants import N_MATRICES, N_VECTORS
from hyperlum.kernels.shapes import get_shape

pytestmark = pytest.mark.skipif(
    numba.config.ENABLE_CUDASIM, reason="PTX needs numba-cuda's compiler, not the simulator"
)

OTHER_SHAPES = ["lorentzian", "pseudo_voigt", "emg_low"]
#: The fit kernels compiled, by capability: for sm_90 the Gaussian's 1 peak (unrolled) and 2
#: peaks (the kernel that 2, 3 and 4 peaks share) with the first backgrounds and each
#: estimator, its 1-peak kernels with the new backgrounds, and every other shape (1 and 2
#: peaks, constant background); for sm_80 the heaviest (the most parameters). Kept to a few
#: minutes of NVVM compiles.
SELECTION = {
    (9, 0): [
        {"peaks": [1, 2], "backgrounds": ["none", "constant", "linear"]},
        {"peaks": [1], "backgrounds": ["poly3", "powerlaw"]},
        {"peaks": [1, 2], "backgrounds": ["constant"], "shapes": OTHER_SHAPES},
    ],
    (8, 0): [
        {"peaks": [1, 2], "backgrounds": ["linear"]},
        {"peaks": [1, 2], "backgrounds": ["poly3"], "estimators": ["mle"], "shapes": ["emg_low"]},
    ],
}


def _selected(cc):
    """``(name, shape, peaks, background)`` of the fit kernels compiled for ``cc``."""
    out = []
    for sel in SELECTION[cc]:
        for shape in sel.get("shapes", ["gaussian"]):
            for npk in sel["peaks"]:
                for bg in sel["backgrounds"]:
                    one = {k: v for k, v in sel.items() if k not in ("shapes", "peaks")}
                    one.update(peaks=[npk], backgrounds=[bg], shapes=[shape])
                    out += [(n, shape, npk, bg) for n in kcuda.kernel_names(**one)]
    return out


KERNELS = {cc: _selected(cc) for cc in SELECTION}
NAMES = {cc: [k[0] for k in KERNELS[cc]] + ["transpose_float32"] for cc in SELECTION}
CASES = [(cc, name) for cc in SELECTION for name in NAMES[cc]]


@pytest.fixture(scope="module")
def ptx():
    """PTX texts by compute capability, compiled once for the module."""
    out = {}
    for cc, sels in SELECTION.items():
        out[cc] = {}
        for sel in sels:
            out[cc].update(kcuda.compile_ptx(cc, **sel))
    return out


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


def _scratch_bytes(name, cc):
    """Bytes of the per-thread scratch arrays M and V of a fit kernel."""
    _, shape, npk, bg = next(k for k in KERNELS[cc] if k[0] == name)
    nbg = BACKGROUNDS[bg][1]
    key = npk if npk <= kcuda.UNROLLED_PEAKS else -1
    block = kcuda.channel_block(key, nbg, get_shape(shape).n_params)
    return 8 * block * (N_MATRICES * block + N_VECTORS)


@pytest.mark.parametrize(("cc", "name"), CASES, ids=[f"sm_{c[0]}{c[1]}-{n}" for c, n in CASES])
def test_ptxas_reports_no_spills(ptx, cc, name):
    info = kcuda.ptxas_info(ptx[cc][name], cc)
    assert f"for 'sm_{cc[0]}{cc[1]}'" in info["log"]
    assert info["spill_stores"] == 0 and info["spill_loads"] == 0, info["log"]
    assert 0 < info["registers"] <= 255
    if name.startswith("fit_"):
        # local memory holds at most the per-thread scratch arrays M and V, nothing else
        assert info["stack"] <= _scratch_bytes(name, cc), info["log"]
    else:
        assert info["stack"] == 0, info["log"]


def test_ptxas_info_rejects_bad_ptx():
    with pytest.raises(RuntimeError, match=r"ptxas -arch=sm_90 failed"):
        kcuda.ptxas_info("this is not PTX", (9, 0))
