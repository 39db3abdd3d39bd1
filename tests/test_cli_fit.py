"""``hyperlum fit`` and ``hyperlum info``: results, summary, existing outputs, bad input."""

import os
import re
import subprocess
import sys

import hyperspy.api as hs
import numpy as np
import pytest
from conftest import assert_same_maps, cli, gaussian_cube

import hyperlum as hl
from hyperlum.fitting import _backend

X = np.linspace(600.0, 800.0, 120)


@pytest.fixture
def cube_file(tmp_path, rng):
    """A noisy 6 x 7 cube of one Gaussian + constant as .npy, axis in a side file (nm)."""
    _, mu = gaussian_cube(rng, (6, 7), X)
    data = rng.poisson(mu).astype(np.float32)
    path = tmp_path / "cube.npy"
    np.save(path, data)
    np.save(tmp_path / "cube.axis.npy", X)
    return path, data


class TestFit:
    def test_maps_equal_the_library_fit(self, tmp_path, capsys, cube_file):
        path, data = cube_file
        out = tmp_path / "maps.zspy"
        rc, stdout, _ = cli(capsys, "fit", path, "-o", out, "--axis-units", "nm", "-q")
        assert rc == 0
        assert re.fullmatch(
            rf"hyperlum fit: 42 pixels, 100\.0% converged, 100\.0% with a detected peak, "
            rf"\d+ spike channels replaced; 42 fitted in [\d.]+ s "
            rf"\([\d,]+ pixels/s\), [\d.]+ s in all; maps written to {re.escape(str(out))}\n",
            stdout,
        )
        got = hl.load_result(out)
        ref = hl.fit(data, axis=X, device="cpu")
        assert_same_maps(got, ref)
        assert got.options["peaks"] == 1 and got.options["axis_units"] == "nm"
        assert got.options["input"] == str(path.resolve())
        assert not list(tmp_path.glob("*.partial*")) and not list(tmp_path.glob(".maps*"))

    def test_lorentzian_over_a_power_law_end_to_end(self, tmp_path, capsys, rng):
        """``--shape``/``--background`` reach the fit: named maps, parameters recovered.
        (Float64 data, least squares: the model test_shapes compiles too, one compile less.)"""
        shape = (5, 6)
        centre = rng.uniform(680.0, 720.0, shape)
        gamma = rng.uniform(8.0, 14.0, shape)
        bg = 40.0 * (X / 710.0) ** -2.5
        mu = 300.0 / (1.0 + ((X - centre[..., None]) / gamma[..., None]) ** 2) + bg
        path = tmp_path / "lor.npy"
        np.save(path, rng.poisson(mu).astype(np.float64))
        np.save(tmp_path / "lor.axis.npy", X)
        out = tmp_path / "maps.zspy"
        argv = ["--shape", "lorentzian", "--background", "powerlaw"]
        rc, _, err = cli(capsys, "fit", path, "-o", out, "--device", "cpu", "-q", *argv)
        assert rc == 0, err
        got = hl.load_result(out)
        assert {"gamma", "gamma_std", "background_exponent"} <= set(got.names)
        assert "sigma" not in got.names
        assert np.asarray(got["detected"]).all()
        exponent = np.asarray(got["background_exponent"])
        assert np.abs(exponent - 2.5).max() < 5 * np.asarray(got["background_exponent_std"]).max()
        for name, truth in (("centre", centre), ("gamma", gamma)):
            z = (np.asarray(got[name]) - truth) / np.asarray(got[f"{name}_std"])
            assert np.abs(z).max() < 5, name

    def test_options_reach_the_fit_and_overwrite_replaces_another_fit(
        self, tmp_path, capsys, cube_file
    ):
        path, data = cube_file
        out = tmp_path / "maps.hspy"
        assert cli(capsys, "fit", path, "-o", out, "-q")[0] == 0
        argv = ["--range", 620, 780, "--peaks", 2, "--background", "linear", "--estimator", "mle"]
        rc, _, err = cli(capsys, "fit", path, "-o", out, "--device", "cpu", "-q", *argv)
        assert (rc, err) == (
            2,
            f"hyperlum fit: error: {out} exists and holds the fit of another input or other "
            "options; pass --overwrite to replace it\n",
        )
        rc, _, _ = cli(
            capsys, "fit", path, "-o", out, "--device", "cpu", "-q", *argv, "--overwrite"
        )
        assert rc == 0
        ref = hl.fit(
            data,
            axis=X,
            peaks=2,
            background="linear",
            estimator="mle",
            signal_range=(620, 780),
            device="cpu",
        )
        got = hl.load_result(out)
        assert_same_maps(got, ref)
        assert got.options["signal_range"] == [620.0, 780.0]
        assert got.options["background"] == "linear" and got.options["estimator"] == "mle"

    def test_small_chunks_give_the_same_maps(self, tmp_path, capsys, cube_file):
        path, data = cube_file
        out = tmp_path / "maps.zspy"
        rc, _, _ = cli(capsys, "fit", path, "-o", out, "--chunk-mb", 0.002, "-q")
        assert rc == 0
        assert_same_maps(hl.load_result(out), hl.fit(data, axis=X, device="cpu"))

    def test_rerun_of_a_finished_fit_does_nothing(self, tmp_path, capsys, cube_file):
        path, _ = cube_file
        out = tmp_path / "maps.hspy"
        assert cli(capsys, "fit", path, "-o", out, "-q")[0] == 0
        before = out.stat().st_mtime_ns
        rc, stdout, _ = cli(capsys, "fit", path, "-o", out, "-q")
        assert rc == 0
        assert (
            stdout == f"hyperlum fit: {out} is already complete for this input and these options\n"
        )
        assert out.stat().st_mtime_ns == before

    def test_real_file_keeps_its_axes(self, tmp_path, capsys, real_file):
        src = real_file("rsciio-digitalsurf-test_spectral_map.sur")
        out = tmp_path / "sur.zspy"
        rc, stdout, _ = cli(capsys, "fit", src, "-o", out, "--range", 340, 380, "-q")
        assert rc == 0 and "120 pixels, 100.0% converged" in stdout
        res = hl.load_result(out)
        centre = res["centre"]
        assert [(a.name, a.units) for a in centre.axes_manager.signal_axes] == [
            ("Width", "nm"),
            ("Height", "nm"),
        ]
        assert np.all((res.maps["centre"] > 340) & (res.maps["centre"] < 380))
        assert res.options["axis_units"] == "nm"

    def test_delmic_file_without_naming_the_reader(self, tmp_path, capsys, real_file):
        src = real_file("rsciio-delmic-sparc-hyperspectral.h5")
        out = tmp_path / "d.zspy"
        rc, stdout, _ = cli(capsys, "fit", src, "-o", out, "-q")
        assert rc == 0 and "6 pixels" in stdout
        ref = hl.fit(hl.load(src), device="cpu")
        assert_same_maps(hl.load_result(out), ref)

    def test_single_spectrum(self, tmp_path, capsys):
        y = (80 * np.exp(-0.5 * ((X - 712.5) / 9.0) ** 2) + 4).astype(np.float32)
        np.save(tmp_path / "one.npy", y)
        out = tmp_path / "one.zspy"
        rc, stdout, _ = cli(
            capsys, "fit", tmp_path / "one.npy", "-o", out, "--axis", _axis_file(tmp_path), "-q"
        )
        assert rc == 0 and "1 pixels, 100.0% converged" in stdout
        got = hl.load_result(out)
        assert float(got.maps["centre"]) == pytest.approx(712.5, abs=1e-6)
        assert_same_maps(got, hl.fit(y, axis=X, device="cpu"))

    def test_scheduler_address(self, tmp_path, capsys, cube_file):
        from dask.distributed import LocalCluster

        path, data = cube_file
        out = tmp_path / "maps.zspy"
        with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
            rc, _, err = cli(
                capsys,
                "fit",
                path,
                "-o",
                out,
                "-q",
                "--chunk-mb",
                0.005,
                "--scheduler",
                cluster.scheduler_address,
            )
        assert rc == 0, err
        assert_same_maps(hl.load_result(out), hl.fit(data, axis=X, device="cpu"))

    def test_local_cluster(self, tmp_path, capsys, cube_file):
        path, data = cube_file
        out = tmp_path / "maps.zspy"
        rc, stdout, _ = cli(
            capsys, "fit", path, "-o", out, "-q", "--scheduler", "local:1", "--chunk-mb", 0.005
        )
        assert rc == 0, stdout
        assert_same_maps(hl.load_result(out), hl.fit(data, axis=X, device="cpu"))


