"""The model of one pixel: ``npk`` peaks of one shape plus a background.

Parameters of a pixel are laid out as ``[peak 1, ..., peak npk, background]``: ``NP`` per peak
(the shape's ``N_PARAMS``: amplitude, centre, width, then the shape's own), then the
background's terms (see :mod:`hyperlum.kernels.backgrounds`), whose reference position
``xref`` is the middle of the fitted range. ``NP``, ``peak_value`` and the background's
functions are those of the model being compiled (:func:`hyperlum.kernels.compile.jit_model`);
as plain Python, a Gaussian with a polynomial background.
"""

from hyperlum.kernels.backgrounds.polynomial import background_value
from hyperlum.kernels.shapes.gaussian import N_PARAMS as NP
from hyperlum.kernels.shapes.gaussian import peak_value


def peaks_value(x, p, npk):
    """Sum at ``x`` of the first ``npk`` peaks of ``p``."""
    f = 0.0
    for k in range(npk):
        f += peak_value(x, p, NP * k)
    return f


def model_value(x, xref, p, npk, nbg):
    """Model value at ``x``: the peaks and the background."""
    return peaks_value(x, p, npk) + background_value(x, xref, p, NP * npk, nbg)


FUNCTIONS = (peaks_value, model_value)
