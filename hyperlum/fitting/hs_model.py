"""A fit result handed to HyperSpy: a Model1D whose parameter maps hold hyperlum's values.

HyperSpy's model tools then work on hyperlum's fit: ``m.plot(plot_components=True)`` to
navigate the pixels, ``m.fit()`` to refine one, ``m.as_signal()`` for the model cube.

Conventions (hyperlum's parameters -> HyperSpy components):

- a Gaussian peak is a ``Gaussian`` named ``peak_k``: HyperSpy's ``A`` is the *area*
  ``amplitude * sigma * sqrt(2 pi)`` (hyperlum's ``intensity`` map, with its standard
  deviation), ``centre`` and ``sigma`` as fitted;
- a Lorentzian peak is a ``Lorentzian``: ``A`` the area ``pi amplitude gamma`` (``intensity``),
  ``centre`` and ``gamma`` (HWHM) as fitted;
- the other shapes (pseudo-Voigt, EMG; HyperSpy 2.5 has no pseudo-Voigt, and its ``Voigt``
  is the exact convolution, another function) are an ``Expression`` of the shape's own
  formula (its ``EXPRESSION``) with hyperlum's parameters (the EMG's ``side`` fixed);
- a constant background is an ``Offset`` named ``background``;
- a polynomial background is an ``Expression`` ``a0 + a1 * (x - x0) (+ a2 (x - x0)^2 ...)``
  named ``background``, with ``x0`` fixed at the middle of the fitted range, as hyperlum fits
  it: the ``a`` are the ``background``, ``background_slope``, ... maps with their standard
  deviations (a ``Polynomial`` in ``x`` would need their covariance, which the fit does not
  keep);
- a power-law background is a ``PowerLaw`` ``A x^-r`` (``origin`` 0): ``A`` is hyperlum's
  ``background * xref^r`` (its standard deviation scaled alike, without the covariance with
  ``r``), ``r`` the ``background_exponent``;
- on a *binned* uniform axis HyperSpy multiplies the model by the channel width ``scale``;
  hyperlum fits the values as they are, so areas, amplitudes and background terms (and their
  standard deviations) are divided by ``scale``: ``A`` is then the peak's counts summed over
  channels. A binned *non-uniform* axis would be multiplied channel by channel by its width,
  which no peak reproduces: the model's signal (a cropped copy) is marked not binned.
"""

import numpy as np

from hyperlum.fitting.model_cubes import PeakModel
from hyperlum.io.cube import as_cube
from hyperlum.kernels.backgrounds import map_names
from hyperlum.kernels.shapes import get_shape

_COEFFS = ("a0", "a1", "a2", "a3")
#: Shapes with a HyperSpy component of their own: (component, hyperlum map of its ``A``).
_NATIVE = {"gaussian": "Gaussian", "lorentzian": "Lorentzian"}


def _components(pm):
    """HyperSpy components for the peaks and background of ``pm``, named as in the model."""
    import hyperspy.api as hs

    c1d = hs.model.components1D
    shape = get_shape(pm.shape)
    comps = []
    for name in pm.component_names():
        if name.startswith("peak_"):
            if pm.shape in _NATIVE:
                comp = getattr(c1d, _NATIVE[pm.shape])()
            else:
                extra = {k.lower(): v for k, v in shape.constants.items()}
                comp = c1d.Expression(
                    shape.module.EXPRESSION, name=name, module=["numpy", "scipy"], **extra
                )
                for k in extra:
                    getattr(comp, k).free = False
        elif pm.background == "powerlaw":
            comp = c1d.PowerLaw()
        elif pm.n_background == 1:
            comp = c1d.Offset()
        else:
            terms = " + ".join(
                f"a{j} * (x - x0)**{j}" if j > 1 else ("a0", "a1 * (x - x0)")[j]
                for j in range(pm.n_background)
            )
            comp = c1d.Expression(terms, name="background", x0=pm.xref)
            comp.x0.free = False
        comp.name = name
        comps.append(comp)
    return comps


def _values(pm, maps, scale):
    """``(component name, parameter name) -> (values, stds)`` from the maps of a result."""
    out = {}
    shape = get_shape(pm.shape)
    for k in range(pm.peaks):
        sfx = "" if pm.peaks == 1 else f"_{k + 1}"
        comp = f"peak_{k + 1}"
        if pm.shape in _NATIVE:
            out[comp, "A"] = (maps[f"intensity{sfx}"] / scale, maps[f"intensity{sfx}_std"] / scale)
            for p in shape.param_names[1:]:
                out[comp, p] = (maps[f"{p}{sfx}"], maps[f"{p}{sfx}_std"])
        else:
            for p, unit in zip(shape.param_names, shape.units, strict=True):
                div = scale if unit == "counts" else 1.0
                out[comp, p] = (maps[f"{p}{sfx}"] / div, maps[f"{p}{sfx}_std"] / div)
            for key, v in shape.constants.items():
                side = np.full(np.shape(maps[f"centre{sfx}"]), v)
                out[comp, key.lower()] = (side, np.zeros_like(side))
    if pm.background == "powerlaw":
        r, r_sd = maps["background_exponent"], maps["background_exponent_std"]
        factor = pm.xref**r / scale
        out["background", "A"] = (maps["background"] * factor, maps["background_std"] * factor)
        out["background", "r"] = (r, r_sd)
        zero = np.zeros(np.shape(r))
        out["background", "origin"] = (zero, zero)
        out["background", "left_cutoff"] = (zero, zero)
    elif pm.n_background == 1:
        out["background", "offset"] = (maps["background"] / scale, maps["background_std"] / scale)
    elif pm.n_background > 1:
        for j, name in enumerate(map_names(pm.background)):
            out["background", _COEFFS[j]] = (maps[name] / scale, maps[f"{name}_std"] / scale)
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
