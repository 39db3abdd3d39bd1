"""Region statistics, interface-vs-core tests and histograms, checked against numpy / scipy."""

import numpy as np
import pytest
from scipy import stats as sps

from hyperlum.analysis.segment import segment
from hyperlum.analysis.stats import hist1d, hist2d, quality_mask, region_stats, valid_mask

pytestmark = pytest.mark.filterwarnings("ignore:the result has no .detected. map:UserWarning")


def fake_maps(rng, shape=(60, 60)):
    maps = {
        "centre": rng.normal(710, 2, shape),
        "sigma": rng.normal(9, 0.5, shape),
        "amplitude": rng.uniform(50, 200, shape),
        "amplitude_std": np.full(shape, 5.0),
        "converged": rng.random(shape) > 0.1,
    }
    maps["sigma"] += 0.3 * (maps["centre"] - 710)
    maps["intensity"] = maps["amplitude"] * maps["sigma"] * np.sqrt(2 * np.pi)
    maps["centre"][rng.random(shape) < 0.05] = np.nan
    return maps


def two_discs(shape=(60, 60)):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return 1.0 * ((np.hypot(yy - 20, xx - 20) < 12) | (np.hypot(yy - 40, xx - 42) < 14))


class TestHistograms:
    def test_hist2d_is_numpy_histogram2d_over_valid_pixels(self, rng):
        maps = fake_maps(rng)
        mask = rng.random((60, 60)) > 0.3
        h = hist2d(maps, "centre", "sigma", bins=(17, 23), range=[[705, 715], [7, 11]], mask=mask)
        ok = maps["converged"] & mask & np.isfinite(maps["centre"])
        counts, xe, ye = np.histogram2d(
            maps["centre"][ok], maps["sigma"][ok], bins=(17, 23), range=[[705, 715], [7, 11]]
        )
        np.testing.assert_array_equal(h.counts, counts)
        np.testing.assert_array_equal(h.xedges, xe)
        np.testing.assert_array_equal(h.yedges, ye)
        assert h.n == ok.sum()
        assert h.pearson == pytest.approx(sps.pearsonr(maps["centre"][ok], maps["sigma"][ok])[0])
        assert h.spearman == pytest.approx(sps.spearmanr(maps["centre"][ok], maps["sigma"][ok])[0])
        assert 0.5 < h.pearson < 0.9  # sigma was made to follow centre

    def test_hist1d_is_numpy_histogram(self, rng):
        maps = fake_maps(rng)
        h = hist1d(maps, "centre", bins=30)
        ok = maps["converged"] & np.isfinite(maps["centre"])
        counts, edges = np.histogram(maps["centre"][ok], bins=30)
        np.testing.assert_array_equal(h.counts, counts)
        np.testing.assert_array_equal(h.edges, edges)
        assert h.median == pytest.approx(np.median(maps["centre"][ok]))

    def test_plots_draw(self, rng):
        import matplotlib

        matplotlib.use("Agg")
        maps = fake_maps(rng)
        ax = hist2d(maps, "centre", "sigma", bins=10).plot()
        assert "Pearson" in ax.get_title() and ax.get_xlabel() == "Centre"
        assert hist1d(maps, "sigma").plot().get_xlabel() == "\u03c3"

    def test_errors(self, rng):
        maps = fake_maps(rng)
        with pytest.raises(KeyError, match="no map named 'width'; the maps are: centre"):
            hist2d(maps, "centre", "width")
        with pytest.raises(ValueError, match=r"mask has shape \(3, 3\), the maps have shape"):
            hist1d(maps, "sigma", mask=np.ones((3, 3), bool))
        with pytest.raises(TypeError, match="mask must be a boolean array"):
            hist1d(maps, "sigma", mask=np.ones((60, 60)))
        with pytest.raises(ValueError, match="bins must be a positive number of bins"):
            hist1d(maps, "sigma", bins=0)
        with pytest.raises(TypeError, match="res must be a FitResult"):
            hist1d([1, 2], "sigma")

    def test_quality_mask(self, rng):
        maps = fake_maps(rng)
        maps["amplitude"][0, :10] = 10.0  # 2 standard errors: not detected at 3
        q = quality_mask(maps)
        assert not q[0, :10].any()
        np.testing.assert_array_equal(q[1:], valid_mask(maps, ("amplitude",))[1:])


