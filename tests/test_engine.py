"""The execution engine: chunk plan aligned to stored chunks, reads ahead of fits, and
``hl.fit(..., out=)`` resumable from Python (SIGKILL mid-run, then the same call again)."""

import os
import subprocess
import sys
import textwrap
import threading
import time

import dask.array as da
import numpy as np
import pytest
from conftest import (
    BIG_CHUNK_BYTES,
    BIG_SHAPE,
    assert_same_maps,
    big_cube,
    gaussian_cube,
    kill_after_chunks,
)

import hyperlum as hl
from hyperlum.fitting import engine, resume
from hyperlum.io.cube import as_numpy

X = np.linspace(600.0, 800.0, 100)


@pytest.fixture
def counts(rng):
    _, mu = gaussian_cube(rng, (9, 8), X)
    return rng.poisson(mu).astype(np.float32)


class TestPlan:
    def test_gpu_chunks_are_larger(self):
        cpu = engine.chunk_plan((512, 512), 1024, device="cpu")
        gpu = engine.chunk_plan((512, 512), 1024, device="cuda")
        assert cpu[0][0] == 8 and gpu[0][0] == 256  # 32 MiB and 1 GiB of float64 spectra

    @pytest.mark.parametrize(
        ("stored", "rows", "cols"),
        [
            ((220, 220), 11, (220, 36)),  # a stored chunk of 12 chunks: cut into 20 equal parts
            ((64, 256), 64, (256,)),  # 4 chunks' worth: taken whole
            ((4, 256), 16, (256,)),  # small: 4 stored chunks per chunk
            ((16, 16), 16, (256,)),  # small: a row of stored chunks per chunk
            ((1000, 256), 16, (256,)),  # stored whole: rows, as for data in memory
        ],
    )
    def test_chunks_align_to_stored_chunks(self, stored, rows, cols):
        grid = engine.chunk_plan((256, 256), 1024, stored=stored)
        assert grid[0][0] == rows and grid[1] == cols
        assert sum(grid[0]) == 256

    def test_each_stored_chunk_is_read_once(self, counts):
        """Stored chunks of 6 rows, chunks of 1 row: one read per stored chunk, whole."""
        data = da.from_array(counts, chunks=(6, 8, -1))
        grid = engine.chunk_plan((9, 8), 100, chunk_bytes=8 * 100 * 8, stored=(6, 8))
        assert grid == ((1,) * 9, (8,))
        reads, fitted = [], {}
        engine.run_chunks(
            list(np.ndindex(9, 1)),
            grid,
            lambda s: reads.append(s) or as_numpy(data[s]),
            lambda block: block.sum(axis=-1),
            fitted.__setitem__,
            stored=(6, 8),
            nav_shape=(9, 8),
        )
        assert reads == [(slice(0, 6), slice(0, 8)), (slice(6, 9), slice(0, 8))]
        got = np.concatenate([fitted[(k, 0)] for k in range(9)])
        np.testing.assert_array_equal(got, counts.sum(axis=-1))

    def test_a_stored_chunk_too_big_for_memory_is_read_part_by_part(self, counts):
        data = da.from_array(counts, chunks=(6, 8, -1))
        grid = ((1,) * 9, (8,))
        reads = []
        engine.run_chunks(
            list(np.ndindex(9, 1)),
            grid,
            lambda s: reads.append(s) or as_numpy(data[s]),
            lambda block: block.sum(axis=-1),
            lambda idx, rows: None,
            stored=(6, 8),
            nav_shape=(9, 8),
            max_read_pixels=5
            * 8,  # 5 rows: the 6-row stored chunk does not fit, the 3-row one does
        )
        assert reads == [(slice(k, k + 1), slice(0, 8)) for k in range(6)] + [
            (slice(6, 9), slice(0, 8))
        ]

    def test_next_read_overlaps_the_fit(self):
        """The fit of chunk 0 waits until chunk 1 is being read: it would hang without the
        read ahead (the wait times out, and the test fails)."""
        second_read = threading.Event()
        reads = []

        def read(s):
            reads.append(s)
            if len(reads) == 2:
                second_read.set()
            return np.zeros((1, 3, 4))

        def fit(block):
            if len(reads) == 1:
                assert second_read.wait(timeout=10), "the next chunk was not read during the fit"
            return block.sum(axis=-1)

        got = {}
        engine.run_chunks([(0, 0), (1, 0), (2, 0)], ((1, 1, 1), (3,)), read, fit, got.__setitem__)
        assert sorted(got) == [(0, 0), (1, 0), (2, 0)] and len(reads) == 3

    def test_results_come_in_order_with_several_workers(self):
        order = []
        todo = list(np.ndindex(6, 1))
        engine.run_chunks(
            todo,
            ((1,) * 6, (2,)),
            lambda s: np.full((1, 2, 1), s[0].start),
            lambda block: time.sleep(0.02 * (6 - block[0, 0, 0])) or block,
            lambda idx, rows: order.append(idx),
            workers=3,
        )
        assert order == todo


