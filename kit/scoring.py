"""The scoring face: ``score(pool, name)``, ``score_cached`` and the joined ``score_table``.

Every scorer is a class registered in :data:`kit.registry.SCORERS`: ``cls(**options).score(pool)``
returns a DataFrame indexed by sample id with one row per pool sample. Constructing a scorer loads no
model; it loads on its first ``score``. A scorer may declare

- ``pool_dependent`` (bool): whether a sample's score depends on the rest of the pool (the image-text
  stand-in's neighbour part does), and
- the columns it made for selection, in its table's ``attrs["columns"]`` (default: every column but
  ``status``),

and :func:`score` records both, with the wall time, in the returned table's ``attrs``. :func:`score` and
:func:`score_table` also run the score-collapse check (:mod:`kit.collapse`): a column with almost every
sample at one value, or no spread, warns (``ScoreCollapseWarning``) and is recorded in ``attrs["collapse"]``
and ``attrs["summary"]``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from kit.collapse import record_collapse
from kit.registry import SCORERS

# Columns of a scorer's own table that describe how it scored rather than what it found.
DIAGNOSTIC_COLUMNS = ("status", "source", "scorer", "text", "truncated", "n_tokens")


def score(pool, name: str, out=None, **options) -> pd.DataFrame:
    """Score every accepted sample of ``pool`` with the scorer registered as ``name``.

    Returns a DataFrame indexed by sample id with one row per sample of the pool (a sample a scorer
    could not score keeps its row, with NaN scores and a ``status`` saying why). ``out`` also writes
    the table to parquet. ``attrs`` holds ``scorer_name``, ``options``, ``columns`` (the columns made for
    selection), ``pool_dependent``, ``label``, ``short_label`` and ``timing``.
    """
    from kit.provenance import jsonable

    cls = SCORERS.get(name)
    scorer = cls(**options)
    t0 = time.perf_counter()
    table = scorer.score(pool)
    seconds = time.perf_counter() - t0
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"scorer {name!r} returned {type(table).__name__}, not a DataFrame")
    missing = pool.table.index.difference(table.index)
    extra = table.index.difference(pool.table.index)
    if len(missing) or len(extra):
        raise RuntimeError(f"scorer {name!r} must return one row per pool sample: "
                           f"{len(missing)} missing (e.g. {list(missing[:3])}), {len(extra)} unknown")
    attrs = dict(table.attrs)
    table = table.loc[pool.table.index]
    table.index.name = "id"
    columns = [c for c in attrs.get("columns", [c for c in table.columns if c not in DIAGNOSTIC_COLUMNS])
               if c in table.columns]
    label = attrs.get("scorer") or getattr(scorer, "label", None) or name
    short = attrs.get("short_label") or getattr(scorer, "short_label", None) or label
    timing = {**attrs.get("timing", {}), "seconds": round(seconds, 3),
              "samples_per_s": round(len(table) / seconds, 2) if seconds > 0 else None}
    table.attrs = {**attrs, "scorer_name": name, "options": jsonable(options), "columns": columns,
                   "pool_dependent": bool(attrs.get("pool_dependent", getattr(scorer, "pool_dependent", False))),
                   "label": str(label), "short_label": str(short), "timing": timing}
    record_collapse(table, columns)  # attrs["collapse"], attrs["summary"]; warns per collapsed column
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
    from kit.provenance import jsonable, pool_hash

    return {"scorer": name, "options": jsonable(options), "pool": pool_hash(pool)}


def score_cached(pool, name: str, out, **options) -> pd.DataFrame:
    """``score()`` that writes ``out`` (parquet) and, on a re-run, reuses it instead of scoring again.

    A ``<out>.done.json`` marker beside the table records the scorer, its options and a hash of the
    pool; the table is reused only when all three match, so a changed option or pool re-scores. A
    reused table says so in ``attrs["reused"]``.
    """
    from kit.provenance import jsonable

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
            table.attrs["reused"] = True
            return table
    table = score(pool, name, out=out, **options)
    marker.write_text(json.dumps({**key, "attrs": jsonable(dict(table.attrs))}, indent=1))
    table.attrs["reused"] = False
    return table


def _scorer_specs(scorers) -> list[tuple[str, dict]]:
    if isinstance(scorers, str):
        scorers = [scorers]
    if isinstance(scorers, Mapping):
        specs = [(str(k), dict(v or {})) for k, v in scorers.items()]
    else:
        specs = []
        for item in scorers:
            name, opts = (item, {}) if isinstance(item, str) else (item[0], dict(item[1] or {}))
            specs.append((str(name), opts))
    names = [n for n, _ in specs]
    if not names:
        raise ValueError("give at least one scorer name")
    if len(set(names)) != len(names):
        raise ValueError(f"each scorer once, please: {names}")
    return specs


def score_table(pool, scorers: Iterable | Mapping = ("image_text", "loss", "rich", "style"), out=None,
                **common) -> pd.DataFrame:
    """The one table every selector reads: ``source`` and the columns of each scorer, joined on the id.

    ``scorers`` is a list of registered names, a dict ``{name: options}``, or a list of ``(name, options)``
    pairs; ``common`` options (e.g. ``device="cuda"``) go to every scorer that names them as parameters. With ``out``
    (a folder), each scorer's table is cached there as ``<name>.parquet`` like :func:`score_cached` (reused
    when the scorer, its options and the pool match) and the joined table is written to
    ``score_table.parquet`` (read back with :func:`load_score_table`).

    The table is indexed by id in pool order: ``source``, then each scorer's selection columns (as it
    declares them), then ``status_<name>`` for a scorer that reports a per-sample status. Two scorers that
    make the same column are an error. ``attrs["scorers"]`` holds, per scorer, its ``columns``, whether it
    is ``pool_dependent``, its ``label``, ``options``, ``timing`` and whether the table was ``reused``.
    """
    import inspect

    from kit.provenance import pool_hash

    specs = _scorer_specs(scorers)
    out = Path(out) if out is not None else None
    joined = pool.table[["source"]].copy()
    info: dict[str, dict] = {}
    owner: dict[str, str] = {"source": "pool"}
    for name, opts in specs:
        cls = SCORERS.get(name)
        accepted = inspect.signature(cls).parameters  # common options go where they are named parameters
        opts = {**{k: v for k, v in common.items() if k in accepted}, **opts}
        table = (score_cached(pool, name, part_path(out, name), **opts) if out is not None
                 else score(pool, name, **opts))
        cols = list(table.attrs.get("columns", []))
        for col in cols:
            if col in owner:
                raise ValueError(f"scorers {owner[col]!r} and {name!r} both make column {col!r}; "
                                 f"score one of them separately")
            owner[col] = name
        joined = joined.join(table[cols])
        if "status" in table.columns:
            joined[f"status_{name}"] = table["status"].reindex(joined.index)
        info[name] = {"columns": cols, "pool_dependent": bool(table.attrs.get("pool_dependent", False)),
                      "label": table.attrs.get("label", name),
                      "short_label": table.attrs.get("short_label", table.attrs.get("label", name)),
                      "options": table.attrs.get("options", {}),
                      "timing": table.attrs.get("timing", {}), "reused": bool(table.attrs.get("reused", False))}
    joined.index.name = "id"
    joined.attrs = {"scorers": info, "pool": pool_hash(pool)}
    record_collapse(joined)  # every scorer's columns: attrs["collapse"], attrs["summary"], a warning each
    if out is not None:
        save_scores(joined, out / TABLE_FILE)
    return joined


TABLE_FILE = "score_table.parquet"


def part_path(out, name: str) -> Path:
    """Where :func:`score_table` with ``out=out`` caches scorer ``name``'s own table."""
    return Path(out) / f"{name}.parquet"


def load_score_table(out, pool=None) -> pd.DataFrame | None:
    """The joined table :func:`score_table` wrote under ``out``, or ``None`` when there is none.

    With ``pool``, a table scored on other data (another pool hash) counts as none.
    """
    from kit.provenance import pool_hash

    path = Path(out) / TABLE_FILE
    if not path.is_file():
        return None
    table = load_scores(path)
    if pool is not None and table.attrs.get("pool") != pool_hash(pool):
        return None
    return table


def scorer_label(scores: pd.DataFrame, name: str, short: bool = True, default: str | None = None) -> str:
    """The label a score table records for scorer ``name`` (the image-text stand-in says it is not CLIP).

    ``short`` gives the few words meant for axis labels and titles; ``False`` the full description.
    """
    info = scores.attrs.get("scorers", {}).get(name)
    if info is None:
        return default if default is not None else name
    return str(info.get("short_label" if short else "label", info.get("label", name)))
