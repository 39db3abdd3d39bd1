"""The examples in kernels/ docstrings, run on the installed ``hyperlum.kernels`` modules.

pytest's own doctest collection would import ``kernels/*.py`` under the top-level name
``kernels``, and numba's disk cache would then record that name for cached functions.
"""

import doctest
import importlib

import pytest

MODULES = [
    "compile",
    "precision",
    "powerlaw",
    "powerlaw_cuda",
    "cuda",
    "detect",
    "despike",
    "shapes",
    "shapes.gaussian",
    "shapes.lorentzian",
    "shapes.pseudo_voigt",
    "shapes.emg",
    "backgrounds",
    "backgrounds.polynomial",
    "backgrounds.power_law",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"hyperlum.kernels.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
