"""hl.load: real CL / EELS files, unit normalisation, .npy with a separate axis, bad files."""

import re
import warnings

import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest

import hyperlum as hl
from hyperlum.io.loader import normalise_units

# name -> (signal type, nav shape (array order), nav units, wavelength range in nm, uniform)
CL_FILES = {
    "rsciio-digitalsurf-test_spectral_map.sur": ("CL", (12, 10), "nm", (333.27, 668.23), True),
    "rsciio-delmic-sparc-hyperspectral.h5": ("CL_SEM", (3, 2), "nm", (467.88, 732.12), False),
    "lumispydemos-quantum-emitters_map.dm4": ("CL", (16, 16), "µm", (470.53, 744.95), True),
    "lumispydemos-Test-linescan_InGaAs-NWs.dm4": ("CL", (98,), "µm", (853.03, 976.71), True),
}
# name -> (nav shape, energy range in eV)
EELS_FILES = {
    "rsciio-dm-EELS_SI.dm4": ((2, 2), (300.0, 2347.0)),
    "exspydemos-LSMO_STO_linescan.hspy": ((10,), (395.0, 906.0)),
    "exspydemos-LSMO_STO_linescan_low_loss.hspy": ((10,), (-50.0, 461.0)),
    "exspydemos-CuZn_EELS_mapping_tutorial.hspy": ((50, 40), (700.0, 1988.0)),
}


class TestRealCL:
    @pytest.mark.parametrize("lazy", [False, True])
    @pytest.mark.parametrize("name", sorted(CL_FILES))
    def test_loads_with_units(self, real_file, name, lazy):
        stype, nav, nav_units, (lo, hi), uniform = CL_FILES[name]
        s = hl.load(real_file(name), lazy=lazy)
        assert s.metadata.Signal.signal_type == stype
        assert type(s).__name__ == ("Lazy" if lazy else "") + {"CL": "CLSpectrum"}.get(
            stype, "CLSEMSpectrum"
        )
        assert s._lazy is lazy
        assert s.data.shape[:-1] == nav
        sax = s.axes_manager.signal_axes[0]
        assert sax.units == "nm"
        assert sax.is_uniform is uniform
        assert sax.axis[0] == pytest.approx(lo, abs=0.01)
        assert sax.axis[-1] == pytest.approx(hi, abs=0.01)
        assert {a.units for a in s.axes_manager.navigation_axes} == {nav_units}

    def test_attolight_spatial_axes_from_mm_to_nm(self, real_file):
        s = hl.load(real_file("rsciio-digitalsurf-test_spectral_map.sur"))
        width = s.axes_manager["Width"]
        # 8.252e-5 mm per pixel in the file
        assert width.scale == pytest.approx(82.522, abs=1e-3)
        assert width.offset == pytest.approx(7014.368, abs=1e-3)

    def test_delmic_reader_named_explicitly(self, real_file):
        path = real_file("rsciio-delmic-sparc-hyperspectral.h5")
        a = hl.load(path)
        b = hl.load(path, file_format="Delmic")
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(a.axes_manager[-1].axis, b.axes_manager[-1].axis)

    # name -> (signal_range or None, band the fitted centres of most pixels lie in)
    FITS = {
        "rsciio-digitalsurf-test_spectral_map.sur": ((340.0, 380.0), (357.5, 360.5)),
        "lumispydemos-Test-linescan_InGaAs-NWs.dm4": (None, (905.0, 940.0)),
        "lumispydemos-quantum-emitters_map.dm4": (None, (630.0, 700.0)),
        "rsciio-delmic-sparc-hyperspectral.h5": (None, (467.9, 732.1)),
    }

    @pytest.mark.parametrize("name", sorted(FITS))
    def test_fits_with_centres_inside_the_axis(self, real_file, name):
        rng_, (lo, hi) = self.FITS[name]
        s = hl.load(real_file(name))
        res = hl.fit(s, signal_range=rng_, device="cpu")
        x = s.axes_manager.signal_axes[0].axis
        centre = res.maps["centre"]
        ok = res.maps["converged"]
        assert ok.mean() >= 0.9
        assert np.all((centre[ok] >= x.min()) & (centre[ok] <= x.max()))
        assert lo <= np.median(centre[ok]) <= hi
        assert res["centre"].axes_manager.signal_shape == s.axes_manager.navigation_shape


# name -> (nav shape, wavelength range in nm): files two readers claim (JobinYvon .xml: also
# EMPAD) or that hold a survey image next to the map (Renishaw .wdf).
PL_FILES = {
    "rsciio-jobinyvon-test_map_x2-y2_rotated.xml": ((2, 3), (720.924, 771.797)),
    "rsciio-renishaw-test_map2.wdf": ((20, 20), (326.172, 412.448)),
}


