"""Kernel pieces that shapes share: constraints and step sizes of the common parameters, and a
block of channels evaluated one channel at a time.

Every shape's first three parameters are an amplitude (height, or a height-like scale), a
centre and a width (in axis units). The functions here are plain Python, compiled per model
(see :mod:`hyperlum.kernels.compile`): in :func:`peaks_block` (the block of the shapes that
evaluate one channel at a time) the names ``peak_point`` and ``NP`` are those of the shape
being compiled.
"""

NP = 3  # parameters per peak; bound to the shape's N_PARAMS when compiled


def constrain_core(pt, p, i, xlo, xhi, wmin, wmax):
    """Amplitude > 0, centre in ``[xlo, xhi]``, ``wmin <= width <= wmax`` for the peak at ``i``.

    A trial value that leaves the box moves part of the way from the current value ``p``
    towards the bound instead, so that the search can still approach it.
    """
    if not pt[i] > 0.0:
        pt[i] = 0.1 * p[i]
    ic = i + 1
    if pt[ic] < xlo:
        pt[ic] = 0.5 * (p[ic] + xlo)
    elif pt[ic] > xhi:
        pt[ic] = 0.5 * (p[ic] + xhi)
    iw = i + 2
    if pt[iw] < wmin:
        pt[iw] = max(0.5 * p[iw], wmin)
    elif pt[iw] > wmax:
        pt[iw] = 0.5 * (p[iw] + wmax)


def step_small_core(delta, p, i, tol):
    """True when amplitude (against its value), centre and width (against the width) moved by
    less than ``tol``."""
    w = p[i + 2]
    if abs(delta[i]) > tol * abs(p[i]):
        return False
    return not (abs(delta[i + 1]) > tol * w or abs(delta[i + 2]) > tol * w)


def peaks_block(x, i0, nb, p, npk, D, F, R, h, C):
    """Peaks and their derivatives on channels ``i0 .. i0 + nb - 1``, one channel at a time.

    The shape's ``peak_point(x, p, i, D, j)`` returns the value of the peak at ``p[i]`` and
    writes its derivatives into ``D[i .. i + NP - 1, j]``. The sum of the peaks goes into
    ``F``. ``R``, ``h`` and ``C`` (recurrence scratch of the Gaussian) are not used. Returns
    True: every channel gets contributions (long-tailed shapes have no window).
    """
    xs = x[i0 : i0 + nb]  # indexed from 0: no negative-index check per channel
    for j in range(nb):
        F[j] = 0.0
    for k in range(npk):
        for j in range(nb):
            F[j] += peak_point(xs[j], p, NP * k, D, j)  # noqa: F821 (bound per shape)
    return True


#: The kernel functions of this module every shape lists first in its ``FUNCTIONS``.
CORE = (constrain_core, step_small_core)
