"""Outputs never destroy inputs, nor folders hyperlum did not write (every command)."""

import hashlib
import os
import re

import hyperspy.api as hs
import numpy as np
import pytest
from conftest import cli, gaussian_cube

import hyperlum as hl
from hyperlum.io import outputs

X = np.linspace(600.0, 800.0, 60)


def tree_hash(path):
    """SHA-256 of every file under ``path`` (names and bytes)."""
    h = hashlib.sha256()
    files = [path] if os.path.isfile(path) else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path.parent)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


@pytest.fixture
def hspy_cube(tmp_path, rng):
    _, mu = gaussian_cube(rng, (3, 4), X)
    s = hs.signals.Signal1D(rng.poisson(mu).astype(np.float32))
    s.axes_manager[-1].offset, s.axes_manager[-1].scale = X[0], X[1] - X[0]
    path = tmp_path / "cube.hspy"
    s.save(path)
    return path


def _same_path(tmp_path, src):
    return src


def _symlink(tmp_path, src):
    os.symlink(src, tmp_path / "link.hspy")
    return tmp_path / "link.hspy"


def _hardlink(tmp_path, src):
    os.link(src, tmp_path / "hard.hspy")
    return tmp_path / "hard.hspy"


@pytest.mark.parametrize(
    ("make_out", "what"),
    [(_same_path, "is the input"), (_symlink, "is the input"), (_hardlink, "is the input")],
    ids=["same-path", "symlink", "hardlink"],
)
def test_fit_output_that_is_the_input_is_refused(tmp_path, capsys, hspy_cube, make_out, what):
    out = make_out(tmp_path, hspy_cube)
    before = tree_hash(hspy_cube)
    rc, _, err = cli(capsys, "fit", hspy_cube, "-o", out, "--overwrite", "-q")
    assert rc == 2
    assert err == f"hyperlum fit: error: -o {out} {what} {hspy_cube}; choose another output\n"
    assert tree_hash(hspy_cube) == before


def test_fit_output_folder_holding_the_input_is_refused(tmp_path, capsys, rng):
    folder = tmp_path / "u.zspy"
    folder.mkdir()
    _, mu = gaussian_cube(rng, (2, 3), X)
    np.save(folder / "in.npy", rng.poisson(mu).astype(np.float32))
    np.save(folder / "in.axis.npy", X)
    before = tree_hash(folder)
    rc, _, err = cli(capsys, "fit", folder / "in.npy", "-o", folder, "--overwrite", "-q")
    assert rc == 2
    assert err == (
        f"hyperlum fit: error: -o {folder} holds the input {folder / 'in.npy'}; "
        "choose another output\n"
    )
    assert tree_hash(folder) == before


def test_fit_output_inside_an_input_folder_is_refused(tmp_path, capsys, rng):
    _, mu = gaussian_cube(rng, (2, 3), X)
    s = hs.signals.Signal1D(rng.poisson(mu).astype(np.float32))
    src = tmp_path / "in.zspy"
    s.save(src)
    before = tree_hash(src)
    out = src / "maps.zspy"
    rc, _, err = cli(capsys, "fit", src, "-o", out, "-q")
    assert rc == 2
    assert (
        err == f"hyperlum fit: error: -o {out} is inside the input {src}; choose another output\n"
    )
    assert tree_hash(src) == before


def test_fit_overwrite_keeps_a_folder_of_the_user(tmp_path, capsys, hspy_cube):
    folder = tmp_path / "u.zspy"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    rc, _, err = cli(capsys, "fit", hspy_cube, "-o", folder, "--overwrite", "-q")
    assert rc == 2
    assert err == (
        f"hyperlum fit: error: {folder} is a folder that hyperlum did not write; move it away "
        "or choose another output\n"
    )
    assert sorted(os.listdir(folder)) == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "my notes"


def test_fit_overwrite_replaces_its_own_folder(tmp_path, capsys, hspy_cube):
    out = tmp_path / "maps.zspy"
    assert cli(capsys, "fit", hspy_cube, "-o", out, "-q")[0] == 0
    assert outputs.is_ours(out)
    rc, _, err = cli(capsys, "fit", hspy_cube, "-o", out, "-q", "--overwrite", "--peaks", 2)
    assert rc == 0, err
    assert hl.load_result(out).options["peaks"] == 2 and outputs.is_ours(out)


def test_temporary_names_are_matched_exactly(tmp_path, capsys, hspy_cube):
    """A ``*`` in the output's name matches nothing but itself."""
    others = [tmp_path / ".maps.tmp-123.zspy", tmp_path / ".m.tmp-1.zspy"]
    for p in others:
        p.mkdir()
        (p / "data").write_text("another run's")
    mine = tmp_path / ".m*.tmp-99999999.zspy"  # a killed run of this very output
    mine.mkdir()
    rc, _, err = cli(capsys, "fit", hspy_cube, "-o", tmp_path / "m*.zspy", "-q")
    assert rc == 0, err
    assert all((p / "data").read_text() == "another run's" for p in others)
    assert not mine.exists() and (tmp_path / "m*.zspy").is_dir()


