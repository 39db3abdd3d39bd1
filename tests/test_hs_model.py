"""res.to_hyperspy_model(s): HyperSpy's Model1D holding hyperlum's fit."""

import hyperspy.api as hs
import numpy as np
import pytest

import hyperlum as hl
from hyperlum.fitting.result import FitResult
from hyperlum.io.cube import as_cube
from hyperlum.kernels.constants import BACKGROUNDS, output_rows
from hyperlum.kernels.shapes import get_shape

X = 650.0 + 0.5 * np.arange(241)
XN = 650.0 + 120.0 * np.linspace(0, 1, 241) ** 1.3  # non-uniform


def signal(data, x, binned):
    if np.allclose(np.diff(x), x[1] - x[0]):
        s = hs.signals.Signal1D(data)
        ax = s.axes_manager.signal_axes[0]
        ax.offset, ax.scale = float(x[0]), float(x[1] - x[0])
    else:
        nav = [{"size": n} for n in data.shape[:-1]]
        s = hs.signals.Signal1D(data, axes=nav + [{"axis": x}])
    s.axes_manager.signal_axes[0].is_binned = binned
    return s


def fake_result(rng, s, peaks, background, signal_range=None, shape="gaussian"):
    """A result with random, plausible parameters, built the way hl.fit builds one."""
    cube = as_cube(s).crop(signal_range)
    nbg = BACKGROUNDS[background]
    npar = get_shape(shape).n_params
    # kernel rows, then fit_block's: detected per peak (all 1 here), spikes replaced (0)
    layout = output_rows(peaks, nbg, npar)
    base = layout.total
    rows = rng.uniform(0.1, 2.0, s.data.shape[:-1] + (base + peaks + 1,))
    rows[..., base : base + peaks] = 1.0
    rows[..., base + peaks] = 0.0
    for k in range(peaks):
        rows[..., npar * k] *= 100  # amplitude
        rows[..., npar * k + 1] = rng.uniform(660, 760, s.data.shape[:-1])  # centre
        rows[..., npar * k + 2] *= 5  # width
        if npar == 4:  # eta in [0, 1], or the EMG's tau
            rows[..., npar * k + 3] *= 0.5 if shape == "pseudo_voigt" else 3.0
    rows[..., layout.state] = 0  # converged
    opts = {"peaks": peaks, "shape": shape, "background": background}
    opts["signal_range"] = signal_range
    return FitResult.from_stacked(rows, peaks, nbg, cube, opts)


@pytest.mark.parametrize("peaks", [1, 2, 3, 4])
@pytest.mark.parametrize("background", ["none", "constant", "linear"])
@pytest.mark.parametrize("x, binned", [(X, False), (X, True), (XN, False), (XN, True)])
def test_as_signal_equals_model(rng, peaks, background, x, binned):
    s = signal(rng.uniform(0, 10, (2, 3, x.size)), x, binned)
    res = fake_result(rng, s, peaks, background, signal_range=(655.0, 765.0))
    m = res.to_hyperspy_model(s)
    names = [f"peak_{k + 1}" for k in range(peaks)] + (
        ["background"] if background != "none" else []
    )
    assert [c.name for c in m] == names
    ours = res.model().data
    np.testing.assert_allclose(m.as_signal().data, ours, rtol=1e-6, atol=1e-6 * np.abs(ours).max())
    for k, name in enumerate(names):
        part = res.model(component=k + 1 if name.startswith("peak") else "background").data
        theirs = m.as_signal(component_list=[name]).data
        np.testing.assert_allclose(theirs, part, rtol=1e-6, atol=1e-6 * np.abs(ours).max())
    assert s.axes_manager.signal_axes[0].is_binned is binned  # the input is left alone
    assert s.axes_manager.signal_axes[0].size == x.size


