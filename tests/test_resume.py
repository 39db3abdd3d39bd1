"""Resumable fits: chunk grid, partial store, interrupted runs (Ctrl-C and SIGKILL)."""

import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import (
    BIG_CHUNK_BYTES,
    BIG_SHAPE,
    assert_same_maps,
    big_cube,
    cli,
    gaussian_cube,
    kill_after_chunks,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

import hyperlum as hl
from hyperlum.fitting import resume

X = np.linspace(600.0, 800.0, 100)


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
    @example(nav=[10], nch=1, budget_px=2, stored=9)  # parts of 2 pixels once cut 9 unequally
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
        (tmp_path / "m.zspy.partial" / "notes.txt").write_text("mine")
        with pytest.raises(
            ValueError,
            match=r"m\.zspy\.partial exists but is not a hyperlum partial store; move it away",
        ):
            resume.PartialStore.open(out)

    def test_manifest_is_sealed(self, tmp_path):
        out = tmp_path / "m.zspy"
        resume.PartialStore.create(out, {"fit": {"peaks": 1}}, ((2,), (3,)), n_outputs=4)
        path = resume.partial_path(out) / "manifest.json"
        path.write_text(path.read_text().replace('"peaks": 1', '"peaks": 2'))
        with pytest.raises(resume.DamagedStore, match=r"m\.zspy\.partial is damaged"):
            resume.PartialStore.open(out)

    def test_write_then_verify(self, tmp_path, rng):
        store = resume.PartialStore.create(tmp_path / "m.zspy", {}, ((2, 2), (3,)), n_outputs=4)
        rows = rng.normal(size=(2, 3, 4))
        store.write((0, 0), rows)
        store.write((1, 0), rows + 1)
        assert store.verify() == []
        store.array[0, 0, 0] = 7.0  # one value changed behind the store's back
        assert store.verify() == [(0, 0)] and store.missing() == [(0, 0)]
        got, bad = store.stacked()
        assert got is None and bad == [(0, 0)]
        store.write((0, 0), rows)
        got, bad = store.stacked()
        assert bad == [] and np.array_equal(got, np.concatenate([rows, rows + 1]))

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
        assert err == f"hyperlum fit: resumed {out}: 1 of 3 chunks were already done\n"
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
        stale = tmp_path / ".maps.tmp-999999.zspy"  # a killed run's temporary output
        stale.mkdir()
        (stale / "junk").write_text("half-written")
        assert cli(capsys, "fit", cube_file, "-o", out, "-q")[0] == 0
        assert not stale.exists() and out.is_dir()


CHUNK3 = ["--chunk-mb", 3 * 8 * 100 * 8 / 2**20, "-q"]  # 3 rows per chunk: 3 chunks


def _flip(path, n=64):
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + n] = bytes(b ^ 0xFF for b in data[mid : mid + n])
    path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _delete(path):
    path.unlink()


