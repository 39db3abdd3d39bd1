"""hl.cl: wavelength to energy with the Jacobian (against LumiSpy), cosmic-ray spike removal."""

import warnings

import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest
import scipy.constants as const

import hyperlum as hl

HC_EV_NM = 1e9 * const.h * const.c / const.e  # 1239.84... eV nm


def cl_signal(data, start, step, units="nm"):
    s = hs.signals.Signal1D(data)
    s.set_signal_type("CL")
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units, ax.name = start, step, units, "Wavelength"
    return s


class TestToEnergy:
    @pytest.mark.parametrize("units, start, step", [("nm", 400.0, 0.5), ("µm", 0.4, 0.0005)])
    def test_matches_lumispy(self, rng, units, start, step):
        s = cl_signal(rng.uniform(10, 1000, (3, 4, 600)), start, step, units)
        ours = hl.cl.to_energy(s)
        ref = s.to_eV(inplace=False)
        np.testing.assert_allclose(
            ours.axes_manager[-1].axis, ref.axes_manager[-1].axis, rtol=1e-13
        )
        np.testing.assert_allclose(ours.data, ref.data, rtol=1e-12)
        assert ours.axes_manager[-1].units == "eV"
        assert type(ours) is type(s)
        # the input is untouched
        assert s.axes_manager[-1].units == units

    def test_matches_lumispy_on_real_line_scan(self, real_file):
        s = hs.load(real_file("lumispydemos-Test-linescan_InGaAs-NWs.dm4"))
        ours = hl.cl.to_energy(s)
        ref = s.to_eV(inplace=False)
        np.testing.assert_allclose(
            ours.axes_manager[-1].axis, ref.axes_manager[-1].axis, rtol=1e-12
        )
        np.testing.assert_allclose(ours.data, ref.data, rtol=1e-6)
        assert ours.data.dtype == np.float32

    def test_real_map_with_wavelength_in_mm(self, real_file):
        # The Attolight .sur reader gives the wavelength in mm (333-668 nm): converted right,
        # the near-band-edge peak (358 nm) of this GaN-like emitter fits at 3.45 eV.
        s = hs.load(real_file("rsciio-digitalsurf-test_spectral_map.sur"))
        assert s.axes_manager[-1].units == "mm"
        e = hl.cl.to_energy(s)
        axis = e.axes_manager[-1].axis
        assert axis[0] == pytest.approx(HC_EV_NM / 668.2, rel=2e-3)
        assert axis[-1] == pytest.approx(HC_EV_NM / 333.3, rel=2e-3)
        res = hl.fit(e, device="cpu", signal_range=(3.3, 3.6))
        assert 3.43 < np.nanmedian(res.maps["centre"]) < 3.47

    def test_variance_scaled_like_lumispy(self):
        s = cl_signal(np.full((2, 50), 100.0), 500.0, 2.0)
        s.set_noise_variance(100.0)
        ours = hl.cl.to_energy(s).get_noise_variance()
        ref = s.to_eV(inplace=False).get_noise_variance()
        np.testing.assert_allclose(ours.data, ref.data, rtol=1e-12)

    def test_vacuum_is_hc_over_lambda(self):
        s = cl_signal(np.ones(5), 300.0, 100.0)
        e = hl.cl.to_energy(s, medium="vacuum", jacobian=False)
        wl = np.array([700.0, 600.0, 500.0, 400.0, 300.0])
        np.testing.assert_allclose(e.axes_manager[-1].axis, HC_EV_NM / wl, rtol=1e-14)
        np.testing.assert_array_equal(e.data, np.ones(5))

    def test_jacobian_keeps_the_integral(self):
        wl = np.linspace(600.0, 800.0, 2001)
        y = 1000 * np.exp(-0.5 * ((wl - 700.0) / 15.0) ** 2)  # counts per nm
        e = hl.cl.to_energy(cl_signal(y, 600.0, 0.1))
        in_nm = np.trapezoid(y, wl)
        in_mev = 1000 * np.trapezoid(e.data, e.axes_manager[-1].axis)  # counts per meV x meV
        assert in_mev == pytest.approx(in_nm, rel=1e-5)

    def test_energy_axis_fits(self):
        # A Gaussian in energy recorded on a wavelength grid: in energy, hl.fit finds it.
        s = cl_signal(np.zeros((2, 400)), 600.0, 0.5)
        energy_of_channel = hl.cl.to_energy(s, jacobian=False).axes_manager[-1].axis[::-1]
        centres = np.array([1.72, 1.80])
        s.data = 500 * np.exp(-0.5 * ((energy_of_channel - centres[:, None]) / 0.03) ** 2) + 10
        e = hl.cl.to_energy(s, jacobian=False)
        assert not e.axes_manager[-1].is_uniform
        res = hl.fit(e, device="cpu")
        np.testing.assert_allclose(res.maps["centre"], centres, atol=1e-6)

    def test_lazy_gives_the_same(self, rng):
        s = cl_signal(rng.uniform(0, 100, (4, 4, 64)), 500.0, 1.0)
        lazy = hl.cl.to_energy(s.as_lazy())
        assert lazy._lazy
        np.testing.assert_allclose(lazy.data.compute(), hl.cl.to_energy(s).data)

    def test_outside_air_range_warns_and_clamps(self):
        s = cl_signal(np.ones(3), 100.0, 50.0)
        with pytest.warns(UserWarning, match="185 to 1700 nm"):
            hl.cl.to_energy(s)

    def test_bad_input(self):
        s = cl_signal(np.ones(3), 1.0, 1.0, units="eV")
        with pytest.raises(ValueError, match="the signal axis is in 'eV'; to_energy needs"):
            hl.cl.to_energy(s)
        with pytest.raises(ValueError, match="medium='water' is not one of 'air', 'vacuum'"):
            hl.cl.to_energy(cl_signal(np.ones(3), 400.0, 1.0), medium="water")
        with pytest.raises(TypeError, match="signal must be a HyperSpy Signal1D, got ndarray"):
            hl.cl.to_energy(np.ones(3))


