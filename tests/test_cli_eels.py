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
    assert main(argv + ["-o", str(out)]) == 0
    assert "48 pixels, power law 48 converged, 0 bad input" in capsys.readouterr().out
    for name in ("eels_maps.hspy", "profile.csv", "edge_map.png", "profile.png", "spectra.png"):
        assert (out / name).is_file()
    res = hl.load_result(out / "eels_maps.hspy")
    edge = np.asarray(res.maps["edge_normalised"])
    assert edge[:, 4:].min() > 5 * np.abs(edge[:, :4]).max()
    assert res["edge"].axes_manager[0].units == "nm"
    with open(out / "profile.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["distance (nm)", "edge_normalised"]
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
