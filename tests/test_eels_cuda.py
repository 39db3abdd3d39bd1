"""The power law's CUDA path: ``subtract_powerlaw(device="cuda")`` (fit and subtraction on the
device) under numba's CUDA simulator against the CPU, and the fit kernel it runs compiled to PTX
without spills.

The simulated fits run in a subprocess (``NUMBA_ENABLE_CUDASIM=1`` must be set before numba is
imported), on cubes this module writes; the CPU fits of the same cubes run here.
"""

import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

import hyperlum as hl
from hyperlum.kernels.constants import BAD_INPUT, CONVERGED

E = 500.0 + np.arange(120.0)
FIT_RANGE = (510.0, 560.0)
MAPS = ("A", "r", "chisq", "state", "iterations", "nonpositive", "saturated", "nonfinite")
#: Per pixel of :func:`cubes`: converged, or bad input (3).
STATES = [CONVERGED] * 6 + [BAD_INPUT] * 4 + [CONVERGED]


def cubes():
    """Float64 counts (6 good pixels, then NaN, all zeros, all negative, one positive channel
    in the window, and a NaN past it) and the same as uint16 with a saturated channel."""
    rng = np.random.default_rng(5)
    r = rng.uniform(2.5, 4.0, 6)
    scale = np.array([3e4, 3e4, 1e3, 1e3, 30.0, 2.0])  # the last: zeros at the window's ends
    mu = scale[:, None] * (E / 535.0) ** -r[:, None]
    good = rng.poisson(mu).astype(np.float64)
    good[0, 12:14] = [0.0, -4.0]  # a few channels <= 0: fitted all the same
    bad = np.repeat(good[:1], 5, axis=0)
    win = (E >= FIT_RANGE[0]) & (E <= FIT_RANGE[1])
    bad[0, 30] = np.nan
    bad[1] = 0.0
    bad[2, win] = -3.0
    bad[3, win] = np.where(np.arange(win.sum()) == 20, 50.0, 0.0)
    bad[4, 100] = np.nan  # outside the window: only this channel is lost
    f64 = np.concatenate([good, bad])
    u16 = np.nan_to_num(np.clip(f64, 0, None)).astype(np.uint16)
    u16[1, 20] = 65535  # saturated in the window: bad input
    u16[2, 110] = 65535  # past it: that channel NaN
    return f64, u16


SCRIPT = textwrap.dedent(
    """
    import sys
    import dask.array as da
    import numpy as np
    import hyperlum as hl
    from hyperlum.kernels import powerlaw
    from hyperlum.kernels.powerlaw_cuda import subtract_chunk_cuda

    def host_subtraction(*args, **kwargs):
        raise AssertionError("device='cuda' subtracted on the host")

    src, dst, lo, hi = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    cubes = dict(np.load(src))
    out = {}
    # the kernel alone, with the parameters the CPU test gives it
    for name in ("f64", "u16"):
        for dtype in ("float32", "float64"):
            sub = np.empty(cubes[name].shape, dtype)
            out[f"kernel_{name}_{dtype}"] = subtract_chunk_cuda(
                cubes[name], cubes["kaxis"], cubes["kxref"], cubes["kparams"], sub
            )
    powerlaw.subtract_chunk = host_subtraction
    for name in ("f64", "u16"):
        data = cubes[name]
        for lazy in (False, True) if name == "u16" else (False,):
            d = da.from_array(data, chunks=(4, -1)) if lazy else data
            sub, maps = hl.eels.subtract_powerlaw(
                d, fit_range=(lo, hi), axis=cubes["axis"], device="cuda"
            )
            key = f"{name}{'_lazy' if lazy else ''}"
            out[f"{key}/sub"] = np.asarray(sub)
            res = maps.compute() if lazy else maps
            for k, v in res.maps.items():
                out[f"{key}/{k}"] = np.asarray(v)
            assert res.options["device"] == "cuda"
    np.savez(dst, **out)
    """
)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """Maps and subtracted spectra of :func:`cubes` with device="cuda" in the simulator."""
    tmp = tmp_path_factory.mktemp("eels_cudasim")
    f64, u16 = cubes()
    np.savez(tmp / "cubes.npz", f64=f64, u16=u16, axis=E, **kernel_inputs())
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    argv = [str(tmp / "cubes.npz"), str(tmp / "out.npz"), *map(str, FIT_RANGE)]
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(tmp / "out.npz") as f:
        return dict(f)