@pytest.mark.parametrize("shape", ["lorentzian", "pseudo_voigt", "emg_low", "emg_high"])
@pytest.mark.parametrize("background", ["poly3", "powerlaw"])
@pytest.mark.parametrize("binned", [False, True])
def test_as_signal_equals_model_every_shape(rng, shape, background, binned):
    s = signal(rng.uniform(0, 10, (2, 3, X.size)), X, binned)
    res = fake_result(rng, s, 2, background, signal_range=(655.0, 765.0), shape=shape)
    m = res.to_hyperspy_model(s)
    assert [c.name for c in m] == ["peak_1", "peak_2", "background"]
    ours = res.model().data
    np.testing.assert_allclose(m.as_signal().data, ours, rtol=1e-6, atol=1e-6 * np.abs(ours).max())
    part = res.model(component="background").data
    theirs = m.as_signal(component_list=["background"]).data
    np.testing.assert_allclose(theirs, part, rtol=1e-6, atol=1e-6 * np.abs(ours).max())


def _fit_both(s, shape, component, start):
    """hyperlum's LSE fit of ``shape`` + constant, and HyperSpy's of ``component`` + Offset
    started from hyperlum's centre, at every pixel of ``s``."""
    res = hl.fit(s, shape=shape, device="cpu", tolerance=1e-10)
    m = s.create_model()
    peak = component()
    m.extend([peak, hs.model.components1D.Offset()])
    out = []
    for idx in np.ndindex(s.data.shape[:-1]):
        m.axes_manager.indices = idx[::-1]
        for name, value in start(res, idx).items():
            getattr(peak, name).value = value
        m[1].offset.value = float(res.maps["background"][idx])
        m.fit()
        out.append({p.name: p.value for p in peak.parameters})
    return res, out


def test_lorentzian_agrees_with_hyperspys(rng):
    """The same pixels fitted by hyperlum and by HyperSpy's Lorentzian (least squares both):
    centre, HWHM and area agree to 1e-3 of hyperlum's standard errors."""
    c = 710 + rng.uniform(-3, 3, (1, 3, 1))
    mu = 10 + 150 / (1 + ((X - c) / 6.0) ** 2)
    s = signal(rng.poisson(mu).astype(float), X, binned=False)
    res, theirs = _fit_both(
        s,
        "lorentzian",
        hs.model.components1D.Lorentzian,
        lambda r, i: {"centre": r.maps["centre"][i] + 0.5, "gamma": 5.0, "A": 2000.0},
    )
    for i, t in zip(np.ndindex(s.data.shape[:-1]), theirs, strict=True):
        for ours, name in (("centre", "centre"), ("gamma", "gamma"), ("intensity", "A")):
            sd = res.maps[f"{ours}_std"][i]
            assert abs(t[name] - res.maps[ours][i]) < 1e-3 * sd, (name, t[name], sd)


def test_pseudo_voigt_agrees_with_hyperspys_voigt(rng):
    """Poisson pixels of a true Voigt (HyperSpy's): hyperlum's pseudo-Voigt and HyperSpy's
    Voigt fit find the same centre (to 0.1 standard error) and FWHM (to 1%); the areas agree
    to 2% (the pseudo-Voigt's tails, which hold the area beyond the window, are not the
    Voigt's: 1.3% apart on these pixels)."""
    voigt = hs.model.components1D.Voigt(centre=710.0, area=4000.0, gamma=3.0, sigma=4.0)
    mu = 10 + voigt.function(X) + np.zeros((1, 3, 1))
    s = signal(rng.poisson(mu).astype(float), X, binned=False)
    res, theirs = _fit_both(
        s,
        "pseudo_voigt",
        hs.model.components1D.Voigt,
        lambda r, i: {"centre": r.maps["centre"][i], "area": 3000.0, "gamma": 2.0, "sigma": 3.0},
    )
    for i, t in zip(np.ndindex(s.data.shape[:-1]), theirs, strict=True):
        assert abs(t["centre"] - res.maps["centre"][i]) < 0.1 * res.maps["centre_std"][i]
        fl, fg = 2 * t["gamma"], 2 * np.sqrt(2 * np.log(2)) * t["sigma"]
        fwhm = 0.5346 * fl + np.sqrt(0.2166 * fl**2 + fg**2)  # Olivero & Longbothum (0.02%)
        np.testing.assert_allclose(res.maps["fwhm"][i], fwhm, rtol=0.01)
        np.testing.assert_allclose(res.maps["intensity"][i], t["area"], rtol=0.02)


