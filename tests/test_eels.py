"""hl.eels: ZLP centre and alignment, power-law subtraction (against exSpy), edges, profiles."""

import warnings

import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest

import hyperlum as hl
from hyperlum.fitting import _backend


def eels_signal(data, offset, scale, title="EELS"):
    s = hs.signals.Signal1D(data)
    s.set_signal_type("EELS")
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units, ax.name = offset, scale, "eV", "Energy loss"
    s.metadata.General.title = title
    return s


def load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hs.load(path)


def zlp_cube(rng, shape, e, shifts, sigma=0.8, amp=2e5):
    mu = amp * np.exp(-0.5 * ((e - shifts[..., None]) / sigma) ** 2) + 50
    return rng.poisson(mu).astype(np.float64)


def powerlaw_cube(rng, shape, e, noise=True):
    r = rng.uniform(2.5, 4.0, shape)
    a = 3e4 * 600.0**r
    edge = np.where(e > 640, 4e3 * np.exp(-(e - 640) / 80.0), 0.0)
    mu = a[..., None] * e ** -r[..., None] + edge
    data = rng.poisson(mu).astype(np.float64) if noise else mu
    return a, r, edge, data


class TestZlpCentre:
    def test_sub_channel_accuracy(self, rng):
        e = np.arange(-20.0, 40.0, 0.25)
        shifts = rng.uniform(-1.0, 1.0, (16, 16))
        cube = zlp_cube(rng, (16, 16), e, shifts)
        res = hl.eels.zlp_centre(cube, axis=e)
        assert res.maps["converged"].all()
        err = np.abs(res.maps["centre"] - shifts) / 0.25
        assert err.max() < 0.1  # channels
        np.testing.assert_allclose(res.maps["sigma"], 0.8, rtol=0.02)
        # default half-window: the channels above half maximum in the mean spectrum
        mean = cube.mean(axis=(0, 1))
        above = int(np.sum(mean - mean.min() > 0.5 * (mean.max() - mean.min())))
        assert res.options["window_channels"] == 2 * above + 1
        wide = hl.eels.zlp_centre(zlp_cube(rng, (2,), e, shifts[0, :2]), axis=e, window=3.0)
        assert wide.options["window_channels"] == 2 * 12 + 1
        np.testing.assert_allclose(wide.maps["centre"], shifts[0, :2], atol=0.025)
        with pytest.raises(ValueError, match="window must be a positive number, got 0"):
            hl.eels.zlp_centre(zlp_cube(rng, (2,), e, shifts[0, :2]), axis=e, window=0)

    def test_lazy_equals_eager(self, rng):
        e = np.arange(-10.0, 30.0, 0.5)
        cube = zlp_cube(rng, (6, 4), e, rng.uniform(-2, 2, (6, 4)))
        eager = hl.eels.zlp_centre(cube, axis=e)
        lazy = hl.eels.zlp_centre(da.from_array(cube, chunks=(3, 4, -1)), axis=e)
        assert lazy.lazy
        np.testing.assert_allclose(lazy.compute().maps["centre"], eager.maps["centre"])

    def test_peak_at_the_end_is_flagged(self, rng):
        e = np.arange(0.0, 20.0, 0.5)
        cube = zlp_cube(rng, (3,), e, np.array([10.0, 0.0, 8.3]))
        res = hl.eels.zlp_centre(cube, axis=e)
        assert res.maps["state"].tolist() == [0, 3, 0]
        assert np.isnan(res.maps["centre"][1])
        np.testing.assert_allclose(res.maps["centre"][[0, 2]], [10.0, 8.3], atol=0.02)

    def test_real_lsmo_zlp_at_minus_one_ev(self, real_file):
        ll = load(real_file("exspydemos-LSMO_STO_linescan_low_loss.hspy"))
        e = ll.axes_manager[-1].axis
        assert np.all(e[ll.data.argmax(-1)] == -1.0)  # brightest channel at -1 eV everywhere
        res = hl.eels.zlp_centre(ll)
        c = res.maps["centre"]
        assert res.maps["converged"].all()
        # The fitted centre lies between the -1 eV channel and its brighter neighbour at 0 eV
        # (the peak holds 4.7e5 and 4.3e5 counts there), the same in every pixel.
        assert np.all((c > -1.0) & (c < -0.5))
        assert c.std() < 0.02
        assert res["centre"].axes_manager[0].units == "nm"