class TestDamagedStore:
    """A store damaged after two chunks were done: the rerun refits what does not verify."""

    @pytest.fixture
    def interrupted(self, tmp_path, capsys, cube_file, monkeypatch):
        ref = tmp_path / "ref.zspy"
        assert cli(capsys, "fit", cube_file, "-o", ref, *CHUNK3)[0] == 0
        out = tmp_path / "maps.zspy"
        interrupt_after(monkeypatch, 2)
        assert cli(capsys, "fit", cube_file, "-o", out, *CHUNK3)[0] == 130
        monkeypatch.undo()
        return out, ref

    @pytest.mark.parametrize("damage", [_flip, _truncate, _delete])
    def test_damaged_chunk_is_fitted_again(self, capsys, cube_file, interrupted, damage):
        out, ref = interrupted
        damage(resume.partial_path(out) / "stacked.zarr" / "1.0.0")
        rc, stdout, err = cli(capsys, "fit", cube_file, "-o", out, *CHUNK3)
        assert rc == 0, err
        assert err == (
            f"hyperlum fit: resumed {out}: 1 of 3 chunks were already done "
            "(1 damaged, fitted again)\n"
        )
        assert "72 pixels (24 resumed) (1 damaged chunks fitted again), 100.0% converged" in (
            stdout
        )
        assert_same_maps(hl.load_result(out), hl.load_result(ref))

    def test_damaged_marker_is_fitted_again(self, capsys, cube_file, interrupted):
        out, ref = interrupted
        (resume.partial_path(out) / "done" / "c0_0").write_text("{not json")
        rc, _, err = cli(capsys, "fit", cube_file, "-o", out, *CHUNK3)
        assert rc == 0 and "1 of 3 chunks were already done (1 damaged" in err
        assert_same_maps(hl.load_result(out), hl.load_result(ref))

    def test_damaged_after_the_check_is_caught_before_the_output(
        self, capsys, cube_file, interrupted, monkeypatch
    ):
        out, ref = interrupted
        real = resume.PartialStore.write

        def write(self, idx, rows):  # the last chunk lands, then a done chunk goes bad on disk
            real(self, idx, rows)
            if idx == (2, 0) and not hasattr(write, "done"):
                write.done = True
                _flip(self.root / "stacked.zarr" / "0.0.0")

        monkeypatch.setattr(resume.PartialStore, "write", write)
        rc, stdout, err = cli(capsys, "fit", cube_file, "-o", out, *CHUNK3)
        assert rc == 0, err
        assert "(1 damaged chunks fitted again)" in stdout
        assert_same_maps(hl.load_result(out), hl.load_result(ref))

    def test_damaged_manifest_starts_anew(self, capsys, cube_file, interrupted):
        out, ref = interrupted
        manifest = resume.partial_path(out) / "manifest.json"
        manifest.write_bytes(manifest.read_bytes()[:-40])
        rc, stdout, err = cli(capsys, "fit", cube_file, "-o", out, *CHUNK3)
        assert rc == 0
        assert err == (
            f"hyperlum fit: {out}.partial is damaged (JSONDecodeError); it was removed and the "
            "fit starts anew\n"
        )
        assert "72 pixels, 100.0% converged" in stdout
        assert_same_maps(hl.load_result(out), hl.load_result(ref))

    def test_store_of_an_earlier_row_layout_is_refused(self, capsys, cube_file, interrupted):
        """A store written before the FWHM std rows (format 2, a row fewer per peak), or one
        whose row count is not this fit's: refused with what to do, left as it was, and fitted
        anew with --overwrite."""
        import hashlib
        import json

        import zarr

        def sealed(manifest):  # as a store's manifest is sealed, whatever its format
            body = {k: v for k, v in manifest.items() if k != "sha256"}
            text = json.dumps(body, sort_keys=True, default=str)
            return dict(body, sha256=hashlib.sha256(text.encode()).hexdigest())

        out, ref = interrupted
        root = resume.partial_path(out)
        array = zarr.open_array(str(root / "stacked.zarr"), mode="r+")
        rows = array.shape[-1]
        array.resize(*array.shape[:-1], rows - 1)
        manifest = json.loads((root / "manifest.json").read_text())
        manifest["format"] = "hyperlum-partial-2"
        (root / "manifest.json").write_text(json.dumps(sealed(manifest)))
        before = sorted(p.name for p in (root / "done").iterdir())
        rc, _, err = cli(capsys, "fit", cube_file, "-o", out, *CHUNK3)
        assert rc == 2
        assert err == (
            f"hyperlum fit: error: {root} holds an interrupted fit of an earlier hyperlum "
            "(hyperlum-partial-2), whose rows this version does not read; pass --overwrite to "
            "discard it and fit anew\n"
        )
        assert sorted(p.name for p in (root / "done").iterdir()) == before
        manifest["format"] = "hyperlum-partial-3"  # this version's, with a row fewer
        (root / "manifest.json").write_text(json.dumps(sealed(manifest)))
        rc, _, err = cli(capsys, "fit", cube_file, "-o", out, *CHUNK3)
        assert rc == 2
        assert err == (
            f"hyperlum fit: error: {root} holds {rows - 1} rows per pixel where this fit writes "
            f"{rows}; pass --overwrite to discard it and fit anew\n"
        )
        rc, _, err = cli(capsys, "fit", cube_file, "-o", out, *CHUNK3, "--overwrite")
        assert rc == 0, err
        assert not root.exists()
        assert_same_maps(hl.load_result(out), hl.load_result(ref))

    def test_half_made_stores_are_cleaned(self, tmp_path, capsys, cube_file):
        """What a run killed while starting, or a store removed under a running fit, leaves."""
        out = tmp_path / "maps.zspy"
        half = resume.partial_path(out)
        (half / "done").mkdir(parents=True)
        (half / "done" / "c2_0").write_text("{}")
        starting = tmp_path / "maps.zspy.partial.tmp-99999999"
        (starting / "done").mkdir(parents=True)
        rc, _, err = cli(capsys, "fit", cube_file, "-o", out, *CHUNK3)
        assert rc == 0, err
        assert "is damaged (FileNotFoundError); it was removed" in err
        assert not half.exists() and not starting.exists()
        assert_same_maps(hl.load_result(out), hl.fit(np.load(cube_file), axis=X, device="cpu"))

    def test_store_without_its_done_folder_starts_anew(self, capsys, cube_file, interrupted):
        import shutil

        out, ref = interrupted
        shutil.rmtree(resume.partial_path(out) / "done")
        rc, _, err = cli(capsys, "fit", cube_file, "-o", out, *CHUNK3)
        assert rc == 0
        assert err == (
            f"hyperlum fit: {out}.partial is damaged (FileNotFoundError); it was removed and the "
            "fit starts anew\n"
        )
        assert_same_maps(hl.load_result(out), hl.load_result(ref))

    def test_folder_of_the_user_is_kept(self, tmp_path, capsys, cube_file):
        out = tmp_path / "maps.zspy"
        mine = resume.partial_path(out)
        mine.mkdir()
        (mine / "notes.txt").write_text("mine")
        rc, _, err = cli(capsys, "fit", cube_file, "-o", out, *CHUNK3, "--overwrite")
        assert rc == 2
        assert err == (
            f"hyperlum fit: error: {mine} exists but is not a hyperlum partial store; "
            "move it away and run again\n"
        )
        assert (mine / "notes.txt").read_text() == "mine"


