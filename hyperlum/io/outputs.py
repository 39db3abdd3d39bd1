"""Safe outputs: an output never replaces an input, nor anything hyperlum did not write.

Every command that writes (``hyperlum fit``, ``eels``, ``report``, ``demo``) and
:meth:`FitResult.save <hyperlum.fitting.result.FitResult.save>` go through these rules:

- an output that resolves to an input (the same path, the same file through a link, a folder
  holding the input, or a path inside an input folder) is refused, ``--overwrite`` or not;
- ``--overwrite`` replaces only what hyperlum wrote: a folder that carries hyperlum's marker
  file (:data:`MARKER`, written into every folder hyperlum makes), a file listed, unchanged
  since, in the :data:`LEDGER` of its folder (:func:`record`), or a file its caller knows to
  be hyperlum's by its content (a result file carries hyperlum's metadata); anything else
  may be the user's own and is never replaced;
- a new output is written under a temporary name and renamed into place when complete; the
  temporary names of killed runs are found by exact match, never by a pattern made from the
  user's file name (which may hold ``*`` or ``?``).

Examples
--------
>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> src = os.path.join(d, "cube.hspy")
>>> _ = open(src, "w").write("spectra")
>>> check_not_input([src], [src], option="-o")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: -o ... is the input ...; choose another output
>>> user = os.path.join(d, "mine.zspy")
>>> os.mkdir(user)
>>> check_replaceable(user, overwrite=True)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
FileExistsError: ... is a folder that hyperlum did not write; move it away or choose another output
"""

import contextlib
import json
import os
import re
import shutil
from pathlib import Path

MARKER = ".hyperlum-output"
#: The file, in an output folder, that lists the single files hyperlum wrote there (name ->
#: size, modification time and inode at writing): a file changed or replaced since is not
#: hyperlum's any more.
LEDGER = ".hyperlum-files"


def _real(path):
    return Path(os.path.realpath(os.path.abspath(path)))


def _inside(child, parent):
    return child != parent and parent in child.parents


def check_not_input(outputs, inputs, *, option="-o"):
    """Raise ValueError when one of ``outputs`` would write over one of ``inputs``.

    An output clashes with an input when both resolve to the same path (links followed), are
    the same file under two names (a hard link), or one is inside the other (an output folder
    that holds the input, an output inside an input folder).

    Parameters
    ----------
    outputs, inputs : iterable of str or os.PathLike
        Paths the command will write; paths it reads (None entries are skipped).
    option : str
        How the output is named on the command line, for the message.

    Examples
    --------
    >>> check_not_input(["/tmp/a/out.zspy"], ["/tmp/a/in.hspy"])
    >>> check_not_input(["/tmp/a"], ["/tmp/a/in.hspy"], option="-o")
    Traceback (most recent call last):
    ...
    ValueError: -o /tmp/a holds the input /tmp/a/in.hspy; choose another output
    """
    for out in outputs:
        ro = _real(out)
        for inp in inputs:
            if inp is None:
                continue
            ri = _real(inp)
            if ro == ri or _same_file(out, inp):
                what = "is the input"
            elif _inside(ri, ro):
                what = "holds the input"
            elif _inside(ro, ri):
                what = "is inside the input"
            else:
                continue
            raise ValueError(f"{option} {out} {what} {inp}; choose another output")


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _stamp(path):
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _ledger(folder):
    try:
        return json.loads((Path(folder) / LEDGER).read_text())
    except (OSError, ValueError):
        return {}


def record(path):
    """Note in the :data:`LEDGER` of its folder that hyperlum has just written file ``path``.

    Examples
    --------
    >>> import os, tempfile
    >>> f = os.path.join(tempfile.mkdtemp(), "profile.csv")
    >>> _ = open(f, "w").write("distance,value")
    >>> is_ours(f)
    False
    >>> record(f)
    >>> is_ours(f)
    True
    >>> _ = open(f, "w").write("the user's own table")
    >>> is_ours(f)
    False
    """
    p = Path(path)
    book = _ledger(p.parent)
    book[p.name] = _stamp(p)
    tmp = p.parent / f"{LEDGER}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(book, sort_keys=True))
    os.replace(tmp, p.parent / LEDGER)


def is_ours(path):
    """True when hyperlum wrote ``path``: a folder carrying :data:`MARKER`, or a file that the
    :data:`LEDGER` of its folder lists, unchanged since."""
    p = Path(path)
    if p.is_symlink():
        return False
    if p.is_dir():
        return (p / MARKER).is_file()
    if not p.is_file():
        return False
    return _ledger(p.parent).get(p.name) == _stamp(p)


