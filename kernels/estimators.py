"""The estimators behind one seam, as in Gpufit: what each channel adds to the objective, the
weight of the normal matrix and the weighted residual of the gradient.

* least squares (``LSE``): objective ``sum (y - f)^2``, normal matrix ``J^T J``, right-hand
  side ``J^T (y - f)``;
* Poisson maximum likelihood (``MLE``): the deviance ``2 sum(f - y + y ln(y / f))``, normal
  matrix the Fisher information ``J^T diag(1/f) J`` (Fisher scoring), right-hand side
  ``J^T (y / f - 1)``. Counts may be zero; negative counts count as zero.

:func:`~hyperlum.kernels.lm.accumulate` runs one pass over the channels with these terms; the
estimator is a compile-time constant there, so each kernel holds the code of one only.
"""

import numpy as np

from hyperlum.kernels.constants import LSE, MLE_FLOOR


def channel_terms(est, yi, f):
    """``(objective, weight, residual)`` of one channel of counts ``yi`` and model ``f``.

    ``weight`` is the squared residual for least squares (the middle of the sandwich
    covariance; the normal matrix itself is unweighted), ``1 / f`` for the Poisson MLE (whose
    logarithm term comes apart, :func:`deviance_log`, so that this loop stays branch-free).
    """
    if est == LSE:
        r = yi - f
        w = r * r
        return w, w, r
    yi = max(yi, 0.0)
    fc = max(f, MLE_FLOOR)
    w = 1.0 / fc
    return 2.0 * (fc - yi), w, yi * w - 1.0


def weighted(est):
    """True when the normal matrix is weighted by the channel weights (the Poisson MLE)."""
    return est != LSE


def deviance_log(yi, w):
    """The logarithm term ``2 y ln(y / f)`` of the deviance (``w = 1 / f``; 0 where ``y <= 0``)."""
    return 2.0 * yi * log_positive(yi * w if yi > 0.0 else 1.0)


def log_positive(z):
    """Natural logarithm of a positive normal number ``z``, to 6e-11 relative.

    Plain arithmetic on the bits (exponent and mantissa, then the odd series of
    ``atanh((m - 1) / (m + 1))`` to degree 11 on ``[sqrt(1/2), sqrt(2))``), so a loop over
    channels vectorises; ``math.log`` is a scalar library call on a CPU (~10 ns per channel).
    Degree 11, not 17 (3e-16): the Poisson deviance's logarithms cost 9% less a pass (5.7
    instead of 6.2 ns per channel), and its error, a smooth function of ``z`` (6e-11 of a
    deviance of ~1000 over 1024 channels), cancels in the comparisons of nearby points the
    fit makes: on 2048 pixels of the benchmark cube the parameters and their standard
    deviations came out the same to the last bit, the reduced chi-square within 4e-11.
    """
    b = np.float64(z).view(np.uint64)
    # exponent: its 11 bits placed in the mantissa of 2^52, exact without an int conversion
    e = np.uint64((b >> np.uint64(52)) | np.uint64(0x4330000000000000)).view(np.float64)
    e -= 4503599627370496.0 + 1023.0
    mant = np.uint64((b & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(0x3FF0000000000000))
    mv = mant.view(np.float64)
    if mv > 1.4142135623730951:
        mv *= 0.5
        e += 1.0
    s = (mv - 1.0) / (mv + 1.0)
    s2 = s * s
    t = 1.0 / 11.0
    for k in range(9, 0, -2):
        t = t * s2 + 1.0 / k
    return e * 0.6931471805599453 + 2.0 * s * t


FUNCTIONS = (log_positive, channel_terms, weighted, deviance_log)