class TestAlignZlp:
    def test_dual_eels_shifts_follow(self, rng):
        e_ll = np.arange(-20.0, 60.0, 0.5)
        shifts = rng.uniform(-3, 3, 8)
        ll = eels_signal(zlp_cube(rng, (8,), e_ll, shifts), -20.0, 0.5, "low")
        e_cl = np.arange(400.0, 600.0, 1.0)
        feature = 1e4 * np.exp(-0.5 * ((e_cl - 500.0 - shifts[:, None]) / 3.0) ** 2) + 100
        cl = eels_signal(feature, 400.0, 1.0, "core")
        al_ll, al_cl = hl.eels.align_zlp(ll, cl)
        c = hl.eels.zlp_centre(al_ll).maps["centre"]
        assert np.abs(c).max() < 0.02
        res = hl.fit(al_cl, device="cpu")
        np.testing.assert_allclose(res.maps["centre"], 500.0, atol=0.05)
        assert al_cl.metadata.General.title == "core"
        assert type(al_cl) is type(cl)
        assert not np.isnan(al_cl.data).any()  # cropped to the channels every pixel keeps
        # the inputs are untouched
        assert ll.axes_manager[-1].offset == -20.0 and cl.data.shape == (8, 200)

    def test_real_lsmo(self, real_file):
        ll = load(real_file("exspydemos-LSMO_STO_linescan_low_loss.hspy"))
        cl = load(real_file("exspydemos-LSMO_STO_linescan.hspy"))
        al_ll, al_cl = hl.eels.align_zlp(ll, cl)
        assert np.abs(hl.eels.zlp_centre(al_ll).maps["centre"]).max() < 0.03
        shift = al_ll.metadata.Signal.zlp_shift_median
        assert -1.0 < shift < -0.5
        assert al_cl.axes_manager[-1].axis[0] == pytest.approx(395.0 - shift, abs=1.0)

    def test_lazy(self, rng):
        e = np.arange(-20.0, 40.0, 0.5)
        ll = eels_signal(zlp_cube(rng, (4, 3), e, rng.uniform(-2, 2, (4, 3))), -20.0, 0.5)
        (eager,) = hl.eels.align_zlp(ll)
        (lazy,) = hl.eels.align_zlp(ll.as_lazy())
        np.testing.assert_allclose(lazy.data.compute(), eager.data)

    def test_bad_input(self, rng):
        e = np.arange(-20.0, 40.0, 0.5)
        ll = eels_signal(zlp_cube(rng, (4,), e, np.zeros(4)), -20.0, 0.5)
        other = eels_signal(np.ones((3, 10)), 400.0, 1.0)
        with pytest.raises(ValueError, match=r"others\[0\] has navigation shape \(3,\), the low"):
            hl.eels.align_zlp(ll, other)
        with pytest.raises(TypeError, match="low_loss must be a HyperSpy Signal1D, got ndarray"):
            hl.eels.align_zlp(ll.data)
        with pytest.raises(ValueError, match=r"centres must have the navigation shape \(4,\)"):
            hl.eels.align_zlp(ll, centres=np.zeros(3))
        with pytest.raises(ValueError, match="no pixel has a finite ZLP centre"):
            hl.eels.align_zlp(ll, centres=np.full(4, np.nan))


