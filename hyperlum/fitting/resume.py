"""Resumable chunked fits: a partial store next to the output, filled chunk by chunk.

A long fit writes each finished chunk of kernel rows into a zarr array in ``OUT.partial/``,
then a done marker for that chunk (a file in ``done/`` holding the SHA-256, shape and dtype
of the rows). The store holds a manifest, sealed by its own SHA-256, that says which input
(path, size, modification time, hash of its first MiB), which options and which chunk grid
it belongs to. A rerun of the same command finds the manifest, checks it, reads back every
chunk it would reuse and compares it with its marker, and fits the chunks without a marker
or whose data is missing, unreadable or changed; the output is assembled from verified chunks
only. A chunk cut off mid-write has no marker and is fitted again. The output file is written
under a temporary name and renamed when complete, so an interrupted run never leaves
something that looks like a finished output. A store of an earlier layout of the rows (its
format, or its number of rows per pixel, not this version's) is refused, never read
(:class:`OutdatedStore`).

Examples
--------
>>> import numpy as np, tempfile, os
>>> out = os.path.join(tempfile.mkdtemp(), "maps.zspy")
>>> grid = chunk_grid((5, 4), 100, chunk_bytes=2 * 4 * 100 * 8)
>>> grid
((2, 2, 1), (4,))
>>> store = PartialStore.create(out, {"fit": {"peaks": 1}}, grid, n_outputs=3)
>>> idx = next(iter(store.missing()))
>>> store.write(idx, np.ones((2, 4, 3)))
>>> len(list(store.missing())), store.done_pixels()
(2, 8)
>>> store.verify()
[]
>>> PartialStore.open(out).manifest["fit"]
{'peaks': 1}
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

HEADER_BYTES = 2**20
_MANIFEST = "manifest.json"
#: The store's format; 3: the kernel rows hold the FWHM's standard deviation of every peak
#: beside the area's (in 2, the EMG's came after the detection rows, other shapes had none).
_FORMAT = "hyperlum-partial-3"
_FORMAT_PREFIX = "hyperlum-partial-"


# -- what the fit belongs to ---------------------------------------------------------------
def input_identity(path):
    """Say which input a fit reads: resolved path, size, mtime and a hash of its header.

    A directory (a ``.zspy`` store) counts by its files: total size, latest mtime, and a hash
    of the names and sizes of all files plus the contents of the zarr metadata files.

    Examples
    --------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "a.npy")
    >>> _ = open(f, "wb").write(b"abc")
    >>> ident = input_identity(f)
    >>> ident["size"], len(ident["header_sha256"])
    (3, 64)
    """
    p = Path(path).resolve()
    h = hashlib.sha256()
    if p.is_dir():
        size, mtime = 0, 0
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            st = f.stat()
            size += st.st_size
            mtime = max(mtime, st.st_mtime_ns)
            rel = f.relative_to(p).as_posix()
            h.update(f"{rel}\0{st.st_size}\0".encode())
            if f.name.startswith(".z"):
                h.update(f.read_bytes())
    else:
        st = p.stat()
        size, mtime = st.st_size, st.st_mtime_ns
        with open(p, "rb") as fh:
            h.update(fh.read(HEADER_BYTES))
    return {"path": str(p), "size": size, "mtime_ns": mtime, "header_sha256": h.hexdigest()}


def fingerprint(fit):
    """A short hash of a JSON-able description of a fit (input identity + options)."""
    text = json.dumps(fit, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# -- the chunk grid ------------------------------------------------------------------------
def chunk_grid(nav_shape, n_channels, *, chunk_bytes, stored_chunks=None):
    """Cut the navigation axes into chunks of about ``chunk_bytes`` of float64 spectra.

    Data held in memory (no ``stored_chunks``, or stored chunks that cover every axis whole):
    whole rows are kept together when they fit; otherwise a chunk is part of one row. Data
    stored in chunks (``stored_chunks``: the first chunk size of each navigation axis) is cut
    into chunks made of whole stored chunks, so that no stored chunk is read twice: a stored
    chunk up to four times ``chunk_bytes`` is taken whole (several of them, along the last
    axes first, when they are small); only a larger one is cut, first axis first, into equal
    parts.

    Returns
    -------
    tuple of tuple of int
        Chunk sizes along each navigation axis (dask's ``chunks`` form).

    Examples
    --------
    >>> chunk_grid((5, 7), 10, chunk_bytes=14 * 10 * 8)
    ((2, 2, 1), (7,))
    >>> chunk_grid((2, 7), 10, chunk_bytes=3 * 10 * 8)
    ((1, 1), (3, 3, 1))
    >>> chunk_grid((8, 8), 10, chunk_bytes=24 * 10 * 8, stored_chunks=(4, 8))
    ((4, 4), (8,))
    >>> chunk_grid((8, 8), 10, chunk_bytes=8 * 10 * 8, stored_chunks=(6, 8))
    ((1, 1, 1, 1, 1, 1, 1, 1), (8,))
    >>> chunk_grid((8, 8), 10, chunk_bytes=16 * 10 * 8, stored_chunks=(2, 4))
    ((2, 2, 2, 2), (8,))
    >>> chunk_grid((10,), 10, chunk_bytes=2 * 10 * 8, stored_chunks=(9,))  # 1 divides 9, 2 not
    ((1, 1, 1, 1, 1, 1, 1, 1, 1, 1),)
    """
    nav_shape = tuple(int(n) for n in nav_shape)
    stored = tuple(stored_chunks or (None,) * len(nav_shape))
    budget = max(1, int(chunk_bytes // (max(1, n_channels) * 8)))
    if any(s and s < n for s, n in zip(stored, nav_shape, strict=True)):
        sizes = _stored_sizes(nav_shape, stored, budget)
    else:
        sizes = _row_sizes(nav_shape, budget)
    return tuple(
        (s,) * (n // s) + ((n % s,) if n % s else ()) for s, n in zip(sizes, nav_shape, strict=True)
    )


def _row_sizes(nav_shape, budget):
    """Whole rows when they fit the budget, else parts of one row."""
    sizes = []
    for k, n in enumerate(nav_shape):
        rest = int(np.prod(nav_shape[k + 1 :], dtype=np.int64))
        if rest <= budget:
            sizes += [max(1, min(n, budget // rest)), *nav_shape[k + 1 :]]
            break
        sizes.append(1)
    return sizes


def _stored_sizes(nav_shape, stored, budget):
    """Chunk sizes made of whole stored chunks, or of equal parts of one (see chunk_grid)."""
    fixed = [bool(s and s < n) for s, n in zip(stored, nav_shape, strict=True)]
    size = [min(s, n) if f else n for s, n, f in zip(stored, nav_shape, fixed, strict=True)]
    for k in range(len(size)):  # too big: cut, first axis first
        if np.prod(size, dtype=np.int64) <= 4 * budget:
            break
        want = max(1, budget // int(np.prod(size[k + 1 :], dtype=np.int64)))
        if not fixed[k]:
            size[k] = min(size[k], want)
        elif size[k] > want:
            size[k] = max(d for d in range(1, want + 1) if size[k] % d == 0)
    for k in reversed(range(len(size))):  # small: several stored chunks, last axis first
        grow = budget // int(np.prod(size, dtype=np.int64))
        if grow < 2:
            break
        target = min(nav_shape[k], size[k] * grow)
        if fixed[k] and target < stored[k]:  # still within one stored chunk: an equal part
            target = max(d for d in range(size[k], target + 1) if stored[k] % d == 0)
        elif fixed[k] and target < nav_shape[k]:  # whole stored chunks
            target = max(size[k], target - target % stored[k])
        size[k] = target
    return size


def _starts(chunks):
    return [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in chunks]


def block_slices(grid, idx):
    """Slices of the navigation axes covered by chunk ``idx`` of ``grid``."""
    st = _starts(grid)
    return tuple(slice(int(s[i]), int(s[i + 1])) for s, i in zip(st, idx, strict=True))


# -- the partial store ---------------------------------------------------------------------
def partial_path(out):
    """Where the in-progress store of output ``out`` lives: ``OUT.partial``."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def _write_json(path, obj):
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def _digest(rows):
    """SHA-256 of the exact bytes of ``rows``, with their shape and dtype."""
    rows = np.ascontiguousarray(rows)
    return {
        "sha256": hashlib.sha256(rows.view(np.uint8).data).hexdigest(),
        "shape": list(rows.shape),
        "dtype": rows.dtype.str,
    }


def _sealed(manifest):
    """The manifest with a SHA-256 of its own canonical JSON text (key ``sha256``)."""
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, default=str)
    return dict(body, sha256=hashlib.sha256(text.encode()).hexdigest())


