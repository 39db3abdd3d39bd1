"""hyperlum: fast per-pixel fitting and analysis of hyperspectral CL and EELS spectrum images.

>>> import hyperlum as hl
>>> sorted(n for n in ("fit", "load", "load_result", "FitResult") if hasattr(hl, n))
['FitResult', 'fit', 'load', 'load_result']
"""

from importlib.metadata import PackageNotFoundError, version

from hyperlum.analysis import stats
from hyperlum.analysis.segment import segment
from hyperlum.analysis.stats import hist1d, hist2d, region_stats
from hyperlum.fitting.fit import fit
from hyperlum.fitting.result import FitResult, load_result
from hyperlum.io.loader import load
from hyperlum.preprocess import cl, eels
from hyperlum.viz.explore import explore

try:
    __version__ = version("hyperlum")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "FitResult",
    "cl",
    "eels",
    "explore",
    "fit",
    "hist1d",
    "hist2d",
    "load",
    "load_result",
    "region_stats",
    "segment",
    "stats",
    "__version__",
]