def _axis_file(tmp_path):
    np.savetxt(tmp_path / "x.txt", X)
    return tmp_path / "x.txt"


def _image(tmp_path):
    hs.signals.Signal2D(np.zeros((4, 5))).save(tmp_path / "img.hspy")
    return tmp_path / "img.hspy"


def _corrupt(tmp_path):
    (tmp_path / "bad.dm4").write_bytes(np.random.default_rng(1).bytes(3000))
    return tmp_path / "bad.dm4"


def _bare_npy(tmp_path):
    np.save(tmp_path / "bare.npy", np.ones((2, 2, 50)))
    return tmp_path / "bare.npy"


def _not_a_result(tmp_path):
    hs.signals.Signal1D(np.zeros((3, 4))).save(tmp_path / "other.hspy")
    return tmp_path / "other.hspy"


# (id, IN (a path or a function of tmp_path), extra arguments, OUT name, expected error)
BAD = [
    ("missing file", "nothere.dm4", [], "m.zspy", r"no such file: \S*nothere\.dm4"),
    (
        "corrupt file",
        _corrupt,
        [],
        "m.zspy",
        r"\S*bad\.dm4 could not be read as a Gatan DigitalMicrograph file: NotImplementedError: .*",
    ),
    (
        "unsupported format",
        "cube.xyz",
        [],
        "m.zspy",
        r"\S*cube\.xyz: unsupported format '\.xyz'; hyperlum reads \.dm3, \.dm4, .*",
    ),
    (
        "no spectral axis in an image",
        _image,
        [],
        "m.zspy",
        r"\S*img\.hspy has no spectral axis \(it holds 2-D signal of shape \(4, 5\)\); "
        "hyperlum fits spectra",
    ),
    (
        "no spectral axis for a .npy",
        _bare_npy,
        [],
        "m.zspy",
        r"\S*bare\.npy has no spectral axis: give the channel positions .*",
    ),
    (
        "range outside the axis",
        None,
        ["--range", 100, 200],
        "m.zspy",
        r"--range=\(100, 200\) lies outside the signal axis \(600 to 800\)",
    ),
    (
        "range reversed",
        None,
        ["--range", 750, 650],
        "m.zspy",
        r"--range=\(750, 650\) must be increasing finite values",
    ),
    (
        "unknown background",
        None,
        ["--background", "cubic"],
        "m.zspy",
        r"argument --background: invalid choice: 'cubic' .*",
    ),
    (
        "unknown estimator",
        None,
        ["--estimator", "chi"],
        "m.zspy",
        r"argument --estimator: invalid choice: 'chi' .*",
    ),
    (
        "too many peaks",
        None,
        ["--peaks", 9],
        "m.zspy",
        r"--peaks=9 is outside the allowed range 1 to 4",
    ),
    (
        "peaks not a number",
        None,
        ["--peaks", "two"],
        "m.zspy",
        r"argument --peaks: give 1 to 4 or auto, not 'two'",
    ),
    (
        "output extension",
        None,
        [],
        "m.tif",
        r"the output must be a \.zspy or \.hspy file, got '\S*m\.tif'",
    ),
    (
        "output folder missing",
        None,
        [],
        "no/such/m.zspy",
        r"cannot write \S*m\.zspy: the folder \S*no/such does not exist",
    ),
    (
        "output under a file",
        None,
        [],
        "cube.npy/m.zspy",
        r"cannot write \S*: \S*cube\.npy is not a folder",
    ),
    (
        "output is not a result",
        None,
        [],
        _not_a_result,
        r"\S*other\.hspy exists and holds no hyperlum fit; move it away or choose another "
        "output",
    ),
    (
        "output is not a result, --overwrite",
        None,
        ["--overwrite"],
        _not_a_result,
        r"\S*other\.hspy is a file that hyperlum did not write; move it away or choose another "
        "output",
    ),
    (
        "bad scheduler",
        None,
        ["--scheduler", "nowhere"],
        "m.zspy",
        r"--scheduler nowhere: give a scheduler address \(tcp://host:8786\), local:N or "
        "synchronous",
    ),
    (
        "no local workers",
        None,
        ["--scheduler", "local:0"],
        "m.zspy",
        r"--scheduler local:0: local:N needs N worker processes, 1 to 256",
    ),
    (
        "chunk size",
        None,
        ["--chunk-mb", 0],
        "m.zspy",
        r"--chunk-mb must be a positive number, got 0",
    ),
    (
        "max iterations",
        None,
        ["--max-iterations", 0],
        "m.zspy",
        r"--max-iterations=0 is outside the allowed range 1 to 10000",
    ),
]


