"""The EMG's ``fwhm`` map: the kernels' ``peak_fwhm`` (which gives the ``fwhm_std`` row), checked
against the profile's half maximum found numerically, on failed pixels and in the maps."""

import math

import dask.array as da
import numba
import numpy as np
import pytest

from hyperlum.fitting.result import peak_maps
from hyperlum.kernels.compile import jit_model
from hyperlum.kernels.constants import output_rows
from hyperlum.kernels.cpu import JIT_OPTIONS
from hyperlum.kernels.shapes import get_shape

EMGS = ["emg_low", "emg_high"]
#: tau / sigma from nearly a Gaussian to nearly an exponential tail.
RATIOS = [1e-3, 0.1, 1.0, 3.0, 30.0, 1e3]


def random_params(rng, n):
    """``n`` EMG peaks, sigma over four decades, tau / sigma over six."""
    sigma = 10.0 ** rng.uniform(-2.0, 2.0, n)
    tau = sigma * 10.0 ** rng.uniform(-3.0, 3.0, n)
    return np.column_stack([rng.uniform(1.0, 1e3, n), rng.uniform(-5.0, 5.0, n), sigma, tau])


def half_maximum_width(shape, p, n=2_000_001):
    """The FWHM of ``shape``'s numpy profile on a dense grid: the maximum refined by a parabola
    through the three highest points, the half-maximum crossings interpolated linearly."""
    sigma, tau = p[2], p[3]
    reach = 10.0 * sigma + 3.0 * tau  # the tail's half maximum lies near tau ln 2
    x = np.linspace(p[1] - reach, p[1] + reach, n)
    g = get_shape(shape).evaluate(x, p)
    k = int(g.argmax())
    g0, g1, g2 = g[k - 1 : k + 2]
    half = 0.5 * (g1 - (g2 - g0) ** 2 / (8.0 * (g2 - 2.0 * g1 + g0)))
    i = np.flatnonzero(g[:k] < half)[-1]  # g[i] < half <= g[i + 1]
    j = k + np.flatnonzero(g[k:] < half)[0]  # g[j - 1] >= half > g[j]
    left = x[i] + (half - g[i]) / (g[i + 1] - g[i]) * (x[i + 1] - x[i])
    right = x[j - 1] + (half - g[j - 1]) / (g[j] - g[j - 1]) * (x[j] - x[j - 1])
    return right - left


@pytest.mark.parametrize("shape", EMGS)
def test_the_map_is_the_kernels_fwhm(rng, shape):
    """Pixel by pixel, the map equals the kernels' ``peak_fwhm`` as the CPU kernels compile it
    (bitwise) and as plain Python runs it (to rounding); an interpolated table (1e-6) would not."""
    p = random_params(rng, 500)
    width = get_shape(shape).fwhm(p)
    G = np.zeros(4)
    compiled = jit_model(numba.njit(**JIT_OPTIONS), shape)["peak_fwhm"]
    np.testing.assert_array_equal(width, [compiled(q, 0, G) for q in p])
    plain = jit_model(lambda f: f, shape)["peak_fwhm"]
    np.testing.assert_allclose(width, [plain(q, 0, G) for q in p], rtol=1e-12)


@pytest.mark.parametrize("ratio", RATIOS)
def test_the_map_is_the_profiles_half_maximum_width(ratio):
    """Against the half maximum of the numpy profile (scipy's erfc and erfcx, not the kernels'
    maths) found numerically: to 1e-6 from nearly a Gaussian to nearly an exponential."""
    p = np.array([50.0, 3.0, 0.7, 0.7 * ratio])
    want = half_maximum_width("emg_high", p)
    for shape in EMGS:  # the side of the tail moves the peak, not its width
        assert get_shape(shape).fwhm(p) == pytest.approx(want, rel=1e-6)


def test_no_tail_is_the_gaussian():
    """tau -> 0: the Gaussian's FWHM ``2 sqrt(2 ln 2) sigma``."""
    p = np.array([[1.0, 0.0, 1.0, 1e-7], [3.0, 2.0, 0.25, 1e-8]])
    gaussian = 2.0 * math.sqrt(2.0 * math.log(2.0)) * p[:, 2]
    np.testing.assert_allclose(get_shape("emg_low").fwhm(p), gaussian, rtol=1e-10)


def test_failed_and_impossible_peaks_give_nan():
    """A failed pixel's NaN parameters, and a sigma or tau that is not positive and finite,
    give NaN (neither a number nor a hang); the other pixels keep theirs, the shape is kept."""
    good = [10.0, 0.0, 1.0, 2.0]
    rows = [
        good,
        [np.nan] * 4,
        [10.0, 0.0, np.nan, 2.0],
        [10.0, 0.0, 1.0, np.nan],
        [10.0, 0.0, 0.0, 2.0],
        [10.0, 0.0, 1.0, 0.0],
        [10.0, 0.0, -1.0, 2.0],
        [10.0, 0.0, 1.0, -2.0],
        [10.0, 0.0, np.inf, 2.0],
        [10.0, 0.0, 1.0, np.inf],
    ]
    p = np.array(rows).reshape(2, 5, 4)
    width = get_shape("emg_low").fwhm(p)
    assert width.shape == (2, 5)
    assert np.isfinite(width.flat[0])
    assert np.isnan(width.flat[1:]).all()
    assert width.flat[0] == get_shape("emg_low").fwhm(np.array(good))


@pytest.mark.parametrize("lazy", [False, True], ids=["numpy", "dask"])
def test_the_fit_maps_take_it(rng, lazy):
    """``fwhm`` in the maps of a fit result (numpy and dask rows): the shape's ``fwhm`` of the
    fitted parameters, NaN on a failed pixel; its std is the kernels' row, untouched."""
    shape = get_shape("emg_low")
    layout = output_rows(1, 1, shape.n_params)
    stacked = rng.uniform(0.5, 2.0, (3, 4, layout.total))
    stacked[1, 2, : shape.n_params] = np.nan  # a failed pixel
    source = da.from_array(stacked, chunks=(2, 2, -1)) if lazy else stacked
    maps = peak_maps(lambda r: source[..., r], 0, 1, layout, shape)
    fwhm = np.asarray(maps["fwhm"])
    want = shape.fwhm(stacked[..., : shape.n_params])
    np.testing.assert_array_equal(fwhm, want)
    assert np.isnan(fwhm[1, 2]) and np.isfinite(np.delete(fwhm.ravel(), 6)).all()
    np.testing.assert_array_equal(np.asarray(maps["fwhm_std"]), stacked[..., layout.fwhm_std])
