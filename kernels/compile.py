"""Compile the shared plain-Python maths with one decorator (CPU ``njit`` or CUDA device jit).

The plain functions call each other by their global names. :func:`jit_functions` rebuilds
each function over a copy of its module's globals in which those names point at the already
compiled versions, then applies the decorator, in dependency order. The maths therefore exist
once, as plain functions, and are compiled for every target from that one source.

A model is a (shape, background) pair: :func:`jit_model` compiles the shape's functions and
the background's under the generic names the loop calls (``peaks_block``, ``peak_start``,
``background_point``, ...), with the shape's parameter count ``NP`` (and its own constants,
e.g. the EMG's ``SIDE``) bound as compile-time constants, then the generic loop over them.

Each function is compiled in a working precision, float64 or float32, from the same source
(:mod:`hyperlum.kernels.precision`).
"""

import types

from hyperlum.kernels import estimators, guess, lm, models, pixel
from hyperlum.kernels.backgrounds import MODULES as BACKGROUND_MODULES
from hyperlum.kernels.backgrounds import polynomial
from hyperlum.kernels.precision import FLOAT32_VERSIONS, check_precision, real_code, real_namespace
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

#: Functions the CPU inlines in numba's IR, before LLVM sees them (``inline="always"``): LLVM
#: left some of their calls as calls (the starting values' window sums in their loops: 6x the
#: time of the whole starting values, measured), each taking and dropping a reference count
#: per array argument.
CPU_INLINE = (guess.slide, guess.window_sum, guess.scan, guess.smoothed_max)

#: Every shared function of the Gaussian with a polynomial background, callees first: the
#: model the plain modules name by default.
SHARED = (*gaussian.FUNCTIONS, *polynomial.FUNCTIONS, *GENERIC)


def jit_functions(functions, decorator, constants=None, tag=None, precision="float64"):
    """Compile plain ``functions`` (callees before callers) with ``decorator``.

    Each function is rebuilt over a copy of its module's globals in which the names of the
    functions compiled before it point at their compiled versions, and ``constants`` (name ->
    value) are bound; for ``precision="float32"`` its float literals and float constants are
    float32 (see :mod:`hyperlum.kernels.precision`).

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
    precision : {"float64", "float32"}
        The working precision: the type of every float the functions compute with.

    Returns
    -------
    dict
        Function name to compiled function.

    Examples
    --------
    >>> import numba, numpy as np
    >>> def half(y):
    ...     return float(y) * 0.5
    >>> fns = jit_functions([half], numba.njit, precision="float32")
    >>> fns["half"](np.uint16(3))
    1.5
    >>> fns["half"].nopython_signatures[0].return_type  # computed in float32
    float32
    """
    check_precision(precision)
    compiled = {}
    for plain in functions:
        fn = FLOAT32_VERSIONS.get(plain, plain) if precision == "float32" else plain
        namespace = dict(fn.__globals__)
        namespace.update(constants or {})
        real_namespace(namespace, precision)
        namespace.update(compiled)
        code = fn.__code__
        if precision == "float32":
            code = real_code(code, namespace["REAL"])
        rebuilt = types.FunctionType(code, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
        rebuilt.__qualname__ = f"{fn.__qualname__}_{tag}" if tag else fn.__qualname__
        rebuilt.__module__ = fn.__module__
        compiled[fn.__name__] = decorator(rebuilt)
    return compiled


def model_constants(shape):
    """The compile-time constants of the shape ``shape``'s model: ``NP``, ``FWHM_PER_WIDTH``
    and the registry entry's own."""
    s = get_shape(shape)
    return {"NP": s.n_params, "FWHM_PER_WIDTH": s.module.FWHM_PER_WIDTH, **s.constants}


def jit_model(
    decorator, shape="gaussian", background="polynomial", precision="float64", *, constants=None
):
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
    precision : {"float64", "float32"}
        The working precision (see :func:`jit_functions`).
    constants : dict, optional
        Module constants bound otherwise for this target (the CUDA driver's
        ``{"SCAN_SEGMENTS": 1}``, :data:`hyperlum.kernels.guess.SCAN_SEGMENTS`).

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
    >>> f32 = jit_model(lambda f: f, "lorentzian", precision="float32")
    >>> type(f32["peaks_value"](np.float32(1.0), p.astype(np.float32), 1))
    <class 'numpy.float32'>
    """
    if shape not in SHAPES:
        raise ValueError(f"shape={shape!r} is not one of {', '.join(map(repr, SHAPES))}")
    functions = (
        *SHAPES[shape][0].FUNCTIONS,
        *BACKGROUND_MODULES[background].FUNCTIONS,
        *GENERIC,
    )
    tag = f"{shape}_{background}" + ("" if precision == "float64" else f"_{precision}")
    bound = {**model_constants(shape), **(constants or {})}
    return jit_functions(functions, decorator, bound, tag, precision)


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