class TestSubtractPowerlaw:
    def test_recovers_a_and_r_exactly_without_noise(self, rng):
        e = np.arange(500.0, 800.0, 0.5)
        a, r, edge, data = powerlaw_cube(rng, (5, 6), e, noise=False)
        sub, maps = hl.eels.subtract_powerlaw(data, fit_range=(560, 630), axis=e)
        np.testing.assert_allclose(maps.maps["r"], r, rtol=1e-9)
        np.testing.assert_allclose(maps.maps["A"], a, rtol=1e-8)
        np.testing.assert_allclose(sub, np.broadcast_to(edge, sub.shape), atol=1e-6)
        assert maps.maps["converged"].all()

    def test_agrees_with_exspy_fast_false(self, rng):
        e0, de = 500.0, 1.0
        e = e0 + de * np.arange(300)
        _, _, _, data = powerlaw_cube(rng, (3, 4), e)
        s = eels_signal(data, e0, de)
        sub, maps = hl.eels.subtract_powerlaw(s, fit_range=(560, 630))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref, model = s.remove_background(
                signal_range=(560.0, 630.0),
                fast=False,
                return_model=True,
                show_progressbar=False,
            )
        comp = model[0]
        np.testing.assert_allclose(maps.maps["r"], comp.r.map["values"], rtol=1e-5)
        np.testing.assert_allclose(maps.maps["A"], comp.A.map["values"], rtol=1e-4)
        scale = np.abs(data).max()
        assert np.abs(sub.data - ref.data).max() < 1e-6 * scale
        assert type(sub) is type(s)

    def test_lazy_equals_eager(self, rng):
        e = np.arange(500.0, 800.0, 1.0)
        _, _, _, data = powerlaw_cube(rng, (6, 5), e)
        sub, maps = hl.eels.subtract_powerlaw(data, fit_range=(560, 630), axis=e)
        lsub, lmaps = hl.eels.subtract_powerlaw(
            da.from_array(data, chunks=(2, 5, -1)), fit_range=(560, 630), axis=e
        )
        assert lmaps.lazy
        np.testing.assert_allclose(lsub.compute(), sub)
        np.testing.assert_allclose(lmaps.compute().maps["r"], maps.maps["r"])

    def test_zero_negative_and_bad_pixels_are_flagged(self, rng):
        e = np.arange(500.0, 700.0, 1.0)
        _, _, _, data = powerlaw_cube(rng, (8,), e)
        win = (e >= 560) & (e <= 600)
        idx = np.flatnonzero(win)
        data[0, idx[:3]] = [0.0, -5.0, 0.0]  # a few bad channels: still fitted
        data[1, win] = 0.0  # nothing positive: bad input
        data[2, idx[5]] = np.nan  # NaN in the window: bad input
        data[4, win] = -3.0  # all negative: bad input
        data[5, win] = np.where(np.arange(win.sum()) == 7, 40.0, 0.0)  # 1 positive: bad input
        data[6] = 0.0  # an empty spectrum
        data[7, idx[9]] = np.inf
        sub, maps = hl.eels.subtract_powerlaw(data, fit_range=(560, 600), axis=e, device="cpu")
        assert maps.maps["state"].tolist() == [0, 3, 3, 0, 3, 3, 3, 3]
        n = int(win.sum())
        assert maps.maps["nonpositive"].tolist() == [3, n, 1, 0, n, n - 1, n, 0]
        bad = maps.maps["state"] == 3
        assert np.isnan(sub[bad]).all() and np.isfinite(sub[~bad]).all()
        for name in ("A", "r", "chisq"):
            assert np.isnan(maps.maps[name][bad]).all() and np.isfinite(maps.maps[name][~bad]).all()
        assert (maps.maps["iterations"][bad] == 0).all()
        assert hl.eels.state_counts(maps)["bad_input"] == 6
        # the good pixels come out as without the bad ones
        ref, rmaps = hl.eels.subtract_powerlaw(data[[0, 3]], fit_range=(560, 600), axis=e)
        np.testing.assert_array_equal(sub[[0, 3]], ref)
        np.testing.assert_array_equal(maps.maps["r"][[0, 3]], rmaps.maps["r"])

    def test_device_is_checked(self, monkeypatch):
        e = np.arange(500.0, 600.0, 1.0)
        y = 1e9 * e**-3.0 * np.ones((2, 1))
        for bad in ("gpu", None, "CPU"):
            with pytest.raises(
                ValueError, match=rf"^device={bad!r} is not one of 'auto', 'cpu', 'cuda'$"
            ):
                hl.eels.subtract_powerlaw(y, fit_range=(510, 550), axis=e, device=bad)
        monkeypatch.setattr(_backend, "cuda_status", lambda: (False, "no GPU in this test"))
        with pytest.raises(RuntimeError, match="^device='cuda' was asked for, but no GPU in th"):
            hl.eels.subtract_powerlaw(y, fit_range=(510, 550), axis=e, device="cuda")
        with pytest.raises(RuntimeError, match="^device='cuda' was asked for"):
            hl.eels.subtract_powerlaw(da.from_array(y), fit_range=(510, 550), axis=e, device="cuda")
        _, maps = hl.eels.subtract_powerlaw(y, fit_range=(510, 550), axis=e)
        assert maps.options["device"] == "cpu"
        np.testing.assert_allclose(maps.maps["r"], 3.0, rtol=1e-12)

    def test_poisson_errors_have_their_expected_spread(self, rng):
        # Least squares on Poisson counts: the error of r (and of ln A) over the pixels, in
        # units of its standard deviation from the sandwich J+ diag(mu) J+^T at the truth.
        e = np.arange(500.0, 700.0, 1.0)
        a, r, _, data = powerlaw_cube(rng, (12, 12), e)
        sub, maps = hl.eels.subtract_powerlaw(data, fit_range=(560, 630), axis=e, device="cpu")
        assert maps.maps["converged"].all()
        x = e[(e >= 560) & (e <= 630)]
        xref = 0.5 * (x[0] + x[-1])
        u = (x / xref) ** -r[..., None]
        aref = a * xref**-r
        jac = np.stack([u, -aref[..., None] * np.log(x / xref) * u], axis=-1)
        m_inv = np.linalg.inv(np.einsum("...ia,...ib->...ab", jac, jac))
        middle = np.einsum("...ia,...i,...ib->...ab", jac, aref[..., None] * u, jac)
        cov = m_inv @ middle @ m_inv
        grad = np.stack([1.0 / aref, np.full_like(aref, np.log(xref))], axis=-1)
        sd_r = np.sqrt(cov[..., 1, 1])
        sd_ln_a = np.sqrt(np.einsum("...a,...ab,...b->...", grad, cov, grad))
        for z in ((maps.maps["r"] - r) / sd_r, np.log(maps.maps["A"] / a) / sd_ln_a):
            assert abs(z.mean()) < 0.3  # 144 pixels: 3.6 standard errors
            assert 0.8 < z.std() < 1.2
            assert np.abs(z).max() < 4.5

    def test_low_counts_reach_the_least_squares_minimum(self, rng):
        # ~0.3 counts per channel: many windows begin and end on zeros. Started from the mean
        # counts of the ends (A ~ 0, where r has no gradient) such fits wandered off to a spike
        # on one channel; the log-log start reaches the least-squares minimum.
        from scipy.optimize import least_squares

        e = np.arange(300.0, 700.0, 1.0)
        r = rng.uniform(1.0, 6.0, 40)
        data = rng.poisson(0.3 * (e / 500.0) ** -r[:, None]).astype(np.float64)
        win = (e >= 450) & (e <= 520)
        ends = np.flatnonzero(win)[[0, 1, 2, -3, -2, -1]]
        data[:, ends] = 0.0  # as drawn in about 1 pixel of 10 here
        x, y = e[win], data[:, win]
        _, maps = hl.eels.subtract_powerlaw(data, fit_range=(450, 520), axis=e, device="cpu")
        assert maps.maps["converged"].all()
        xref = 0.5 * (x[0] + x[-1])
        for p in range(len(r)):
            # the best of two starts (the truth and the fit found), A kept positive
            starts = [(np.log(0.3 * (xref / 500.0) ** -r[p]), r[p])]
            starts.append(
                (np.log(maps.maps["A"][p] * xref ** -maps.maps["r"][p]), maps.maps["r"][p])
            )
            best = min(
                least_squares(
                    lambda q, p=p: np.exp(q[0]) * (x / xref) ** -q[1] - y[p], s, xtol=1e-14
                ).cost
                for s in starts
            )
            assert maps.maps["chisq"][p] * (x.size - 2) <= 2 * best * (1 + 1e-7) + 1e-12

    def test_bad_ranges(self):
        e = np.arange(-10.0, 100.0, 1.0)
        y = np.ones((2, e.size))
        with pytest.raises(ValueError, match=r"fit_range=\(-5, 20\) must lie at positive"):
            hl.eels.subtract_powerlaw(y, fit_range=(-5, 20), axis=e)
        with pytest.raises(ValueError, match=r"fit_range=\(200, 300\) lies outside the signal"):
            hl.eels.subtract_powerlaw(y, fit_range=(200, 300), axis=e)
        with pytest.raises(ValueError, match=r"holds 2 channel\(s\), at least 3 needed"):
            hl.eels.subtract_powerlaw(y, fit_range=(10, 11), axis=e)
        with pytest.raises(TypeError, match="fit_range must be a pair"):
            hl.eels.subtract_powerlaw(y, fit_range=5, axis=e)


