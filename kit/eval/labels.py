"""A pool's truth table and ratings: ``labels.csv`` (planted defects, true styles, reference ratings) and
teacher JSONL files.

Two kinds of capability ratings feed the distilled rich scorer (``docs/methods.md``, mmSSR):

- **reference ratings**: the 0-5 ratings in a pool's ``labels.csv``, written by hand per question
  template when the pool was built (:mod:`kit.pools`);
- **teacher ratings**: ratings a teacher model produced through :mod:`kit.mmssr.teacher` (JSONL).

:func:`load_ratings` reads either into the same table; :func:`load_labels` reads the whole truth table.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import pandas as pd

from kit.capabilities import style_names


def labels_path_for(pool_path) -> Path:
    """``labels.csv`` beside a pool file."""
    return Path(pool_path).with_name("labels.csv")


def load_labels(path) -> pd.DataFrame:
    """``labels.csv`` as a DataFrame indexed by id (str); ``styles`` becomes a list of style names.

    Empty cells are missing (NaN, or ``None`` in ``origin``); every other text is kept as written (so a
    defect ``"none"`` stays a string).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no labels file at {path}")
    labels = pd.read_csv(path, dtype={"id": str, "origin": str}, keep_default_na=False, na_values=[""])
    if "id" not in labels.columns:
        raise ValueError(f"{path}: no 'id' column")
    labels = labels.set_index("id")
    labels.index = labels.index.astype(str)
    if "origin" in labels.columns:
        labels["origin"] = labels["origin"].astype(object).where(labels["origin"].notna(), None)
    styles = labels["styles"] if "styles" in labels.columns else pd.Series("", index=labels.index)
    labels["styles"] = styles.map(style_names)
    return labels


def load_ratings(path, capabilities: Iterable[str] | None = None) -> pd.DataFrame:
    """Capability ratings as a DataFrame indexed by sample id, from ``labels.csv`` or a teacher JSONL.

    ``labels.csv`` gives the reference ratings (one column per capability with integers 0-5, a ``styles``
    column joined by ``|``; other columns are kept); a teacher JSONL (as written by
    :class:`kit.mmssr.teacher.TeacherAnnotator`) gives teacher ratings. Returns one float column per
    capability (NaN = missing, in registry order or the order of ``capabilities``), a ``styles`` column of
    lists, then any other columns. A rating outside 0-5 raises, naming the sample.
    """
    from kit import capabilities as caps

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ratings at {path}")
    keys = caps.capability_keys() if capabilities is None else list(capabilities)
    if path.suffix.lower() == ".csv":
        table = load_labels(path)
    else:
        table = read_teacher_ratings(path)
    present = [k for k in keys if k in table.columns]
    if not present:
        raise ValueError(f"{path}: none of the capability columns {keys} is present")
    for k in present:
        col = pd.to_numeric(table[k], errors="coerce").astype(float)
        bad = col[(col < 0) | (col > 5)]
        if len(bad):
            raise ValueError(f"{path}: sample {bad.index[0]!r} has {k}={bad.iloc[0]} outside 0-5")
        table[k] = col
    others = [c for c in table.columns if c not in present and c != "styles"]
    table = table[present + ["styles"] + others]
    table.index = table.index.astype(str)
    table.index.name = "id"
    return table


def iter_jsonl(path):
    """``(line number, record)`` for every complete JSON line of ``path``; a torn line is skipped.

    A line torn by a crash mid-write is simply redone by the next run, so readers skip it.
    """
    with Path(path).open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError:
                continue


def read_teacher_ratings(path) -> pd.DataFrame:
    """A teacher JSONL file (``{"id", "scores": {key: int|null}, "styles": [...]}`` per line) as a table.

    One row per id (the last line of an id wins), one column per rated capability, ``styles`` as lists.
    Use :func:`load_ratings` for the checked table that the distilled scorer trains on.
    """
    rows = []
    for lineno, rec in iter_jsonl(path):
        if not isinstance(rec, dict) or "id" not in rec:
            raise ValueError(f"{path} line {lineno}: not a teacher record (no 'id')")
        scores = rec.get("scores") or {}
        if not isinstance(scores, dict):
            raise ValueError(f"{path} line {lineno}: sample {rec['id']!r}: 'scores' is not an object")
        rows.append({"id": str(rec["id"]), **scores, "styles": list(rec.get("styles") or [])})
    table = pd.DataFrame(rows)
    if table.empty:
        raise ValueError(f"{path}: no teacher records")
    return table.drop_duplicates("id", keep="last").set_index("id")
