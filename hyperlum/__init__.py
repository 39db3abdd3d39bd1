"""hyperlum: fast per-pixel fitting and analysis of hyperspectral CL and EELS spectrum images.

>>> import hyperlum as hl
>>> sorted(n for n in ("fit", "load", "load_result", "FitResult") if hasattr(hl, n))
['FitResult', 'fit', 'load', 'load_result']
"""

from importlib.metadata import PackageNotFoundError, version

from hyperlum import cl, eels, stats
from hyperlum.explore import explore
from hyperlum.fit import fit
from hyperlum.io import load
from hyperlum.result import FitResult
from hyperlum.result_io import load_result
from hyperlum.segment import segment
from hyperlum.stats import hist1d, hist2d, region_stats

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
