"""Writing a selected subset (LLaVA JSON, JSONL or parquet) with a manifest beside it."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from kit.provenance import jsonable, provenance

FORMATS = {"llava": ".json", "jsonl": ".jsonl", "parquet": ".parquet"}


def manifest_path(path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".manifest.json")


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


def selection_manifest(ids) -> dict:
    """What a :class:`kit.selection.Selection` says about itself, for a manifest (plain id lists give Nones)."""
    shortfall = getattr(ids, "shortfall", None)
    return {
        "method": getattr(ids, "method", None),
        "params": jsonable(getattr(ids, "params", {})),
        "resolved": jsonable(getattr(ids, "resolved", {})),
        "seed": getattr(ids, "seed", None),
        "budget": getattr(ids, "budget", None),
        "scores_hash": getattr(ids, "scores_hash", None),
        "shortfall": shortfall.to_dict() if shortfall is not None else None,
        "notes": list(getattr(ids, "notes", [])),
    }


def export_subset(pool, ids, path, format: str = "llava", *, method: str | None = None,
                  params: dict | None = None, seed: int | None = None, scores_hash: str | None = None,
                  extra: dict | None = None) -> Path:
    """Write the samples ``ids`` of ``pool`` to ``path`` and a ``<stem>.manifest.json`` beside it.

    ``ids`` is usually a :class:`kit.selection.Selection`, whose method, parameters (as passed and as the
    selector resolved them), seed, score hash, shortfall and notes go into the manifest; the keyword
    arguments override them. Samples are written in selection order. Returns the data file's path.
    """
    checked = pool.check_ids(ids)
    path = write_records(pool.records(checked), path, format)
    manifest = {"data_file": path.name, "format": format, "n_samples": len(checked),
                "ids": [str(i) for i in checked], **selection_manifest(ids)}
    for key, value in (("method", method), ("params", params), ("seed", seed), ("scores_hash", scores_hash)):
        if value is not None:
            manifest[key] = jsonable(value)
    manifest.update(provenance(pool))
    if extra:
        manifest.update(jsonable(extra))
    manifest_path(path).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return path
