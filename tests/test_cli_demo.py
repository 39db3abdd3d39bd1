"""``hyperlum demo`` and ``hyperlum report`` from the command line."""

import pandas as pd
import pytest

from hyperlum import cli


@pytest.fixture
def main():
    return cli.main


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert cli.main(["demo", "-o", str(out), "--device", "cpu"]) == 0
    return out


def test_demo_writes_maps_figures_and_findings(demo_dir, capsys):
    names = {p.name for p in demo_dir.iterdir()}
    for n in (
        "demo_cl.zspy",
        "demo_haadf.zspy",
        "demo_maps.zspy",
        "maps.png",
        "spectra.png",
        "histograms.png",
        "hist2d.png",
        "regions.csv",
        "tests.csv",
        "particles.csv",
        "findings.txt",
        "linescan_maps.zspy",
        "linescan.png",
    ):
        assert n in names
    tests = pd.read_csv(demo_dir / "tests.csv", index_col=0)
    assert tests.loc["sigma", "p_value"] < 0.01
    assert tests.loc["sigma", "difference"] == pytest.approx(4.0, abs=0.5)
    # the test is over the 8 particles; the pixel test is kept, descriptive
    assert tests.loc["sigma", "n_particles"] == 8
    assert tests.loc["sigma", "ci_low"] > 3.0 and tests.loc["sigma", "p_pixels"] < 1e-10
    findings = (demo_dir / "findings.txt").read_text()
    assert "Particles: 8 found on the HAADF image" in findings
    assert "sigma: larger at the interface than in the core (significant at 0.05)" in findings
    assert "mean over 8 particles of (interface mean - core mean)" in findings


def test_demo_maps_load_back(demo_dir):
    import hyperlum as hl

    res = hl.load_result(demo_dir / "demo_maps.zspy")
    assert res.shape == (112, 112) and res["sigma"].axes_manager[0].units == "nm"
    line = hl.load_result(demo_dir / "linescan_maps.zspy")
    assert line.shape == (98,)


def test_demo_refuses_to_overwrite(demo_dir, main, capsys):
    before = (demo_dir / "maps.png").stat().st_mtime_ns
    assert main(["demo", "-o", str(demo_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hyperlum demo: error: ") and "already holds demo_cl.zspy" in err
    assert err.count("\n") == 1
    assert (demo_dir / "maps.png").stat().st_mtime_ns == before


def test_report_command(demo_dir, main, tmp_path, capsys):
    out = tmp_path / "rep"
    code = main(
        [
            "report",
            str(demo_dir / "demo_maps.zspy"),
            "--image",
            str(demo_dir / "demo_haadf.zspy"),
            "-o",
            str(out),
            "--interface-width",
            "15",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "Particles: 8 found on the HAADF image" in text and "Wrote 7 files" in text
    assert (out / "hist2d.png").exists() and not (out / "spectra.png").exists()


def test_report_command_with_spectra_and_intensity(demo_dir, main, tmp_path, capsys):
    out = tmp_path / "rep"
    maps, cube = str(demo_dir / "demo_maps.zspy"), str(demo_dir / "demo_cl.zspy")
    assert main(["report", maps, "--spectra", cube, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Particles: 8 found on the fitted intensity map" in text and "Wrote 8 files" in text
    assert (out / "spectra.png").stat().st_size > 10_000


def test_report_command_errors(demo_dir, main, tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope.zspy"), "-o", str(tmp_path)]) == 2
    assert "no such result file" in capsys.readouterr().err
    assert (
        main(
            [
                "report",
                str(demo_dir / "demo_maps.zspy"),
                "--image",
                str(tmp_path / "none.dm4"),
                "-o",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "no such HAADF image file" in capsys.readouterr().err


def test_demo_bad_size(main, tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path), "--size", "8"]) == 2
    assert "--size must be from 32 to 256 pixels, got 8" in capsys.readouterr().err


def test_report_spectra_of_another_scan_refused_before_writing(demo_dir, main, tmp_path, capsys):
    out = tmp_path / "rep"
    maps = str(demo_dir / "linescan_maps.zspy")
    assert main(["report", maps, "--spectra", str(demo_dir / "demo_cl.zspy"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "hyperlum report: error: the spectra have 112x112 navigation pixels, the maps 98: give "
        "the spectrum image that was fitted\n"
    )
    assert not out.exists()


def test_report_command_on_the_line_scan(demo_dir, main, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", str(demo_dir / "linescan_maps.zspy"), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Line scan.\nPixels used: ")
    assert "Wrote 4 files" in text and (out / "profile.png").stat().st_size > 10_000
