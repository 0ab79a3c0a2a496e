"""The scoring face: ``score(pool, name, **options)`` over the scorer registry."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from kit.registry import SCORERS


def score(pool, name: str, out=None, **options) -> pd.DataFrame:
    """Score every accepted sample of ``pool`` with the scorer registered as ``name``.

    Returns a DataFrame indexed by sample id with one row per sample of the pool (a sample a scorer
    could not score keeps its row, with NaN scores and a ``status`` saying why). ``out`` also writes
    the table to parquet.
    """
    cls = SCORERS.get(name)
    scorer = cls(**options)
    table = scorer.score(pool)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"scorer {name!r} returned {type(table).__name__}, not a DataFrame")
    missing = pool.table.index.difference(table.index)
    extra = table.index.difference(pool.table.index)
    if len(missing) or len(extra):
        raise RuntimeError(f"scorer {name!r} must return one row per pool sample: "
                           f"{len(missing)} missing (e.g. {list(missing[:3])}), {len(extra)} unknown")
    table = table.loc[pool.table.index]
    table.index.name = "id"
    if out is not None:
        save_scores(table, out)
    return table


def save_scores(table: pd.DataFrame, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path)
    return path


def load_scores(path) -> pd.DataFrame:
    table = pd.read_parquet(path)
    for col in table.columns:  # parquet gives list columns back as numpy arrays
        if table[col].dtype == object and len(table) and hasattr(table[col].iloc[0], "tolist"):
            table[col] = table[col].map(lambda v: v.tolist() if hasattr(v, "tolist") else v)
    return table


def _score_key(pool, name: str, options: dict) -> dict:
    from kit.export import jsonable
    from kit.selection import table_hash

    return {"scorer": name, "options": jsonable(options),
            "pool": table_hash(pool.table[["image_path", "conversations"]])}


def score_cached(pool, name: str, out, **options) -> pd.DataFrame:
    """``score()`` that writes ``out`` (parquet) and, on a re-run, reuses it instead of scoring again.

    A ``<out>.done.json`` marker beside the table records the scorer, its options and a hash of the
    pool; the table is reused only when all three match, so a changed option or pool re-scores.
    """
    import json

    out = Path(out)
    marker = out.with_name(out.name + ".done.json")
    key = _score_key(pool, name, options)
    if out.exists() and marker.exists():
        try:
            done = json.loads(marker.read_text())
        except json.JSONDecodeError:
            done = {}
        if {k: done.get(k) for k in key} == key:
            table = load_scores(out)
            table.attrs.update(done.get("attrs", {}))
            return table
    table = score(pool, name, out=out, **options)
    from kit.export import jsonable

    marker.write_text(json.dumps({**key, "attrs": jsonable(dict(table.attrs))}, indent=1))
    return table