def check_replaceable(path, *, overwrite, option="--overwrite", known=False):
    """Raise FileExistsError unless ``path`` is free, or may be replaced.

    With ``overwrite=True`` a folder or a file may be replaced only when hyperlum wrote it
    (:func:`is_ours`), or, for a file, when the caller has checked by its content that it is
    hyperlum's (``known=True``, e.g. a result file with hyperlum's metadata): the user's own
    files and folders are never replaced. ``option`` names the switch that allows replacing,
    for the message.

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> check_replaceable(os.path.join(d, "new.zspy"), overwrite=False)
    >>> mark(d)
    >>> check_replaceable(d, overwrite=True)
    >>> mine = os.path.join(d, "mine.csv")
    >>> _ = open(mine, "w").write("my table")
    >>> check_replaceable(mine, overwrite=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileExistsError: ...mine.csv is a file that hyperlum did not write; move it away or ...
    """
    p = Path(path)
    if not (p.exists() or p.is_symlink()):
        return
    if not overwrite:
        raise FileExistsError(f"{p} exists; pass {option} to replace it")
    if is_ours(p):
        return
    if p.is_dir() and not p.is_symlink():
        raise FileExistsError(
            f"{p} is a folder that hyperlum did not write; move it away or choose another output"
        )
    if not known:
        raise FileExistsError(
            f"{p} is a file that hyperlum did not write; move it away or choose another output"
        )


def mark(folder):
    """Put hyperlum's marker file into ``folder``, a folder hyperlum has written."""
    (Path(folder) / MARKER).write_text("written by hyperlum; --overwrite may replace it\n")


def temporary(out):
    """A temporary name next to ``out`` with the same extension: ``.NAME.tmp-PID.EXT``."""
    out = Path(out)
    return out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix}")


def leftovers(out, *, extra=()):
    """Temporary names of ``out`` left by killed runs, matched exactly (no glob).

    ``extra`` gives further ``(prefix, suffix)`` pairs: a name ``prefix + PID + suffix``.
    """
    out = Path(out)
    pairs = [(f".{out.stem}.tmp-", out.suffix), (f".{out.name}.old-", ""), *extra]
    rules = [re.compile(re.escape(a) + r"[0-9]+" + re.escape(b)) for a, b in pairs]
    try:
        names = os.listdir(out.parent)
    except OSError:
        return []
    return [out.parent / n for n in sorted(names) if any(r.fullmatch(n) for r in rules)]


def remove(p):
    """Remove a file, link or folder that hyperlum made."""
    p = Path(p)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def publish(tmp, out, *, known=False):
    """Move the finished ``tmp`` to ``out``, replacing an ``out`` that hyperlum wrote.

    A folder is marked as hyperlum's first. The old ``out`` is moved aside before the new one
    takes its name, so that a crash in between leaves one or the other, never neither.
    ``known``: the caller has checked that a file ``out`` is hyperlum's
    (:func:`check_replaceable`).
    """
    tmp, out = Path(tmp), Path(out)
    if tmp.is_dir():
        mark(tmp)
    if out.exists() or out.is_symlink():
        check_replaceable(out, overwrite=True, known=known)
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
        os.rename(tmp, out)
        remove(old)
    else:
        os.rename(tmp, out)


@contextlib.contextmanager
def writer_lock(out):
    """Hold the advisory lock of output ``out`` while writing it: one writer at a time.

    The lock is ``flock`` on ``OUT.lock`` through :mod:`filelock`; the file holds the pid of
    the run that has it. The kernel drops the lock when its process ends, so a lock left by a
    killed run is simply taken over. The holder removes ``OUT.lock`` before it lets go; a run
    that locked a file removed that way under it (the path now names another file, or none)
    lets go and locks the path again.

    Raises
    ------
    OSError
        When another process holds the lock: "another hyperlum run (pid N) is writing OUT".

    Examples
    --------
    >>> import os, tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "maps.zspy")
    >>> with writer_lock(out):
    ...     with writer_lock(out):  # doctest: +ELLIPSIS
    ...         pass
    Traceback (most recent call last):
    ...
    OSError: another hyperlum run (pid ...) is writing .../maps.zspy
    >>> os.path.exists(out + ".lock")
    False
    """
    from filelock import FileLock, Timeout

    out = Path(out)
    path = out.with_name(out.name + ".lock")
    held = {}

    def check_and_record(fd):
        mine = os.fstat(fd)
        try:
            now = os.stat(path)
            held["current"] = (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)
        except FileNotFoundError:
            held["current"] = False
        if held["current"]:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    lock = FileLock(str(path), timeout=0, on_acquired=check_and_record)
    for _ in range(100):
        try:
            lock.acquire()
        except Timeout:
            try:
                pid = path.read_text().strip() or "?"
            except OSError:
                pid = "?"
            raise OSError(f"another hyperlum run (pid {pid}) is writing {out}") from None
        if held["current"]:
            break
        lock.release()  # the file was removed by the run that had it: lock the new one
    else:
        raise OSError(f"cannot lock {path}: it keeps being removed")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        lock.release()