class TestRealPL:
    @pytest.mark.parametrize("lazy", [False, True])
    @pytest.mark.parametrize("name", sorted(PL_FILES))
    def test_loads_the_spectrum_image_without_a_reader_hint(self, real_file, name, lazy):
        nav, (lo, hi) = PL_FILES[name]
        s = hl.load(real_file(name), lazy=lazy)
        assert type(s).__name__ == ("Lazy" if lazy else "") + "LumiSpectrum"
        assert s.data.shape[:-1] == nav
        sax = s.axes_manager.signal_axes[0]
        assert sax.units == "nm" and not sax.is_uniform
        assert (sax.axis[0], sax.axis[-1]) == pytest.approx((lo, hi), abs=1e-3)
        assert np.isfinite(np.asarray(s.data)).all()

    def test_same_as_the_reader_named(self, real_file):
        path = real_file("rsciio-jobinyvon-test_map_x2-y2_rotated.xml")
        a, b = hl.load(path), hl.load(path, file_format="JobinYvon")
        np.testing.assert_array_equal(a.data, b.data)


class TestRealEELS:
    @pytest.mark.parametrize("lazy", [False, True])
    @pytest.mark.parametrize("name", sorted(EELS_FILES))
    def test_loads_as_eels(self, real_file, name, lazy):
        nav, (lo, hi) = EELS_FILES[name]
        s = hl.load(real_file(name), lazy=lazy)
        assert s.metadata.Signal.signal_type == "EELS"
        assert type(s).__name__ == ("LazyEELSSpectrum" if lazy else "EELSSpectrum")
        assert s.data.shape[:-1] == nav
        sax = s.axes_manager.signal_axes[0]
        assert sax.units == "eV"
        assert (sax.axis[0], sax.axis[-1]) == pytest.approx((lo, hi))


class TestNpy:
    def test_sidecar_axis_and_lazy(self, tmp_path, rng):
        data = rng.normal(size=(3, 4, 20)).astype(np.float32)
        np.save(tmp_path / "c.npy", data)
        np.save(tmp_path / "c.axis.npy", np.linspace(1.0, 2.0, 20))
        s = hl.load(tmp_path / "c.npy", lazy=True, axis_units="eV", signal_type="EELS")
        assert isinstance(s.data, da.Array)
        assert s.metadata.Signal.signal_type == "EELS"
        np.testing.assert_array_equal(s.data.compute(), data)
        ax = s.axes_manager.signal_axes[0]
        assert (ax.units, ax.size) == ("eV", 20)
        assert (ax.axis[0], ax.axis[-1]) == pytest.approx((1.0, 2.0), abs=1e-12)

    def test_non_uniform_axis_kept(self, tmp_path):
        x = np.geomspace(400.0, 800.0, 30)
        np.save(tmp_path / "c.npy", np.zeros((2, 30)))
        np.savetxt(tmp_path / "x.txt", x)
        s = hl.load(tmp_path / "c.npy", axis=tmp_path / "x.txt", axis_units="nm")
        ax = s.axes_manager.signal_axes[0]
        assert not ax.is_uniform
        np.testing.assert_allclose(ax.axis, x)

    def test_axis_in_um_becomes_nm(self, tmp_path):
        np.save(tmp_path / "c.npy", np.zeros((2, 5)))
        s = hl.load(
            tmp_path / "c.npy", axis=[0.5, 0.6, 0.7, 0.8, 0.9], axis_units="um", signal_type="CL"
        )
        ax = s.axes_manager.signal_axes[0]
        assert ax.units == "nm"
        np.testing.assert_allclose(ax.axis, [500, 600, 700, 800, 900])

    def test_without_axis(self, tmp_path):
        np.save(tmp_path / "c.npy", np.zeros((2, 5)))
        with pytest.raises(ValueError, match=r"c\.npy has no spectral axis: give the channel"):
            hl.load(tmp_path / "c.npy")

    def test_axis_of_wrong_length(self, tmp_path):
        np.save(tmp_path / "c.npy", np.zeros((2, 5)))
        with pytest.raises(ValueError, match="must give 5 channel positions, it gives 3"):
            hl.load(tmp_path / "c.npy", axis=[1, 2, 3])

    @pytest.mark.parametrize("shape", [(4, 4, 0), (0, 4, 5), (3, 0, 5)])
    def test_empty_axis(self, tmp_path, shape):
        np.save(tmp_path / "c.npy", np.zeros(shape))
        msg = rf"c\.npy holds an empty array \(shape {re.escape(str(shape))}\), no spectra"
        with pytest.raises(ValueError, match=msg):
            hl.load(tmp_path / "c.npy", axis=np.arange(shape[-1]))

    def test_complex(self, tmp_path):
        np.save(tmp_path / "c.npy", np.ones((2, 5), dtype=np.complex64))
        msg = r"c\.npy holds complex numbers, not real numbers; hyperlum fits real spectra"
        with pytest.raises(ValueError, match=msg):
            hl.load(tmp_path / "c.npy", axis=np.arange(5))

    def test_unknown_hint(self, tmp_path):
        np.save(tmp_path / "c.npy", np.zeros((2, 5)))
        with pytest.raises(TypeError, match="unknown reader hint"):
            hl.load(tmp_path / "c.npy", axis=np.arange(5), colour="red")