class DamagedStore(ValueError):
    """``OUT.partial`` is hyperlum's, but its manifest cannot be trusted: fit it anew."""


class OutdatedStore(ValueError):
    """``OUT.partial`` is an intact store whose rows are laid out otherwise than this version's
    (an earlier format, or another number of rows per pixel): never resumed, and not removed
    without the user's say (it may be finished by the version that wrote it)."""


class PartialStore:
    """The in-progress store of one fit: manifest, zarr array of kernel rows, done markers.

    A done marker holds the SHA-256, shape and dtype of the rows written for its chunk; a
    chunk is reused only when the rows read back match it (:meth:`verify`).
    """

    def __init__(self, root, manifest):
        import zarr

        self.root = Path(root)
        self.manifest = manifest
        self.grid = tuple(tuple(c) for c in manifest["grid"])
        self.array = zarr.open_array(str(self.root / "stacked.zarr"), mode="r+")

    @classmethod
    def create(cls, out, manifest, grid, n_outputs):
        """Make a fresh store for ``out``; it appears under its final name complete."""
        import zarr

        root = partial_path(out)
        tmp = root.with_name(root.name + f".tmp-{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        (tmp / "done").mkdir()
        shape = tuple(sum(c) for c in grid) + (n_outputs,)
        chunks = tuple(c[0] if c else 1 for c in grid) + (n_outputs,)
        zarr.open_array(
            str(tmp / "stacked.zarr"),
            mode="w",
            shape=shape,
            chunks=chunks,
            dtype="f8",
            fill_value=np.nan,
        )
        manifest = _sealed(dict(manifest, format=_FORMAT, grid=[list(c) for c in grid]))
        _write_json(tmp / _MANIFEST, manifest)
        os.rename(tmp, root)
        return cls(root, manifest)

    @classmethod
    def open(cls, out):
        """Open the store of ``out``; None when there is none.

        Raises ValueError when ``OUT.partial`` is not a hyperlum store (a folder of the user's),
        :class:`DamagedStore` when it is one whose manifest is missing, unreadable or does not
        match its checksum (a store cut off mid-start, or damaged on disk), and
        :class:`OutdatedStore` when its sealed manifest is of another format.
        """
        root = partial_path(out)
        if not (root.exists() or root.is_symlink()):
            return None
        if not is_store_like(root):
            raise ValueError(
                f"{root} exists but is not a hyperlum partial store; move it away and run again"
            )
        try:
            manifest = json.loads((root / _MANIFEST).read_text())
            if _sealed(manifest) != manifest:
                raise ValueError("its manifest does not match its checksum")
            fmt = manifest.get("format")
            if fmt != _FORMAT and str(fmt).startswith(_FORMAT_PREFIX):
                raise OutdatedStore(
                    f"{root} holds an interrupted fit of an earlier hyperlum ({fmt}), "
                    "whose rows this version does not read"
                )
            if fmt != _FORMAT:
                raise ValueError(f"unknown format {fmt!r}")
            if not (root / "done").is_dir():
                raise FileNotFoundError("no done/ folder")
            return cls(root, manifest)
        except OutdatedStore:
            raise
        except Exception as err:
            raise DamagedStore(f"{root} is damaged ({type(err).__name__})") from err

    def check_rows(self, n_outputs):
        """Raise :class:`OutdatedStore` unless the store holds ``n_outputs`` rows per pixel
        (what this fit writes)."""
        have = self.array.shape[-1]
        if have != n_outputs:
            raise OutdatedStore(
                f"{self.root} holds {have} rows per pixel where this fit writes {n_outputs}"
            )

    @staticmethod
    def _marker_name(idx):
        return "c" + "_".join(map(str, idx))

    def _marker(self, idx):
        return self.root / "done" / self._marker_name(idx)

    def indices(self):
        """Every chunk index of the grid, in order."""
        return np.ndindex(*(len(c) for c in self.grid))

    def missing(self):
        """The chunk indices not yet done."""
        return [idx for idx in self.indices() if not self._marker(idx).exists()]

    def n_chunks(self):
        return int(np.prod([len(c) for c in self.grid], dtype=np.int64))

    def pixels(self, idx):
        """Number of pixels in chunk ``idx``."""
        return int(np.prod([c[i] for c, i in zip(self.grid, idx, strict=True)], dtype=np.int64))

    def done_pixels(self):
        done = {p.name for p in (self.root / "done").iterdir()}
        return sum(self.pixels(i) for i in self.indices() if self._marker_name(i) in done)

    def write(self, idx, rows):
        """Store the kernel rows of chunk ``idx``, then mark it done with their checksum."""
        rows = np.asarray(rows, dtype=self.array.dtype)
        self.array[block_slices(self.grid, idx)] = rows
        _write_json(self._marker(idx), _digest(rows))

    def _read_checked(self, idx):
        """The rows of done chunk ``idx``, or None when they are unreadable or do not match."""
        try:
            want = json.loads(self._marker(idx).read_text())
            rows = self.array[block_slices(self.grid, idx)]
        except Exception:  # a truncated chunk file, a damaged marker: the chunk is refitted
            return None
        return rows if _digest(rows) == want else None

    def verify(self):
        """Check every done chunk against its marker; unmark the bad ones and return them."""
        bad = []
        for idx in self.indices():
            if self._marker(idx).exists() and self._read_checked(idx) is None:
                self._marker(idx).unlink()
                bad.append(idx)
        return bad

    def stacked(self):
        """All kernel rows as one numpy array, built from verified chunks only.

        Returns ``(rows, bad)``: ``bad`` lists the chunks that were missing or failed their
        check (they are unmarked, to be fitted again); ``rows`` is None unless ``bad`` is empty.
        """
        rows = np.empty(self.array.shape, dtype=self.array.dtype)
        bad = []
        for idx in self.indices():
            got = self._read_checked(idx) if self._marker(idx).exists() else None
            if got is None:
                self._marker(idx).unlink(missing_ok=True)
                bad.append(idx)
            else:
                rows[block_slices(self.grid, idx)] = got
        return (None if bad else rows), bad

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)


def is_store_like(root):
    """True when folder ``root`` holds nothing but what a partial store holds.

    Such a folder is hyperlum's even when damaged (a start cut off, files lost), so a run may
    remove it; a folder holding anything else is the user's and is left alone.
    """
    root = Path(root)
    if not root.is_dir() or root.is_symlink():
        return False
    allowed = {_MANIFEST, "stacked.zarr", "done"}
    return all(n in allowed or n.startswith(_MANIFEST + ".tmp-") for n in os.listdir(root))


def leftovers(out):
    """Temporary outputs and half-made stores of ``out`` left by killed runs."""
    from hyperlum.io.outputs import leftovers as named

    root = partial_path(out)
    return named(out, extra=[(root.name + ".tmp-", "")])
