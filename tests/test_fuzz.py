"""Fuzz: bad input through ``hl.load``, ``hl.fit`` and ``hyperlum fit`` ends in a result, a
ValueError / TypeError that says what is wrong, or one stderr line with exit code 2; no input
file ever changes.

Bit-flipped and truncated copies of the real files, random shapes, dtypes and axes (scale 0,
nan, inf, reversed, lengths 0 to 5). Derandomized and bounded (``max_examples``) so that the
suite stays reproducible and takes about a minute here.
"""

import contextlib
import hashlib
import io
import tempfile
import warnings
from pathlib import Path

import hyperspy.api as hs
import numpy as np
import pytest
from conftest import REAL, SHIPPED
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hyperlum as hl
from hyperlum.cli import main

FUZZ = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
#: The small real files fuzzed (the larger ones add time, not kinds of reader).
NAMES = (
    "lumispydemos-Test-linescan_InGaAs-NWs.dm4",
    "exspydemos-LSMO_STO_linescan.hspy",
    "rsciio-delmic-sparc-hyperspectral.h5",
    "rsciio-digitalsurf-test_spectral_map.sur",
    "rsciio-dm-EELS_SI.dm4",
    "rsciio-jobinyvon-test_map_x2-y2_rotated.xml",
)
FOUND = [SHIPPED / n if (SHIPPED / n).is_file() else REAL / n for n in NAMES]
FOUND = [p for p in FOUND if p.is_file()]
NAMED = (ValueError, TypeError)


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def damaged_copy(src, folder, cut, flips):
    """Copy ``src`` into ``folder``, cut to the fraction ``cut`` of its length, then flip the
    bits ``flips`` (positions as fractions of the length, bit numbers)."""
    raw = bytearray(Path(src).read_bytes())
    raw = raw[: max(1, int(len(raw) * cut))]
    for where, bit in flips:
        raw[min(len(raw) - 1, int(where * len(raw)))] ^= 1 << bit
    dst = Path(folder) / Path(src).name
    dst.write_bytes(bytes(raw))
    return dst


def small(signal):
    """At most 2 pixels per navigation axis: the fit is the same code for more."""
    nav = signal.axes_manager.navigation_dimension
    return signal.inav[(slice(0, 2),) * nav] if nav else signal


def load_and_fit(path, lazy):
    """The outcome of loading and fitting ``path``: None, or the named error raised."""
    try:
        s = hl.load(path, lazy=lazy)
        s = small(s)
        res = hl.fit(s, device="cpu")
        if lazy:
            res = res.compute(progress=False)
        assert res.maps["centre"].shape == s.data.shape[:-1]
    except NAMED as err:
        assert str(err) and "\n" not in str(err).strip(), repr(err)
        return err
    return None


def one_cli_run(argv):
    """``hyperlum ARGV`` in this process: (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as stop:
            rc = stop.code
    return rc, err.getvalue()


flips = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), max_size=8)


@pytest.mark.skipif(not FOUND, reason="no real data file found")
@FUZZ
@given(
    src=st.sampled_from(FOUND or [None]),
    cut=st.one_of(st.just(1.0), st.floats(0.0, 1.0)),
    flips=flips,
    lazy=st.booleans(),
)
def test_damaged_real_files(src, cut, flips, lazy):
    before = digest(src)
    with tempfile.TemporaryDirectory() as folder:
        copy = damaged_copy(src, folder, cut, flips)
        kept = digest(copy)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # garbage values make numpy and HyperSpy warn
            load_and_fit(copy, lazy)
        assert digest(copy) == kept
    assert digest(src) == before


@pytest.mark.skipif(not FOUND, reason="no real data file found")
@settings(FUZZ, max_examples=4)
@given(src=st.sampled_from(FOUND or [None]), cut=st.floats(0.0, 1.0), flips=flips)
def test_damaged_real_files_on_the_command_line(src, cut, flips):
    before = digest(src)
    with tempfile.TemporaryDirectory() as folder:
        copy = damaged_copy(src, folder, cut, flips)
        kept = digest(copy)
        out = Path(folder) / "m.zspy"
        rc, err = one_cli_run(["fit", copy, "-o", out, "-q", "--device", "cpu"])
        assert rc in (0, 2), err
        if rc == 2:
            assert err.startswith("hyperlum fit: error: ") and err.count("\n") == 1, err
            assert not out.exists()
        assert digest(copy) == kept
    assert digest(src) == before


DTYPES = ("uint8", "uint16", "int32", "float16", "float32", "float64", "complex64", "bool")
AXES = st.one_of(
    st.none(),
    st.sampled_from(["uniform", "reversed", "constant", "nan", "inf", "short"]),
)


def _axis(kind, n):
    if kind is None:
        return None
    x = {
        "uniform": np.linspace(600.0, 800.0, n),
        "reversed": np.linspace(800.0, 600.0, n),
        "constant": np.full(n, 700.0),
        "nan": np.where(np.arange(n) == n // 2, np.nan, np.linspace(600.0, 800.0, n)),
        "inf": np.where(np.arange(n) == 0, np.inf, np.linspace(600.0, 800.0, n)),
        "short": np.linspace(600.0, 800.0, max(0, n - 1)),
    }[kind]
    return x


@FUZZ
@given(
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=3).map(lambda s: (*s[:-1], s[-1] * 3)),
    dtype=st.sampled_from(DTYPES),
    axis=AXES,
    lazy=st.booleans(),
)
def test_random_arrays_through_fit(shape, dtype, axis, lazy):
    rng = np.random.default_rng(len(shape) * 7 + sum(shape))
    data = (rng.random(shape) * 50).astype(dtype)
    if lazy:
        import dask.array as da

        data = da.from_array(data, chunks=-1)
    try:
        res = hl.fit(data, axis=_axis(axis, shape[-1]), device="cpu")
    except NAMED as err:
        assert str(err) and "\n" not in str(err), repr(err)
        return
    if lazy:
        res = res.compute(progress=False)
    assert res.maps["centre"].shape == shape[:-1]


@FUZZ
@given(
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=3).map(lambda s: (*s[:-1], s[-1] * 3)),
    scale=st.sampled_from([1.0, -2.5, 0.0, np.nan, np.inf, 1e-300]),
    offset=st.sampled_from([600.0, -np.inf, np.nan]),
    nav_scale=st.sampled_from([1.0, 0.0, np.nan]),
    ext=st.sampled_from([".hspy", ".zspy"]),
    lazy=st.booleans(),
)
def test_random_axes_through_load(shape, scale, offset, nav_scale, ext, lazy):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"s{ext}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # HyperSpy warns when it computes a nan axis
            try:
                s = hs.signals.Signal1D(np.ones(shape, dtype=np.float32))
                s.axes_manager[-1].scale, s.axes_manager[-1].offset = scale, offset
                for ax in s.axes_manager.navigation_axes:
                    ax.scale = nav_scale
                s.save(path)
            except Exception:  # HyperSpy itself cannot make or save this one: nothing to load
                return
        kept = {p: digest(p) for p in path.rglob("*") if p.is_file()} if path.is_dir() else {}
        kept = kept or {path: digest(path)}
        err = load_and_fit(path, lazy)
        bad_nav = len(shape) > 1 and not (np.isfinite(nav_scale) and nav_scale != 0)
        bad_signal = not (np.isfinite(scale) and np.isfinite(offset) and scale != 0)
        if 0 in shape or bad_nav or bad_signal:
            assert err is not None
        assert {p: digest(p) for p in kept} == kept
