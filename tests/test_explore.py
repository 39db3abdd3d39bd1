"""hl.explore: headless, driven by synthetic matplotlib events (Agg backend)."""

import matplotlib

matplotlib.use("Agg")

import hyperspy.api as hs  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backend_bases import KeyEvent, MouseEvent  # noqa: E402

import hyperlum as hl  # noqa: E402

X = 650.0 + 0.5 * np.arange(241)


@pytest.fixture
def scene(rng):
    c = 700 + 2 * np.arange(5)[:, None] + np.arange(6)[None, :]
    mu = 10 + 200 * np.exp(-0.5 * ((X - c[..., None]) / 7.0) ** 2)
    mu[0, 0] = 10  # no peak there
    s = hs.signals.Signal1D(rng.poisson(mu).astype(float))
    sax = s.axes_manager.signal_axes[0]
    sax.offset, sax.scale, sax.units, sax.name = 650.0, 0.5, "nm", "Wavelength"
    for a in s.axes_manager.navigation_axes:
        a.scale, a.units = 25.0, "nm"
    res = hl.fit(s, estimator="mle", device="cpu", signal_range=(670, 750))
    return s, res, hl.explore(s, res)


def click(ex, ax, xdata, ydata, kind="button_press_event", button=1):
    x, y = ax.transData.transform((xdata, ydata))
    ev = MouseEvent(kind, ex.fig.canvas, x, y, button=button)
    ex.fig.canvas.callbacks.process(kind, ev)


def key(ex, name):
    ev = KeyEvent("key_press_event", ex.fig.canvas, name)
    ex.fig.canvas.callbacks.process("key_press_event", ev)


def expected_model(res, idx):
    return res.model().data[idx]


def test_click_selects_that_pixel(scene):
    s, res, ex = scene
    ax = ex.map_axes[1]
    i, j = 3, 4  # pixel (3, 4) lies at x = 4 * 25 nm, y = 3 * 25 nm
    click(ex, ax, 4 * 25.0 + 3, 3 * 25.0 - 4)
    click(ex, ax, 4 * 25.0 + 3, 3 * 25.0 - 4, "button_release_event")
    assert ex.pixel == (i, j)
    np.testing.assert_array_equal(ex.data_line.get_ydata(), s.data[i, j])
    np.testing.assert_array_equal(ex.data_line.get_xdata(), s.axes_manager[-1].axis)
    np.testing.assert_allclose(ex.model_line.get_ydata(), expected_model(res, (i, j)), rtol=1e-12)
    keep = (X >= 670) & (X <= 750)
    np.testing.assert_allclose(
        ex.residual_line.get_ydata(), s.data[i, j, keep] - expected_model(res, (i, j)), rtol=1e-12
    )
    parts = sum(line.get_ydata() for line in ex.component_lines)
    np.testing.assert_allclose(parts, ex.model_line.get_ydata(), rtol=1e-12)
    assert "pixel (3, 4)" in ex.spectrum_ax.get_title()


def test_arrow_keys_move_the_pixel(scene):
    s, res, ex = scene
    ex.select(2, 2)
    for name, want in [
        ("up", (1, 2)),
        ("left", (1, 1)),
        ("down", (2, 1)),
        ("right", (2, 2)),
        ("x", (2, 2)),
    ]:
        key(ex, name)
        assert ex.pixel == want
    ex.select(0, 0)
    key(ex, "up")
    assert ex.pixel == (0, 0)  # stays inside the map
    np.testing.assert_array_equal(ex.data_line.get_ydata(), s.data[0, 0])


def test_drag_shows_region_mean(scene):
    s, res, ex = scene
    ax = ex.map_axes[0]
    click(ex, ax, 1 * 25.0, 1 * 25.0)
    click(ex, ax, 3 * 25.0, 2 * 25.0, "motion_notify_event")
    click(ex, ax, 3 * 25.0, 2 * 25.0, "button_release_event")
    assert ex.pixel is None and ex.region == (slice(1, 3), slice(1, 4))
    np.testing.assert_allclose(
        ex.data_line.get_ydata(), s.data[1:3, 1:4].reshape(-1, X.size).mean(0)
    )
    model = res.model().data[1:3, 1:4].reshape(-1, 161).mean(0)
    np.testing.assert_allclose(ex.model_line.get_ydata(), model, rtol=1e-12)
    assert "mean of 6 pixels" in ex.spectrum_ax.get_title()
    assert ex._regions[0].get_visible() and not ex._markers[0].get_visible()


def test_undetected_pixels_are_grey(scene):
    _, res, ex = scene
    shown = ex.map_axes[1].images[0].get_array()
    assert np.array_equal(
        np.ma.getmaskarray(shown),
        ~np.asarray(res.maps.get("detected", res.maps["converged"]))
        | ~np.isfinite(res.maps["centre"]),
    )


def test_line_scan_profile(rng):
    c = 700 + 3 * np.arange(8)
    mu = 10 + 200 * np.exp(-0.5 * ((X - c[:, None]) / 7.0) ** 2)
    data = rng.poisson(mu).astype(float)
    res = hl.fit(data, axis=X, device="cpu")
    ex = hl.explore(data, res, axis=X, maps=("centre", "sigma"))
    ax = ex.map_axes[0]
    click(ex, ax, 5.2, res.maps["centre"][5])
    click(ex, ax, 5.2, res.maps["centre"][5], "button_release_event")
    assert ex.pixel == (5,)
    np.testing.assert_array_equal(ex.data_line.get_ydata(), data[5])
    np.testing.assert_allclose(ex.model_line.get_ydata(), res.model().data[5], rtol=1e-12)
    key(ex, "right")
    assert ex.pixel == (6,)


def test_bad_arguments(scene):
    s, res, _ = scene
    with pytest.raises(KeyError, match="no map named 'centr'"):
        hl.explore(s, res, maps=("centr",))
    with pytest.raises(ValueError, match="navigation shape of the fit"):
        hl.explore(s.inav[:2, :], res)
