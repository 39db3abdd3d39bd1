"""A fit result handed to HyperSpy: a Model1D whose parameter maps hold hyperlum's values.

HyperSpy's model tools then work on hyperlum's fit: ``m.plot(plot_components=True)`` to
navigate the pixels, ``m.fit()`` to refine one, ``m.as_signal()`` for the model cube.

Conventions (hyperlum's parameters -> HyperSpy components):

- each peak is a ``Gaussian`` named ``peak_k``: HyperSpy's ``A`` is the *area*
  ``amplitude * sigma * sqrt(2 pi)`` (hyperlum's ``intensity`` map, with its standard
  deviation), ``centre`` and ``sigma`` as fitted;
- a constant background is an ``Offset`` named ``background``;
- a linear background is an ``Expression`` ``a0 + a1 * (x - x0)`` named ``background``, with
  ``x0`` fixed at the middle of the fitted range, as hyperlum fits it: ``a0`` and ``a1`` are
  the ``background`` and ``background_slope`` maps with their standard deviations (a
  ``Polynomial`` ``a0 + a1 x`` would need their covariance, which the fit does not keep);
- on a *binned* uniform axis HyperSpy multiplies the model by the channel width ``scale``;
  hyperlum fits the values as they are, so ``A``, ``offset``, ``a0`` and ``a1`` (and their
  standard deviations) are divided by ``scale``: ``A`` is then the peak's counts summed over
  channels. A binned *non-uniform* axis would be multiplied channel by channel by its width,
  which no Gaussian reproduces: the model's signal (a cropped copy) is marked not binned.
"""

import numpy as np

from hyperlum.fitting.model_cubes import PeakModel
from hyperlum.io.cube import as_cube


def _components(pm):
    """HyperSpy components for the peaks and background of ``pm``, named as in the model."""
    import hyperspy.api as hs

    c1d = hs.model.components1D
    comps = []
    for name in pm.component_names():
        if name.startswith("peak_"):
            comp = c1d.Gaussian()
        elif pm.n_background == 1:
            comp = c1d.Offset()
        else:
            comp = c1d.Expression("a0 + a1 * (x - x0)", name="background", x0=pm.xref)
            comp.x0.free = False
        comp.name = name
        comps.append(comp)
    return comps


def _values(pm, maps, scale):
    """``(component name, parameter name) -> (values, stds)`` from the maps of a result."""
    out = {}
    for k in range(pm.peaks):
        sfx = "" if pm.peaks == 1 else f"_{k + 1}"
        comp = f"peak_{k + 1}"
        out[comp, "A"] = (maps[f"intensity{sfx}"] / scale, maps[f"intensity{sfx}_std"] / scale)
        for p in ("centre", "sigma"):
            out[comp, p] = (maps[f"{p}{sfx}"], maps[f"{p}{sfx}_std"])
    if pm.n_background == 1:
        out["background", "offset"] = (maps["background"] / scale, maps["background_std"] / scale)
    elif pm.n_background == 2:
        out["background", "a0"] = (maps["background"] / scale, maps["background_std"] / scale)
        out["background", "a1"] = (
            maps["background_slope"] / scale,
            maps["background_slope_std"] / scale,
        )
        x0 = np.full(np.shape(maps["background"]), pm.xref)
        out["background", "x0"] = (x0, np.zeros_like(x0))
    return out


def to_hyperspy_model(res, signal):
    """A HyperSpy ``Model1D`` of ``signal`` holding the fit ``res`` in its parameter maps.

    See :meth:`hyperlum.fitting.result.FitResult.to_hyperspy_model`.
    """
    from hyperspy.models.model1d import Model1D

    if not (hasattr(signal, "axes_manager") and hasattr(signal, "isig")):
        raise TypeError(
            f"signal must be the HyperSpy Signal1D that was fitted, got {type(signal).__name__}"
        )
    pm = PeakModel(res)
    cube = as_cube(signal)
    rng = res.options.get("signal_range")
    ch = cube.channels(rng) if rng is not None else slice(None)
    x = cube.x[ch]
    if cube.nav_shape != res.shape:
        raise ValueError(
            f"signal must have the navigation shape of the fit {res.shape}, got {cube.nav_shape}"
        )
    if x.shape != pm.x.shape or not np.allclose(x, pm.x, rtol=1e-9, atol=0):
        raise ValueError(
            f"signal's channels in the fitted range ({x.size}) are not those of the fit "
            f"({pm.x.size} from {pm.x[0]:g} to {pm.x[-1]:g}): give the signal that was fitted"
        )
    cropped = signal.isig[ch.start : ch.stop]  # a new signal (axes copied, data a view)
    sax = cropped.axes_manager.signal_axes[0]
    scale = 1.0
    if sax.is_binned:
        if sax.is_uniform:
            scale = float(sax.scale)
        else:
            sax.is_binned = False
    maps = {n: np.asarray(v, dtype=np.float64) for n, v in res.compute().maps.items()}
    values = _values(pm, maps, scale)
    m = Model1D(cropped)
    for comp in _components(pm):
        m.append(comp)
        for p in comp.parameters:
            v, sd = values[comp.name, p.name]
            p.map["values"][...] = v
            p.map["std"][...] = sd
            p.map["is_set"][...] = True
    m.fetch_stored_values()
    return m
