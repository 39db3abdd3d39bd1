"""Segmentation: particles against the demo's truth, region definitions, errors."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from hyperlum.analysis.segment import segment
from hyperlum.demo import make_demo


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
        plain = segment(
            img, interface_width=2.0, method=3.0, smooth=1.5, local_edges=False, min_contrast=0
        )
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


# -- varied particle images (not the demo's): shapes, brightness, ramps, noise levels ---------


def varied_image(seed, shape=(96, 96), n=6, *, noise=None, ramp=None, kind=None):
    rng = np.random.default_rng(seed)
    ny, nx = shape
    kind = kind or rng.choice(["ellipse", "blob"])
    noise = rng.uniform(0.03, 0.25) if noise is None else noise
    ramp = rng.uniform(0.0, 0.6) if ramp is None else ramp
    ss = 4
    yy, xx = np.mgrid[0 : ny * ss, 0 : nx * ss].astype(float)
    yy, xx = (yy + 0.5) / ss - 0.5, (xx + 0.5) / ss - 0.5
    labels_ss = np.zeros(yy.shape, np.int32)
    level = np.zeros(yy.shape)
    placed = []
    tries = 0
    while len(placed) < n and tries < 5000:
        tries += 1
        r0 = rng.uniform(6, 13)
        cy, cx = rng.uniform(r0 + 3, ny - r0 - 3), rng.uniform(r0 + 3, nx - r0 - 3)
        if any(np.hypot(cy - p[0], cx - p[1]) < r0 + p[2] + 4 for p in placed):
            continue
        placed.append((cy, cx, r0 * 1.35))
        dy, dx = yy - cy, xx - cx
        phi = np.arctan2(dy, dx)
        if kind == "ellipse":
            e = rng.uniform(1.0, 2.0)
            a, b, th = r0 * np.sqrt(e), r0 / np.sqrt(e), rng.uniform(0, np.pi)
            t = phi - th
            r = a * b / np.sqrt((b * np.cos(t)) ** 2 + (a * np.sin(t)) ** 2)
        else:
            r = r0 * np.ones_like(phi)
            for k in (2, 3, 4, 5):
                r += r0 * rng.uniform(0, 0.12) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
        inside = np.hypot(dy, dx) < r
        labels_ss[inside] = len(placed)
        level[inside] = rng.uniform(0.6, 1.4)
    # truth: pixel centres
    truth = labels_ss[ss // 2 :: ss, ss // 2 :: ss]
    img = level.reshape(ny, ss, nx, ss).mean(axis=(1, 3))
    gy, gx = np.mgrid[0:ny, 0:nx] / max(ny, nx)
    ang = rng.uniform(0, 2 * np.pi)
    img = img + 0.2 + ramp * (np.cos(ang) * gx + np.sin(ang) * gy)
    img = ndi.gaussian_filter(img, 0.7) + rng.normal(0, noise, shape)
    return img, truth


def core_truth(truth, width):
    """Truth core: particle pixels at least ``width`` pixels inside their edge (edge half a
    pixel beyond the last pixel, as hyperlum.segment)."""
    core = np.zeros(truth.shape, bool)
    for k in range(1, truth.max() + 1):
        d = ndi.distance_transform_edt(np.pad(truth == k, 1))[1:-1, 1:-1] - 0.5
        core |= (truth == k) & (d >= width)
    return core


def core_iou(seg, truth, width):
    t = core_truth(truth, width)
    c = seg.mask("core")
    return (t & c).sum() / max((t | c).sum(), 1)


class TestVariedImages:
    @pytest.mark.parametrize("kind", ["ellipse", "blob"])
    def test_core_iou_on_held_out_images(self, kind):
        # seeds 200+ were not used while tuning (0-29 were; 100-139 checked once)
        scores = []
        for seed in range(200, 208):
            img, truth = varied_image(seed, kind=kind)
            seg = segment(img, interface_width=3.0)
            scores.append(core_iou(seg, truth, 3.0))
        assert np.mean(scores) >= 0.90, np.round(scores, 3)

    def test_strong_ramp_and_noise(self):
        img, truth = varied_image(7, noise=0.2, ramp=0.6, kind="blob")
        seg = segment(img, interface_width=3.0)
        assert seg.n == truth.max()
        assert particle_ious(seg.labels, truth).min() >= 0.85


class TestNothingCredible:
    def test_noise_is_not_particles(self, rng):
        seg = segment(rng.normal(0, 1, (64, 64)), interface_width=3.0)
        assert seg.n == 0 and seg.faint > 0
        assert seg.note.endswith(
            "none a step above the noise taken at a sharp edge "
            "(a bump of noise, or a slope crossing the threshold)"
        )

    def test_a_slope_is_not_a_particle(self, rng):
        gy, gx = np.mgrid[0:64, 0:64] / 64
        seg = segment(5 * gx + 3 * gy + rng.normal(0, 0.3, (64, 64)), interface_width=3.0)
        assert seg.n == 0
        img = ndi.gaussian_filter(rng.normal(0, 1, (64, 64)), 4.0)  # smooth hills
        assert segment(img, interface_width=3.0).n <= 1

    def test_too_small(self):
        seg = segment(disc(r=2.0), interface_width=1.0)
        assert seg.n == 0 and seg.note == "no region above the threshold was as large as min_area"

    def test_min_contrast_zero_keeps_candidates(self, rng):
        assert segment(rng.normal(0, 1, (64, 64)), interface_width=3.0, min_contrast=0).n > 0
