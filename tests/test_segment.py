"""Segmentation: particles against the demo's truth, region definitions, errors."""

import numpy as np
import pytest

from hyperlum.demo import make_demo
from hyperlum.segment import segment


def particle_ious(labels, truth):
    """Per true particle, IoU with the found particle overlapping it most."""
    out = []
    for k in range(1, truth.max() + 1):
        t = truth == k
        found = labels[t][labels[t] > 0]
        if found.size == 0:
            out.append(0.0)
            continue
        p = labels == np.bincount(found).argmax()
        out.append((t & p).sum() / (t | p).sum())
    return np.array(out)


@pytest.fixture(scope="module")
def demo():
    return make_demo(n_channels=32)  # default map and particles; few channels: fast


def disc(shape=(41, 41), r=12.0, c=(20, 20), level=10.0):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return level * (np.hypot(yy - c[0], xx - c[1]) < r)


class TestAgainstDemoTruth:
    def test_default_demo_count_and_iou(self, demo):
        _, image, truth = demo
        seg = segment(image, interface_width=truth["rim_width"])
        assert seg.n == truth["n_particles"] == 8
        ious = particle_ious(seg.labels, truth["labels"])
        assert ious.min() >= 0.95, ious

    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_other_seeds(self, seed):
        _, image, truth = make_demo(n_channels=32, seed=seed)
        seg = segment(image, interface_width=truth["rim_width"])
        assert seg.n == truth["n_particles"]
        assert particle_ious(seg.labels, truth["labels"]).mean() >= 0.95

    def test_interface_matches_rim(self, demo):
        _, image, truth = demo
        seg = segment(image, interface_width=truth["rim_width"])
        agree = seg.mask("interface") == truth["rim"]
        assert agree.mean() >= 0.98

    def test_without_split_touching_pairs_merge(self, demo):
        _, image, truth = demo
        seg = segment(image, interface_width=15.0, split_touching=False)
        assert seg.n == truth["n_particles"] - 2  # the demo has two touching pairs

    def test_small_touching_particles(self):
        _, image, truth = make_demo(shape=(64, 64), n_channels=32, n_particles=4, n_touching=1)
        assert segment(image, interface_width=10.0).n == 4
        assert segment(image, interface_width=10.0, split_depth=3.0).n == 3  # neck too shallow

    def test_calibration_from_signal(self, demo):
        seg = segment(demo.image, interface_width=15.0)
        assert (seg.pixel_size, seg.units) == (5.0, "nm")
        row = seg.particles.iloc[0]
        assert row["area"] == pytest.approx(row["pixels"] * 25.0)
        assert seg.extent == (-2.5, 557.5, 557.5, -2.5)


class TestRegions:
    def test_masks_partition_the_image(self, demo):
        seg = segment(demo.image, interface_width=15.0, shell_width=10.0)
        masks = [seg.mask(n) for n in ("core", "interface", "shell", "matrix")]
        np.testing.assert_array_equal(np.sum(masks, axis=0), 1)
        np.testing.assert_array_equal(seg.mask("particles"), seg.labels > 0)
        np.testing.assert_array_equal(seg.region_map()[masks[0]], 3)

    def test_widths_in_calibrated_units(self):
        # disc of radius 12 px, 2 nm pixels: interface 6 nm = 3 px, shell 4 nm = 2 px
        seg = segment(disc(), pixel_size=2.0, interface_width=6.0, shell_width=4.0, smooth=0)
        assert seg.n == 1
        row = np.arange(41)
        on_axis = seg.region_map()[20]  # the row through the centre
        # edge pixels at columns 9 and 31; rim 3 px thick, shell 2 px thick
        assert on_axis[row == 9] == 2 and on_axis[row == 11] == 2 and on_axis[row == 12] == 3
        assert on_axis[row == 8] == 1 and on_axis[row == 7] == 1 and on_axis[row == 6] == 0
        assert seg.particles.loc[1, "equivalent_diameter"] == pytest.approx(48.0, rel=0.02)

    def test_image_border_is_not_an_interface(self):
        seg = segment(disc(c=(20, 3)), interface_width=2.0, smooth=0)  # cut by the left border
        assert seg.particles.loc[1, "touches_border"]
        assert seg.mask("core")[20, 0]  # deep in the particle, on the border
        assert seg.mask("interface")[20, 14] and seg.mask("interface")[9, 3]

    def test_local_edges_keep_bright_and_dim_particles_true_to_size(self):
        yy, xx = np.mgrid[0:40, 0:80]
        bright, dim = np.hypot(yy - 20, xx - 20) < 10, np.hypot(yy - 20, xx - 60) < 10
        img = 10.0 * bright + 4.0 * dim  # a global threshold of 3 suits neither
        local = segment(img, interface_width=2.0, method=3.0, smooth=1.5)
        plain = segment(img, interface_width=2.0, method=3.0, smooth=1.5, local_edges=False)
        true = [bright.sum(), dim.sum()]  # 305 pixels each
        assert np.abs(local.particles["pixels"] - true).max() <= 12
        assert plain.particles["pixels"].iloc[0] > true[0] + 30  # grown
        assert plain.particles["pixels"].iloc[1] < true[1] - 30  # shrunk

    def test_no_shell_by_default(self):
        seg = segment(disc(), interface_width=2.0)
        assert not seg.mask("shell").any() and seg.units == "px"

    def test_small_objects_dropped(self):
        img = disc() + disc(r=2.0, c=(3, 3))
        assert segment(img, interface_width=1.0, smooth=0).n == 1
        assert segment(img, interface_width=1.0, smooth=0, min_area=5.0).n == 2

    def test_explicit_threshold_and_nan(self):
        img = disc()
        img[0, :5] = np.nan
        seg = segment(img, interface_width=1.0, method=5.0, smooth=0)
        assert seg.n == 1 and seg.threshold == 5.0

    def test_nothing_found(self):
        seg = segment(np.zeros((10, 10)), interface_width=1.0, method=1.0)
        assert seg.n == 0 and len(seg.particles) == 0 and seg.mask("matrix").all()


class TestErrors:
    def test_bad_method(self):
        with pytest.raises(ValueError, match="method='kmeans' is not one of 'otsu'"):
            segment(disc(), interface_width=1.0, method="kmeans")

    def test_negative_width(self):
        with pytest.raises(ValueError, match=r"interface_width must be >= 0 \(calibrated"):
            segment(disc(), interface_width=-1.0)

    def test_not_2d(self):
        with pytest.raises(ValueError, match=r"image must be 2D \(rows, columns\), got shape"):
            segment(np.zeros((3, 4, 5)), interface_width=1.0)

    def test_bad_pixel_size(self):
        with pytest.raises(ValueError, match="pixel_size must be a positive number, got -1"):
            segment(disc(), pixel_size=-1, interface_width=1.0)

    def test_non_square_pixels(self):
        import hyperspy.api as hs

        im = hs.signals.Signal2D(disc())
        im.axes_manager[0].scale = 2.0
        with pytest.raises(ValueError, match="image pixels must be square"):
            segment(im, interface_width=1.0)
        assert segment(im, pixel_size=1.5, interface_width=1.0).pixel_size == 1.5

    def test_bad_split_depth(self):
        with pytest.raises(ValueError, match="split_depth must be a positive number of pixels"):
            segment(disc(), interface_width=1.0, split_depth=0)

    def test_bad_region_name(self):
        seg = segment(disc(), interface_width=1.0)
        with pytest.raises(ValueError, match="name='rim' is not one of 'core', 'interface'"):
            seg.mask("rim")
