"""Where a table or a subset came from: a stable hash of a table, library versions, JSON-able parameters.

Every export manifest and every cached score table carries these, so a result can be traced to the
data, the options and the software that made it.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import platform
import threading
import weakref
from collections import OrderedDict
from importlib import metadata

import numpy as np
import pandas as pd

from kit.package import DISTRIBUTION

# Distributions whose versions a manifest records; the kit itself under "kit" (its distribution is mmselect-kit).
KEY_LIBRARIES = ("kit", "torch", "torchvision", "transformers", "open_clip_torch", "pandas", "numpy",
                 "pyarrow", "scikit-learn")


def _hashable(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        return "|".join(map(str, value))
    return value


_SEQUENCES = (list, tuple, np.ndarray)


def _joined_strings(values: np.ndarray):
    """``"|".join(cell)`` for every cell of an object column whose cells are all lists, tuples or 1-d arrays of
    ``str`` (a ``styles`` column), joined by pyarrow without a Python call per row (a pyarrow string array);
    ``None`` for any other column. Equal to ``[_hashable(v) for v in values]`` wherever it answers."""
    n = len(values)
    if not n or not all(map(isinstance, values, itertools.repeat(_SEQUENCES, n))):
        return None
    try:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
    except TypeError:   # a 0-d array: the row-by-row path raises as it always did
        return None
    flat = list(itertools.chain.from_iterable(values))
    if not set(map(type, flat)) <= {str}:   # exactly str (str(x) is x); a subclass may print otherwise
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    try:
        items = pa.array(flat, type=pa.large_string())
    except (pa.ArrowException, UnicodeError):   # e.g. a lone surrogate: left to the row-by-row path
        return None
    cells = pa.LargeListArray.from_arrays(pa.array(offsets), items)
    return pc.binary_join(cells, pa.scalar("|", type=pa.large_string()))


def _column_strings(s: pd.Series) -> pd.Series:
    """An object column as the strings :func:`table_hash` hashes (``s.map(_hashable).astype(str)``, a list-like
    cell joined by ``"|"``), joined without a Python call per row where the cells allow it."""
    joined = _joined_strings(s.to_numpy(dtype=object))
    if joined is None:
        return s.map(_hashable).astype(str)
    target = pd.Series([""], dtype=object).astype(str).dtype   # what astype(str) makes in this pandas
    if isinstance(target, pd.StringDtype) and target.storage == "pyarrow":
        return pd.Series(pd.array(joined, dtype=target), index=s.index)   # pandas >= 3: no round trip
    return pd.Series(joined.to_numpy(zero_copy_only=False), index=s.index, dtype=object).astype(str)


def _table_hash(df: pd.DataFrame) -> str:
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, df.columns)).encode())
    # an index of ids is unique: hashing each value once is faster than pandas' categorise-first default (the
    # hashes are the same either way)
    h.update(pd.util.hash_pandas_object(pd.Series(df.index.astype(str)), index=False,
                                        categorize=False).values.tobytes())
    for _, s in df.items():
        if s.dtype == object:
            s = _column_strings(s)
        h.update(pd.util.hash_pandas_object(s, index=False).values.tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- the hash of a table, once
# A table is hashed once while its content stays the same: the digest is kept per DataFrame object with a
# shallow copy of it taken when it was hashed. Under pandas' copy-on-write (always on from pandas 3) nothing done
# to the table afterwards reaches that copy, and any change to the table's values replaces the changed column's
# buffer rather than writing into the one the copy shares (the copy holds a reference to it). So the table still
# holds the content it was hashed with exactly when its index and column labels are the same objects and every
# column still uses the same buffer: a check of object identities, with no pass over the data. Without
# copy-on-write (pandas 2 with the option off) nothing is cached and every call hashes the table.
_CACHE_SIZE = 32
_CACHE: OrderedDict[int, tuple[weakref.ref, _Snapshot]] = OrderedDict()
_LOCK = threading.RLock()


def _copy_on_write() -> bool:
    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    return pd.options.mode.copy_on_write is True


def _column_token(s: pd.Series):
    """What identifies a column's values without reading them: its buffer (numpy) or its array object."""
    if isinstance(s.dtype, np.dtype):
        a = s.to_numpy()
        return "numpy", a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str
    return "array", s.array


def _same_token(a, b) -> bool:
    if a[0] != b[0]:
        return False
    return a[1] is b[1] if a[0] == "array" else a == b


class _Snapshot:
    """A table's content as of one moment (a copy-on-write shallow copy) and its digest, computed once."""

    __slots__ = ("table", "index", "columns", "tokens", "_digest", "_lock")

    def __init__(self, df: pd.DataFrame):
        self.table = df.copy(deep=False)
        self.index, self.columns = df.index, df.columns
        self.tokens = [_column_token(s) for _, s in df.items()]
        self._digest: str | None = None
        self._lock = threading.Lock()

    def holds(self, df: pd.DataFrame) -> bool:
        """Whether ``df`` still holds the content this snapshot was taken from (identity checks only)."""
        if df.index is not self.index or df.columns is not self.columns:
            return False
        tokens = [_column_token(s) for _, s in df.items()]
        return len(tokens) == len(self.tokens) and all(map(_same_token, tokens, self.tokens))

    def digest(self) -> str:
        with self._lock:
            if self._digest is None:
                self._digest = _table_hash(self.table)
            return self._digest


