"""The working precision of the compiled maths: float64, or float32 from the same source.

numba types a Python float literal as float64, a module-level float as float64, and an integer
times a float32 as float64, so float32 arrays alone would still be computed in float64. For
float32, :func:`real_namespace` and :func:`real_code` rebuild a plain function so that it
computes in float32: its float literals (those of nested code too) become ``numpy.float32``
values; in its globals, the module-level floats become float32, ``float`` is ``numpy.float32``
(``float(y[i])`` reads a count in the working precision), ``math`` is :data:`math32` (whose
``inf`` and ``nan`` are float32) and ``REAL`` is the working type (scratch arrays, casts).
A ``TILE`` left unbound (``None``) becomes the working type too (see
:data:`hyperlum.kernels.lm.TILE`).
A function that works on the bits of a float64 gets its float32 version
(:data:`FLOAT32_VERSIONS`).
"""

import math
import types

import numpy as np

from hyperlum.kernels import estimators

#: The working precisions by name: the type of the floats the maths compute with.
PRECISIONS = {"float32": np.float32, "float64": np.float64}

#: ``math`` as the float32 maths see it: the same functions, ``inf`` and ``nan`` in float32.
math32 = types.ModuleType("math32")
math32.__dict__.update({k: getattr(math, k) for k in dir(math) if not k.startswith("_")})
math32.inf = np.float32(math.inf)
math32.nan = np.float32(math.nan)


def check_precision(precision):
    """``precision`` if it names a working precision (a key of :data:`PRECISIONS`).

    Examples
    --------
    >>> check_precision("float32")
    'float32'
    >>> check_precision("half")
    Traceback (most recent call last):
    ...
    ValueError: precision='half' is not one of 'float32', 'float64'
    """
    if precision not in PRECISIONS:
        names = ", ".join(map(repr, PRECISIONS))
        raise ValueError(f"precision={precision!r} is not one of {names}")
    return precision


def real_code(code, real):
    """``code`` with its float literals (and those of nested code) as ``real`` values.

    Examples
    --------
    >>> def f():
    ...     return 0.5
    >>> real_code(f.__code__, np.float32).co_consts[-1]
    np.float32(0.5)
    """
    consts = tuple(
        real(c) if type(c) is float else real_code(c, real) if isinstance(c, types.CodeType) else c
        for c in code.co_consts
    )
    return code.replace(co_consts=consts)


def real_namespace(namespace, precision):
    """The globals ``namespace`` (a dict, updated) as a function computing in ``precision``
    sees them (see the module's docstring)."""
    real = PRECISIONS[precision]
    namespace["REAL"] = real
    if "TILE" in namespace and namespace["TILE"] is None:
        namespace["TILE"] = real
    if real is not np.float64:
        namespace.update({k: real(v) for k, v in namespace.items() if type(v) is float})
        namespace["float"] = real
        if namespace.get("math") is math:
            namespace["math"] = math32
    return namespace


def log_positive(z):
    """Natural logarithm of a positive normal float32 ``z``, to about 1e-7 relative: the float32
    version of :func:`hyperlum.kernels.estimators.log_positive` (bits of a float32, the odd
    series of ``atanh`` to degree 9).

    Examples
    --------
    >>> z = np.float32([1e-30, 0.3, 1.0, 7.5, 65535.0])
    >>> bool(np.allclose([log_positive(v) for v in z], np.log(z.astype(float)), rtol=2e-7))
    True
    """
    b = np.float32(z).view(np.uint32)
    # exponent: its 8 bits placed in the mantissa of 2^23, exact without an int conversion
    e = np.uint32((b >> np.uint32(23)) | np.uint32(0x4B000000)).view(np.float32)
    e -= np.float32(8388608.0 + 127.0)
    mant = np.uint32((b & np.uint32(0x007FFFFF)) | np.uint32(0x3F800000))
    mv = mant.view(np.float32)
    if mv > np.float32(1.4142135623730951):
        mv *= np.float32(0.5)
        e += np.float32(1.0)
    s = (mv - np.float32(1.0)) / (mv + np.float32(1.0))
    s2 = s * s
    t = (((np.float32(1 / 9) * s2 + np.float32(1 / 7)) * s2 + np.float32(1 / 5)) * s2) + np.float32(
        1 / 3
    )
    t = t * s2 + np.float32(1.0)
    return e * np.float32(0.6931471805599453) + np.float32(2.0) * s * t


#: Functions that compute on the bits of a float64, and their float32 versions.
FLOAT32_VERSIONS = {estimators.log_positive: log_positive}
