"""The ``hyperlum eels`` command: outputs on synthetic and real data, one-line errors."""

import csv

import hyperspy.api as hs
import numpy as np
import pytest

import hyperlum as hl
from hyperlum import cli


@pytest.fixture
def main(monkeypatch):
    # Only this command's parser: the test does not depend on the other sub-commands.
    monkeypatch.setattr(cli, "_COMMANDS", ["eels"])
    return cli.main


@pytest.fixture
def edge_map(tmp_path, rng):
    """A 6 x 8 core-loss map with an edge at 640 eV only in the right half (x >= 4)."""
    e = 500.0 + np.arange(300)
    r = rng.uniform(2.8, 3.2, (6, 8))
    step = np.where(np.arange(8) >= 4, 3e3, 0.0)[None, :, None] * np.ones((6, 1, 1))
    mu = 3e4 * (e / 600.0) ** -r[..., None] + step * (e > 640) * np.exp(-(e - 640) / 100)
    s = hs.signals.Signal1D(rng.poisson(mu).astype(np.float32))
    s.set_signal_type("EELS")
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units, ax.name = 500.0, 1.0, "eV", "Energy loss"
    for a in s.axes_manager.navigation_axes:
        a.scale, a.units = 2.0, "nm"
    path = tmp_path / "core.hspy"
    s.save(path)
    return path