class TestEdgeAndNormalise:
    def test_edge_intensity_signal_map(self):
        s = eels_signal(np.full((3, 4, 100), 2.0), 600.0, 0.5)
        s.axes_manager[0].scale, s.axes_manager[0].units = 1.5, "nm"
        m = hl.eels.edge_intensity(s, window=(610, 620))
        assert m.axes_manager.signal_shape == (4, 3)
        np.testing.assert_allclose(m.data, 2.0 * 21 * 0.5)
        assert m.axes_manager[0].scale == 1.5

    def test_normalise(self, rng):
        e = np.arange(0.0, 50.0, 0.5)
        y = rng.uniform(1, 10, (3, 100))
        n = hl.eels.normalise(y, axis=e)
        np.testing.assert_allclose((n * 0.5).sum(-1), 1.0)
        nm = hl.eels.normalise(y, by="max", range=(10, 20), axis=e)
        np.testing.assert_allclose(nm[:, 20:41].max(-1), 1.0)
        nb = hl.eels.normalise(y, by=np.array([1.0, 2.0, 0.0]), axis=e)
        np.testing.assert_allclose(nb[1], y[1] / 2)
        assert np.isnan(nb[2]).all()  # a zero total is flagged, not divided by
        with pytest.raises(ValueError, match="by='area' is not one of 'core_loss_total', 'max'"):
            hl.eels.normalise(y, by="area", axis=e)
        with pytest.raises(ValueError, match=r"navigation shape \(3,\), got shape \(2,\)"):
            hl.eels.normalise(y, by=np.ones(2), axis=e)


