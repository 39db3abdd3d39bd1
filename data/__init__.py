"""Small data files shipped with hyperlum (provenance in ``SOURCES.md`` next to them).

>>> from hyperlum import data
>>> data.path("lumispydemos-Test-linescan_InGaAs-NWs.dm4").name
'lumispydemos-Test-linescan_InGaAs-NWs.dm4'
"""

from pathlib import Path

_HERE = Path(__file__).parent


def files():
    """Names of the data files shipped with hyperlum."""
    return sorted(
        p.name for p in _HERE.iterdir() if p.suffix not in (".py", ".pyc") and p.is_file()
    )


def path(name):
    """Path of a shipped data file.

    Parameters
    ----------
    name : str
        File name, one of :func:`files`.

    Returns
    -------
    pathlib.Path
    """
    p = _HERE / str(name)
    if not p.is_file() or p.suffix == ".py":
        raise FileNotFoundError(
            f"no shipped data file named {name!r}; the files are: {', '.join(files())}"
        )
    return p