def test_map_outputs(main, edge_map, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["eels", str(edge_map), "--fit-range", "580", "635", "--edge", "641", "700"]
    argv += ["--device", "cpu"]
    assert main(argv + ["-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        "48 pixels; power law 580-635 on the CPU: 48 converged, 0 bad input (0 with a saturated "
        "channel, 0 with a NaN or inf channel); edge_641_700: 48 pixels with a value; wrote"
        in printed
    )
    for name in ("eels_maps.hspy", "profile.csv", "edge_map.png", "profile.png", "spectra.png"):
        assert (out / name).is_file()
    res = hl.load_result(out / "eels_maps.hspy")
    edge = np.asarray(res.maps["edge_641_700_normalised"])
    assert edge[:, 4:].min() > 5 * np.abs(edge[:, :4]).max()
    assert res["edge_641_700"].axes_manager[0].units == "nm"
    with open(out / "profile.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["distance (nm)", "edge_641_700_normalised"]
    dist, val = np.array(rows[1:], dtype=float).T
    np.testing.assert_allclose(dist, np.arange(8) * 2.0)
    assert val[5:].min() > 5 * np.abs(val[:3]).max()  # the edge appears along the middle row
    # Outputs are kept unless --overwrite
    assert main(argv + ["-o", str(out)]) == 2
    assert "eels_maps.hspy exists; pass --overwrite" in capsys.readouterr().err
    assert main(argv + ["-o", str(out), "--overwrite"]) == 0


def test_real_dual_eels(main, real_file, tmp_path, capsys):
    core = real_file("exspydemos-LSMO_STO_linescan.hspy")
    ll = real_file("exspydemos-LSMO_STO_linescan_low_loss.hspy")
    out = tmp_path / "lsmo"
    argv = ["eels", str(core), "--low-loss", str(ll), "--fit-range", "600", "635"]
    assert main(argv + ["--edge", "636", "670", "-o", str(out)]) == 0
    assert "ZLP aligned (median shift -0.5" in capsys.readouterr().out
    with open(out / "profile.csv") as f:
        val = np.array([r[1] for r in list(csv.reader(f))[1:]], dtype=float)
    assert val.size == 10 and val[5:].min() > 10 * np.abs(val[:3]).max()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--fit-range", "100", "200"], "fit_range=(100, 200) eV lies outside the signal axis"),
        (["--fit-range", "600", "580"], "fit_range=(600, 580) must be increasing"),
        (["--fit-range", "580", "635", "--edge", "641"], "expected 2 arguments"),
        (
            ["--fit-range", "580", "635", "--edge", "900", "950"],
            "--edge=(900, 950) eV lies outside",
        ),
        (["--fit-range", "580", "635", "--edge", "600", "700"], "--edge 600 700 starts before"),
        (
            ["--fit-range", "580", "635", "--fit-range", "580", "635", "--edge", "641", "700"],
            "--fit-range is given 2 times for 1 --edge windows: give it once, or once per --edge",
        ),
        (
            ["--fit-range", "580", "635", "--profile", "0", "4", "30", "4"],
            "--profile: start/end x lies outside the map (0 to 14 nm)",
        ),
        (["--fit-range", "580", "635", "--width", "0"], "argument --width: expected a positive"),
        (["--fit-range", "580", "635", "--width", "-2"], "argument --width: expected a positive"),
        (["--fit-range", "580", "635", "--width", "nan"], "argument --width: expected a positive"),
        (["--fit-range", "580", "635", "--width", "inf"], "argument --width: expected a positive"),
        (
            ["--fit-range", "580", "635", "--width", "wide"],
            "expected a positive number, got 'wide'",
        ),
    ],
)
def test_bad_options_one_line(main, edge_map, tmp_path, capsys, extra, message):
    argv = ["eels", str(edge_map), "--edge", "641", "700", "-o", str(tmp_path / "o")]
    if "--edge" in extra:
        argv = ["eels", str(edge_map), "-o", str(tmp_path / "o")]
    try:
        code = main(argv + extra)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing written


def test_device(main, edge_map, tmp_path, capsys, monkeypatch):
    from hyperlum.fitting import _backend

    argv = ["eels", str(edge_map), "--fit-range", "580", "635", "--edge", "641", "700"]
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--device", "gpu", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "argument --device: invalid choice: 'gpu' (choose from" in err
    # No usable GPU: --device cuda is refused before any work, --device auto fits on the CPU.
    monkeypatch.setattr(_backend, "cuda_status", lambda: (False, "no GPU in this test"))
    assert main(argv + ["--device", "cuda", "-o", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (
        "hyperlum eels: error: --device cuda was asked for, but no GPU in this test\n"
    )
    assert not (tmp_path / "o").exists()
    assert main(argv + ["-o", str(tmp_path / "o")]) == 0
    out = capsys.readouterr()
    assert "power law 580-635 on the CPU: 48 converged" in out.out and out.err == ""
    assert hl.load_result(tmp_path / "o" / "eels_maps.hspy").options["device"] == "cpu"


def test_missing_file(main, tmp_path, capsys):
    code = main(
        [
            "eels",
            str(tmp_path / "nope.hspy"),
            "--fit-range",
            "1",
            "2",
            "--edge",
            "3",
            "4",
            "-o",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"hyperlum eels: error: IN {str(tmp_path / 'nope.hspy')!r} is not a file"
    )


def test_several_edges_and_calibrated_figures(main, edge_map, tmp_path, capsys):
    out = tmp_path / "two"
    argv = ["eels", str(edge_map), "--fit-range", "580", "635", "--edge", "641", "700"]
    argv += ["--edge", "700", "760", "--profile", "0", "4", "14", "4", "--width", "4"]
    assert main(argv + ["-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "edge_641_700: 48 pixels with a value; edge_700_760: 48 pixels" in printed
    res = hl.load_result(out / "eels_maps.hspy")
    with open(out / "profile.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["distance (nm)", "edge_641_700_normalised", "edge_700_760_normalised"]
    vals = np.array(rows[1:], dtype=float)
    np.testing.assert_allclose(vals[:, 0], np.arange(8) * 2.0)
    for k, name in ((1, "edge_641_700"), (2, "edge_700_760")):
        m = np.asarray(res.maps[f"{name}_normalised"])
        assert m[:, 4:].min() > 5 * np.abs(m[:, :4]).max()
        # a 4 nm band (2 pixels) around y = 4 nm (row 2): sampled at rows 1.5 and 2.5
        band = 0.25 * m[1] + 0.5 * m[2] + 0.25 * m[3]
        np.testing.assert_allclose(vals[:, k], band, rtol=1e-9, atol=1e-12)
    assert res.options["edges"] == [[641.0, 700.0], [700.0, 760.0]]


def test_figures_are_calibrated(edge_map):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.lines import Line2D
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    from hyperlum.viz import eels_plot

    s = hs.load(edge_map)
    sub, bg = hl.eels.subtract_powerlaw(s, fit_range=(580, 635))
    m = [hl.eels.edge_intensity(sub, window=w).data for w in ((641, 700), (700, 760))]
    fig = eels_plot.plot_edge_maps(
        m, bg.nav_axes, labels=["a", "b"], line=((0.0, 4.0), (14.0, 4.0)), width=4.0
    )
    panels = [a for a in fig.axes if a.get_title()]
    assert [a.get_title() for a in panels] == ["a", "b"]
    for ax in panels:
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("x (nm)", "y (nm)")
        assert ax.images[0].get_extent() == [-1.0, 15.0, 11.0, -1.0]  # 2 nm pixels
        assert any(isinstance(a, AnchoredSizeBar) for a in ax.artists)
        lines = [ln.get_xydata().tolist() for ln in ax.lines if isinstance(ln, Line2D)]
        assert [[0.0, 4.0], [14.0, 4.0]] in lines  # the profile line
        assert [[0.0, 6.0], [14.0, 6.0]] in lines or [[0.0, 2.0], [14.0, 2.0]] in lines
    bars = [a for a in fig.axes if not a.get_title()]
    assert [b.get_ylabel() for b in bars] == ["edge / total intensity (fraction)"] * 2
    spec = eels_plot.plot_mean_spectra(s, sub, bg, fit_range=(580, 635), edges=[(641, 700)])
    ax = spec.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("energy loss (eV)", "counts per channel")
    drawn = {ln.get_label(): ln.get_xdata() for ln in ax.lines}
    assert drawn["power law (fitted)"].min() >= 580 and drawn["power law (fitted)"].max() <= 635
    assert drawn["power law (extrapolated)"].min() >= 635
    assert drawn["power law (extrapolated)"].max() <= 700
    assert drawn["mean subtracted"].min() >= 580  # nothing drawn below the fit window
    assert drawn["mean subtracted"].max() <= 700
    line_fig = eels_plot.plot_edge_maps([m[0][0]], [bg.nav_axes[1]], labels=["a"])
    assert line_fig.axes[0].get_xlabel() == "position (nm)"


def test_bad_pixels_and_float16_are_not_fatal(main, edge_map, tmp_path, capsys, rng):
    core = hs.load(edge_map)
    e = -20.0 + 0.5 * np.arange(120)
    mu = 3e4 * np.exp(-0.5 * ((e - rng.uniform(-1, 1, (6, 8, 1))) / 0.8) ** 2) + 20
    ll = hs.signals.Signal1D(rng.poisson(mu).astype(np.float32))
    ll.data[2, 3] = np.nan  # a dead pixel in the low-loss
    ll.data[4, 5, 40] = np.inf
    ll.set_signal_type("EELS")
    ax = ll.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = -20.0, 0.5, "eV"
    ll.save(tmp_path / "ll.hspy")
    core.data = core.data.astype(np.float16)
    core.data[1, 1, 100] = np.nan  # in the power-law window 580-635 eV
    core.save(tmp_path / "core16.hspy")
    argv = ["eels", str(tmp_path / "core16.hspy"), "--low-loss", str(tmp_path / "ll.hspy")]
    argv += ["--fit-range", "580", "635", "--edge", "641", "700", "-o", str(tmp_path / "o")]
    assert main(argv + ["--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert (
        "power law 580-635 on the CPU: 47 converged, 1 bad input (0 with a saturated channel, "
        "1 with a NaN" in printed
    )
    assert "2 pixels with a bad ZLP only recalibrated" in printed
    res = hl.load_result(tmp_path / "o" / "eels_maps.hspy")
    m = np.asarray(res.maps["edge_641_700_normalised"])
    assert np.isnan(m[1, 1]) and np.isfinite(m).sum() == 47


def test_width_on_a_line_scan_is_refused(main, real_file, tmp_path, capsys):
    core = real_file("exspydemos-LSMO_STO_linescan.hspy")
    argv = ["eels", str(core), "--fit-range", "600", "635", "--edge", "636", "670"]
    assert main(argv + ["--width", "3", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert (
        err == "hyperlum eels: error: --width and --profile apply to 2-D maps; IN is a line scan\n"
    )


def test_one_fit_range_per_edge(main, real_file, tmp_path, capsys):
    # Ti L2,3 (456 eV) and Mn L2,3 (640 eV) across LSMO / SrTiO3, each with its own pre-edge
    # window: Ti is on the SrTiO3 side (first pixels), Mn on the LSMO side.
    core = real_file("exspydemos-LSMO_STO_linescan.hspy")
    argv = ["eels", str(core), "--fit-range", "420", "450", "--edge", "455", "475"]
    argv += ["--fit-range", "600", "635", "--edge", "636", "670", "-o", str(tmp_path / "o")]
    assert main(argv + ["--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "power law 420-450 on the CPU: 10 converged" in printed
    assert "power law 600-635 on the CPU: 10 converged" in printed
    res = hl.load_result(tmp_path / "o" / "eels_maps.hspy")
    assert res.options["fit_range"] == [[420.0, 450.0], [600.0, 635.0]]
    assert {"bg_420_450_r", "bg_600_635_r"} <= set(res.maps)
    ti = np.asarray(res.maps["edge_455_475_normalised"])
    mn = np.asarray(res.maps["edge_636_670_normalised"])
    assert ti[:3].min() > 0.01 and ti[:3].min() > 2 * ti[-3:].max()
    assert mn[-3:].min() > 10 * np.abs(mn[:3]).max()


def test_saturated_uint16_pixel_is_flagged(main, edge_map, tmp_path, capsys):
    core = hs.load(edge_map)
    core.data = np.round(core.data).astype(np.uint16)
    core.data[3, 6, 90:95] = 65535  # a full detector in the fit window (590-594 eV)
    core.data[0, 0, 250] = 65535  # and once far past the edges: only that channel is lost
    core.save(tmp_path / "core16.hspy")
    argv = ["eels", str(tmp_path / "core16.hspy"), "--fit-range", "580", "635", "--device", "cpu"]
    assert main(argv + ["--edge", "641", "700", "-o", str(tmp_path / "o")]) == 0
    assert (
        "power law 580-635 on the CPU: 47 converged, 1 bad input (2 with a saturated channel, "
        "0 with a NaN" in capsys.readouterr().out
    )
    res = hl.load_result(tmp_path / "o" / "eels_maps.hspy")
    assert np.asarray(res.maps["saturated"])[[3, 0], [6, 0]].tolist() == [5, 1]
    edge = np.asarray(res.maps["edge_641_700"])
    assert np.isnan(edge[3, 6]) and np.isfinite(edge).sum() == 47
