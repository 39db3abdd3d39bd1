"""Codes and sizes shared by the kernels and the Python layer."""

from typing import NamedTuple

from hyperlum.kernels.backgrounds import BACKGROUNDS as _BACKGROUND_MODELS

MAX_PEAKS = 4
#: Most parameters of one peak (a shape has 3 or 4: :mod:`hyperlum.kernels.shapes`).
MAX_PEAK_PARAMS = 4
#: Most background terms (a cubic polynomial).
MAX_BACKGROUND = 4
MAX_PARAMS = MAX_PEAK_PARAMS * MAX_PEAKS + MAX_BACKGROUND
# scratch vectors of MAX_PARAMS per pixel: g, g_new, p_trial, delta, order, p, R, F (the model
# on a block of channels)
N_VECTORS = 8
# scratch MAX_PARAMS x B matrices per pixel (B >= MAX_PARAMS channels per block): H, H_new,
# L, C (the Gaussians' recurrence chains, one per column)
N_MATRICES = 4
# rows of the normal-equation tiles' scratch (of type TILE): weights, weighted residuals and
# the derivatives of a block of channels, MAX_PARAMS rows
N_TILE_ROWS = MAX_PARAMS + 2

#: Background name -> number of its parameters (the choices of ``background=``).
BACKGROUNDS = {name: n for name, (_, n) in _BACKGROUND_MODELS.items()}
ESTIMATORS = {"lse": 0, "mle": 1}
LSE = 0
MLE = 1

# Per-pixel fit states (Gpufit's, plus bad input).
CONVERGED = 0
MAX_ITERATIONS = 1
SINGULAR = 2
BAD_INPUT = 3
STATES = {
    CONVERGED: "converged",
    MAX_ITERATIONS: "max_iterations",
    SINGULAR: "singular",
    BAD_INPUT: "bad_input",
}

SQRT_2PI = 2.5066282746310002
FWHM_PER_SIGMA = 2.3548200450309493
EXP_CUTOFF = 75.0  # (x - c)^2 / sigma^2 beyond which a Gaussian is taken as 0 (exp(-37.5) ~ 5e-17)
MLE_FLOOR = 1e-30  # smallest model value used in the Poisson likelihood


def n_params(n_peaks, n_background, peak_params=3):
    """Number of fitted parameters: ``peak_params`` per peak (3: the Gaussian), then the
    background's."""
    return peak_params * n_peaks + n_background


class OutputRows(NamedTuple):
    """Where each quantity starts among the rows of the kernels' output (one column per pixel).

    The one definition of the layout that :func:`hyperlum.kernels.pixel.fit_pixel` writes.
    """

    #: The ``m`` parameters: ``N_PARAMS`` per peak (sorted by centre), then the background's.
    params: int
    #: Their standard deviations.
    stds: int
    #: The area's standard deviation, one row per peak.
    area_std: int
    #: The FWHM's standard deviation, one row per peak.
    fwhm_std: int
    #: The reduced chi-square (for the Poisson MLE, the deviance per degree of freedom).
    chisq: int
    #: The fit state (:data:`STATES`).
    state: int
    #: The iterations taken.
    iterations: int
    #: The number of rows.
    total: int


def output_rows(n_peaks, n_background, peak_params=3):
    """The row layout (:class:`OutputRows`) of ``n_peaks`` peaks of ``peak_params``
    parameters over a background of ``n_background`` terms.

    Examples
    --------
    >>> rows = output_rows(1, 1)  # one Gaussian over a constant: 4 parameters
    >>> rows.area_std, rows.fwhm_std, rows.state, rows.total
    (8, 9, 11, 13)
    """
    m = n_params(n_peaks, n_background, peak_params)
    end = 2 * m + 2 * n_peaks
    return OutputRows(0, m, 2 * m, 2 * m + n_peaks, end, end + 1, end + 2, end + 3)


def n_outputs(n_peaks, n_background, peak_params=3):
    """Rows of the kernels' output (:func:`output_rows`): params, their stds, area and FWHM
    stds per peak, reduced chi2, state, iterations."""
    return output_rows(n_peaks, n_background, peak_params).total
