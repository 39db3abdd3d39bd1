"""The report: files written, findings stated, nothing overwritten."""

import os

import numpy as np
import pytest

import hyperlum as hl
from hyperlum.demo import make_demo
from hyperlum.fitting.result import FitResult
from hyperlum.io import outputs
from hyperlum.viz.report import PIXEL_REPORT_FILES, REPORT_FILES, make_report

pytestmark = pytest.mark.filterwarnings("ignore:the result has no .detected. map:UserWarning")


@pytest.fixture(scope="module")
def fitted():
    signal, image, truth = make_demo(shape=(80, 80), n_channels=160, n_particles=6, n_touching=0)
    res = hl.fit(signal, estimator="mle", device="cpu", progress=False)
    return signal, image, truth, res


def test_report_files_and_findings(fitted, tmp_path):
    signal, image, truth, res = fitted
    rep = make_report(res, image, tmp_path, signal=signal, interface_width=truth["rim_width"])
    assert sorted(os.path.basename(p) for p in rep.paths) == sorted(REPORT_FILES)
    for p in rep.paths:
        assert os.path.getsize(p) > 100
    assert rep.segmentation.n == 6
    t = rep.stats.tests.loc["sigma"]
    assert t["p_value"] < 0.01 and t["difference"] == pytest.approx(4.0, abs=1.0)
    assert t["ci_low"] > 2.0 and t["ci_high"] > t["difference"] and t["n_particles"] == 6
    assert "sigma: larger at the interface than in the core (significant at 0.05)" in rep.findings
    assert "mean over 6 particles of (interface mean - core mean) = +" in rep.findings
    line = next(ln for ln in rep.findings.splitlines() if ln.startswith("sigma: "))
    assert "median" not in line and "95% CI" in line
    with open(tmp_path / "findings.txt", encoding="utf-8") as fh:
        assert fh.read() == rep.findings
    import pandas as pd

    tests = pd.read_csv(tmp_path / "tests.csv", index_col=0)
    assert tests.loc["sigma", "p_value"] < 0.01
    particles = pd.read_csv(tmp_path / "particles.csv", index_col=0)
    assert len(particles) == 6 and (particles["sigma_difference"] > 2).all()


def test_refuses_to_overwrite(fitted, tmp_path):
    """overwrite=True replaces the report files hyperlum wrote, never a file of the user's."""
    signal, image, truth, res = fitted
    (tmp_path / "maps.png").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="already holds maps.png"):
        make_report(res, image, tmp_path)
    with pytest.raises(
        FileExistsError,
        match=r"maps\.png is a file that hyperlum did not write; move it away or choose another",
    ):
        make_report(res, image, tmp_path, overwrite=True)
    assert (tmp_path / "maps.png").read_bytes() == b"mine"
    assert sorted(os.listdir(tmp_path)) == ["maps.png"]
    (tmp_path / "maps.png").unlink()
    first = make_report(res, image, tmp_path)
    assert all(outputs.is_ours(p) for p in first.paths)  # in the folder's .hyperlum-files
    before = os.stat(tmp_path / "maps.png").st_mtime_ns
    again = make_report(res, image, tmp_path, overwrite=True)
    assert sorted(again.paths) == sorted(first.paths)
    assert os.stat(tmp_path / "maps.png").st_mtime_ns > before


def test_segments_intensity_without_image(fitted, tmp_path):
    _, _, truth, res = fitted
    rep = make_report(res, None, tmp_path, interface_width=truth["rim_width"])
    assert rep.segmentation.n == truth["n_particles"]
    assert "found on the fitted intensity map" in rep.findings
    assert not (tmp_path / "spectra.png").exists()


def test_image_of_other_shape(fitted, tmp_path):
    res = fitted[3]
    with pytest.raises(ValueError, match="the image has 10x12 pixels, the maps 80x80"):
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


def test_spectra_of_another_scan_refused_before_writing(fitted, tmp_path):
    signal, image, truth, res = fitted
    other = signal.inav[:40, :40]
    with pytest.raises(
        ValueError, match="the spectra have 40x40 navigation pixels, the maps 80x80"
    ):
        make_report(res, image, tmp_path / "out", signal=other)
    assert not (tmp_path / "out").exists()