@pytest.mark.parametrize(
    ("src", "extra", "out", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, cube_file, src, extra, out, expected):
    path, _ = cube_file
    if src is None:
        src = path
    elif callable(src):
        src = src(tmp_path)
    else:
        src = tmp_path / src
        if src.suffix == ".xyz":
            src.write_text("1 2 3")
    out = out(tmp_path) if callable(out) else tmp_path / out
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, stdout, stderr = cli(capsys, "fit", src, "-o", out, "-q", *extra)
    assert rc == 2
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert re.fullmatch("hyperlum fit: error: " + expected, lines[0]), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written or removed


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_read_only_output_folder(tmp_path, capsys, cube_file):
    path, _ = cube_file
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    rc, _, stderr = cli(capsys, "fit", path, "-o", locked / "m.zspy")
    assert rc == 2
    assert stderr == (
        f"hyperlum fit: error: cannot write {locked / 'm.zspy'}: the folder {locked} is not "
        "writable\n"
    )


@pytest.mark.skipif(_backend.cuda_status()[0], reason="a CUDA GPU is usable here")
def test_cuda_without_gpu(tmp_path, capsys, cube_file):
    path, _ = cube_file
    rc, _, stderr = cli(capsys, "fit", path, "-o", tmp_path / "m.zspy", "--device", "cuda")
    assert rc == 2
    assert stderr.startswith("hyperlum fit: error: --device cuda was asked for, but ")
    assert len(stderr.splitlines()) == 1


def test_output_of_another_run_is_refused(tmp_path, capsys, cube_file):
    path, _ = cube_file
    out = tmp_path / "maps.zspy"
    assert cli(capsys, "fit", path, "-o", out, "-q")[0] == 0
    kept = hl.load_result(out)
    rc, _, stderr = cli(capsys, "fit", path, "-o", out, "-q", "--peaks", 2)
    assert rc == 2
    assert stderr == (
        f"hyperlum fit: error: {out} exists and holds the fit of another input or other "
        "options; pass --overwrite to replace it\n"
    )
    assert_same_maps(hl.load_result(out), kept)


def test_console_process_prints_no_traceback(tmp_path):
    (tmp_path / "bad.sur").write_bytes(b"\x00" * 10)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hyperlum.cli",
            "fit",
            str(tmp_path / "bad.sur"),
            "-o",
            str(tmp_path / "m.zspy"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"hyperlum fit: error: {tmp_path / 'bad.sur'} could not be read")
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


def test_info(capsys):
    rc, stdout, stderr = cli(capsys, "info")
    assert rc == 0 and stderr == ""
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in stdout.splitlines())
    import numba

    assert rows["numba"] == numba.__version__
    assert rows["hyperlum"] == hl.__version__
    assert re.fullmatch(r"(\d+) usable of (\d+) \(numba: \d+\)", rows["CPU threads"])
    assert int(rows["CPU threads"].split()[0]) == len(os.sched_getaffinity(0))
    assert "numba-cuda GPU" in rows and "CuPy GPU" in rows
    assert rows["device 'auto'"].startswith("cuda" if _backend.cuda_status()[0] else "cpu")