class TestLineProfile:
    def test_calibrated_2d(self):
        img = hs.signals.Signal2D(np.tile(np.arange(20.0), (10, 1)))
        for ax in img.axes_manager.signal_axes:
            ax.scale, ax.offset, ax.units = 2.0, 10.0, "nm"
        p = hl.eels.line_profile(img, (14.0, 20.0), (30.0, 20.0), width=6.0)
        assert p.axes_manager[0].units == "nm"
        np.testing.assert_allclose(p.axes_manager[0].axis, np.arange(9) * 2.0)
        np.testing.assert_allclose(p.data, np.arange(2.0, 11.0))

    def test_width_averages_across(self, rng):
        img = np.zeros((9, 30))
        img[3:6] = 1.0
        img[4] = 4.0  # a bright centre row
        narrow = hl.eels.line_profile(img, (0, 4), (29, 4))
        wide = hl.eels.line_profile(img, (0, 4), (29, 4), width=3)
        np.testing.assert_allclose(narrow.data, 4.0)
        np.testing.assert_allclose(wide.data, 2.0)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"start/end x lies outside the map \(0 to 9\)"):
            hl.eels.line_profile(np.zeros((5, 10)), (0, 0), (20, 0))
        with pytest.raises(ValueError, match="width applies to 2-D maps only"):
            hl.eels.line_profile(np.zeros(10), 0, 5, width=2)