class TestUnits:
    def test_mm_wavelength_and_spatial(self):
        s = hs.signals.Signal1D(np.zeros((2, 3, 4)))
        s.set_signal_type("CL")
        for ax, scale in zip(s.axes_manager.navigation_axes, (2e-3, 5e-6), strict=True):
            ax.units, ax.scale = "mm", scale
        s.axes_manager[-1].units = "mm"
        s.axes_manager[-1].scale = 1e-6
        s.axes_manager[-1].offset = 4e-4
        normalise_units(s)
        nav = s.axes_manager.navigation_axes
        assert [(a.units, round(a.scale, 9)) for a in nav] == [("µm", 2.0), ("nm", 5.0)]
        sax = s.axes_manager[-1]
        assert (sax.units, round(sax.scale, 9), round(sax.offset, 9)) == ("nm", 1.0, 400.0)

    def test_kev_to_ev_and_other_units_left(self):
        s = hs.signals.Signal1D(np.zeros((2, 4)))
        s.set_signal_type("EELS")
        s.axes_manager[-1].units = "keV"
        s.axes_manager[-1].scale = 0.001
        s.axes_manager[0].units = "px"
        normalise_units(s)
        assert (s.axes_manager[-1].units, s.axes_manager[-1].scale) == ("eV", 1.0)
        assert s.axes_manager[0].units == "px"

    def test_non_uniform_wavelength_in_um(self):
        x = np.array([0.4, 0.5, 0.7, 1.0])
        s = hs.signals.Signal1D(
            np.zeros((2, 4)),
            axes=[
                {"size": 2, "navigate": True},
                {"axis": x, "units": "µm", "name": "Wavelength", "navigate": False},
            ],
        )
        normalise_units(s)
        ax = s.axes_manager[-1]
        assert ax.units == "nm" and not ax.is_uniform
        np.testing.assert_allclose(ax.axis, x * 1e3)


def _saved(tmp_path, name, **axis):
    """A 3 x 4 x 20 CL cube saved as ``name``, its spectral axis set from ``axis``."""
    s = hs.signals.Signal1D(np.ones((3, 4, 20), dtype=np.float32))
    s.set_signal_type("CL")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HyperSpy warns when it computes an axis of inf scale
        for key, value in axis.items():
            setattr(s.axes_manager[-1], key, value)
        s.save(tmp_path / name)
    return tmp_path / name


class TestBadAxes:
    @pytest.mark.parametrize("lazy", [False, True])
    @pytest.mark.parametrize(
        ("key", "value"),
        [("scale", 0.0), ("scale", np.nan), ("scale", np.inf), ("offset", -np.inf)],
    )
    def test_uniform_axis_refused(self, tmp_path, key, value, lazy):
        path = _saved(tmp_path, "c.hspy", **{key: value})
        msg = (
            rf"c\.hspy: the signal axis 2 has {key} {value:g}; an axis needs a finite offset and "
            "a finite, non-zero scale"
        )
        with pytest.raises(ValueError, match=msg):
            hl.load(path, lazy=lazy)

    def test_navigation_scale_0_refused(self, tmp_path):
        s = hs.signals.Signal1D(np.ones((3, 4, 20)))
        s.axes_manager[0].name, s.axes_manager[0].scale = "x", 0.0
        s.save(tmp_path / "c.hspy")
        with pytest.raises(ValueError, match=r"c\.hspy: the navigation axis 'x' has scale 0; "):
            hl.load(tmp_path / "c.hspy")

    def test_reversed_axis_loads(self, tmp_path):
        s = hl.load(_saved(tmp_path, "c.hspy", scale=-2.0, offset=800.0))
        assert s.axes_manager[-1].axis[-1] == pytest.approx(762.0)

    def test_fit_refuses_a_signal_with_scale_0(self):
        s = hs.signals.Signal1D(np.ones((3, 20)))
        s.axes_manager[-1].scale = 0.0
        with pytest.raises(ValueError, match="data: the signal axis 1 has scale 0; "):
            hl.fit(s, device="cpu")

    def test_fit_refuses_a_complex_signal(self):
        s = hs.signals.ComplexSignal1D(np.ones((3, 20), dtype=np.complex128))
        with pytest.raises(TypeError, match="data must hold real numbers, got dtype complex128"):
            hl.fit(s, device="cpu")

    def test_fit_refuses_an_empty_array(self):
        with pytest.raises(
            ValueError, match=r"data must not have an empty axis, got shape \(0, 20\)"
        ):
            hl.fit(np.ones((0, 20)), device="cpu")

    def test_complex_file(self, tmp_path):
        hs.signals.ComplexSignal1D(np.ones((3, 20), dtype=np.complex64)).save(tmp_path / "c.hspy")
        with pytest.raises(ValueError, match=r"c\.hspy holds complex numbers, not real numbers"):
            hl.load(tmp_path / "c.hspy")