def test_detected_map_sets_the_pixels_used(fitted, tmp_path):
    signal, image, truth, res = fitted
    maps = dict(res.maps, detected=np.asarray(res.maps["converged"]) & (truth["labels"] > 0))
    res2 = FitResult(maps, res.nav_axes, res.options, res.signal_axis)
    rep = make_report(res2, image, tmp_path, interface_width=truth["rim_width"], min_snr=0)
    n = int(maps["detected"].sum())
    assert f"Pixels used: {n} of 6400 (the fit's verdict: peak detected)." in rep.findings
    assert rep.stats.table.loc[("matrix", "sigma"), "count"] == 0


def test_few_particles_no_claim(fitted, tmp_path):
    signal, image, truth, res = fitted
    seg = hl.segment(image, interface_width=truth["rim_width"])
    seg.labels[seg.labels > 3] = 0  # keep three particles
    rep = make_report(res, image, tmp_path, seg=seg)
    assert "Fewer than 5 particles: differences are reported, no significance" in rep.findings
    assert "no significance claimed" in rep.findings
    assert "(significant" not in rep.findings
    assert np.isnan(rep.stats.tests.loc["sigma", "p_value"])


def test_no_particles_report_without_regions(rng, tmp_path):
    signal, _, truth = make_demo(shape=(40, 40), n_channels=96, n_particles=1, n_touching=0)
    data = rng.poisson(
        50.0 + 80.0 * np.exp(-0.5 * ((np.linspace(610, 810, 96) - 700) / 9) ** 2), size=(40, 40, 96)
    )
    signal.data = data.astype(np.uint16)  # the same emission everywhere: no particle
    res = hl.fit(signal, device="cpu", progress=False)
    rep = make_report(res, None, tmp_path, signal=signal)
    assert sorted(os.path.basename(p) for p in rep.paths) == sorted(PIXEL_REPORT_FILES)
    assert rep.findings.startswith("Particles: none credible on the fitted intensity map (")
    assert "makes no interface-vs-core comparison" in rep.findings
    assert "significant" not in rep.findings
    line = next(ln for ln in rep.findings.splitlines() if ln.startswith("sigma: mean "))
    assert float(line.split()[2]) == pytest.approx(9.0, abs=0.3) and " nm (std " in line


def test_line_scan_report(rng, tmp_path):
    import hyperspy.api as hs

    x = np.linspace(600, 800, 120)
    centre = np.linspace(690, 720, 50)
    mu = 5 + 100 * np.exp(-0.5 * ((x - centre[:, None]) / 8.0) ** 2)
    mu[:10] = 5  # no emission at the start of the scan
    line = hs.signals.Signal1D(
        rng.poisson(mu).astype(float),
        axes=[
            {"name": "x", "units": "nm", "scale": 20.0, "offset": 0.0, "size": 50},
            {
                "name": "Wavelength",
                "units": "nm",
                "scale": x[1] - x[0],
                "offset": 600.0,
                "size": 120,
            },
        ],
    )
    fit = hl.fit(line, device="cpu", progress=False, signal_range=(620, 780))
    # the verdict (the fit's ``detected`` map): emission from pixel 10 on
    detected = np.asarray(fit.maps["converged"]) & (np.arange(50) >= 10)
    res = FitResult(dict(fit.maps, detected=detected), fit.nav_axes, fit.options, fit.signal_axis)
    rep = make_report(res, None, tmp_path, signal=line, min_snr=0)
    names = sorted(os.path.basename(p) for p in rep.paths)
    assert names == sorted(
        ["profile.png", "spectra.png", "histograms.png", "pixels.csv", "findings.txt"]
    )
    assert rep.findings.startswith(
        f"Line scan.\nPixels used: {detected.sum()} of 50 (the fit's verdict: peak detected)."
    )
    import pandas as pd

    table = pd.read_csv(tmp_path / "pixels.csv", index_col=0)
    assert table.loc["centre", "mean"] == pytest.approx(centre[10:].mean(), abs=1.0)
    assert table.loc["intensity", "units"] == "counts \u00d7 nm"
    with pytest.raises(ValueError, match="a line scan has no particles"):
        make_report(res, np.zeros((5, 5)), tmp_path, overwrite=True)