class TestOneWriter:
    def test_second_run_is_refused(self, tmp_path, capsys, cube_file):
        from hyperlum.io.outputs import writer_lock

        out = tmp_path / "maps.zspy"
        with writer_lock(out):
            rc, _, err = cli(capsys, "fit", cube_file, "-o", out, *CHUNK3)
        assert rc == 2
        assert err == (
            f"hyperlum fit: error: another hyperlum run (pid {os.getpid()}) is writing {out}\n"
        )
        assert not out.exists() and not resume.partial_path(out).exists()

    def test_lock_of_a_killed_run_is_taken_over(self, tmp_path, capsys, cube_file):
        out = tmp_path / "maps.zspy"
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, time; from hyperlum.io.outputs import writer_lock\n"
                f"with writer_lock({str(out)!r}):\n print('held', flush=True); time.sleep(60)",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout.readline() == "held\n"
            rc, _, err = cli(capsys, "fit", cube_file, "-o", out, *CHUNK3)
            assert rc == 2 and f"(pid {holder.pid}) is writing" in err
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
        rc, _, err = cli(capsys, "fit", cube_file, "-o", out, *CHUNK3)
        assert rc == 0, err

    def test_two_identical_runs_at_once(self, tmp_path, capsys):
        src = big_cube(tmp_path, shape=(40, 160))
        out = tmp_path / "maps.zspy"
        chunk = ["--chunk-mb", str(2 * 160 * 1024 * 8 / 2**20)]
        cmd = [sys.executable, "-m", "hyperlum.cli", "fit", str(src), "-o", str(out), *chunk, "-q"]
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        procs = [
            subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        ends = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
        for _, err, rc in ends:
            assert "Traceback" not in err
            if rc != 0:
                assert rc == 2
                assert re.fullmatch(
                    rf"hyperlum fit: error: another hyperlum run \(pid \d+\) is writing {re.escape(str(out))}\n",
                    err,
                ), err
        assert 0 in [rc for *_, rc in ends]
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        ref = tmp_path / "ref.zspy"  # the reference in a fresh process too, as a user runs it
        ref_cmd = [*cmd[:6], str(ref), *cmd[7:]]
        assert subprocess.run(ref_cmd, env=env, capture_output=True, timeout=300).returncode == 0
        assert_same_maps(hl.load_result(out), hl.load_result(ref))


def test_sigkill_then_rerun_gives_the_maps_of_an_uninterrupted_run(tmp_path, capsys):
    src = big_cube(tmp_path)
    out = tmp_path / "maps.zspy"
    chunk = ["--chunk-mb", str(BIG_CHUNK_BYTES / 2**20)]
    cmd = [sys.executable, "-m", "hyperlum.cli", "fit", str(src), "-o", str(out), *chunk, "-q"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    n_done = kill_after_chunks(cmd, out, env=env)
    assert 3 <= n_done < BIG_SHAPE[0]
    assert not out.exists()  # an interrupted output never looks complete
    assert not list(tmp_path.glob(".maps*"))
    # the disk loses bytes of a finished chunk: the rerun must not trust it
    _flip(resume.partial_path(out) / "stacked.zarr" / "1.0.0")

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed {out}: " in rerun.stderr and "(1 damaged, fitted again)" in rerun.stderr
    assert f"{BIG_SHAPE[0] * BIG_SHAPE[1]} pixels" in rerun.stdout
    assert not resume.partial_path(out).exists()

    ref_out = tmp_path / "ref.zspy"  # the reference in a fresh process too, as a user runs it
    ref_cmd = [*cmd[:6], str(ref_out), *cmd[7:]]
    assert subprocess.run(ref_cmd, env=env, capture_output=True, timeout=300).returncode == 0
    assert_same_maps(hl.load_result(out), hl.load_result(ref_out))