def _damage_first_chunk(zspy):
    """Overwrite 20 bytes inside the first stored data chunk of a .zspy file."""
    chunk = zspy / "Experiments" / "__unnamed__" / "data" / "0" / "0" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[20:40] = b"\xff" * 20
    chunk.write_bytes(bytes(raw))


class TestDamagedChunk:
    MSG = (
        r"\S*c\.zspy: the data chunk \[0:3, 0:4, 0:20\] could not be read \(RuntimeError: error "
        r"during blosc decompression: -1\); the file is damaged"
    )

    def test_eager_load_names_the_chunk(self, tmp_path):
        path = _saved(tmp_path, "c.zspy", scale=1.0)
        _damage_first_chunk(path)
        with pytest.raises(ValueError, match=self.MSG):
            hl.load(path)

    def test_lazy_fit_names_the_chunk(self, tmp_path):
        path = _saved(tmp_path, "c.zspy", scale=1.0)
        _damage_first_chunk(path)
        s = hl.load(path, lazy=True)  # nothing is read yet
        with pytest.raises(ValueError, match=self.MSG):
            hl.fit(s, device="cpu").compute()


class TestRange:
    def test_partly_outside_says_what_is_used(self):
        x = np.linspace(600.0, 800.0, 51)  # 4 nm channels
        cube = 100 * np.exp(-0.5 * ((x - 700.0) / 10.0) ** 2) + 5 + np.zeros((2, 1))
        msg = (
            r"signal_range=\(550, 710\) reaches outside the signal axis \(600 to 800\); using "
            r"600 to 708 \(28 channels\)"
        )
        with pytest.warns(UserWarning, match=msg) as record:
            res = hl.fit(cube, axis=x, signal_range=(550, 710), device="cpu")
        assert record[0].filename == __file__  # points at the caller
        assert res.options["signal_range"] == [550.0, 710.0]
        assert np.allclose(res.maps["centre"], 700.0, atol=1e-3)

    def test_inside_is_silent(self):
        x = np.linspace(600.0, 800.0, 51)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            hl.fit(np.ones((2, 51)), axis=x, signal_range=(620, 780), device="cpu")


class TestBadFiles:
    def test_missing(self, tmp_path):
        with pytest.raises(FileNotFoundError, match=r"no such file: .*nothere\.dm4"):
            hl.load(tmp_path / "nothere.dm4")

    def test_unsupported_format(self, tmp_path):
        (tmp_path / "a.xyz").write_text("1 2 3")
        with pytest.raises(ValueError, match=r"a\.xyz: unsupported format '\.xyz'"):
            hl.load(tmp_path / "a.xyz")

    @pytest.mark.parametrize(
        ("name", "what"),
        [
            ("bad.dm4", "a Gatan DigitalMicrograph file"),
            ("bad.hspy", "a HyperSpy file"),
            ("bad.sur", "a DigitalSurf file"),
        ],
    )
    def test_corrupt(self, tmp_path, rng, name, what):
        (tmp_path / name).write_bytes(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
        with pytest.raises(ValueError, match=rf"bad\.\w+ could not be read as {what}: "):
            hl.load(tmp_path / name)

    def test_image_has_no_spectral_axis(self, tmp_path):
        hs.signals.Signal2D(np.zeros((4, 5))).save(tmp_path / "img.hspy")
        with pytest.raises(
            ValueError, match=r"img\.hspy has no spectral axis \(it holds 2-D signal"
        ):
            hl.load(tmp_path / "img.hspy")

    def test_hdf5_no_reader_can_read(self, tmp_path):
        import h5py

        with h5py.File(tmp_path / "x.h5", "w") as f:
            f["a"] = np.zeros(3)
        msg = (
            r"\S*x\.h5 could not be read by any of the readers that claim it \(Delmic: \w+: .*; "
            r"Tofwerk: .*; Arina: .*; USID: .*\); name one with file_format= \(--format on the "
            r"command line\)"
        )
        with pytest.raises(ValueError, match=msg) as info:
            hl.load(tmp_path / "x.h5")
        assert "\n" not in str(info.value)