class TestRegionStats:
    def test_interface_difference_detected(self, rng):
        seg = segment(two_discs(), interface_width=3.0)
        maps = fake_maps(rng)
        maps["sigma"] = np.where(seg.mask("interface"), maps["sigma"] + 1.0, maps["sigma"])
        with pytest.warns(UserWarning, match="no 'detected' map"):
            st = region_stats(maps, seg)
        t = st.tests.loc["sigma"]
        assert t["difference"] == pytest.approx(1.0, abs=0.25)
        assert t["p_pixels"] < 1e-6  # descriptive: pixels taken as independent
        # two particles: no test over particles, no claim
        assert t["n_particles"] == 2 and np.isnan(t["p_value"]) and np.isnan(t["ci_low"])
        text = st.summary()
        assert f"sigma: mean interface - core difference {t['difference']:+.3g} over 2" in text
        assert "no significance claimed: a difference is tested over particles and needs 5" in text
        assert "significant" not in text.replace("no significance", "")

    def test_table_matches_numpy(self, rng):
        seg = segment(two_discs(), interface_width=3.0, shell_width=2.0)
        maps = fake_maps(rng)
        st = region_stats(maps, seg)
        for region in ("core", "interface", "shell", "matrix"):
            ok = maps["converged"] & seg.mask(region) & np.isfinite(maps["centre"])
            v = maps["centre"][ok]
            row = st.table.loc[(region, "centre")]
            assert row["count"] == v.size
            assert row["mean"] == pytest.approx(v.mean())
            assert row["median"] == pytest.approx(np.median(v))
            q25, q75 = np.percentile(v, [25, 75])
            assert row["iqr"] == pytest.approx(q75 - q25)
        assert set(st.table.index.get_level_values("parameter")) == {
            "centre",
            "sigma",
            "amplitude",
            "intensity",
        }

    def test_per_particle_means(self, rng):
        seg = segment(two_discs(), interface_width=3.0)
        maps = fake_maps(rng)
        st = region_stats(maps, seg, tested=("sigma",))
        for k in (1, 2):
            m = maps["converged"] & seg.mask("core") & (seg.labels == k)
            assert st.particles.loc[k, "sigma_core"] == pytest.approx(maps["sigma"][m].mean())

    def test_shape_mismatch(self, rng):
        seg = segment(two_discs((40, 40)), interface_width=3.0)
        with pytest.raises(ValueError, match=r"the segmentation has shape \(40, 40\), the maps"):
            region_stats(fake_maps(rng), seg)


def test_quality_mask_min_sigma(rng):
    maps = fake_maps(rng)
    maps["sigma"][5, :] = 0.05  # narrower than a channel: a spike, not a peak
    q = quality_mask(maps, min_sigma=0.1)
    assert not q[5].any()
    np.testing.assert_array_equal(q[6:], quality_mask(maps)[6:])


