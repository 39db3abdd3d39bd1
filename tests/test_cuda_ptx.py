"""The CUDA kernels compile to PTX for sm_80 and sm_90 without a GPU, and ptxas spills nothing."""

import re

import numba
import numpy as np
import pytest

from hyperlum.kernels import cuda as kcuda
from hyperlum.kernels.backgrounds import BACKGROUNDS
from hyperlum.kernels.constants import N_MATRICES, N_VECTORS
from hyperlum.kernels.shapes import get_shape

pytestmark = pytest.mark.skipif(
    numba.config.ENABLE_CUDASIM, reason="PTX needs numba-cuda's compiler, not the simulator"
)

OTHER_SHAPES = ["lorentzian", "pseudo_voigt", "emg_low"]
BOTH = {"precisions": ["float32", "float64"]}
#: The fit kernels compiled, by capability. Both targets and both working precisions for the
#: Gaussian's 1 peak (unrolled) and 2 peaks (the kernel that 2, 3 and 4 peaks share) over a
#: linear background with each estimator; on sm_90 only, in float32 (the default) only, the
#: Gaussian's other backgrounds and every other shape over the heaviest background (the most
#: parameters). One NVVM compile per kernel: the selection keeps the file to a few minutes.
SELECTION = {
    (9, 0): [
        {"peaks": [1, 2], "backgrounds": ["linear"], **BOTH},
        {"peaks": [1], "backgrounds": ["none", "poly3", "powerlaw"], "estimators": ["lse"]},
        {"peaks": [1, 2], "backgrounds": ["poly3"], "estimators": ["mle"], "shapes": OTHER_SHAPES},
    ],
    (8, 0): [{"peaks": [1, 2], "backgrounds": ["linear"], **BOTH}],
}


def _selected(cc):
    """``(name, shape, peaks, background, precision)`` of the fit kernels compiled for ``cc``."""
    out = []
    for sel in SELECTION[cc]:
        for shape in sel.get("shapes", ["gaussian"]):
            for precision in sel.get("precisions", ["float32"]):
                for npk in sel["peaks"]:
                    for bg in sel["backgrounds"]:
                        one = {"estimators": sel.get("estimators")}
                        one.update(peaks=[npk], backgrounds=[bg], shapes=[shape])
                        names = kcuda.kernel_names(**one, precisions=[precision])
                        out += [(n, shape, npk, bg, precision) for n in names]
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
    assert texts["fit_2peak_linear_mle_float32_f32"] == texts["fit_4peak_linear_mle_float32_f32"]


#: float64 arithmetic instructions of a PTX text
_F64_MATH = re.compile(r"^\s*(?:@%p\d+\s+)?(?:fma|mul|add|sub|div)\.[\w.]*f64\b", re.M)


@pytest.mark.parametrize("peaks", [1, 2])
def test_float32_kernels_compute_in_float32(ptx, peaks):
    """The float32 kernels do a small fraction of the float64 kernels' float64 arithmetic: what
    is left is per-pixel setup (integer counts times float32 promote), not the channel passes."""
    base = f"fit_{peaks}peak_linear_mle_float32"
    f32 = len(_F64_MATH.findall(ptx[(9, 0)][base + "_f32"]))
    f64 = len(_F64_MATH.findall(ptx[(9, 0)][base + "_f64"]))
    assert f32 < 0.1 * f64, (f32, f64)


def test_ptxas_is_found():
    path = kcuda.find_ptxas()
    assert path is not None, "ptxas not found: install the test extra (nvidia-cuda-nvcc)"


def _scratch_bytes(name, cc):
    """Bytes of the per-thread scratch arrays M, V and T of a fit kernel."""
    _, shape, npk, bg, precision = next(k for k in KERNELS[cc] if k[0] == name)
    nbg = BACKGROUNDS[bg][1]
    key = npk if npk <= kcuda.UNROLLED_PEAKS else -1
    block = kcuda.channel_block(key, nbg, get_shape(shape).n_params)
    size = np.dtype(precision).itemsize * block * (N_MATRICES * block + N_VECTORS + block + 2)
    return -(-size // 16) * 16  # the frame is aligned to 16 bytes


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