def spiky_cube(rng, shape=(8, 8), n=400, n_spikes=25):
    x = np.arange(n, dtype=float)
    centre = rng.uniform(150, 250, shape)
    mu = 300 + 2000 * np.exp(-0.5 * ((x - centre[..., None]) / 30.0) ** 2)
    clean = rng.poisson(mu).astype(np.float64)
    spiky = clean.copy()
    flat = spiky.reshape(-1, n)
    where = []
    pix = rng.choice(flat.shape[0], n_spikes, replace=False)
    for k, p in enumerate(pix):
        c = int(rng.integers(5, n - 6))
        w = 1 + k % 2  # one- and two-channel spikes
        flat[p, c : c + w] += rng.uniform(2000, 20000)
        where.append((p, c, w))
    return mu, clean, spiky, where


class TestRemoveSpikes:
    def test_finds_every_spike_and_nothing_else(self, rng):
        mu, clean, spiky, where = spiky_cube(rng)
        out, n = hl.cl.remove_spikes(spiky)
        assert n == sum(w for _, _, w in where)
        flat_out, flat_mu = out.reshape(-1, 400), mu.reshape(-1, 400)
        touched = np.zeros(flat_out.shape, bool)
        for p, c, w in where:
            touched[p, c : c + w] = True
            # replaced by a value near the true spectrum (Poisson noise ~ sqrt(mu) <= 48)
            assert np.all(np.abs(flat_out[p, c : c + w] - flat_mu[p, c : c + w]) < 250)
        np.testing.assert_array_equal(flat_out[~touched], clean.reshape(-1, 400)[~touched])

    def test_lazy_signal_gives_the_same(self, rng):
        _, _, spiky, where = spiky_cube(rng, shape=(6, 5))
        s = hs.signals.Signal1D(spiky.astype(np.uint16))
        s.set_signal_type("CL")
        eager, n = hl.cl.remove_spikes(s)
        lazy, nl = hl.cl.remove_spikes(s.as_lazy())
        assert lazy._lazy and type(eager) is type(s)
        assert eager.data.dtype == np.uint16
        np.testing.assert_array_equal(lazy.data.compute(), eager.data)
        assert int(nl.compute()) == n == sum(w for _, _, w in where)
        assert int(s.data.max()) > 2000  # the input keeps its spikes

    def test_dask_array(self, rng):
        _, _, spiky, _ = spiky_cube(rng, shape=(4, 4), n_spikes=6)
        out, n = hl.cl.remove_spikes(da.from_array(spiky, chunks=(2, 4, -1)))
        ref, nref = hl.cl.remove_spikes(spiky)
        np.testing.assert_array_equal(out.compute(), ref)
        assert int(n.compute()) == nref

    def test_low_counts_kept_lazy_or_not(self, rng):
        """Poisson noise at 1 count is not cut (the Poisson floor of count data), eager or
        lazy whatever the chunks; a spike of 300 counts is."""
        y = rng.poisson(1.0, (8, 8, 512)).astype(np.float32)
        y[2, 5, 100] += 300
        out, n = hl.cl.remove_spikes(y)
        lazy, nl = hl.cl.remove_spikes(da.from_array(y, chunks=(3, 5, -1)))
        assert n == int(nl.compute()) == 1
        np.testing.assert_array_equal(lazy.compute(), out)
        assert np.argwhere(out != y).tolist() == [[2, 5, 100]]
        assert out[2, 5, 100] < 5
        _, plain = hl.cl.remove_spikes(y, counts=False)  # the MAD noise alone fails here
        assert plain > 20

    def test_real_map_spikes_removed(self, real_file):
        s = hs.load(real_file("lumispydemos-quantum-emitters_map.dm4"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out, n = hl.cl.remove_spikes(s)
        # a few spikes (data maximum 4041 counts, median 44) among 342,016 channels
        assert 0 < n < 1e-3 * s.data.size
        # the brightest, one channel at (9, 14) 324 over neighbours of 43-173, is gone; a
        # cosmic ray 4 channels wide (pixel (5, 8) near 737 nm) looks like a narrow line to a
        # spectral filter and stays (the fit's verdict deals with what is left of it)
        assert float(out.data[9, 14, 324]) < 200
        assert float(out.data[5, 8].max()) > 2000
        # the broad emission band survives: the median spectrum moves by 1-2 counts at most
        moved = np.abs(np.median(out.data, axis=(0, 1)) - np.median(s.data, axis=(0, 1)))
        assert moved.max() <= 2.0

    def test_bad_options(self):
        y = np.ones((2, 50))
        with pytest.raises(ValueError, match="window=4 must be an odd number of channels"):
            hl.cl.remove_spikes(y, window=4)
        with pytest.raises(ValueError, match="threshold must be a positive number, got -1"):
            hl.cl.remove_spikes(y, threshold=-1)
        with pytest.raises(TypeError, match="data must be a HyperSpy Signal1D or a numpy"):
            hl.cl.remove_spikes([1, 2, 3])
        with pytest.raises(TypeError, match=r"counts must be True, False or None \(decide"):
            hl.cl.remove_spikes(y, counts="auto")


class TestDespikeSpectra:
    """The per-chunk filter hl.fit runs: the rule of remove_spikes, counted per pixel."""

    @pytest.mark.parametrize("window", [3, 5, 9])
    @pytest.mark.parametrize("dtype", [np.uint16, np.float32])
    def test_same_as_remove_spikes(self, rng, window, dtype):
        x = np.arange(300.0)
        mu = 50 + 600 * np.exp(-0.5 * ((x - 150) / 20) ** 2)
        y = rng.poisson(mu, (60, 300)).astype(dtype)
        where = rng.integers(0, 300, 25)
        y[np.arange(25), where] += 4000
        clean, counts = hl.cl.despike_spectra(y, window=window)
        ref, total = hl.cl.remove_spikes(y, window=window)
        np.testing.assert_array_equal(clean, ref)
        assert counts.sum() == total and (counts[:25] >= 1).all()
        assert clean.dtype == y.dtype and not np.shares_memory(clean, y)

    def test_nothing_to_replace_returns_the_input(self, rng):
        y = rng.normal(100, 3, (5, 128))
        clean, counts = hl.cl.despike_spectra(y)
        assert clean is y and counts.tolist() == [0] * 5


class TestBrightNarrowPeaksKept:
    """The spike rule never clips the top of a real peak, however bright or noiseless."""

    @pytest.mark.parametrize("sigma", [2.0, 2.5, 6.0])  # from 2 channels up
    @pytest.mark.parametrize("noise", [0.0, 1.0])
    def test_peak_top_untouched(self, rng, sigma, noise):
        x = np.arange(256.0)
        centres = rng.uniform(100, 156, 20)
        y = 1e5 * np.exp(-0.5 * ((x - centres[:, None]) / sigma) ** 2) + 50
        y = y + noise * rng.normal(0, np.sqrt(y))
        clean, counts = hl.cl.despike_spectra(y)
        assert counts.sum() == 0
        assert np.array_equal(clean, y)

    def test_spike_on_a_bright_peak_still_found(self, rng):
        x = np.arange(256.0)
        y = rng.poisson(2000 * np.exp(-0.5 * ((x - 128) / 12) ** 2) + 50, (3, 256)).astype(float)
        y[0, 125] += 4000  # on the top
        y[1, 110:112] += 3000  # two channels, on the flank
        clean, counts = hl.cl.despike_spectra(y)
        assert counts.tolist() == [1, 2, 0]
        assert abs(clean[0, 125] - 2000) < 300
