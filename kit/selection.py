"""The selection face: budgets, the ``Selection`` result and ``select()`` over the registry.

Every selector is a function ``(scores, n, seed=0, **options) -> Selection | list of ids`` registered in
:data:`kit.registry.SELECTORS`; ``n`` is a count or a fraction of the table, resolved the same way for
every selector by :func:`resolve_budget` (``kit.select`` resolves it before calling, and a selector
called directly resolves it itself).
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from kit.provenance import DeferredHash, table_hash
from kit.registry import SELECTORS

__all__ = ["Selection", "Shortfall", "SelectionShortfall", "resolve_budget", "select", "table_hash"]


class SelectionShortfall(UserWarning):
    """A selector returned fewer samples than the budget asked for."""


@dataclass(frozen=True)
class Shortfall:
    """A selection smaller than its budget: how many were asked for and returned, and why."""

    asked: int
    returned: int
    reason: str = "the selector ran out of candidates"

    def __str__(self) -> str:
        return f"returned {self.returned} of the {self.asked} samples asked for: {self.reason}"

    def to_dict(self) -> dict:
        return asdict(self)


class Selection(list):
    """A list of sample ids in selection order, carrying how it was made.

    ``method``, ``params`` (the options the caller passed) and ``seed`` say what produced it;
    ``resolved`` holds what the selector settled on (e.g. mmSSR's capability list and threshold, the
    quality-space cells and bounds); ``scores_hash`` fingerprints the score table it was drawn from
    (:func:`kit.provenance.table_hash`; ``kit.select`` computes it when it is first read, of the table as it was
    when selected); ``budget`` is the resolved count asked for; ``shortfall`` is a :class:`Shortfall` when fewer
    were returned (else ``None``); ``notes`` are plain-language remarks (the shortfall among them) and
    ``report`` holds optional tables (e.g. per-capability counts). ``positions`` are the ids' row positions in
    the score table (an int64 array; ``kit.select`` fills them in), or ``None``.
    """

    def __init__(self, ids=(), *, method: str | None = None, params: dict | None = None,
                 resolved: dict | None = None, seed: int | None = None, budget: int | None = None,
                 scores_hash: str | DeferredHash | None = None, notes: list[str] | None = None,
                 shortfall: Shortfall | None = None, report: dict[str, Any] | None = None,
                 positions: np.ndarray | None = None):
        super().__init__(ids)
        self.method, self.params, self.seed, self.budget = method, dict(params or {}), seed, budget
        self.resolved = dict(resolved or {})
        self.scores_hash = scores_hash
        self.positions = positions
        self.shortfall = shortfall
        self.notes = list(notes or [])
        if shortfall is not None and str(shortfall) not in self.notes:
            self.notes.append(str(shortfall))
        self.report = dict(report or {})

    @property
    def scores_hash(self) -> str | None:
        value = self._scores_hash
        if isinstance(value, DeferredHash):
            value = self._scores_hash = value.hexdigest()
        return value

    @scores_hash.setter
    def scores_hash(self, value: str | DeferredHash | None) -> None:
        self._scores_hash = value

    def info(self) -> dict:
        return {"method": self.method, "params": self.params, "resolved": self.resolved, "seed": self.seed,
                "budget": self.budget, "n_selected": len(self), "scores_hash": self.scores_hash,
                "shortfall": self.shortfall.to_dict() if self.shortfall else None, "notes": self.notes}


def _resolve(budget, pool_size: int) -> tuple[int, float]:
    """``(count, exact number of samples asked)``: they differ when a fraction rounds down."""
    if isinstance(budget, bool):
        raise TypeError("budget must be an int count or a float fraction in (0, 1), not a bool")
    if isinstance(budget, numbers.Integral):
        if budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        return int(budget), float(budget)
    if isinstance(budget, numbers.Real):
        if not 0.0 < float(budget) < 1.0:
            raise ValueError(f"a fractional budget must be in (0, 1), got {budget}; pass an int for a count")
        exact = float(budget) * pool_size
        return int(exact), exact
    raise TypeError(f"budget must be an int or a float, not {type(budget).__name__}")


def _rounding(budget, pool_size: int, n: int, exact: float) -> str:
    return f"the budget {budget} of {pool_size} samples is {exact:g} samples, which rounds down to {n}"


def resolve_budget(budget, pool_size: int) -> int:
    """A budget is a count (int >= 0) or a fraction of the pool (float in (0, 1)) -> ``int(f * n)``.

    A positive fraction that rounds down to 0 warns (:class:`SelectionShortfall`): it would select nothing.
    """
    n, exact = _resolve(budget, pool_size)
    if n == 0 and exact > 0:
        warnings.warn(f"{_rounding(budget, pool_size, n, exact)}: nothing is selected (give a count, or a larger "
                      "fraction)", SelectionShortfall, stacklevel=2)
    return n


def select(scores: pd.DataFrame, method: str, budget, seed: int = 0, **options) -> Selection:
    """Select sample ids from a score table (indexed by sample id) with a registered selector.

    Returns a :class:`Selection`: never more than the budget, no duplicates, only ids of the table. A
    smaller result carries a :class:`Shortfall` (the selector's, or a generic one) and warns with
    :class:`SelectionShortfall`; so does a fractional budget that rounds down to 0 samples. One that rounds
    down to fewer samples than it asks for (0.3 of 41 is 12.3: 12) says so in the notes.

    The checks cost no Python call per id: the selector's row positions, when it reports them and they match its
    ids (mmSSR does), else one lookup in the index. The result's ``scores_hash`` is the table's
    :func:`~kit.provenance.table_hash` as it was when selected, computed when first read (a manifest, ``info()``)
    and once per table while its content stays the same; a selection that is never exported hashes nothing.
    """
    if not isinstance(scores, pd.DataFrame):
        raise TypeError("scores must be a pandas DataFrame indexed by sample id")
    if not scores.index.is_unique:
        dup = scores.index[scores.index.duplicated()][:3].tolist()
        raise ValueError(f"score table has duplicate sample ids, e.g. {dup}")
    n, exact = _resolve(budget, len(scores))
    fn = SELECTORS.get(method)
    result = fn(scores, n, seed=seed, **options)
    ids = list(result)
    if len(ids) > n:
        raise RuntimeError(f"selector {method!r} returned {len(ids)} ids for a budget of {n}")
    positions = _positions(scores.index, ids, getattr(result, "positions", None), method)
    shortfall = getattr(result, "shortfall", None)
    notes = list(getattr(result, "notes", []))
    if len(ids) < n and shortfall is None:
        reason = "the score table holds fewer samples" if len(scores) < n else "the selector ran out of candidates"
        shortfall = Shortfall(n, len(ids), reason)
    if n == 0 and exact > 0 and shortfall is None:  # asked for part of a sample: at least one, got none
        shortfall = Shortfall(math.ceil(exact), len(ids), _rounding(budget, len(scores), n, exact))
    elif n < exact:
        notes.append(_rounding(budget, len(scores), n, exact))
    if shortfall is not None:
        warnings.warn(f"{method}: {shortfall}", SelectionShortfall, stacklevel=2)
    return Selection(ids, method=method, params=options, resolved=getattr(result, "resolved", {}), seed=seed,
                     budget=n, scores_hash=DeferredHash(scores), notes=notes, shortfall=shortfall,
                     report=getattr(result, "report", {}), positions=positions)


def _same_ids(index: pd.Index, positions, ids: list) -> bool:
    """Whether ``positions`` (a selector's own account of its ids' rows) are distinct rows of ``index`` holding
    exactly ``ids``: bounds, one mark per row and one vectorised comparison of the labels."""
    if not isinstance(positions, np.ndarray) or positions.ndim != 1 or len(positions) != len(ids) \
            or positions.dtype.kind not in "iu":
        return False
    if len(ids) == 0:
        return True
    if positions.min() < 0 or positions.max() >= len(index):
        return False
    seen = np.zeros(len(index), dtype=bool)
    seen[positions] = True
    if int(np.count_nonzero(seen)) != len(positions):
        return False
    import pyarrow as pa

    labels = index.take(positions)
    try:
        if isinstance(labels.dtype, pd.StringDtype) and labels.dtype.storage == "pyarrow":
            mine = pa.array(labels.array)
            return mine.equals(pa.array(ids, type=mine.type))
        if isinstance(labels.dtype, np.dtype) and labels.dtype != object:
            theirs = np.asarray(ids)
            return theirs.dtype == labels.dtype and np.array_equal(labels.to_numpy(), theirs)
    except (pa.ArrowException, TypeError, ValueError):
        return False
    return False   # other index types: the lookup in _positions checks the ids


def _positions(index: pd.Index, ids: list, hint, method: str) -> np.ndarray:
    """The row positions of ``ids`` in a unique ``index``, checking the selector's contract: no duplicates, only
    ids of the table. Vectorised: the selector's own positions when they match its ids, else one hash lookup."""
    if hint is not None and _same_ids(index, hint, ids):
        return np.asarray(hint, dtype=np.int64)
    positions = np.asarray(index.get_indexer(ids), dtype=np.int64) if len(ids) else np.zeros(0, dtype=np.int64)
    missing = positions < 0
    found = positions[~missing]
    seen = np.zeros(len(index), dtype=bool)
    seen[found] = True
    strangers = [ids[i] for i in np.flatnonzero(missing)]
    if int(np.count_nonzero(seen)) != len(found) or len(set(strangers)) != len(strangers):
        raise RuntimeError(f"selector {method!r} returned duplicate ids")
    if strangers:
        unknown = pd.Index(strangers).difference(index)
        raise RuntimeError(f"selector {method!r} returned ids not in the score table, e.g. {list(unknown[:3])}")
    return positions
