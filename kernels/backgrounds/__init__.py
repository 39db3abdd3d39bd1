"""Backgrounds of the fit model: polynomials in ``x - xref`` (none to cubic) and a power law.

Each module gives, as plain Python functions compiled per model (see
:mod:`hyperlum.kernels.compile`): ``background_point`` (value and derivatives at a channel),
``background_value``, ``background_start`` (starting values from the spectrum, with the mean
counts of its two ends at hand) and ``background_step_small``; and for numpy: ``evaluate`` and
``NAMES`` (the maps).
``xref`` is the middle of the fitted range.

:data:`BACKGROUNDS` names every choice of ``hl.fit(..., background=...)`` and of the command
line's ``--background``: the kernel module and the number of parameters.
"""

from hyperlum.kernels.backgrounds import polynomial, power_law

#: Background name -> (kernel module name, number of parameters).
BACKGROUNDS = {
    "none": ("polynomial", 0),
    "constant": ("polynomial", 1),
    "linear": ("polynomial", 2),
    "poly2": ("polynomial", 3),
    "poly3": ("polynomial", 4),
    "powerlaw": ("power_law", 2),
}
MODULES = {"polynomial": polynomial, "power_law": power_law}


def background_module(name):
    """The kernel module of the background ``name`` (a key of :data:`BACKGROUNDS`)."""
    return MODULES[BACKGROUNDS[name][0]]


def map_names(name):
    """Names of the maps of the background ``name``'s parameters.

    Examples
    --------
    >>> map_names("linear"), map_names("powerlaw")
    (('background', 'background_slope'), ('background', 'background_exponent'))
    """
    kind, n = BACKGROUNDS[name]
    return MODULES[kind].NAMES[:n]
