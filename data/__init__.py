"""Small real datasets shipped with hyperlum (see ``SOURCES.md`` in this folder)."""

from importlib.resources import files


def path(name):
    """Return the filesystem path of a shipped dataset.

    Parameters
    ----------
    name : str
        File name inside the package's data folder.

    Returns
    -------
    pathlib.Path
        Path to the file.

    Examples
    --------
    >>> from hyperlum.data import path
    >>> path("lumispydemos-Test-linescan_InGaAs-NWs.dm4").name
    'lumispydemos-Test-linescan_InGaAs-NWs.dm4'
    """
    p = files(__name__) / name
    if not p.is_file():
        raise FileNotFoundError(f"no shipped dataset named {name!r}")
    return p