class TestRealEdges:
    def test_mn_edge_profile_across_lsmo_sto(self, real_file):
        cl = load(real_file("exspydemos-LSMO_STO_linescan.hspy"))
        sub, maps = hl.eels.subtract_powerlaw(cl, fit_range=(600, 635))
        assert maps.maps["converged"].all()
        edge = hl.eels.edge_intensity(sub, window=(636, 670))
        total = hl.eels.edge_intensity(cl, window=(395, 906))
        norm = edge / total
        prof = hl.eels.line_profile(norm, 0.0, 9 * 3.1522)
        assert prof.axes_manager[0].units == "nm"
        v = prof.data
        # STO side (first 3 pixels): no Mn; LSMO side (last 5): Mn L2,3 at 640 eV
        assert np.abs(v[:3]).max() < 0.1 * v[5:].min()
        assert v[5:].min() > 0.01
        assert v[3] < v[5:].mean()  # the interface pixel lies in between

    def test_cu_edge_higher_on_particles(self, real_file):
        s = load(real_file("exspydemos-CuZn_EELS_mapping_tutorial.hspy"))
        sub, maps = hl.eels.subtract_powerlaw(s, fit_range=(820, 920))
        assert maps.maps["converged"].all()
        cu = hl.eels.edge_intensity(sub, window=(930, 1010)).data
        # Particles are where the total core-loss intensity is highest (thickest)
        total = hl.eels.edge_intensity(s, window=(700, 1988)).data
        on = total >= np.percentile(total, 95)
        off = total <= np.percentile(total, 50)
        assert cu[on].mean() > 2 * cu[off].mean()
        # and the particle at (x=32, y=14) stands out
        assert cu[12:17, 30:35].mean() > 3 * np.median(cu)