def test_values_and_stds_are_hyperlums(rng):
    s = signal(rng.uniform(0, 10, (2, 3, X.size)), X, binned=True)
    res = fake_result(rng, s, 2, "linear")
    m = res.to_hyperspy_model(s)
    h = 0.5  # binned: HyperSpy multiplies by the channel width, the areas are divided by it
    p1, bg = m["peak_2"], m["background"]
    np.testing.assert_allclose(p1.A.map["values"], res.maps["intensity_2"] / h)
    np.testing.assert_allclose(p1.A.map["std"], res.maps["intensity_2_std"] / h)
    np.testing.assert_array_equal(p1.centre.map["std"], res.maps["centre_2_std"])
    np.testing.assert_array_equal(p1.sigma.map["values"], res.maps["sigma_2"])
    np.testing.assert_allclose(bg.a1.map["values"], res.maps["background_slope"] / h)
    assert not bg.x0.free and bg.x0.value == pytest.approx(0.5 * (X[0] + X[-1]))
    m.axes_manager.indices = (2, 1)
    assert p1.centre.value == res.maps["centre_2"][1, 2]


@pytest.mark.parametrize("estimator", ["lse", "mle"])
def test_hyperspy_refit_stays_put(rng, estimator):
    """m.fit() from hyperlum's values on Poisson data moves the centre < 0.1 std error."""
    mu = 10 + 150 * np.exp(-0.5 * ((X - 710 - rng.uniform(-3, 3, (2, 3, 1))) / 7) ** 2)
    s = signal(rng.poisson(mu).astype(float), X, binned=False)
    res = hl.fit(s, estimator=estimator, device="cpu")
    m = res.to_hyperspy_model(s)
    kwargs = {} if estimator == "lse" else {"loss_function": "ML-poisson", "optimizer": "L-BFGS-B"}
    for i, j in [(0, 0), (1, 2)]:
        m.axes_manager.indices = (j, i)
        before, sd = m["peak_1"].centre.value, res.maps["centre_std"][i, j]
        assert before == res.maps["centre"][i, j]
        m.fit(**kwargs)
        assert abs(m["peak_1"].centre.value - before) < 0.1 * sd


def test_lazy_signal(rng):
    mu = 10 + 150 * np.exp(-0.5 * ((X - 710) / 7) ** 2) + np.zeros((3, 4, 1))
    s = signal(rng.poisson(mu).astype(float), X, binned=False).as_lazy()
    res = hl.fit(s, device="cpu", signal_range=(660, 760))
    m = res.to_hyperspy_model(s)
    np.testing.assert_allclose(
        np.asarray(m.as_signal().data), res.model().data.compute(), rtol=1e-9
    )


def test_bad_input(rng):
    s = signal(rng.uniform(0, 10, (2, 3, X.size)), X, binned=False)
    res = fake_result(rng, s, 1, "constant")
    with pytest.raises(
        TypeError, match="signal must be the HyperSpy Signal1D that was fitted, got ndarray"
    ):
        res.to_hyperspy_model(s.data)
    with pytest.raises(ValueError, match=r"navigation shape of the fit \(2, 3\), got \(2, 2\)"):
        res.to_hyperspy_model(s.inav[:2, :])
    with pytest.raises(
        ValueError, match=r"channels in the fitted range \(200\) are not those of the fit \(241"
    ):
        res.to_hyperspy_model(s.isig[:200])
