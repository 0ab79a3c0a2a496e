"""The selection face: budgets, the ``Selection`` result and ``select()`` over the registry."""
from __future__ import annotations

import hashlib
import numbers
import warnings
from typing import Any

import numpy as np
import pandas as pd

from kit.registry import SELECTORS


class SelectionShortfall(UserWarning):
    """A selector returned fewer samples than the budget asked for."""


class Selection(list):
    """A list of sample ids in selection order, carrying how it was made.

    ``method``, ``params`` and ``seed`` say what produced it, ``scores_hash`` fingerprints the score
    table it was drawn from, ``budget`` is the resolved count asked for, ``notes`` are plain-language
    remarks (e.g. a shortfall) and ``report`` holds optional tables (e.g. per-capability counts).
    """

    def __init__(self, ids=(), *, method: str | None = None, params: dict | None = None,
                 seed: int | None = None, budget: int | None = None, scores_hash: str | None = None,
                 notes: list[str] | None = None, report: dict[str, Any] | None = None):
        super().__init__(ids)
        self.method, self.params, self.seed, self.budget = method, dict(params or {}), seed, budget
        self.scores_hash = scores_hash
        self.notes = list(notes or [])
        self.report = dict(report or {})

    def info(self) -> dict:
        return {"method": self.method, "params": self.params, "seed": self.seed, "budget": self.budget,
                "n_selected": len(self), "scores_hash": self.scores_hash, "notes": self.notes}


def resolve_budget(budget, pool_size: int) -> int:
    """A budget is a count (int >= 0) or a fraction of the pool (float in (0, 1)) -> ``int(f * n)``."""
    if isinstance(budget, bool):
        raise TypeError("budget must be an int count or a float fraction in (0, 1), not a bool")
    if isinstance(budget, numbers.Integral):
        if budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        return int(budget)
    if isinstance(budget, numbers.Real):
        if not 0.0 < float(budget) < 1.0:
            raise ValueError(f"a fractional budget must be in (0, 1), got {budget}; pass an int for a count")
        return int(float(budget) * pool_size)
    raise TypeError(f"budget must be an int or a float, not {type(budget).__name__}")


def _hashable(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        return "|".join(map(str, value))
    return value


def table_hash(df: pd.DataFrame) -> str:
    """A stable SHA-256 fingerprint of a score table (index, column names and values)."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(pd.Series(df.index.astype(str)), index=False).values.tobytes())
    for col in df.columns:
        s = df[col]
        if s.dtype == object:
            s = s.map(_hashable).astype(str)
        h.update(pd.util.hash_pandas_object(s, index=False).values.tobytes())
    return h.hexdigest()


def select(scores: pd.DataFrame, method: str, budget, seed: int = 0, **options) -> Selection:
    """Select sample ids from a score table (indexed by sample id) with a registered selector."""
    if not isinstance(scores, pd.DataFrame):
        raise TypeError("scores must be a pandas DataFrame indexed by sample id")
    if not scores.index.is_unique:
        dup = scores.index[scores.index.duplicated()][:3].tolist()
        raise ValueError(f"score table has duplicate sample ids, e.g. {dup}")
    n = resolve_budget(budget, len(scores))
    fn = SELECTORS.get(method)
    result = fn(scores, n, seed=seed, **options)
    ids = list(result)
    if len(ids) > n:
        raise RuntimeError(f"selector {method!r} returned {len(ids)} ids for a budget of {n}")
    if len(set(ids)) != len(ids):
        raise RuntimeError(f"selector {method!r} returned duplicate ids")
    unknown = pd.Index(ids).difference(scores.index)
    if len(unknown):
        raise RuntimeError(f"selector {method!r} returned ids not in the score table, e.g. {list(unknown[:3])}")
    notes = list(getattr(result, "notes", []))
    if len(ids) < n:
        msg = f"{method}: returned {len(ids)} of the {n} samples asked for"
        if not any(str(len(ids)) in note for note in notes):
            notes.append(msg)
        warnings.warn("; ".join(notes), SelectionShortfall, stacklevel=2)
    return Selection(ids, method=method, params=options, seed=seed, budget=n, scores_hash=table_hash(scores),
                     notes=notes, report=getattr(result, "report", {}))