class TestBadPixels:
    """One NaN, inf or saturated pixel is flagged; its neighbours come out exactly as without it."""

    def test_zlp_centre_nan_inf_pixels(self, rng):
        e = np.arange(-20.0, 40.0, 0.5)
        clean = zlp_cube(rng, (3, 4), e, rng.uniform(-1, 1, (3, 4)))
        cube = clean.copy()
        cube[1, 1] = np.nan  # a dead pixel
        cube[0, 2, clean[0, 2].argmax()] = np.inf  # a hot channel at the peak
        cube[2, 3, -3] = np.nan  # far from the peak: outside the fit window
        ref = hl.eels.zlp_centre(clean, axis=e, window=2.0, device="cpu")
        for data in (cube, da.from_array(cube, chunks=(2, 2, -1))):
            res = hl.eels.zlp_centre(data, axis=e, window=2.0, device="cpu").compute()
            bad = np.zeros((3, 4), bool)
            bad[1, 1] = bad[0, 2] = True
            assert (res.maps["state"] == 3).tolist() == bad.tolist()
            assert np.isnan(res.maps["centre"][bad]).all()
            np.testing.assert_array_equal(res.maps["centre"][~bad], ref.maps["centre"][~bad])
        # the default window is sized on the finite channels only
        res = hl.eels.zlp_centre(cube, axis=e, device="cpu")
        assert res.maps["state"][1, 1] == 3 and res.maps["converged"].sum() == 10
        with pytest.raises(ValueError, match="data holds no finite value: the ZLP window"):
            hl.eels.zlp_centre(np.full((2, e.size), np.nan), axis=e)

    def test_zlp_centre_saturated_pixel(self, rng):
        e = np.arange(-20.0, 40.0, 0.5)
        mu = 6e4 * np.exp(-0.5 * ((e - np.array([[0.2], [-0.4], [0.7]])) / 0.8) ** 2) + 50
        mu[1] *= 2.0  # clipped at 65535 by a 16-bit detector
        counts = np.minimum(np.round(mu), 65535)
        res = hl.eels.zlp_centre(counts.astype(np.uint16), axis=e, window=2.0, device="cpu")
        assert res.maps["state"].tolist() == [0, 3, 0]
        ref = hl.eels.zlp_centre(counts, axis=e, window=2.0, device="cpu")
        np.testing.assert_array_equal(res.maps["centre"][[0, 2]], ref.maps["centre"][[0, 2]])
        assert ref.maps["state"][1] == 0  # float data: no saturation level unless given
        given = hl.eels.zlp_centre(counts, axis=e, window=2.0, device="cpu", saturation=65535)
        assert given.maps["state"].tolist() == [0, 3, 0]

    def test_align_zlp_with_a_nan_pixel(self, rng):
        e = np.arange(-20.0, 40.0, 0.5)
        shifts = rng.uniform(-2, 2, 6)
        data = zlp_cube(rng, (6,), e, shifts)
        data[2] = np.nan
        data[4, 5] = np.inf
        ll = eels_signal(data, -20.0, 0.5)
        (al,) = hl.eels.align_zlp(ll)
        assert al.metadata.Signal.zlp_unaligned_pixels == 1
        c = hl.eels.zlp_centre(al).maps["centre"]
        assert np.isnan(c[2]) and np.abs(c[[0, 1, 3, 4, 5]]).max() < 0.02

    def test_subtract_powerlaw_nan_inf_saturated(self, rng):
        e = np.arange(500.0, 700.0, 1.0)
        _, _, _, clean = powerlaw_cube(rng, (5,), e)
        clean = np.minimum(clean, 60000)
        data = clean.copy()
        data[0, 150] = np.nan  # outside the window: only that channel is lost
        data[1, 80] = np.inf  # inside the window 560-600: bad input
        data[3, 190] = -np.inf
        sub, maps = hl.eels.subtract_powerlaw(data, fit_range=(560, 600), axis=e)
        ref, rmaps = hl.eels.subtract_powerlaw(clean, fit_range=(560, 600), axis=e)
        assert maps.maps["state"].tolist() == [0, 3, 0, 0, 0]
        assert maps.maps["nonfinite"].tolist() == [1, 1, 0, 1, 0]
        assert np.isnan(sub[1]).all()
        assert np.flatnonzero(np.isnan(sub[0])).tolist() == [150]
        assert np.flatnonzero(np.isnan(sub[3])).tolist() == [190]
        keep = np.ones(e.size, bool)
        keep[[150, 190]] = False
        np.testing.assert_array_equal(sub[[0, 2, 3, 4]][:, keep], ref[[0, 2, 3, 4]][:, keep])
        np.testing.assert_array_equal(maps.maps["r"][[0, 2, 3, 4]], rmaps.maps["r"][[0, 2, 3, 4]])
        # uint16 at 65535: saturated. In the window: bad input; outside: that channel NaN.
        counts = np.round(clean).astype(np.uint16)
        counts[2, 70] = 65535
        counts[4, 160] = 65535
        sub16, m16 = hl.eels.subtract_powerlaw(counts, fit_range=(560, 600), axis=e)
        assert m16.maps["state"].tolist() == [0, 0, 3, 0, 0]
        assert m16.maps["saturated"].tolist() == [0, 0, 1, 0, 1]
        assert m16.maps["converged"].sum() == 4
        assert np.isnan(sub16[2]).all() and np.flatnonzero(np.isnan(sub16[4])).tolist() == [160]
        ref16, _ = hl.eels.subtract_powerlaw(np.round(clean), fit_range=(560, 600), axis=e)
        np.testing.assert_array_equal(sub16[[0, 1, 3]], ref16[[0, 1, 3]])
        assert hl.eels.state_counts(m16) == {
            "converged": 4,
            "max_iterations": 0,
            "singular": 0,
            "bad_input": 1,
        }
        lazy, lmaps = hl.eels.subtract_powerlaw(
            da.from_array(counts, chunks=(2, -1)), fit_range=(560, 600), axis=e
        )
        np.testing.assert_array_equal(lazy.compute(), sub16)
        assert lmaps.compute().maps["saturated"].tolist() == [0, 0, 1, 0, 1]

    def test_edge_intensity_nan_inf_saturated(self):
        e = np.arange(600.0, 700.0, 1.0)
        cube = np.full((5, e.size), 2, dtype=np.uint8)
        cube[1, 45] = 255  # saturated in the window 640-650
        cube[2, 10] = 255  # saturated outside it
        edge_intensity = hl.eels.edge_intensity
        np.testing.assert_array_equal(
            edge_intensity(cube, window=(640, 650), axis=e), [22.0, np.nan, 22.0, 22.0, 22.0]
        )
        f = cube.astype(np.float32)
        f[3, 42], f[4, 90] = -np.inf, np.nan
        got = edge_intensity(f, window=(640, 650), axis=e)
        np.testing.assert_array_equal(got, [22.0, 275.0, 22.0, np.nan, 22.0])  # floats: counts
        np.testing.assert_array_equal(
            edge_intensity(f, window=(640, 650), axis=e, saturation=255),
            [22.0, np.nan, 22.0, np.nan, 22.0],
        )
        np.testing.assert_array_equal(
            edge_intensity(da.from_array(f, chunks=(2, -1)), window=(640, 650), axis=e), got
        )