def _forget(key: int, ref) -> None:
    with _LOCK:
        entry = _CACHE.get(key)
        if entry is not None and entry[0] is ref:
            del _CACHE[key]


def _snapshot(df: pd.DataFrame) -> _Snapshot:
    """The cached snapshot of ``df`` while it still holds, else a new one (cached in its place)."""
    key = id(df)
    with _LOCK:
        entry = _CACHE.get(key)
        if entry is not None and entry[0]() is df and entry[1].holds(df):
            _CACHE.move_to_end(key)
            return entry[1]
        snap = _Snapshot(df)
        ref = weakref.ref(df, lambda r, key=key: _forget(key, r))
        _CACHE[key] = (ref, snap)
        _CACHE.move_to_end(key)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return snap


def clear_table_hash_cache() -> None:
    """Forget every cached table hash (and the shallow copies kept with them)."""
    with _LOCK:
        _CACHE.clear()


def table_hash(df: pd.DataFrame, *, cache: bool = True) -> str:
    """A stable SHA-256 fingerprint of a table (index, column names and values).

    The same content gives the same digest in any process and session (no per-process seed; it is the digest
    earlier versions of the kit wrote, so stored digests still compare). Any changed value, label or column
    changes it. A table is hashed once while its content stays the same (``cache=False`` hashes it again): the
    digest is kept with a copy-on-write shallow copy of the table and reused while the table's index, column
    labels and column buffers are the same objects, which any assignment to the table changes (pandas >= 3;
    pandas 2 caches only with ``pd.options.mode.copy_on_write = True``). One change the cache cannot see: a
    mutable object inside a cell (a list in ``styles``) changed in place, not through the table; assign the cell
    instead, or pass ``cache=False``. Until the table is hashed again or dropped, a changed table's earlier
    column buffers stay in memory with the copy.
    """
    if not cache or not _copy_on_write():
        return _table_hash(df)
    return _snapshot(df).digest()


class DeferredHash:
    """The :func:`table_hash` of a table as it was when this was made, computed when first asked for.

    ``kit.select`` records one in ``Selection.scores_hash``: a selection costs no hashing unless its hash is
    read (a manifest, ``info()``). The table's content is held as a copy-on-write shallow copy, so later changes
    to the table do not reach the digest; without copy-on-write (pandas 2 with the option off) the digest is
    computed at once. Pickles (and deep-copies) as its hex digest.
    """

    __slots__ = ("_snapshot", "_digest")

    def __init__(self, df: pd.DataFrame):
        self._snapshot: _Snapshot | None = None
        self._digest: str | None = None
        if _copy_on_write():
            self._snapshot = _snapshot(df)
        else:
            self._digest = _table_hash(df)

    def hexdigest(self) -> str:
        if self._digest is None:
            self._digest = self._snapshot.digest()
            self._snapshot = None   # the copy is no longer needed here (the cache may still hold it)
        return self._digest

    @property
    def computed(self) -> bool:
        return self._digest is not None or self._snapshot._digest is not None

    def __str__(self) -> str:
        return self.hexdigest()

    def __repr__(self) -> str:
        return f"DeferredHash({self.hexdigest() if self.computed else 'not computed yet'})"

    def __reduce__(self):
        return str, (self.hexdigest(),)


def pool_hash(pool) -> str:
    """A fingerprint of a pool's content as the scorers see it: ids, image fields and conversations.

    The image fields are the records' own (relative to the image folder), so the same pool read through
    another spelling of its path (relative, absolute, a symlink) has the same fingerprint.
    """
    return table_hash(pool.table[["image", "conversations"]])


def library_versions() -> dict[str, str | None]:
    """Installed versions of the kit and its key libraries (no imports needed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in KEY_LIBRARIES:
        try:
            out[name] = metadata.version(DISTRIBUTION if name == "kit" else name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance(pool) -> dict:
    """Where a subset came from and with what software: the manifest fields shared by every export."""
    return {
        "pool_file": str(pool.path) if pool.path else None,
        "image_root": str(pool.image_root) if pool.image_root else None,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }


def jsonable(obj):
    """Parameters as JSON: containers recursively, numpy scalars as numbers, arrays and tables by their shape
    (e.g. ``embeddings=`` passed to a selector), the rest as strings."""
    shape = getattr(obj, "shape", None)
    if shape is not None and not (hasattr(obj, "item") and getattr(obj, "size", 2) == 1 and len(shape) == 0):
        return f"<{type(obj).__name__} of shape {tuple(int(d) for d in shape)}>"
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