def particle_grid(radii=(4.5, 6, 7.5, 9, 10.5, 5, 8, 11, 6.5), pitch=24):
    """Discs of different sizes on a 3x3 grid (small ones mostly rim), and their segmentation."""
    yy, xx = np.mgrid[0 : 3 * pitch, 0 : 3 * pitch]
    img = np.zeros(yy.shape)
    for k, r in enumerate(radii):
        c = (pitch * (k // 3 + 0.5), pitch * (k % 3 + 0.5))
        img += np.hypot(yy - c[0], xx - c[1]) < r
    return img, segment(img, interface_width=3.0)


def particle_maps(rng, seg, rim_effect, *, sd_particle=2.0, sd_pixel=1.0):
    """Sigma maps: each particle its own sigma (sd ``sd_particle``), blurred pixel noise,
    ``rim_effect`` added in the interface; peaks detected inside particles only."""
    from scipy import ndimage as ndi

    own = np.concatenate([[9.0], rng.normal(9.0, sd_particle, seg.n)])[seg.labels]
    noise = ndi.gaussian_filter(rng.normal(0, sd_pixel, seg.shape), 1.0) * 2.5
    sigma = own + rim_effect * seg.mask("interface") + noise
    inside = seg.labels > 0
    return {
        "sigma": sigma,
        "converged": np.ones(seg.shape, bool),
        "detected": inside & (rng.random(seg.shape) > 0.05),
    }


class TestOverParticles:
    """The headline test holds when pixels of one particle are alike (null and power)."""

    def test_null_false_positive_rate(self, rng):
        _, seg = particle_grid()
        runs = [
            region_stats(particle_maps(rng, seg, 0.0), seg, tested=("sigma",)).tests.loc["sigma"]
            for _ in range(150)
        ]
        p = np.array([r["p_value"] for r in runs])
        p_pix = np.array([r["p_pixels"] for r in runs])
        covered = np.mean([r["ci_low"] <= 0 <= r["ci_high"] for r in runs])
        assert np.mean(p < 0.05) <= 0.10, np.mean(p < 0.05)
        assert covered >= 0.90
        # the pixel test, which takes correlated pixels as independent, cries wolf
        assert np.mean(p_pix < 0.05) >= 0.4

    def test_power_for_a_3nm_rim(self, rng):
        _, seg = particle_grid()
        runs = [
            region_stats(particle_maps(rng, seg, 3.0), seg, tested=("sigma",)).tests.loc["sigma"]
            for _ in range(60)
        ]
        assert np.mean([r["p_value"] < 0.05 for r in runs]) >= 0.95
        assert np.mean([r["ci_low"] <= 3.0 <= r["ci_high"] for r in runs]) >= 0.85
        assert np.median([r["difference"] for r in runs]) == pytest.approx(3.0, abs=0.3)

    def test_summary_states_mean_difference_and_ci(self, rng):
        _, seg = particle_grid()
        st = region_stats(particle_maps(rng, seg, 3.0), seg, tested=("sigma",))
        t = st.tests.loc["sigma"]
        text = st.summary()
        assert text.startswith("sigma: larger at the interface than in the core (significant")
        assert (
            f"mean over {int(t['n_particles'])} particles of (interface mean - core mean)" in text
        )
        assert f"95% CI {t['ci_low']:+.3g} to {t['ci_high']:+.3g}" in text
        assert "median" not in text

    def test_detected_map_chooses_the_pixels(self, rng):
        _, seg = particle_grid()
        maps = particle_maps(rng, seg, 0.0)
        st = region_stats(maps, seg, tested=("sigma",))
        n_if = (maps["detected"] & seg.mask("interface")).sum()
        assert st.tests.loc["sigma", "n_interface"] == n_if
        old = region_stats(maps, seg, tested=("sigma",), detected=False)
        assert old.tests.loc["sigma", "n_interface"] == seg.mask("interface").sum()


def test_valid_mask_per_peak_verdict():
    maps = {
        "sigma_1": np.array([9.0, 9.0, 9.0]),
        "sigma_2": np.array([5.0, 5.0, 5.0]),
        "converged": np.array([True, True, False]),
        "detected_1": np.array([True, False, True]),
        "detected_2": np.array([False, True, True]),
        "detected": np.array([True, True, True]),
    }
    assert valid_mask(maps, ("sigma_1",)).tolist() == [True, False, False]
    assert valid_mask(maps, ("sigma_2",)).tolist() == [False, True, False]
    assert valid_mask(maps).tolist() == [True, True, False]


def test_valid_mask_falls_back_to_converged_with_a_warning():
    maps = {"sigma": np.array([9.0, 9.0]), "converged": np.array([True, False])}
    with pytest.warns(UserWarning, match="no 'detected' map .* using every converged pixel"):
        assert valid_mask(maps, ("sigma",)).tolist() == [True, False]
