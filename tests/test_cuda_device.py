"""Choosing the device: device="cuda" without a GPU fails clearly, "auto" falls back and says so."""

import numpy as np
import pytest

import hyperlum as hl
from hyperlum.fitting import _backend
from hyperlum.kernels import cuda as kcuda

HAS_GPU, REASON = _backend.cuda_status()
no_gpu = pytest.mark.skipif(HAS_GPU, reason="a usable CUDA GPU (or the simulator) is present")


def small_cube():
    x = np.linspace(650.0, 770.0, 120)
    centres = np.array([700.0, 712.0])
    return x, 100 * np.exp(-0.5 * ((x - centres[:, None]) / 8.0) ** 2) + 5


@no_gpu
def test_cuda_without_gpu_raises_naming_what_is_missing():
    x, cube = small_cube()
    with pytest.raises(RuntimeError, match=r"^device='cuda' was asked for, but ") as err:
        hl.fit(cube, axis=x, device="cuda")
    assert REASON in str(err.value)
    assert "GPU" in REASON or "CuPy" in REASON


@no_gpu
def test_auto_without_gpu_fits_on_the_cpu_and_says_so_once(monkeypatch, capsys):
    monkeypatch.setattr(_backend, "_notified", [])
    x, cube = small_cube()
    res = hl.fit(cube, axis=x, device="auto")
    assert capsys.readouterr().err == f"hyperlum: device='auto' fits on the CPU: {REASON}\n"
    assert res.options["device"] == "cpu"
    np.testing.assert_allclose(res.maps["centre"], [700.0, 712.0], atol=1e-6)
    hl.fit(cube, axis=x, device="auto")
    assert capsys.readouterr().err == ""


def test_unknown_device_is_rejected():
    x, cube = small_cube()
    with pytest.raises(ValueError, match="device"):
        hl.fit(cube, axis=x, device="gpu")


@pytest.mark.parametrize(
    ("dtype", "native"),
    [
        ("uint16", "uint16"),
        (">u2", "uint16"),
        ("<f4", "float32"),
        ("float16", "float64"),
        ("int64", "float64"),
        ("float64", "float64"),
    ],
)
def test_kernel_input_dtypes(dtype, native):
    """Native dtypes go to the device as they are; the rest are widened on the host."""
    assert kcuda._native(np.dtype(dtype)) == np.dtype(native)


def test_slab_pixels():
    assert kcuda.slab_pixels(1024, 2, 2**20) == 512
    assert kcuda.slab_pixels(1024, 4, 100) == 1
    assert kcuda.slab_pixels(1024, 2) == kcuda.SLAB_BYTES // 2048


@pytest.mark.parametrize("rows", [3, 9000])
def test_staging_copy_into_pinned_memory(rng, rows):
    """Slabs are staged row block by row block (in parallel above 8 MiB), exactly."""
    src = rng.integers(0, 60000, (rows, 1024)).astype(np.uint16)
    dst = np.zeros_like(src)
    kcuda._stage(dst, src)
    np.testing.assert_array_equal(dst, src)
