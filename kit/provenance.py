"""Where a table or a subset came from: a stable hash of a table, library versions, JSON-able parameters.

Every export manifest and every cached score table carries these, so a result can be traced to the
data, the options and the software that made it.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import platform
from importlib import metadata

import numpy as np
import pandas as pd

KEY_LIBRARIES = ("kit", "torch", "torchvision", "transformers", "open_clip_torch", "pandas", "numpy",
                 "pyarrow", "scikit-learn")


def _hashable(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        return "|".join(map(str, value))
    return value


def table_hash(df: pd.DataFrame) -> str:
    """A stable SHA-256 fingerprint of a table (index, column names and values)."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(pd.Series(df.index.astype(str)), index=False).values.tobytes())
    for col in df.columns:
        s = df[col]
        if s.dtype == object:
            s = s.map(_hashable).astype(str)
        h.update(pd.util.hash_pandas_object(s, index=False).values.tobytes())
    return h.hexdigest()


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
            out[name] = metadata.version(name)
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
