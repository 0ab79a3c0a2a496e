"""Reading score columns for the baseline selectors: a missing column names the scorer that makes it, a column
that is not numeric names the sample, a collapsed column warns (:mod:`kit.collapse`)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from kit.capabilities import capability_keys
from kit.collapse import warn_collapsed
from kit.quality.space import LOSS_COLUMNS, SCORE_COL, numeric_column

# The scorer that makes each well-known column (capability columns: "rich").
_MAKERS = {SCORE_COL: "image_text", **{col: "loss" for col in LOSS_COLUMNS.values()}, "styles": "style",
           "image_gain": "image_gain", "scalselect": "scalselect"}
# Prefixes of the columns a scorer makes one per part (a task, a variant).
_PREFIXES = {f"{SCORE_COL}_": "image_text", "influence_": "influence", "cvs_": "cvs", "answer_ll_": "image_gain",
             "scalselect_": "scalselect"}


def maker_of(column: str) -> str | None:
    """The registered scorer that makes ``column``, or ``None`` when the kit does not know."""
    if column in _MAKERS:
        return _MAKERS[column]
    if column in capability_keys():
        return "rich"
    for prefix, maker in _PREFIXES.items():
        if column.startswith(prefix):
            return maker
    return None


def missing_column(column: str, scores: pd.DataFrame, selector: str) -> KeyError:
    """The error for a score table without ``column``: which scorer makes it and how."""
    maker = maker_of(column)
    if column == "source":
        how = "it comes from the pool: kit.score_table(pool, ...) adds it"
    elif maker is not None:
        how = f"make it with kit.score(pool, {maker!r}) or kit.score_table(pool, [{maker!r}, ...])"
    else:
        how = "no built-in scorer makes it; pass the name of a column the table has"
    cols = ", ".join(map(str, scores.columns)) or "(none)"
    return KeyError(f"{selector}: column {column!r} is missing: {how}. The table has: {cols}")


def require(scores: pd.DataFrame, columns, selector: str) -> None:
    if not isinstance(scores, pd.DataFrame):
        raise TypeError("scores must be a pandas DataFrame indexed by sample id")
    for col in columns:
        if col not in scores.columns:
            raise missing_column(col, scores, selector)


def read_scores(scores: pd.DataFrame, column: str, selector: str) -> np.ndarray:
    """``scores[column]`` as float64 (NaN = unscored), after the missing-column and collapse checks."""
    require(scores, [column], selector)
    values = numeric_column(scores, column)
    warn_collapsed(scores, [column], f"selector {selector!r}")
    return values


def capability_mean(scores: pd.DataFrame, selector: str) -> tuple[np.ndarray, list[str]]:
    """The mean of the capability columns present (NaN when any of them is NaN for a sample), and their names."""
    caps = [c for c in capability_keys() if c in scores.columns]
    if not caps:
        raise KeyError(f"{selector}: the score table has no capability column (expected some of "
                       f"{', '.join(capability_keys())}): make them with kit.score(pool, 'rich') or "
                       f"kit.score_table(pool, ['rich', ...]), or pass score=<column>")
    matrix = np.column_stack([numeric_column(scores, c) for c in caps])
    warn_collapsed(scores, caps, f"selector {selector!r}")
    return matrix.mean(axis=1), caps


def descending(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``idx`` ordered by ``values`` descending, ties by position (pool order)."""
    return idx[np.argsort(-values[idx], kind="stable")]


def unscored(n_excluded: int, what: str) -> str:
    return f"{n_excluded} sample{'s' if n_excluded != 1 else ''} without {what} excluded"