class TestOut:
    def test_eager_lazy_and_out_give_the_same_maps(self, tmp_path, counts):
        out = tmp_path / "maps.zspy"
        small = 2 * 8 * 100 * 8
        eager = hl.fit(counts, axis=X, device="cpu", chunk_bytes=small)
        lazy = hl.fit(da.from_array(counts, chunks=(3, 8, -1)), axis=X, device="cpu").compute()
        got = hl.fit(counts, axis=X, device="cpu", out=out, chunk_bytes=small)
        assert not got.lazy and out.is_dir() and not resume.partial_path(out).exists()
        assert_same_maps(got, eager)
        assert_same_maps(got, lazy)
        assert_same_maps(hl.load_result(out), eager)

    def test_lazy_file_input_is_fitted_into_out(self, tmp_path, counts):
        import hyperspy.api as hs

        s = hs.signals.Signal1D(counts)
        s.axes_manager[-1].offset, s.axes_manager[-1].scale = X[0], X[1] - X[0]
        src = tmp_path / "cube.zspy"
        s.save(src, chunks=(4, 8, 100))
        lazy = hl.load(src, lazy=True)
        out = tmp_path / "maps.hspy"
        got = hl.fit(lazy, device="cpu", out=out, chunk_bytes=8 * 100 * 8)
        assert got.options["input"] == str(src.resolve())
        assert_same_maps(got, hl.fit(lazy, device="cpu").compute())
        with pytest.raises(ValueError, match=r"out .*cube\.zspy is the input .*cube\.zspy"):
            hl.fit(lazy, device="cpu", out=src, overwrite=True)

    def test_finished_fit_is_loaded_not_refitted(self, tmp_path, counts):
        out = tmp_path / "maps.zspy"
        first = hl.fit(counts, axis=X, device="cpu", out=out)
        before = os.stat(out).st_mtime_ns
        again = hl.fit(counts, axis=X, device="cpu", out=out)
        assert os.stat(out).st_mtime_ns == before
        assert_same_maps(again, first)

    def test_other_data_is_refused_then_replaced(self, tmp_path, counts):
        out = tmp_path / "maps.zspy"
        hl.fit(counts, axis=X, device="cpu", out=out)
        other = counts[::-1].copy()
        with pytest.raises(
            FileExistsError,
            match=rf"^{out} exists and holds the fit of another input or other options; "
            r"pass overwrite=True to replace it$",
        ):
            hl.fit(other, axis=X, device="cpu", out=out)
        got = hl.fit(other, axis=X, device="cpu", out=out, overwrite=True)
        assert_same_maps(got, hl.fit(other, axis=X, device="cpu"))

    def test_interrupted_fit_of_other_options_is_refused(self, tmp_path, counts, monkeypatch):
        out = tmp_path / "maps.zspy"
        real = resume.PartialStore.write

        def write(self, idx, rows):
            if idx != (0, 0):
                raise KeyboardInterrupt
            real(self, idx, rows)

        monkeypatch.setattr(resume.PartialStore, "write", write)
        with pytest.raises(KeyboardInterrupt):
            hl.fit(counts, axis=X, device="cpu", out=out, chunk_bytes=3 * 8 * 100 * 8)
        monkeypatch.undo()
        assert not out.exists() and len(resume.PartialStore.open(out).missing()) == 2
        with pytest.raises(
            ValueError,
            match=r"maps\.zspy\.partial holds an interrupted fit of another input or other "
            r"options; finish it with the same call, or pass overwrite=True to discard it$",
        ):
            hl.fit(counts, axis=X, device="cpu", out=out, estimator="mle")

    def test_bad_output_name(self, tmp_path, counts):
        with pytest.raises(ValueError, match=r"^the output must be a \.zspy or \.hspy file, got"):
            hl.fit(counts, axis=X, device="cpu", out=tmp_path / "maps.tif")
        with pytest.raises(OSError, match=r"cannot write \S+: the folder \S+no does not exist"):
            hl.fit(counts, axis=X, device="cpu", out=tmp_path / "no" / "maps.zspy")

    def test_folder_of_the_user_is_never_replaced(self, tmp_path, counts):
        out = tmp_path / "maps.zspy"
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        with pytest.raises(FileExistsError, match="is a folder that hyperlum did not write"):
            hl.fit(counts, axis=X, device="cpu", out=out, overwrite=True)
        assert (out / "notes.txt").read_text() == "mine"


