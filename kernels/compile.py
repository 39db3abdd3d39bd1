"""Compile the shared plain-Python maths with one decorator (CPU ``njit`` or CUDA device jit).

The plain functions call each other by their global names. :func:`jit_all` rebuilds each
function over a copy of its module's globals in which those names point at the already
compiled versions, then applies the decorator, in dependency order. The maths therefore exist
once, as plain functions, and are compiled for every target from that one source.
"""

import types

from hyperlum.kernels import guess, lm, models, pixel

#: The modules holding the shared maths.
MODULES = (models, lm, guess, pixel)

#: The shared functions, callees before callers.
SHARED = (
    models.model_value,
    models.gaussians_block,
    lm.log_positive,
    lm.accumulate,
    lm.cholesky,
    lm.cho_solve,
    lm.constrain,
    lm.step_is_small,
    guess.residual,
    guess.half_edge,
    guess.guess,
    pixel.uniform_step,
    pixel.fit_pixel,
)


def jit_functions(functions, decorator):
    """Compile plain ``functions`` (callees before callers) with ``decorator``.

    Each function is rebuilt over a copy of its module's globals in which the names of the
    functions compiled before it point at their compiled versions.

    Parameters
    ----------
    functions : sequence of function
        Plain Python functions, each calling only functions listed before it.
    decorator : callable
        Applied to each rebuilt function, e.g. ``numba.njit(cache=True)`` or
        ``numba.cuda.jit(device=True)``.

    Returns
    -------
    dict
        Function name to compiled function.
    """
    compiled = {}
    for fn in functions:
        namespace = dict(fn.__globals__)
        namespace.update(compiled)
        rebuilt = types.FunctionType(
            fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__
        )
        rebuilt.__qualname__ = fn.__qualname__
        rebuilt.__module__ = fn.__module__
        compiled[fn.__name__] = decorator(rebuilt)
    return compiled


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
    ['accumulate', 'cho_solve', 'cholesky']
    """
    return jit_functions(SHARED, decorator)