def test_plot_spectra_single_spectrum_and_line_scan(rng):
    import hyperspy.api as hs
    import matplotlib

    matplotlib.use("Agg")
    from hyperlum.viz.plot import plot_spectra

    x = np.linspace(600, 800, 200)
    axis = {"name": "Wavelength", "units": "nm", "scale": x[1] - x[0], "offset": 600, "size": 200}
    one = hs.signals.Signal1D(
        rng.poisson(5 + 100 * np.exp(-0.5 * ((x - 700) / 8) ** 2)).astype(float), axes=[axis]
    )
    res = hl.fit(one, device="cpu", progress=False, signal_range=(650, 750))
    ax = plot_spectra(one, res).axes[0]
    model = ax.lines[1]
    assert model.get_label() == f"the spectrum: \u03c3 = {float(res.maps['sigma']):.3g} nm"
    assert model.get_xdata().min() >= 650 and model.get_xdata().max() <= 750  # fitted range only
    assert ax.patches or ax.collections  # the fitted range is shaded
    line = hs.signals.Signal1D(
        np.stack([one.data, one.data]),
        axes=[{"name": "x", "units": "µm", "scale": 0.5, "offset": 1.0, "size": 2}, axis],
    )
    res2 = hl.fit(line, device="cpu", progress=False, signal_range=(650, 750))
    ax = plot_spectra(line, res2, pixels=[1]).axes[0]
    assert ax.lines[1].get_label().startswith("x = 1.5 µm: \u03c3 = ")
    with pytest.raises(ValueError, match=r"the spectra have navigation shape \(2,\), the maps"):
        plot_spectra(line, res)


def test_nothing_detected_no_statistic(rng, tmp_path):
    x = np.linspace(600.0, 800.0, 96)
    noise = rng.poisson(50.0, size=(6, 7, 96)).astype(float)  # no emission anywhere
    res = hl.fit(noise, axis=x, device="cpu", progress=False)
    assert not np.asarray(res.maps["detected"]).any()
    rep = make_report(res, None, tmp_path)
    assert "Pixels used: 0 of 42" in rep.findings
    for name in ("centre", "sigma", "intensity"):
        assert f"{name}: no statistic, no pixel to take it over." in rep.findings
    assert "nan" not in rep.findings


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_nothing_detected_figures_say_so_without_colour_bars(rng):
    """A map or line scan with no detected peak: each panel says why it is empty, and no
    colour bar scales the grey (it read -0.1..0.1, as if there were values)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hyperlum.viz import plot

    x = np.linspace(600.0, 800.0, 96)
    noise = rng.poisson(50.0, size=(3, 4, 96)).astype(float)  # no emission anywhere
    res = hl.fit(noise, axis=x, device="cpu", progress=False)
    assert not np.asarray(res.maps["detected"]).any()
    why = "no pixel with a detected peak"
    fig = plot.plot_maps(res, names=("centre", "sigma"))
    assert len(fig.axes) == 3  # the three panels, no colour-bar axes
    assert _texts(fig) == [why] * 3
    fig = plot.plot_hist2d_regions(res)
    assert len(fig.axes) == 2 and _texts(fig) == [why] * 2
    assert all(ax.get_title() == "detected pixels: n = 0" for ax in fig.axes)
    assert _texts(plot.plot_region_histograms(res)) == [why] * 3
    line = hl.fit(noise[0], axis=x, device="cpu", progress=False)
    assert _texts(plot.plot_profile(line)) == [why] * 3
    # detected=False: every converged pixel is shown, with its colour bar
    fig = plot.plot_maps(res, names=("centre",), detected=False)
    assert len(fig.axes) == 4 and _texts(fig) == []
    # pixels with a peak that the mask leaves out are named as such
    res.maps["detected"][0, 0] = True
    fig = plot.plot_maps(res, names=("centre",), mask=np.zeros((3, 4), bool))
    assert _texts(fig) == ["the one pixel with a detected peak is not kept"] * 2
    # a single pixel: its value is the only tick (not a range around it that no pixel has)
    fig = plot.plot_maps(res, names=("centre",))
    for ax, name in zip(fig.axes[:2], ("intensity", "centre"), strict=True):
        ticks = ax.images[0].colorbar.get_ticks()
        assert ticks.tolist() == [float(res.maps[name][0, 0])]
    plt.close("all")
