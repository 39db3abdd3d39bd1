"""Numba kernels of hyperlum: the only numba code of the package.

The maths (models, Levenberg-Marquardt step, starting values, one-pixel fit) are plain Python
functions in :mod:`~hyperlum.kernels.models`, :mod:`~hyperlum.kernels.lm`,
:mod:`~hyperlum.kernels.guess` and :mod:`~hyperlum.kernels.pixel`. They allocate nothing and are
compiled twice from the same source by :func:`~hyperlum.kernels.compile.jit_all`: with
``numba.njit`` for the CPU driver (:mod:`~hyperlum.kernels.cpu`) and with
``numba.cuda.jit(device=True)`` for the CUDA kernels (:mod:`~hyperlum.kernels.cuda`).
"""
