"""Compile the shared plain-Python maths with one decorator (CPU ``njit`` or CUDA device jit).

The plain functions call each other by their global names. :func:`jit_functions` rebuilds
each function over a copy of its module's globals in which those names point at the already
compiled versions, then applies the decorator, in dependency order. The maths therefore exist
once, as plain functions, and are compiled for every target from that one source.

A model is a (shape, background) pair: :func:`jit_model` compiles the shape's functions and
the background's under the generic names the loop calls (``peaks_block``, ``peak_start``,
``background_point``, ...), with the shape's parameter count ``NP`` (and its own constants,
e.g. the EMG's ``SIDE``) bound as compile-time constants, then the generic loop over them.
"""

import types

from hyperlum.kernels import estimators, guess, lm, models, pixel
from hyperlum.kernels.backgrounds import MODULES as BACKGROUND_MODULES
from hyperlum.kernels.backgrounds import polynomial
from hyperlum.kernels.shapes import SHAPES, gaussian, get_shape

#: The modules holding the shape- and background-independent maths.
MODULES = (estimators, models, lm, guess, pixel)

#: The generic functions, callees before callers (after a shape's and a background's).
GENERIC = (
    *estimators.FUNCTIONS,
    *models.FUNCTIONS,
    lm.accumulate,
    lm.cholesky,
    lm.cho_solve,
    lm.constrain,
    lm.step_is_small,
    *guess.FUNCTIONS,
    pixel.uniform_step,
    pixel.fit_pixel,
)

#: Every shared function of the Gaussian with a polynomial background, callees first: the
#: model the plain modules name by default.
SHARED = (*gaussian.FUNCTIONS, *polynomial.FUNCTIONS, *GENERIC)


def jit_functions(functions, decorator, constants=None, tag=None):
    """Compile plain ``functions`` (callees before callers) with ``decorator``.

    Each function is rebuilt over a copy of its module's globals in which the names of the
    functions compiled before it point at their compiled versions, and ``constants`` (name ->
    value) are bound.

    Parameters
    ----------
    functions : sequence of function
        Plain Python functions, each calling only functions listed before it.
    decorator : callable
        Applied to each rebuilt function, e.g. ``numba.njit(nogil=True)`` or
        ``numba.cuda.jit(device=True)``.
    constants : dict, optional
        Global names bound in every rebuilt function (compile-time constants for numba).
    tag : str, optional
        Appended to each function's qualified name (``accumulate_lorentzian_polynomial``):
        the models' compiled functions stay apart in profiles and numba's caches.

    Returns
    -------
    dict
        Function name to compiled function.
    """
    compiled = {}
    for fn in functions:
        namespace = dict(fn.__globals__)
        namespace.update(constants or {})
        namespace.update(compiled)
        rebuilt = types.FunctionType(
            fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__
        )
        rebuilt.__qualname__ = f"{fn.__qualname__}_{tag}" if tag else fn.__qualname__
        rebuilt.__module__ = fn.__module__
        compiled[fn.__name__] = decorator(rebuilt)
    return compiled


def model_constants(shape):
    """The compile-time constants of the shape ``shape``'s model: ``NP``, ``FWHM_PER_WIDTH``
    and the registry entry's own."""
    s = get_shape(shape)
    return {"NP": s.n_params, "FWHM_PER_WIDTH": s.module.FWHM_PER_WIDTH, **s.constants}


def jit_model(decorator, shape="gaussian", background="polynomial"):
    """Compile the one-pixel fit of peaks of ``shape`` over a ``background`` with ``decorator``.

    Parameters
    ----------
    decorator : callable
        See :func:`jit_functions`.
    shape : str
        A key of :data:`hyperlum.kernels.shapes.SHAPES`.
    background : str
        A background kernel module: a key of :data:`hyperlum.kernels.backgrounds.MODULES`
        (``"polynomial"``, ``"power_law"``).

    Returns
    -------
    dict
        Function name to compiled function (``fit_pixel``, ``uniform_step``, ...).

    Examples
    --------
    >>> import numpy as np
    >>> fns = jit_model(lambda f: f, "lorentzian")  # plain Python
    >>> p = np.array([2.0, 0.0, 1.0])
    >>> float(fns["peaks_value"](1.0, p, 1))  # a Lorentzian of height 2 at one HWHM
    1.0
    """
    if shape not in SHAPES:
        raise ValueError(f"shape={shape!r} is not one of {', '.join(map(repr, SHAPES))}")
    functions = (
        *SHAPES[shape][0].FUNCTIONS,
        *BACKGROUND_MODULES[background].FUNCTIONS,
        *GENERIC,
    )
    return jit_functions(functions, decorator, model_constants(shape), f"{shape}_{background}")


def jit_all(decorator):
    """Compile every shared function of the Gaussian fit with ``decorator``.

    Parameters
    ----------
    decorator : callable
        See :func:`jit_functions`.

    Returns
    -------
    dict
        Function name to compiled function.

    Examples
    --------
    >>> fns = jit_all(lambda f: f)  # the identity decorator gives plain Python functions
    >>> sorted(fns)[:3]
    ['accumulate', 'background_point', 'background_start']
    """
    return jit_functions(SHARED, decorator)
