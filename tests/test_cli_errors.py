"""Every command ends a mistake with exactly one stderr line: numeric options, bad files, help."""

import re

import hyperspy.api as hs
import numpy as np
import pytest
from conftest import cli

from hyperlum.cli import info, main

X = np.linspace(600.0, 800.0, 40)


@pytest.fixture
def cube(tmp_path):
    """A 3 x 4 cube of one Gaussian + constant (.npy, axis in nm next to it)."""
    data = 100 * np.exp(-0.5 * ((X - 700.0) / 12.0) ** 2) + 5 + np.zeros((3, 4, 1))
    np.save(tmp_path / "c.npy", data.astype(np.float32))
    np.save(tmp_path / "c.axis.npy", X)
    return tmp_path / "c.npy"


def test_plain_hyperlum_prints_the_help(capsys):
    rc, out, err = cli(capsys)
    assert (rc, err) == (0, "")
    assert out.startswith("usage: hyperlum [-h] {fit,eels,info,demo,report} ...")
    assert "New here? Run: hyperlum demo -o demo-out" in " ".join(out.split())


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["fit", "{c}", "-o", "{o}", "--chunk-mb", "inf"], "argument --chunk-mb: must be a finite number, got 'inf'"),
        (["fit", "{c}", "-o", "{o}", "--tolerance", "nan"], "argument --tolerance: must be a finite number, got 'nan'"),
        (["fit", "{c}", "-o", "{o}", "--tolerance", "1e999"], "argument --tolerance: must be a finite number, got '1e999'"),
        (["fit", "{c}", "-o", "{o}", "--range", "600", "inf"], "argument --range: must be a finite number, got 'inf'"),
        (["fit", "{c}", "-o", "{o}", "--range", "x", "700"], "argument --range: invalid number: 'x'"),
        (["eels", "{c}", "-o", "{o}", "--fit-range", "1", "nan"], "argument --fit-range: must be a finite number, got 'nan'"),
        (["eels", "{c}", "-o", "{o}", "--width", "inf"], "argument --width: expected a positive number, got 'inf'"),
        (["report", "{c}", "-o", "{o}", "--min-snr", "nan"], "argument --min-snr: must be a finite number, got 'nan'"),
        (["report", "{c}", "-o", "{o}", "--shell-width", "inf"], "argument --shell-width: must be a finite number, got 'inf'"),
        (["demo", "-o", "{o}", "--seed", "-1"], "argument --seed: must be an integer >= 0, got '-1'"),
        (["fit", "{c}", "-o", "{o}", "--tolerance", "-1"], "--tolerance must be a positive number, got -1.0"),
        (["fit", "{c}", "-o", "{o}", "--counts=yes"], "argument --counts/--no-counts: ignored explicit argument 'yes'"),
        (["fit", "{c}", "-o", "{o}", "--no-counts", "--no-despike"], "--no-counts sets the spike filter's noise floor, --no-despike turns the filter off: give one or the other"),
    ],
)  # fmt: skip
def test_numeric_options_named(tmp_path, capsys, cube, argv, line):
    argv = [a.format(c=cube, o=tmp_path / "out.zspy") for a in argv]
    before = sorted(tmp_path.iterdir())
    rc, out, err = cli(capsys, *argv)
    assert rc == 2 and out == ""
    assert err == f"hyperlum {argv[0]}: error: {line}\n"
    assert sorted(tmp_path.iterdir()) == before


def _signal_file(tmp_path, name, data, **axis):
    s = hs.signals.Signal1D(data)
    for key, value in axis.items():
        setattr(s.axes_manager[-1], key, value)
    s.save(tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize(
    ("make", "line"),
    [
        (
            lambda d: _signal_file(d, "s0.hspy", np.ones((2, 3, 40)), scale=0.0),
            r"\S*s0\.hspy: the signal axis 2 has scale 0; an axis needs a finite offset and a "
            r"finite, non-zero scale",
        ),
        (
            lambda d: _signal_file(d, "z.hspy", np.ones((2, 3, 40), dtype=np.complex64)),
            r"\S*z\.hspy holds complex numbers, not real numbers; hyperlum fits real spectra",
        ),
        (
            lambda d: np.save(d / "e.npy", np.zeros((4, 4, 0))) or d / "e.npy",
            r"\S*e\.npy holds an empty array \(shape \(4, 4, 0\)\), no spectra",
        ),
    ],
    ids=["scale 0", "complex", "no channels"],
)
def test_bad_file_one_line(tmp_path, capsys, make, line):
    src = make(tmp_path)
    rc, out, err = cli(capsys, "fit", src, "-o", tmp_path / "m.zspy", "-q", "--device", "cpu")
    assert rc == 2 and out == ""
    assert re.fullmatch(f"hyperlum fit: error: {line}\n", err), err
    assert not (tmp_path / "m.zspy").exists()


def test_damaged_chunk_names_file_and_chunk(tmp_path, capsys):
    src = _signal_file(tmp_path, "c.zspy", np.ones((3, 4, 40), dtype=np.float32))
    chunk = src / "Experiments" / "__unnamed__" / "data" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:16] + b"\xff" * 24 + chunk.read_bytes()[40:])
    rc, out, err = cli(capsys, "fit", src, "-o", tmp_path / "m.zspy", "-q", "--device", "cpu")
    assert rc == 2 and out == ""
    assert err == (
        f"hyperlum fit: error: {src}: the data chunk [0:3, 0:4, 0:40] could not be read "
        "(RuntimeError: error during blosc decompression: -1); the file is damaged\n"
    )


def test_range_partly_outside_says_what_is_used(tmp_path, capsys, cube):
    out = tmp_path / "m.zspy"
    rc, stdout, err = cli(
        capsys, "fit", cube, "-o", out, "-q", "--device", "cpu", "--range", "500", "700"
    )
    assert rc == 0 and out.exists()
    assert err == (
        "hyperlum fit: warning: --range=(500, 700) reaches outside the signal axis (600 to 800); "
        "using 600 to 697.436 (20 channels)\n"
    )


def test_unexpected_error_is_one_line_exit_1(capsys, monkeypatch):
    def broken():
        return 1 / 0

    monkeypatch.setattr(info, "report", broken)
    rc, out, err = cli(capsys, "info")
    assert rc == 1 and out == ""
    assert err == (
        "hyperlum info: internal error (please report it; HYPERLUM_TRACEBACK=1 shows the "
        "traceback): ZeroDivisionError: division by zero\n"
    )
    monkeypatch.setenv("HYPERLUM_TRACEBACK", "1")
    with pytest.raises(ZeroDivisionError):
        main(["info"])
