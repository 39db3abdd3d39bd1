"""The demo generator: deterministic, calibrated, and its truth matches its data."""

import numpy as np
import pytest

from hyperlum.demo import make_demo

SMALL = dict(shape=(48, 48), n_channels=64, n_particles=3, n_touching=1)


@pytest.fixture(scope="module")
def small():
    return make_demo(**SMALL, seed=3)


class TestMakeDemo:
    def test_same_seed_same_data(self, small):
        again = make_demo(**SMALL, seed=3)
        np.testing.assert_array_equal(small.signal.data, again.signal.data)
        np.testing.assert_array_equal(small.image.data, again.image.data)
        np.testing.assert_array_equal(small.truth["labels"], again.truth["labels"])

    def test_other_seed_other_data(self, small):
        other = make_demo(**SMALL, seed=4)
        assert not np.array_equal(small.truth["labels"], other.truth["labels"])

    def test_calibration(self, small):
        s, im = small.signal, small.image
        assert s.data.dtype == np.uint16 and s.data.shape == (48, 48, 64)
        sax = s.axes_manager.signal_axes[0]
        assert (sax.name, sax.units) == ("Wavelength", "nm")
        assert sax.axis[0] == pytest.approx(610.0) and sax.axis[-1] == pytest.approx(810.0)
        for ax in (*s.axes_manager.navigation_axes, *im.axes_manager.signal_axes):
            assert (ax.units, ax.scale, ax.size) == ("nm", 5.0, 48)
        assert im.data.shape == (48, 48)

    def test_truth_regions(self, small):
        t = small.truth
        assert t["labels"].max() == t["n_particles"] == 3
        inside = t["labels"] > 0
        np.testing.assert_array_equal(t["core"] | t["rim"], inside)
        assert not (t["core"] & t["rim"]).any()
        # rim = pixels less than rim_width below the edge (edge half a pixel out)
        assert t["depth"][t["rim"]].max() < t["rim_width"] <= t["depth"][t["core"]].min()
        assert np.nanmedian(t["sigma"][t["rim"]]) > np.nanmedian(t["sigma"][t["core"]]) + 3

    def test_touching_pair_shares_an_edge(self, small):
        lab = small.truth["labels"]
        a, b = lab[:, :-1], lab[:, 1:]
        c, d = lab[:-1, :], lab[1:, :]
        touching = ((a > 0) & (b > 0) & (a != b)).any() or ((c > 0) & (d > 0) & (c != d)).any()
        assert touching

    def test_counts_are_poisson_around_the_model(self):
        s, _, t = make_demo(shape=(64, 64), n_channels=128, n_particles=2, n_touching=0)
        matrix = np.asarray(s.data, float)[t["labels"] == 0]
        # matrix: background only (4 counts/channel): mean 4, variance 4
        assert matrix.mean() == pytest.approx(4.0, rel=0.01)
        assert matrix.var() == pytest.approx(4.0, rel=0.03)

    def test_haadf_particles_brighter(self, small):
        img, lab = small.image.data, small.truth["labels"]
        assert img[small.truth["core"]].mean() > 3 * img[lab == 0].mean()

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="n_touching=2 is outside the allowed range 0 to 1"):
            make_demo(shape=(48, 48), n_particles=3, n_touching=2)
        with pytest.raises(TypeError, match="shape must be a pair of integers"):
            make_demo(shape=48)
        with pytest.raises(ValueError, match=r"shape\[0\]=8 is outside"):
            make_demo(shape=(8, 48))
        with pytest.raises(ValueError, match="could not place 60 particles"):
            make_demo(shape=(40, 40), n_channels=32, n_particles=60, n_touching=0)
