"""res.model() and res.residuals(): cubes rebuilt from the maps, on the fitted axis."""

import dask
import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest

import hyperlum as hl
from hyperlum.fitting.result import FitResult

X = np.linspace(650.0, 770.0, 241)  # uniform, 0.5 nm


def two_peaks(rng, shape, x):
    """Noiseless cube of two Gaussians on a linear background, with the truth."""
    c1 = rng.uniform(690, 700, shape)[..., None]
    c2 = rng.uniform(725, 735, shape)[..., None]
    cube = (
        150 * np.exp(-0.5 * ((x - c1) / 6.0) ** 2)
        + 90 * np.exp(-0.5 * ((x - c2) / 9.0) ** 2)
        + 20
        + 0.05 * (x - 710)
    )
    return cube


def as_signal(cube, x, *, binned=False):
    s = hs.signals.Signal1D(cube)
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units, ax.name = float(x[0]), float(x[1] - x[0]), "nm", "Wavelength"
    ax.is_binned = binned
    nav = s.axes_manager.navigation_axes
    for a, scale in zip(nav, (20.0, 10.0), strict=False):
        a.scale, a.units = scale, "nm"
    return s


@pytest.fixture
def fitted(rng):
    cube = two_peaks(rng, (3, 4), X)
    s = as_signal(cube, X)
    return s, hl.fit(s, peaks=2, background="linear", device="cpu", signal_range=(660, 760))


class TestModel:
    def test_model_is_the_data_of_a_noiseless_fit(self, fitted):
        s, res = fitted
        m = res.model()
        keep = (X >= 660) & (X <= 760)
        np.testing.assert_allclose(m.data, s.data[..., keep], rtol=1e-6)
        sax = m.axes_manager.signal_axes[0]
        np.testing.assert_allclose(sax.axis, X[keep], rtol=1e-12)
        assert (sax.units, sax.name) == ("nm", "Wavelength")
        nav = [(a.size, a.scale, a.units) for a in m.axes_manager.navigation_axes]
        assert nav == [(4, 20.0, "nm"), (3, 10.0, "nm")]

    def test_components_add_up_to_the_model(self, fitted):
        _, res = fitted
        parts = [res.model(component=k).data for k in (1, 2)]
        bg = res.model(component="background").data
        np.testing.assert_allclose(parts[0] + parts[1] + bg, res.model().data, rtol=1e-12)
        # peak 1 is a Gaussian of the fitted height at the fitted centre
        i = np.argmax(parts[0][1, 2])
        x = res.model().axes_manager.signal_axes[0].axis
        assert abs(x[i] - res.maps["centre_1"][1, 2]) <= 0.25
        expect = res.maps["background"][1, 2] + res.maps["background_slope"][1, 2] * (x - 710.0)
        np.testing.assert_allclose(bg[1, 2], expect, rtol=1e-12)

    @pytest.mark.parametrize(
        "component, message",
        [
            (
                0,
                "component must be a peak number from 1 to 2 (as in the map names centre_1 ...) or 'background', or None for the whole model; got 0",
            ),
            (3, "got 3"),
            ("peak", "got 'peak'"),
            (True, "got True"),
        ],
    )
    def test_bad_component(self, fitted, component, message):
        _, res = fitted
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            res.model(component=component)

    def test_no_background_component_without_background(self, rng):
        res = hl.fit(
            two_peaks(rng, (2,), X) - 20 - 0.05 * (X - 710),
            axis=X,
            background="none",
            peaks=2,
            device="cpu",
        )
        with pytest.raises(
            ValueError, match=r"centre_1 ...\), or None for the whole model; got 'background'"
        ):
            res.model(component="background")

    def test_bad_pixel_gives_nan_spectrum(self, rng):
        cube = two_peaks(rng, (2, 2), X)
        cube[0, 1, 5] = np.nan
        m = hl.fit(cube, axis=X, peaks=2, background="linear", device="cpu").model().data
        assert np.isnan(m[0, 1]).all() and np.isfinite(m[[0, 1, 1], [0, 0, 1]]).all()

    def test_lazy_fit_gives_a_lazy_equal_model(self, rng):
        cube = two_peaks(rng, (4, 6), X)
        eager = hl.fit(cube, axis=X, peaks=2, background="linear", device="cpu")
        lazy = hl.fit(
            da.from_array(cube, chunks=(2, 3, -1)),
            axis=X,
            peaks=2,
            background="linear",
            device="cpu",
            chunk_bytes=6 * X.size * 8,
        )
        m = lazy.model()
        assert m._lazy and m.data.chunks[:2] == lazy.maps["centre_1"].chunks
        assert m.data.npartitions > 1
        np.testing.assert_allclose(m.data.compute(), eager.model().data, rtol=1e-9)

    def test_non_uniform_axis(self, rng):
        x = 650.0 + 120.0 * np.linspace(0, 1, 200) ** 1.4
        s = hs.signals.Signal1D(
            two_peaks(rng, (2, 3), x), axes=[{"size": 2}, {"size": 3}, {"axis": x}]
        )
        res = hl.fit(s, peaks=2, background="linear", device="cpu")
        m = res.model()
        assert not m.axes_manager.signal_axes[0].is_uniform
        np.testing.assert_array_equal(m.axes_manager.signal_axes[0].axis, x)
        np.testing.assert_allclose(m.data, s.data, rtol=1e-6)

    def test_axis_survives_save_and_load(self, fitted, tmp_path):
        _, res = fitted
        res.save(tmp_path / "maps.zspy")
        back = hl.load_result(tmp_path / "maps.zspy")
        np.testing.assert_array_equal(back.model().data, res.model().data)

    def test_result_without_axis_says_so(self, fitted):
        _, res = fitted
        old = FitResult(res.maps, res.nav_axes, res.options, {"name": None, "units": "nm"})
        with pytest.raises(ValueError, match="does not record the signal axis it was fitted on"):
            old.model()


