"""Labels of map names for figure axes, and a new set of axes when none is given."""

_PRETTY = {
    "centre": "Centre",
    "sigma": "\u03c3",
    "fwhm": "FWHM",
    "amplitude": "Amplitude",
    "intensity": "Intensity",
    "background": "Background",
    "background_slope": "Background slope",
    "background_quadratic": "Background quadratic term",
    "background_cubic": "Background cubic term",
    "background_exponent": "Background exponent r",
    "gamma": "\u03b3 (HWHM)",
    "eta": "\u03b7 (Lorentzian fraction)",
    "tau": "\u03c4 (tail)",
    "chisq": "Reduced \u03c7\u00b2",
}


def axis_label(name, units=""):
    """Axis label of the map ``name``: ``"\u03c3 2 (nm)"`` for ``sigma_2`` in nm.

    Examples
    --------
    >>> axis_label("sigma_2", "nm"), axis_label("intensity_std", "counts \u00d7 nm")
    ('\u03c3 2 (nm)', 'std of Intensity (counts \u00d7 nm)')
    >>> axis_label("gamma", "eV"), axis_label("eta")
    ('\u03b3 (HWHM) (eV)', '\u03b7 (Lorentzian fraction)')
    """
    base = name.removesuffix("_std")
    stem = base.rstrip("_0123456789")
    suffix = base[len(stem) :]
    text = _PRETTY.get(stem, stem) + (f" {suffix.lstrip('_')}" if suffix else "")
    if name.endswith("_std"):
        text = f"std of {text}"
    return f"{text} ({units})" if units else text


def new_axes(ax):
    """``ax``, or the axes of a new figure when it is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure().add_subplot()
