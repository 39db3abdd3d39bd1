"""Resumable fits: chunk grid, partial store, interrupted runs (Ctrl-C and SIGKILL)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import gaussian_cube
from hypothesis import given, settings
from hypothesis import strategies as st

import hyperlum as hl
from hyperlum import resume
from hyperlum.cli import main

X = np.linspace(600.0, 800.0, 100)


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_same_maps(a, b):
    assert a.names == b.names
    for name in a.names:
        np.testing.assert_array_equal(np.asarray(a.maps[name]), np.asarray(b.maps[name]), name)


@pytest.fixture
def cube_file(tmp_path, rng):
    _, mu = gaussian_cube(rng, (9, 8), X)
    path = tmp_path / "cube.npy"
    np.save(path, rng.poisson(mu).astype(np.float32))
    np.save(tmp_path / "cube.axis.npy", X)
    return path


def interrupt_after(monkeypatch, n):
    """Make the n+1-th chunk write raise KeyboardInterrupt, as Ctrl-C would."""
    real = resume.PartialStore.write
    calls = []

    def write(self, idx, rows):
        if len(calls) == n:
            raise KeyboardInterrupt
        calls.append(idx)
        real(self, idx, rows)

    monkeypatch.setattr(resume.PartialStore, "write", write)
    return calls


class TestChunkGrid:
    @settings(max_examples=60, deadline=None)
    @given(
        nav=st.lists(st.integers(1, 40), min_size=0, max_size=3),
        nch=st.integers(1, 300),
        budget_px=st.integers(1, 500),
        stored=st.integers(1, 16),
    )
    def test_covers_every_pixel_within_budget(self, nav, nch, budget_px, stored):
        chunk_bytes = budget_px * nch * 8
        stored_chunks = tuple(min(stored, n) for n in nav)
        grid = resume.chunk_grid(nav, nch, chunk_bytes=chunk_bytes, stored_chunks=stored_chunks)
        assert tuple(sum(c) for c in grid) == tuple(nav)
        first = [c[0] for c in grid]
        pixels = int(np.prod(first))
        assert pixels <= 4 * budget_px  # over budget only to keep a stored chunk whole
        for c, s, n in zip(grid, stored_chunks, nav, strict=True):
            assert all(v == c[0] for v in c[:-1]) and c[-1] <= c[0]
            if s < c[0] < n or c[0] < s < n:  # a multiple or a divisor of the stored chunks
                assert c[0] % s == 0 or s % c[0] == 0

    def test_block_slices(self):
        grid = ((2, 2, 1), (4, 3))
        assert resume.block_slices(grid, (2, 1)) == (slice(4, 5), slice(4, 7))


class TestPartialStore:
    def test_foreign_folder_is_not_taken(self, tmp_path):
        out = tmp_path / "m.zspy"
        (tmp_path / "m.zspy.partial").mkdir()
        with pytest.raises(
            ValueError,
            match=r"m\.zspy\.partial exists but is not a hyperlum "
            r"partial store \(FileNotFoundError\)",
        ):
            resume.PartialStore.open(out)

    def test_identity_follows_the_file(self, tmp_path):
        f = tmp_path / "a.npy"
        np.save(f, np.zeros(10))
        a = resume.input_identity(f)
        np.save(f, np.ones(10))  # same size, other content
        b = resume.input_identity(f)
        assert a["size"] == b["size"] and a["header_sha256"] != b["header_sha256"]

    @pytest.mark.filterwarnings("ignore::FutureWarning")  # zarr's NestedDirectoryStore
    def test_identity_of_a_zspy_folder(self, tmp_path):
        import hyperspy.api as hs

        s = hs.signals.Signal1D(np.zeros((2, 5)))
        s.save(tmp_path / "a.zspy")
        a = resume.input_identity(tmp_path / "a.zspy")
        assert a["size"] > 0 and a["path"] == str((tmp_path / "a.zspy").resolve())
        s.axes_manager[-1].scale = 2.0
        s.save(tmp_path / "a.zspy", overwrite=True)
        assert resume.input_identity(tmp_path / "a.zspy")["header_sha256"] != a["header_sha256"]


class TestInterrupted:
    def test_ctrl_c_then_rerun_gives_the_same_maps(self, tmp_path, capsys, cube_file, monkeypatch):
        ref_out = tmp_path / "ref.zspy"
        args = ["--chunk-mb", 3 * 8 * 100 * 8 / 2**20, "-q"]  # 3 rows per chunk: 3 chunks
        assert cli(capsys, "fit", cube_file, "-o", ref_out, *args)[0] == 0
        out = tmp_path / "maps.zspy"
        done = interrupt_after(monkeypatch, 1)
        rc, _, err = cli(capsys, "fit", cube_file, "-o", out, *args)
        assert rc == 130 and err.endswith("hyperlum fit: interrupted\n")
        assert done == [(0, 0)] and not out.exists()
        store = resume.PartialStore.open(out)
        assert store.missing() == [(1, 0), (2, 0)]
        # a chunk whose data landed but whose marker did not: must be fitted again
        store.array[3:6] = 1.0
        monkeypatch.undo()
        rc, _, err = cli(capsys, "fit", cube_file, "-o", out, *args)
        assert rc == 0
        assert "resuming" in err and "1 of 3 chunks already done" in err
        assert_same_maps(hl.load_result(out), hl.load_result(ref_out))
        assert not resume.partial_path(out).exists()

    def test_changed_input_refuses_the_partial_store(
        self, tmp_path, capsys, cube_file, rng, monkeypatch
    ):
        out = tmp_path / "maps.zspy"
        args = ["--chunk-mb", 3 * 8 * 100 * 8 / 2**20, "-q"]
        interrupt_after(monkeypatch, 1)
        assert cli(capsys, "fit", cube_file, "-o", out, *args)[0] == 130
        monkeypatch.undo()
        _, mu = gaussian_cube(rng, (9, 8), X)
        new = rng.poisson(mu).astype(np.float32)
        np.save(cube_file, new)
        rc, _, err = cli(capsys, "fit", cube_file, "-o", out, *args)
        assert rc == 2
        assert err == (
            f"hyperlum fit: error: {out}.partial holds an interrupted fit of another input or "
            "other options; finish it with its own command, or pass --overwrite to discard it\n"
        )
        rc, _, _ = cli(capsys, "fit", cube_file, "-o", out, *args, "--overwrite")
        assert rc == 0
        assert_same_maps(hl.load_result(out), hl.fit(new, axis=X, device="cpu"))

    def test_other_options_refuse_the_partial_store(self, tmp_path, capsys, cube_file, monkeypatch):
        out = tmp_path / "maps.zspy"
        args = ["--chunk-mb", 3 * 8 * 100 * 8 / 2**20, "-q"]
        interrupt_after(monkeypatch, 2)
        assert cli(capsys, "fit", cube_file, "-o", out, *args)[0] == 130
        monkeypatch.undo()
        rc, _, err = cli(capsys, "fit", cube_file, "-o", out, *args, "--estimator", "mle")
        assert rc == 2 and "holds an interrupted fit of another input or other options" in err
        assert len(resume.PartialStore.open(out).missing()) == 1

    def test_stale_temporary_output_is_cleared(self, tmp_path, capsys, cube_file):
        out = tmp_path / "maps.zspy"
        stale = resume.temporary_output(out).with_name(".maps.tmp-999999.zspy")
        stale.mkdir()
        (stale / "junk").write_text("half-written")
        assert cli(capsys, "fit", cube_file, "-o", out, "-q")[0] == 0
        assert not stale.exists() and out.is_dir()


def _sigkill_cube(tmp_path):
    rng = np.random.default_rng(7)
    x = np.linspace(600.0, 800.0, 1024)
    _, mu = gaussian_cube(rng, (120, 160), x)
    path = tmp_path / "big.npy"
    np.save(path, rng.poisson(mu).astype(np.float32))
    np.save(tmp_path / "big.axis.npy", x)
    return path


def test_sigkill_then_rerun_gives_the_maps_of_an_uninterrupted_run(tmp_path, capsys):
    src = _sigkill_cube(tmp_path)  # 19,200 pixels x 1024 channels: seconds on one core
    out = tmp_path / "maps.zspy"
    chunk = ["--chunk-mb", str(2 * 160 * 1024 * 8 / 2**20)]  # 2 rows per chunk: 60 chunks
    cmd = [sys.executable, "-m", "hyperlum.cli", "fit", str(src), "-o", str(out), *chunk, "-q"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")

    def one_core():  # the same speed on any machine: the fit threads follow the affinity
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    proc = subprocess.Popen(
        cmd, env=env, preexec_fn=one_core, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    marks = resume.partial_path(out) / "done"
    deadline = time.monotonic() + 120  # the first run may compile the kernels
    while time.monotonic() < deadline and proc.poll() is None:
        if marks.is_dir() and len(os.listdir(marks)) >= 3:
            break
        time.sleep(0.005)
    assert proc.poll() is None, f"the fit ended before it could be killed: {proc.communicate()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    n_done = len(os.listdir(marks))
    assert 3 <= n_done < 60
    assert not out.exists()  # an interrupted output never looks complete
    assert not list(tmp_path.glob(".maps*"))

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming {out}: " in rerun.stderr
    assert "19200 pixels" in rerun.stdout
    assert not resume.partial_path(out).exists()

    ref_out = tmp_path / "ref.zspy"
    assert cli(capsys, "fit", src, "-o", ref_out, *chunk, "-q")[0] == 0
    assert_same_maps(hl.load_result(out), hl.load_result(ref_out))