class _FakeScheduler:
    """A TCP server on 127.0.0.1 that accepts and then says nothing, or garbage; stops itself."""

    def __init__(self, reply):
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.reply, self.conns = reply, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self):
        import time

        end = time.monotonic() + 60  # bounded even if the test never stops it
        while not self.stop.is_set() and time.monotonic() < end:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            if self.reply:
                conn.sendall(self.reply)
        for c in self.conns:
            c.close()
        self.sock.close()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"", "the dask scheduler {} does not answer within 2 s"),
        (b"HTTP/1.0 200 OK\r\n\r\n" + b"\x00\xff" * 64, "{} does not answer as a dask scheduler"),
    ],
    ids=["silent", "garbage"],
)
def test_scheduler_that_is_not_dask_fails_in_time(
    tmp_path, capsys, cube_file, reply, expected, monkeypatch
):
    import time

    from hyperlum.cli import fit as cli_fit

    monkeypatch.setattr(cli_fit, "SCHEDULER_TIMEOUT", 2.0)
    monkeypatch.setattr(_backend, "_notified", [])  # the device notice would be printed again
    path, _ = cube_file
    server = _FakeScheduler(reply)
    try:
        t0 = time.monotonic()
        rc, stdout, err = cli(
            capsys, "fit", path, "-o", tmp_path / "m.zspy", "-q", "--scheduler", server.address
        )
        elapsed = time.monotonic() - t0
    finally:
        server.close()
    assert rc == 2 and stdout == ""
    assert err == f"hyperlum fit: error: {expected.format(server.address)}\n"
    assert elapsed < 2.0 + 5.0
    assert sorted(os.listdir(tmp_path)) == ["cube.axis.npy", "cube.npy"]  # nothing written


def test_unreachable_scheduler(tmp_path, capsys, cube_file, monkeypatch):
    import socket

    from hyperlum.cli import fit as cli_fit

    monkeypatch.setattr(cli_fit, "SCHEDULER_TIMEOUT", 1.0)  # dask retries a refused connection

    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]  # closed again: nothing listens there
    path, _ = cube_file
    address = f"tcp://127.0.0.1:{port}"
    rc, _, err = cli(capsys, "fit", path, "-o", tmp_path / "m.zspy", "-q", "--scheduler", address)
    assert rc == 2
    assert err == f"hyperlum fit: error: the dask scheduler {address} does not answer within 1 s\n"
