"""FitResult.save / hl.load_result round trips, and what they refuse."""

import numpy as np
import pytest
from conftest import gaussian_cube

import hyperlum as hl

X = np.linspace(600.0, 820.0, 256)


@pytest.fixture
def result(rng):
    _, mu = gaussian_cube(rng, (3, 4), X)
    counts = rng.poisson(mu).astype(np.float32)
    counts[0, 0, 3] = np.nan
    return hl.fit(counts, axis=X, device="cpu")


@pytest.mark.parametrize("ext", [".zspy", ".hspy"])
def test_round_trip(tmp_path, result, ext):
    path = tmp_path / f"maps{ext}"
    result.save(path)
    back = hl.load_result(path)
    assert back.names == result.names
    for name in result.names:
        np.testing.assert_array_equal(back.maps[name], result.maps[name], err_msg=name)
        assert back.maps[name].dtype == result.maps[name].dtype
    assert back.options == result.options
    assert back["centre"].axes_manager.signal_shape == (4, 3)


def test_lazy_result_saves(tmp_path, rng):
    import dask.array as da

    _, mu = gaussian_cube(rng, (4, 4), X)
    res = hl.fit(da.from_array(rng.poisson(mu), chunks=(2, 2, -1)), axis=X, device="cpu")
    res.save(tmp_path / "lazy.zspy")
    back = hl.load_result(tmp_path / "lazy.zspy")
    np.testing.assert_array_equal(back.maps["centre"], res.compute().maps["centre"])


def test_existing_file_kept(tmp_path, result):
    path = tmp_path / "maps.hspy"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="exists; pass overwrite=True"):
        result.save(path)
    assert path.read_bytes() == b"precious"
    result.save(path, overwrite=True)
    assert hl.load_result(path).shape == (3, 4)


def test_bad_paths(tmp_path, result):
    with pytest.raises(ValueError, match="result files are .zspy or .hspy"):
        result.save(tmp_path / "maps.tif")
    with pytest.raises(FileNotFoundError, match="no such result file"):
        hl.load_result(tmp_path / "missing.zspy")
    (tmp_path / "junk.hspy").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="could not be read as a HyperSpy file"):
        hl.load_result(tmp_path / "junk.hspy")


def test_not_a_result(tmp_path):
    import hyperspy.api as hs

    hs.signals.Signal1D(np.zeros((2, 10))).save(tmp_path / "plain.hspy")
    with pytest.raises(ValueError, match="is not a hyperlum result"):
        hl.load_result(tmp_path / "plain.hspy")


def test_lazy_compute_shows_progress(rng, capsys):
    import dask.array as da

    _, mu = gaussian_cube(rng, (4, 4), X)
    res = hl.fit(da.from_array(rng.poisson(mu), chunks=(2, 2, -1)), axis=X, device="cpu")
    quiet = res.compute(progress=False)
    assert "Completed" not in capsys.readouterr().err
    loud = res.compute(progress=True)
    assert "100% Completed" in capsys.readouterr().err
    np.testing.assert_array_equal(quiet.maps["centre"], loud.maps["centre"])


def test_plot_map_and_line_scan(rng):
    import matplotlib

    matplotlib.use("Agg")
    _, mu = gaussian_cube(rng, (5, 6), X)
    res = hl.fit(rng.poisson(mu), axis=X, device="cpu")
    fig = res.plot(names=("centre", "sigma", "fwhm"))
    titles = [ax.get_title() for ax in fig.axes]
    assert any("Centre" in t for t in titles) and any("FWHM" in t.upper() for t in titles)
    line = hl.fit(rng.poisson(mu[0]), axis=X, device="cpu")
    assert len(line.plot(names=("centre",)).axes) >= 1
    single = hl.fit(rng.poisson(mu[0, 0]), axis=X, device="cpu")
    with pytest.raises(ValueError, match="plot shows maps .* this result has 0"):
        single.plot()
