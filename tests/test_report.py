"""The report: files written, findings stated, nothing overwritten."""

import os

import numpy as np
import pytest

import hyperlum as hl
from hyperlum.demo import make_demo
from hyperlum.report import REPORT_FILES, make_report


@pytest.fixture(scope="module")
def fitted():
    signal, image, truth = make_demo(shape=(64, 64), n_channels=160, n_particles=4, n_touching=0)
    res = hl.fit(signal, estimator="mle", device="cpu", progress=False)
    return signal, image, truth, res


def test_report_files_and_findings(fitted, tmp_path):
    signal, image, truth, res = fitted
    rep = make_report(res, image, tmp_path, signal=signal, interface_width=truth["rim_width"])
    assert sorted(os.path.basename(p) for p in rep.paths) == sorted(REPORT_FILES)
    for p in rep.paths:
        assert os.path.getsize(p) > 100
    assert rep.segmentation.n == 4
    t = rep.stats.tests.loc["sigma"]
    assert t["p_value"] < 0.01 and t["difference"] == pytest.approx(4.0, abs=1.0)
    assert "sigma: median" in rep.findings
    assert "larger at the interface than in the core (significant, p < 0.01)" in rep.findings
    with open(tmp_path / "findings.txt", encoding="utf-8") as fh:
        assert fh.read() == rep.findings
    import pandas as pd

    tests = pd.read_csv(tmp_path / "tests.csv", index_col=0)
    assert tests.loc["sigma", "p_value"] < 0.01
    particles = pd.read_csv(tmp_path / "particles.csv", index_col=0)
    assert len(particles) == 4 and (particles["sigma_difference"] > 2).all()


def test_refuses_to_overwrite(fitted, tmp_path):
    signal, image, truth, res = fitted
    (tmp_path / "maps.png").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="already holds maps.png"):
        make_report(res, image, tmp_path)
    assert (tmp_path / "maps.png").read_bytes() == b"mine"
    assert sorted(os.listdir(tmp_path)) == ["maps.png"]
    make_report(res, image, tmp_path, overwrite=True)
    assert (tmp_path / "maps.png").read_bytes()[:4] == b"\x89PNG"


def test_segments_intensity_without_image(fitted, tmp_path):
    _, _, truth, res = fitted
    rep = make_report(res, None, tmp_path, interface_width=truth["rim_width"])
    assert rep.segmentation.n == truth["n_particles"]
    assert "found on the fitted intensity map" in rep.findings
    assert not (tmp_path / "spectra.png").exists()


def test_image_of_other_shape(fitted, tmp_path):
    res = fitted[3]
    with pytest.raises(ValueError, match="the image has 10x12 pixels, the maps 64x64"):
        make_report(res, np.zeros((10, 12)), tmp_path)


def test_hist2d_of_a_fit_is_numpy_histogram2d(fitted):
    signal, image, truth, res = fitted
    seg = hl.segment(image, interface_width=truth["rim_width"])
    for region in ("core", "interface"):
        m = seg.mask(region)
        h = hl.hist2d(res, "centre", "sigma", bins=25, mask=m)
        c, s = res.maps["centre"], res.maps["sigma"]
        ok = m & res.maps["converged"] & np.isfinite(c) & np.isfinite(s)
        counts, xe, ye = np.histogram2d(c[ok], s[ok], bins=25)
        np.testing.assert_array_equal(h.counts, counts)
        np.testing.assert_array_equal(h.xedges, xe)
        np.testing.assert_array_equal(h.yedges, ye)