class TestResiduals:
    def test_residuals_are_data_minus_model(self, rng):
        x = X
        cube = rng.poisson(two_peaks(rng, (3, 4), x)).astype(np.uint16)
        s = as_signal(cube, x)
        res = hl.fit(s, peaks=2, background="linear", device="cpu", signal_range=(660, 760))
        keep = (x >= 660) & (x <= 760)
        r = res.residuals(s)
        np.testing.assert_allclose(r.data, cube[..., keep] - res.model().data, rtol=0, atol=1e-9)
        assert r.data.dtype == np.float64
        # Poisson counts fitted well: residuals scatter like sqrt(model)
        z = r.data / np.sqrt(res.model().data)
        assert abs(np.mean(z)) < 0.1 and 0.85 < np.std(z) < 1.15
        # the fitted range alone gives the same
        np.testing.assert_array_equal(res.residuals(s.isig[660.0:760.5]).data, r.data)

    def test_lazy_signal_or_fit_gives_lazy_residuals(self, rng):
        cube = rng.poisson(two_peaks(rng, (4, 4), X)).astype(np.float32)
        s = as_signal(cube, X)
        eager = hl.fit(s, peaks=2, background="linear", device="cpu")
        expect = eager.residuals(s).data
        lazy_res = hl.fit(s.as_lazy(), peaks=2, background="linear", device="cpu")
        for res, sig in ((eager, s.as_lazy()), (lazy_res, s), (lazy_res, s.as_lazy())):
            r = res.residuals(sig)
            assert r._lazy
            np.testing.assert_allclose(r.data.compute(), expect, rtol=1e-9, atol=1e-9)

    def test_array_input_needs_the_axis(self, rng):
        cube = two_peaks(rng, (2, 2), X)
        res = hl.fit(cube, axis=X, peaks=2, background="linear", device="cpu")
        assert np.abs(res.residuals(cube, axis=X).data).max() < 1e-6 * cube.max()
        with pytest.raises(
            ValueError,
            match=r"channels in the fitted range \(241 from 0 to 240\) are not those of the fit \(241 from 650 to 770\)",
        ):
            res.residuals(cube)

    def test_wrong_signal_is_refused(self, fitted):
        s, res = fitted
        with pytest.raises(ValueError, match=r"navigation shape of the fit \(3, 4\), got \(2, 3\)"):
            res.residuals(s.inav[:3, :2])
        with pytest.raises(TypeError, match="data must be a HyperSpy Signal1D or a numpy"):
            res.residuals([1, 2, 3])


def test_lazy_model_holds_one_chunk_at_a_time():
    """Computing the model of a lazy fit never holds the cube: memory peaks near one chunk."""
    import tracemalloc

    x = np.linspace(650.0, 770.0, 200)

    def make(block_info=None):  # the data is made chunk by chunk, never as a whole
        (r0, r1), (c0, c1), _ = block_info[None]["array-location"]
        r = np.arange(r0, r1)[:, None, None]
        c = np.arange(c0, c1)[None, :, None]
        return 100 * np.exp(-0.5 * ((x - 690 - 0.3 * r - 0.2 * c) / 8.0) ** 2) + 5

    data = da.map_blocks(make, dtype=np.float64, chunks=((16,) * 8, (16,) * 8, (200,)))
    chunk = 16 * 16 * 200 * 8
    res = hl.fit(data, axis=x, device="cpu", chunk_bytes=chunk)
    model = res.model().data
    assert model.nbytes == 64 * chunk and model.chunks == data.chunks
    with dask.config.set(scheduler="synchronous"):
        first = model.blocks[0, 0].compute()  # loads the compiled kernels before measuring
        tracemalloc.start()
        try:
            total = float(model.sum().compute())
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # a few chunks in flight (data, fit, parameters, model; measured 8.3), never the cube (64)
    assert peak < 12 * chunk, f"peak {peak / chunk:.1f} chunks of a 64-chunk cube"
    expect = make({None: {"array-location": [(0, 16), (0, 16), (0, 200)]}})
    np.testing.assert_allclose(first, expect, rtol=1e-6)
    assert total == pytest.approx(float(data.sum().compute()), rel=1e-6)