def kernel_inputs():
    """An axis through 0 (channels at E <= 0 keep their value) and, per pixel of
    :func:`cubes`, ``A`` and ``r``: NaN for one (a failed fit), a steep ``r`` for another
    (exact ``exp`` in every channel), gentle ones (the stepped ``exp``)."""
    axis = np.linspace(-20.0, 1500.0, E.size)
    r = np.linspace(1.5, 4.5, 11)
    r[3] = 40.0
    a = np.full(11, 250.0)
    a[5] = np.nan
    return {"kaxis": axis, "kxref": np.float64(600.0), "kparams": np.stack([a, r])}


@pytest.mark.parametrize("name", ["f64", "u16"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_simulated_subtraction_kernel_is_the_cpus(simulated, name, dtype):
    """The CUDA subtraction is the CPU's code: the same numbers from the same parameters."""
    from hyperlum.kernels.powerlaw import subtract_chunk

    data = dict(zip(["f64", "u16"], cubes(), strict=True))[name]
    k = kernel_inputs()
    want = subtract_chunk(data, k["kaxis"], k["kxref"], k["kparams"], np.empty(data.shape, dtype))
    got = simulated[f"kernel_{name}_{dtype}"]
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[5]).all() and (got[0, k["kaxis"] <= 0] == data[0, k["kaxis"] <= 0]).all()
    scale = np.nanmax(np.abs(np.asarray(data, dtype=np.float64)))
    tol = 1e-13 if dtype == "float64" else 2**-23
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize(("name", "lazy"), [("f64", False), ("u16", False), ("u16", True)])
def test_simulator_matches_cpu(simulated, name, lazy):
    data = dict(zip(["f64", "u16"], cubes(), strict=True))[name]
    sub, maps = hl.eels.subtract_powerlaw(data, fit_range=FIT_RANGE, axis=E, device="cpu")
    key = f"{name}{'_lazy' if lazy else ''}"
    want = dict(maps.maps)
    state = want["state"]
    expected = list(STATES)
    if name == "u16":
        expected[1] = BAD_INPUT  # saturated in the window
        expected[6] = CONVERGED  # its NaN became a 0
    assert state.tolist() == expected
    names = [k.split("/", 1)[1] for k in simulated if k.startswith(key + "/")]
    assert sorted(names) == sorted([*want, "sub"])
    for k in ("state", "converged", "nonpositive", "saturated", "nonfinite"):
        np.testing.assert_array_equal(simulated[f"{key}/{k}"], want[k], err_msg=k)
    # Both stop within the tolerance (1e-10) of the same minimum; the CPU sums 128-channel
    # blocks with reassociation, a GPU thread 2 channels at a time: the last digits differ,
    # and a step at the minimum may be rejected on one side only (an iteration or two more).
    got_it, want_it = simulated[f"{key}/iterations"], want["iterations"]
    assert np.abs(got_it.astype(int) - want_it).max() <= 2, (got_it, want_it)
    for k in ("A", "r", "chisq"):
        np.testing.assert_allclose(simulated[f"{key}/{k}"], want[k], rtol=1e-6, err_msg=k)
    bad = state == BAD_INPUT
    assert np.isnan(want["r"][bad]).all() and np.isfinite(want["r"][~bad]).all()
    got_sub = simulated[f"{key}/sub"]
    np.testing.assert_array_equal(np.isnan(got_sub), np.isnan(sub))
    assert np.isnan(sub[bad]).all()
    good = ~bad
    scale = np.nanmax(np.abs(np.asarray(data[good], dtype=np.float64)), axis=1, keepdims=True)
    diff = np.nan_to_num(np.abs(got_sub[good] - sub[good]))
    assert (diff <= 1e-6 * scale).all(), (diff / scale).max()


@pytest.mark.skipif(
    numba.config.ENABLE_CUDASIM, reason="PTX needs numba-cuda's compiler, not the simulator"
)
def test_kernel_compiles_without_spills():
    from hyperlum.kernels import cuda as kcuda
    from hyperlum.kernels.constants import N_MATRICES, N_VECTORS

    if kcuda.find_ptxas() is None:
        pytest.skip("ptxas not found (the test extra installs nvidia-cuda-nvcc)")
    name = "fit_0peak_powerlaw_lse_float32_f64"  # float32 counts, float64 maths (as used)
    ptx = kcuda.compile_ptx(
        (9, 0), peaks=[0], backgrounds=["powerlaw"], estimators=["lse"], precisions=["float64"]
    )
    info = kcuda.ptxas_info(ptx[name], (9, 0))
    assert info["spill_stores"] == 0 and info["spill_loads"] == 0, info["log"]
    # local memory holds the per-thread scratch (2 parameters: 2 x 2 matrices), nothing else
    block = kcuda.channel_block(0, 2)
    assert info["stack"] <= 8 * block * (N_MATRICES * block + N_VECTORS + block + 2), info["log"]
