"""Region statistics, interface-vs-core tests and histograms, checked against numpy / scipy."""

import numpy as np
import pytest
from scipy import stats as sps

from hyperlum.segment import segment
from hyperlum.stats import hist1d, hist2d, quality_mask, region_stats, valid_mask


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
        st = region_stats(maps, seg)
        t = st.tests.loc["sigma"]
        assert t["p_value"] < 1e-6 and t["difference"] == pytest.approx(1.0, abs=0.25)
        assert st.tests.loc["centre", "p_value"] > 0.01  # nothing built in there
        text = st.summary()
        assert "sigma: median" in text and "larger at the interface than in the core" in text
        assert "larger in 2 of 2 particles" in text
        assert "centre: " in text and "not significantly different" in text

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
