"""The score-collapse check: a broken scorer looks like a column with almost every sample at one value, or none
with any spread.

:func:`check_scores` inspects every numeric score column of a table and returns one row per column (share of
the most common value, spread, whether it looks collapsed and why); :func:`find_collapsed` returns only the
collapsed ones as :class:`ColumnCheck` findings. ``kit.score`` and ``kit.score_table`` run it on the columns
they make (:func:`record_collapse`): each collapsed column warns with :class:`ScoreCollapseWarning` and is
recorded in the table's score info (:mod:`kit.scoreinfo`): ``collapse`` (one dict per column) and ``summary``
(plain lines a notebook prints, :func:`summary`). A selector that reads a collapsed column warns too
(:func:`warn_collapsed`).

A column (its finite values; NaN = unscored) looks collapsed when

- it has **no finite value** at all (the scorer failed on every sample), or, with at least ``MIN_SAMPLES``
  (10) finite values,
- **one value**: every finite value is the same;
- **almost every sample at one value**: the most common value holds at least ``TOP_SHARE`` (99%) of them in
  a column of whole numbers (integer ratings), or ``CONTINUOUS_TOP_SHARE`` (90%) in a continuous column (any
  finite value that is not a whole number: image-text scores, losses, expected ratings);
- **no spread**: the standard deviation is at most ``RELATIVE_SPREAD`` (1e-3) times the absolute median.

Why these thresholds. Capability ratings are legitimately sparse and tied: on ``data_samples/`` the reference
0-5 ratings put 98.4% of the samples at 0 for ``activity`` and 97.6% for ``humanities`` (a sample is rated
only for what it exercises), and a rating column with most samples at 3 is common. A 99% threshold lets such
columns through and still catches a scorer that returns one default value with a handful of exceptions; a
column over it can order at most 1% of the pool, so any budget above that is chosen among ties whatever the
cause. A continuous score is held to 90% instead: a working continuous scorer (a cosine, a loss) almost never
gives two samples the very same float, so a value shared by many samples is one the scorer returns by
default (for the samples it failed on, or from a saturated output), and the sparse-rating argument does not
apply. At 90% the column can order at most 10% of the pool, less than the budgets the kit is used with
(10-50% of a pool in the notebooks and the papers it follows), so any such budget would be filled from ties;
a lower threshold would start to flag scorers whose default covers a large minority of a pool (text-only
samples in a mostly multimodal pool, say), which the selectors handle as unscored. Selection scores that
work have a relative spread far above 1e-3 (image-text cosines: std/mean about
0.1; answer loss: about 0.3; ratings: about 0.5), while a saturated head or a model fed constant input gives
values that agree to 4 or more digits. The spread rule is relative to the median, so a column centred on 0
is judged by the other rules only. Fewer than 10 finite values are too few to tell ties from collapse.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Iterable

import numpy as np
import pandas as pd

TOP_SHARE = 0.99             # integer ratings (sparse and tied by nature): see the module docstring
CONTINUOUS_TOP_SHARE = 0.90  # continuous scores (ties only from a default value): see the module docstring
RELATIVE_SPREAD = 1e-3
MIN_SAMPLES = 10

# Columns of a score table that describe how a sample was scored rather than what the scorer found.
_NOT_SCORES = ("status", "source", "scorer", "text", "truncated", "n_tokens", "styles")

__all__ = ["ScoreCollapseWarning", "ColumnCheck", "TOP_SHARE", "CONTINUOUS_TOP_SHARE", "RELATIVE_SPREAD",
           "MIN_SAMPLES",
           "check_column", "check_scores", "find_collapsed", "record_collapse", "warn_collapsed", "summary",
           "score_columns", "numeric_columns"]


class ScoreCollapseWarning(UserWarning):
    """A score column looks collapsed: almost every sample at one value, or no spread."""


@dataclass(frozen=True)
class ColumnCheck:
    """What the check found in one column."""

    column: str
    n: int                      # finite values
    n_missing: int              # NaN / non-finite values
    n_distinct: int             # -1 when not counted (the fast path of :func:`find_collapsed`)
    top_value: float | None     # the most common finite value (smallest among equally common ones)
    top_share: float            # its share of the finite values (NaN when there are none)
    spread: float               # standard deviation of the finite values (NaN when there are none)
    median: float               # the lower middle value of the sorted finite values
    collapsed: bool
    reason: str                 # why it looks collapsed ("" when it does not)
    scorer: str | None = None   # the scorer that made the column, when known
    kind: str = ""              # "integer" (every finite value a whole number) or "continuous"; "" when empty

    def __str__(self) -> str:
        who = f" (scorer {self.scorer!r})" if self.scorer else ""
        if self.n == 0:
            return f"column {self.column!r}{who} looks collapsed: no finite value in {self.n_missing} samples"
        state = f"looks collapsed ({self.reason})" if self.collapsed else "looks fine"
        return (f"column {self.column!r}{who} {state}: {self.top_share:.1%} of {self.n} scored samples at "
                f"{_fmt(self.top_value)}, spread (std) {_fmt(self.spread)}")

    def to_dict(self) -> dict:
        return asdict(self)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4g}"


def _finite(values) -> tuple[np.ndarray, int]:
    if isinstance(values, pd.Series) and pd.api.types.is_float_dtype(values.dtype):
        x = values.to_numpy(dtype=np.float64)           # a float column: no copy, NaN stays NaN
    else:
        x = pd.to_numeric(pd.Series(np.asarray(values, dtype=object) if not isinstance(values, pd.Series)
                                    else values.to_numpy()), errors="coerce").to_numpy(np.float64, na_value=np.nan)
    ok = np.isfinite(x)
    n_missing = len(x) - int(np.count_nonzero(ok))
    return (x[ok] if n_missing else x), n_missing


def check_column(values, column: str = "", scorer: str | None = None, top_share: float = TOP_SHARE,
                 relative_spread: float = RELATIVE_SPREAD, min_samples: int = MIN_SAMPLES,
                 exact: bool = True, continuous_top_share: float = CONTINUOUS_TOP_SHARE) -> ColumnCheck:
    """Check one column of numbers (NaN allowed) against the collapse rules of this module.

    ``top_share`` applies to a column of whole numbers (integer ratings), ``continuous_top_share`` to any other.

    ``exact=False`` is the fast path the warnings use: when no value holds half of the samples, the column
    cannot be at one value, and ``top_value`` / ``top_share`` are then those of the median (a lower bound)
    instead of a full count of every distinct value.
    """
    finite, n_missing = _finite(values)
    n = int(finite.size)
    if n == 0:
        return ColumnCheck(str(column), 0, n_missing, 0, None, float("nan"), float("nan"), float("nan"),
                           n_missing > 0, "no finite value" if n_missing else "", scorer)
    middle = float(np.partition(finite, (n - 1) // 2)[(n - 1) // 2])   # a value holding > 50% sits here
    share = float(np.count_nonzero(finite == middle) / n)
    spread = float(finite.std())
    top_value, n_distinct = middle, -1
    if exact or share >= 0.5 or spread <= relative_spread * abs(middle):
        counts = pd.Series(finite + 0.0).value_counts(sort=False)     # + 0.0: -0.0 and 0.0 are one value
        best = counts.to_numpy().max()
        top_value = float(counts.index[counts.to_numpy() == best].min())
        share, n_distinct = float(best / n), int(len(counts))
    kind = "integer" if bool(np.all(finite == np.round(finite))) else "continuous"
    limit = top_share if kind == "integer" else continuous_top_share
    reason = ""
    if n >= min_samples:
        if n_distinct == 1:
            reason = "one value"
        elif share >= limit:
            reason = f"at least {limit:.0%} of the samples at one value" + (
                " (a continuous score)" if kind == "continuous" else "")
        elif spread <= relative_spread * abs(middle):
            reason = f"spread under {relative_spread:g} of the median"
    return ColumnCheck(str(column), n, n_missing, n_distinct, top_value, share, spread, middle,
                       bool(reason), reason, scorer, kind)


def _info(table: pd.DataFrame, info=None):
    from kit.scoreinfo import score_info

    return info if info is not None else score_info(table, required=False)


def score_columns(table: pd.DataFrame, info=None) -> list[str]:
    """The numeric score columns of a table: those its score info names (``info``, default the one
    :func:`kit.score_info` finds: every scorer's, or the one scorer's ``columns``), else every numeric column
    that is not a diagnostic one (``status``, ``n_tokens``, ...); booleans are never scores."""
    info = _info(table, info)
    named = list(info.columns or ()) if info is not None else []
    if not named:
        named = [c for c in table.columns if c not in _NOT_SCORES and not str(c).startswith("status")]
    return numeric_columns(table, named)


def numeric_columns(table: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """Those of ``columns`` that the table has and that hold numbers (booleans and lists are not scores)."""
    out = []
    for c in dict.fromkeys(columns):
        if c in table.columns and pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c]):
            out.append(c)
    return out


def _owners(table: pd.DataFrame, info=None) -> dict[str, str]:
    info = _info(table, info)
    return info.owners() if info is not None else {}


def check_scores(table: pd.DataFrame, columns: Iterable[str] | None = None, **rules) -> pd.DataFrame:
    """One row per numeric score column (default :func:`score_columns`): n, missing, distinct values, the most
    common value and its share, spread (std), median, ``collapsed`` and ``reason``. ``rules`` override
    ``top_share``, ``relative_spread`` and ``min_samples``."""
    cols = score_columns(table) if columns is None else numeric_columns(table, columns)
    owners = _owners(table)
    rows = [check_column(table[c], c, owners.get(c), **rules).to_dict() for c in cols]
    frame = pd.DataFrame(rows, columns=list(ColumnCheck.__dataclass_fields__))
    return frame.set_index("column")


def find_collapsed(table: pd.DataFrame, columns: Iterable[str] | None = None, info=None,
                   **rules) -> list[ColumnCheck]:
    """The columns of :func:`check_scores` that look collapsed, as :class:`ColumnCheck` findings (``info``: the
    table's score info, default the one :func:`kit.score_info` finds, names the scorer of each column)."""
    cols = score_columns(table, info) if columns is None else numeric_columns(table, columns)
    owners = _owners(table, info)
    found = [check_column(table[c], c, owners.get(c), exact=False, **rules) for c in cols]
    return [f for f in found if f.collapsed]


def _warn(finding: ColumnCheck, reader: str | None = None) -> None:
    text = str(finding) if reader is None else f"{reader} reads a collapsed column: {finding}"
    # Raised from here (stacklevel=1): the same finding met twice (kit.score, then kit.score_table) is shown
    # once under Python's default warning filter.
    warnings.warn(text, ScoreCollapseWarning, stacklevel=1)


def record_collapse(table: pd.DataFrame, info, columns: Iterable[str] | None = None, warn: bool = True):
    """Check ``table``, described by ``info`` (a :class:`~kit.scoreinfo.ScoreInfo` or
    :class:`~kit.scoreinfo.ScoreTableInfo`): returns a copy of ``info`` whose ``collapse`` holds one dict per
    collapsed column and ``summary`` one line per collapsed column (or one line saying none is); each warns
    with :class:`ScoreCollapseWarning` unless ``warn=False``."""
    from kit.provenance import jsonable

    cols = score_columns(table, info) if columns is None else numeric_columns(table, columns)
    found = find_collapsed(table, cols, info=info)
    if warn:
        for f in found:
            _warn(f)
    return replace(info, collapse=jsonable([f.to_dict() for f in found]), summary=_summary_lines(found, len(cols)))


def _summary_lines(found: list[ColumnCheck], n_checked: int) -> list[str]:
    if not found:
        return [f"score check: none of the {n_checked} numeric score columns looks collapsed"]
    return [f"score check: {f}" for f in found]


def summary(table: pd.DataFrame) -> str:
    """The score-check lines of a table (as recorded in its score info by ``kit.score`` / ``kit.score_table``), or
    a fresh check (a table without one, e.g. one derived from a score table by filtering)."""
    info = _info(table)
    lines = list(info.summary) if info is not None else None
    if not lines:
        cols = score_columns(table)
        lines = _summary_lines(find_collapsed(table, cols), len(cols))
    return "\n".join(lines)


def warn_collapsed(scores: pd.DataFrame, columns: Iterable[str], reader: str) -> list[ColumnCheck]:
    """Warn (:class:`ScoreCollapseWarning`) for each of ``columns`` that looks collapsed; ``reader`` names who
    reads it (e.g. ``"selector 'clip_top'"``). Returns the findings (also for a selector's notes)."""
    found = find_collapsed(scores, columns)
    for f in found:
        _warn(f, reader)
    return found
