"""Write a :class:`~hyperlum.fitting.result.FitResult` to one HyperSpy file and read it back."""

import json
import os
import warnings

import numpy as np

from hyperlum.io import outputs

_EXTENSIONS = (".zspy", ".hspy")


def _check_extension(path):
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in _EXTENSIONS:
        raise ValueError(f"result files are .zspy or .hspy, got {str(path)!r}")


def save_result(result, path, *, overwrite=False):
    """Write ``result`` to ``path`` (``.zspy`` or ``.hspy``); see :meth:`FitResult.save`.

    The file is written under a temporary name and renamed into place; ``overwrite=True``
    replaces the file ``path`` or a folder hyperlum wrote, never the input of the fit nor a
    folder of the user's.
    """
    import hyperspy.api as hs

    _check_extension(path)
    outputs.check_not_input([path], [result.options.get("input")], option="path")
    known = overwrite  # a file named in the call may be replaced: the caller says so
    outputs.check_replaceable(path, overwrite=overwrite, option="overwrite=True", known=known)
    res = result.compute()
    names = res.names
    stack = np.stack([np.asarray(res.maps[n], dtype=np.float64) for n in names])
    axes = [{"name": "map", "size": len(names), "navigate": True}] + [
        dict(a, navigate=False) for a in res.nav_axes
    ]
    sig = hs.signals.BaseSignal(stack, axes=axes)
    sig.metadata.General.title = res.title or "hyperlum fit"
    sig.metadata.set_item(
        "hyperlum",
        {
            "maps": json.dumps(names),
            "dtypes": json.dumps([str(np.asarray(res.maps[n]).dtype) for n in names]),
            "options": json.dumps(res.options),
            "signal_axis": json.dumps(res.signal_axis),
        },
    )
    tmp = outputs.temporary(path)
    if tmp.exists():  # left by a killed process that had this pid
        outputs.remove(tmp)
    try:
        with warnings.catch_warnings():  # said by RosettaSciIO's zspy writer on every save
            warnings.filterwarnings(
                "ignore", "The NestedDirectoryStore is deprecated", FutureWarning
            )
            sig.save(str(tmp), overwrite=True)
        outputs.publish(tmp, path, known=known)
    except BaseException:
        if tmp.exists():
            outputs.remove(tmp)
        raise


def is_result(path):
    """True when ``path`` is a HyperSpy file holding hyperlum's result metadata."""
    import hyperspy.api as hs

    from hyperlum.io.loader import quiet

    try:
        with quiet():
            sig = hs.load(str(path), lazy=True)
        return sig.metadata.get_item("hyperlum") is not None
    except Exception:  # not a HyperSpy file, or a damaged one: not known to be ours
        return False


def read_result(path):
    """Read maps written by :meth:`FitResult.save`: the keyword arguments of ``FitResult``.

    :func:`hyperlum.load_result` turns them into a :class:`~hyperlum.fitting.result.FitResult`.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.zspy`` or ``.hspy`` file written by hyperlum.

    Returns
    -------
    dict
        ``maps``, ``nav_axes``, ``options``, ``signal_axis`` and ``title``.
    """
    import hyperspy.api as hs

    _check_extension(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such result file: {path}")
    try:
        sig = hs.load(str(path))
    except Exception as err:
        raise ValueError(f"{path} could not be read as a HyperSpy file ({err})") from err
    meta = sig.metadata.get_item("hyperlum")
    if meta is None:
        raise ValueError(f"{path} is not a hyperlum result (no hyperlum metadata)")
    names = json.loads(meta.maps)
    dtypes = json.loads(meta.dtypes)
    data = np.asarray(sig.data)
    maps = {n: data[i].astype(dt) for i, (n, dt) in enumerate(zip(names, dtypes, strict=True))}
    nav_axes = []
    for ax in reversed(sig.axes_manager.signal_axes):
        d = ax.get_axis_dictionary()
        d["navigate"] = False
        nav_axes.append(d)
    return {
        "maps": maps,
        "nav_axes": nav_axes,
        "options": json.loads(meta.options),
        "signal_axis": json.loads(meta.signal_axis),
        "title": sig.metadata.General.title,
    }
