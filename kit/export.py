"""Writing a selected subset (LLaVA JSON, JSONL or parquet) with a manifest beside it."""
from __future__ import annotations

import datetime as _dt
import json
import platform
from importlib import metadata
from pathlib import Path

import pandas as pd

FORMATS = {"llava": ".json", "jsonl": ".jsonl", "parquet": ".parquet"}
KEY_LIBRARIES = ("kit", "torch", "torchvision", "transformers", "open_clip_torch", "pandas", "numpy",
                 "pyarrow", "scikit-learn")


def library_versions() -> dict[str, str | None]:
    """Installed versions of the kit and its key libraries (no imports needed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in KEY_LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def manifest_path(path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".manifest.json")


def check_ids(pool, ids, what: str = "ids") -> None:
    """Raise if any id is not in the pool (KeyError) or appears twice (ValueError)."""
    missing = [i for i in ids if i not in pool.table.index]
    if missing:
        raise KeyError(f"{what}: {len(missing)} ids are not in the pool, e.g. {missing[:3]}")
    if len(set(ids)) != len(ids):
        seen, dup = set(), None
        for i in ids:
            if i in seen:
                dup = i
                break
            seen.add(i)
        raise ValueError(f"{what} contain duplicates, e.g. {dup!r}")


def provenance(pool) -> dict:
    """Where a subset came from and with what software: the manifest fields shared by every export."""
    return {
        "pool_file": str(pool.path) if pool.path else None,
        "image_root": str(pool.image_root) if pool.image_root else None,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }


def write_records(records: list[dict], path, format: str = "llava") -> Path:
    """Write records as LLaVA JSON, JSONL or parquet."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "llava":
        path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    elif format == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    elif format == "parquet":
        pd.DataFrame.from_records(records).to_parquet(path, index=False)
    else:
        raise ValueError(f"unknown export format {format!r}; use one of {sorted(FORMATS)}")
    return path


def export(pool, ids, path, format: str = "llava", *, method: str | None = None, params: dict | None = None,
           seed: int | None = None, scores_hash: str | None = None, extra: dict | None = None) -> Path:
    """Write the samples ``ids`` of ``pool`` to ``path`` and a ``<stem>.manifest.json`` beside it.

    ``ids`` is usually a :class:`kit.selection.Selection`, whose method, parameters, seed and score
    hash go into the manifest; the keyword arguments override them. Returns the data file's path.
    """
    ids = list(ids) if not hasattr(ids, "method") else ids
    check_ids(pool, ids)
    path = write_records(pool.records(ids), path, format)
    manifest = {
        "data_file": path.name,
        "format": format,
        "n_samples": len(ids),
        "ids": [str(i) for i in ids],
        "method": method if method is not None else getattr(ids, "method", None),
        "params": jsonable(params if params is not None else getattr(ids, "params", {})),
        "seed": seed if seed is not None else getattr(ids, "seed", None),
        "budget": getattr(ids, "budget", None),
        "scores_hash": scores_hash if scores_hash is not None else getattr(ids, "scores_hash", None),
        "notes": list(getattr(ids, "notes", [])),
        **provenance(pool),
    }
    if extra:
        manifest.update(jsonable(extra))
    manifest_path(path).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return path


def jsonable(obj):
    """Parameters as JSON: containers recursively, numpy scalars as numbers, the rest as strings."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