class TestSave:
    @pytest.fixture
    def result(self, rng):
        _, mu = gaussian_cube(rng, (2, 3), X)
        return hl.fit(rng.poisson(mu).astype(np.float32), axis=X, device="cpu")

    def test_overwrite_keeps_a_folder_of_the_user(self, tmp_path, result):
        folder = tmp_path / "u.zspy"
        folder.mkdir()
        (folder / "notes.txt").write_text("my notes")
        with pytest.raises(FileExistsError, match="is a folder that hyperlum did not write"):
            result.save(folder, overwrite=True)
        assert sorted(os.listdir(folder)) == ["notes.txt"]

    def test_overwrite_replaces_its_own_result(self, tmp_path, result):
        path = tmp_path / "maps.zspy"
        result.save(path)
        result.save(path, overwrite=True)
        np.testing.assert_array_equal(hl.load_result(path).maps["centre"], result.maps["centre"])
        assert sorted(os.listdir(tmp_path)) == ["maps.zspy"]  # no temporary left

    def test_the_input_of_the_fit_is_refused(self, tmp_path, result):
        src = tmp_path / "cube.hspy"
        src.write_bytes(b"the spectra")
        result.options["input"] = str(src)
        with pytest.raises(ValueError, match=re.escape(f"path {src} is the input {src}")):
            result.save(src, overwrite=True)
        assert src.read_bytes() == b"the spectra"


def test_eels_refuses_an_input_under_an_output_name(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    src = out / "eels_maps.hspy"
    src.write_bytes(b"core-loss spectra")
    rc, _, err = cli(
        capsys, "eels", src, "--fit-range", 1, 2, "--edge", 3, 4, "-o", out, "--overwrite"
    )
    assert rc == 2
    assert err == f"hyperlum eels: error: -o {src} is the input {src}; choose another output\n"
    assert src.read_bytes() == b"core-loss spectra"


def test_report_refuses_an_input_under_an_output_name(tmp_path, capsys, rng):
    _, mu = gaussian_cube(rng, (2, 3), X)
    hl.fit(rng.poisson(mu).astype(np.float32), axis=X, device="cpu").save(tmp_path / "m.zspy")
    image = tmp_path / "maps.png"
    image.write_bytes(b"an image")
    rc, _, err = cli(
        capsys, "report", tmp_path / "m.zspy", "--image", image, "-o", tmp_path, "--overwrite"
    )
    assert rc == 2
    assert (
        err == f"hyperlum report: error: -o {image} is the input {image}; choose another output\n"
    )
    assert image.read_bytes() == b"an image"


def test_demo_overwrite_keeps_a_folder_of_the_user(tmp_path, capsys):
    folder = tmp_path / "demo_cl.zspy"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    rc, _, err = cli(capsys, "demo", "-o", tmp_path, "--overwrite", "--size", 32)
    assert rc == 2
    assert err == (
        f"hyperlum demo: error: {folder} is a folder that hyperlum did not write; move it away "
        "or choose another output\n"
    )
    assert sorted(os.listdir(tmp_path)) == ["demo_cl.zspy"]
    assert sorted(os.listdir(folder)) == ["notes.txt"]


@pytest.mark.parametrize("command", ["eels", "report"])
def test_eels_and_report_take_the_writer_lock(tmp_path, capsys, rng, command):
    out = tmp_path / "out"
    if command == "eels":
        argv = ["eels", tmp_path / "core.hspy", "--fit-range", 560, 600, "--edge", 610, 650]
    else:
        _, mu = gaussian_cube(rng, (2, 3), X)
        hl.fit(rng.poisson(mu).astype(np.float32), axis=X, device="cpu").save(tmp_path / "m.zspy")
        argv = ["report", tmp_path / "m.zspy"]
    before = sorted(os.listdir(tmp_path))
    with outputs.writer_lock(out):
        rc, _, err = cli(capsys, *argv, "-o", out)
    assert rc == 2
    assert err == (
        f"hyperlum {command}: error: another hyperlum run (pid {os.getpid()}) is writing {out}\n"
    )
    assert sorted(os.listdir(tmp_path)) == before  # nothing written, the lock file gone


def test_eels_overwrite_keeps_a_file_of_the_user(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "profile.csv"
    mine.write_text("my own table")
    rc, _, err = cli(
        capsys,
        "eels",
        tmp_path / "core.hspy",
        "--fit-range",
        1,
        2,
        "--edge",
        3,
        4,
        "-o",
        out,
        "--overwrite",
    )
    assert rc == 2
    assert err == (
        f"hyperlum eels: error: {mine} is a file that hyperlum did not write; move it away or "
        "choose another output\n"
    )
    assert mine.read_text() == "my own table"


def test_a_file_changed_since_hyperlum_wrote_it_is_the_users(tmp_path):
    f = tmp_path / "profile.csv"
    f.write_text("distance,value\n")
    outputs.record(f)
    outputs.check_replaceable(f, overwrite=True)  # hyperlum's, unchanged: may be replaced
    f.write_text("the user's own edits\n")
    with pytest.raises(FileExistsError, match="profile.csv is a file that hyperlum did not write"):
        outputs.check_replaceable(f, overwrite=True)