class TestScheduler:
    def test_synchronous_fits_in_the_calling_thread_and_gives_the_same_maps(
        self, tmp_path, counts, monkeypatch
    ):
        from hyperlum.fitting import fit as fit_module

        small = 2 * 8 * 100 * 8  # 5 chunks
        threads = []
        real = fit_module.fit_block
        monkeypatch.setattr(
            fit_module,
            "fit_block",
            lambda *a, **k: threads.append(threading.current_thread()) or real(*a, **k),
        )
        default = hl.fit(counts, axis=X, device="cpu", chunk_bytes=small)
        assert len(threads) == 5
        assert any(t is not threading.main_thread() for t in threads)  # the runner's threads
        threads.clear()
        sync = hl.fit(counts, axis=X, device="cpu", chunk_bytes=small, scheduler="synchronous")
        out = tmp_path / "maps.zspy"
        kept = hl.fit(
            counts, axis=X, device="cpu", chunk_bytes=small, scheduler="synchronous", out=out
        )
        assert threads == [threading.main_thread()] * 10
        assert_same_maps(sync, default)
        assert_same_maps(kept, default)

    @pytest.mark.parametrize(
        ("scheduler", "error", "message"),
        [
            (
                "nowhere",
                ValueError,
                r"^scheduler='nowhere': give a scheduler address \(tcp://host:8786\), local:N "
                r"or synchronous$",
            ),
            ("local:x", ValueError, r"^scheduler='local:x': local:N needs N worker processes"),
            (
                2,
                TypeError,
                r"^scheduler must be None, 'synchronous', 'local:N' or a dask .* got 2$",
            ),
        ],
    )
    def test_bad_scheduler(self, counts, scheduler, error, message):
        with pytest.raises(error, match=message):
            hl.fit(counts, axis=X, device="cpu", scheduler=scheduler)

    def test_lazy_fit_without_out_refuses_a_scheduler(self, counts):
        lazy = da.from_array(counts, chunks=(3, 8, -1))
        with pytest.raises(ValueError, match=r"^scheduler is for fits made now: a lazy fit"):
            hl.fit(lazy, axis=X, device="cpu", scheduler="synchronous")


_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import hyperlum as hl

    src, out = sys.argv[1], sys.argv[2]
    x = np.load(src.replace(".npy", ".axis.npy"))
    hl.fit(np.load(src), axis=x, device="cpu", out=out, chunk_bytes=int(sys.argv[3]),
           progress=False)
    """
)


def test_sigkill_then_same_call_gives_the_maps_of_an_uninterrupted_fit(tmp_path):
    src = big_cube(tmp_path)
    script = tmp_path / "fit.py"
    script.write_text(_SCRIPT)
    out = tmp_path / "maps.zspy"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    cmd = [sys.executable, str(script), str(src), str(out), str(BIG_CHUNK_BYTES)]
    n_done = kill_after_chunks(cmd, out, env=env)
    n_chunks = BIG_SHAPE[0]
    assert 3 <= n_done < n_chunks
    assert not out.exists()

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"hyperlum: resumed {out}: {n_done} of {n_chunks} chunks were already done\n" in (
        again.stderr
    )
    assert not resume.partial_path(out).exists()

    ref = tmp_path / "ref.zspy"  # the uninterrupted fit, in a fresh process too
    ref_cmd = [*cmd[:3], str(ref), *cmd[4:]]
    assert subprocess.run(ref_cmd, env=env, timeout=300).returncode == 0
    assert_same_maps(hl.load_result(out), hl.load_result(ref))


def test_command_line_and_python_finish_each_others_fits(tmp_path, counts, capsys):
    from hyperlum.cli import main

    src = tmp_path / "cube.npy"
    np.save(src, counts)
    np.save(tmp_path / "cube.axis.npy", X)
    out = tmp_path / "maps.zspy"
    assert main(["fit", str(src), "-o", str(out), "-q", "--device", "cpu"]) == 0
    before = os.stat(out).st_mtime_ns
    lazy = hl.load(src, lazy=True)
    assert lazy.tmp_parameters.filename == "cube"  # the loader notes the file for every reader
    got = hl.fit(lazy, device="cpu", out=out)  # the command's fit of this file: loaded
    assert os.stat(out).st_mtime_ns == before
    assert_same_maps(got, hl.fit(counts, axis=X, device="cpu"))
    out2 = tmp_path / "maps2.zspy"
    hl.fit(lazy, device="cpu", out=out2)
    capsys.readouterr()
    assert main(["fit", str(src), "-o", str(out2), "-q", "--device", "cpu"]) == 0
    assert capsys.readouterr().out == (
        f"hyperlum fit: {out2} is already complete for this input and these options\n"
    )