INT_DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]


class TestDtypes:
    @pytest.mark.parametrize("dtype", ["float16", "float32", "float64", *INT_DTYPES])
    def test_every_real_dtype_is_accepted(self, rng, dtype):
        # Counts of at most 110 fit every dtype exactly: the results equal float64's.
        e = np.arange(500.0, 700.0, 1.0)
        mu = 100.0 * (e / 500.0) ** -rng.uniform(2.5, 3.5, (3, 1)) + np.where(e > 640, 10, 0)
        counts = np.round(mu)
        sub, maps = hl.eels.subtract_powerlaw(counts.astype(dtype), fit_range=(560, 630), axis=e)
        ref, rmaps = hl.eels.subtract_powerlaw(counts, fit_range=(560, 630), axis=e)
        assert sub.dtype == (np.float32 if dtype in ("float16", "float32") else np.float64)
        assert maps.maps["converged"].all()
        np.testing.assert_allclose(maps.maps["r"], rmaps.maps["r"], rtol=1e-12)
        np.testing.assert_allclose(sub, ref, rtol=1e-6, atol=1e-4)
        got = hl.eels.edge_intensity(counts.astype(dtype), window=(640, 660), axis=e)
        np.testing.assert_array_equal(
            got, hl.eels.edge_intensity(counts, window=(640, 660), axis=e)
        )
        z = np.arange(-10.0, 10.0, 0.5)
        peak = np.round(100 * np.exp(-0.5 * ((z - np.array([[0.3], [-0.6]])) / 0.8) ** 2) + 5)
        res = hl.eels.zlp_centre(peak.astype(dtype), axis=z, device="cpu")
        ref_c = hl.eels.zlp_centre(peak, axis=z, device="cpu").maps["centre"]
        np.testing.assert_array_equal(res.maps["centre"], ref_c)
        assert np.isfinite(hl.eels.normalise(counts.astype(dtype), axis=e)).all()

    @pytest.mark.parametrize(
        "dtype, message",
        [
            ("bool", "data must hold real numbers, got dtype bool"),
            ("complex64", "data must hold real numbers, got dtype complex64"),
        ],
    )
    def test_other_dtypes_are_refused_by_name(self, dtype, message):
        e = np.arange(500.0, 600.0, 1.0)
        y = np.ones((2, e.size), dtype=dtype)
        for call in (
            lambda: hl.eels.subtract_powerlaw(y, fit_range=(510, 550), axis=e),
            lambda: hl.eels.edge_intensity(y, window=(510, 550), axis=e),
            lambda: hl.eels.zlp_centre(y, axis=e),
            lambda: hl.eels.normalise(y, axis=e),
        ):
            with pytest.raises(TypeError, match=message):
                call()

    @pytest.mark.skipif(not hasattr(np, "float128"), reason="no float128 on this platform")
    def test_float128_is_refused_by_name(self):
        y = np.ones((2, 100), dtype=np.float128)
        with pytest.raises(TypeError, match="at most 64 bits, got dtype float128"):
            hl.eels.edge_intensity(y, window=(10, 50))

    def test_profile_width_checked(self):
        img = np.zeros((5, 10))
        for bad in (0, -1.0, np.nan, np.inf):
            with pytest.raises(ValueError, match="width must be a"):
                hl.eels.line_profile(img, (0, 2), (9, 2), width=bad)
        with pytest.raises(TypeError, match="width must be a positive number, got '3'"):
            hl.eels.line_profile(img, (0, 2), (9, 2), width="3")
