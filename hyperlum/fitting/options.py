"""The options of a fit, defined once: their defaults, choices and bounds.

:func:`hyperlum.fit`, :func:`hyperlum.fitting.fit.plan`, the engine
(:mod:`hyperlum.fitting.engine`) and ``hyperlum fit`` all take them from here, so a default
changed here changes everywhere, help texts included.

Examples
--------
>>> DEFAULTS.peaks, DEFAULTS.shape, DEFAULTS.max_iterations
(1, 'gaussian', 50)
>>> CHOICES["estimator"]
('lse', 'mle')
>>> LIMITS["peaks"]
(1, 4)
"""

from dataclasses import dataclass

from hyperlum.fitting._backend import DEVICES
from hyperlum.fitting.detect import FALSE_ALARM
from hyperlum.kernels.constants import BACKGROUNDS, ESTIMATORS, MAX_PEAKS
from hyperlum.kernels.precision import PRECISIONS
from hyperlum.kernels.shapes import SHAPES


@dataclass(frozen=True)
class FitOptions:
    """The default of each option of :func:`hyperlum.fit` (see there for their meaning)."""

    peaks: int = 1
    max_peaks: int = 2
    shape: str = "gaussian"
    background: str = "constant"
    estimator: str = "lse"
    #: Working precision of the kernels; None: float32 on a GPU, float64 on the CPU.
    precision: str | None = None
    device: str = "auto"
    max_iterations: int = 50
    tolerance: float = 1e-7
    despike: bool = True
    #: Whether the spike filter takes the spectra as counts (its Poisson noise floor): True,
    #: False, or None to decide per spectrum (whole numbers of at least 0).
    counts: bool | None = None
    false_alarm: float = FALSE_ALARM
    #: Bytes of float64 spectra per chunk on the CPU.
    chunk_bytes: int = 32 * 2**20
    #: The same on the GPU: a chunk must hold enough pixels to fill it (131,072 pixels at 1024
    #: channels); the CUDA launcher pipelines such a chunk in slabs.
    gpu_chunk_bytes: int = 2**30
    #: Seconds a dask scheduler address has to answer.
    scheduler_timeout: float = 10.0


#: The defaults.
DEFAULTS = FitOptions()

#: The allowed values of the options that name a choice.
CHOICES = {
    "shape": tuple(SHAPES),
    "background": tuple(BACKGROUNDS),
    "estimator": tuple(ESTIMATORS),
    "precision": tuple(PRECISIONS),
    "device": DEVICES,
}

#: Inclusive bounds of the integer options.
LIMITS = {
    "peaks": (1, MAX_PEAKS),
    "max_peaks": (1, MAX_PEAKS),
    "max_iterations": (1, 10_000),
}
