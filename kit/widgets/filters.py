"""Which samples of a score table pass the sample browser's filters (source, style, planted defect, score ranges)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from kit.capabilities import style_names

# Columns of a score table that are not scores, even when numeric.
NOT_SCORES = ("source", "styles")


def score_columns(scores: pd.DataFrame) -> list[str]:
    """The numeric score columns of a table (capability ratings, image-text score, losses ...), in table order."""
    out = []
    for col in scores.columns:
        if col in NOT_SCORES or str(col).startswith("status"):
            continue
        if pd.api.types.is_numeric_dtype(scores[col]) and not pd.api.types.is_bool_dtype(scores[col]):
            out.append(col)
    return out


def column_range(scores: pd.DataFrame, col: str) -> tuple[float, float]:
    """The finite minimum and maximum of a score column ((0, 0) when it has no finite value)."""
    values = pd.to_numeric(scores[col], errors="coerce").to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    return (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)


def filter_samples(scores: pd.DataFrame, defects: pd.Series | None = None, *, sources=None, styles=None,
                   defect=None, ranges=None) -> pd.Index:
    """The ids of ``scores`` (in table order) that pass every filter given.

    ``sources``: keep samples of these sources; ``styles``: keep samples with at least one of these styles;
    ``defect``: keep samples whose planted defect (``defects``, ``"none"`` = clean) is one of these;
    ``ranges``: ``{column: (low, high)}``, keep samples whose score lies in ``[low, high]`` (a sample without a
    finite score fails a range on that column). An empty or ``None`` filter keeps everything.
    """
    keep = np.ones(len(scores), dtype=bool)
    if sources:
        keep &= scores["source"].astype(str).isin([str(s) for s in sources]).to_numpy()
    if styles:
        wanted = set(styles)
        keep &= scores["styles"].map(lambda v: bool(wanted.intersection(style_names(v)))).to_numpy(dtype=bool)
    if defect:
        if defects is None:
            raise ValueError("filtering by planted defect needs the truth table (labels=)")
        kinds = defects.reindex(scores.index).astype(object).where(lambda s: s.notna(), "unlabelled").astype(str)
        keep &= kinds.isin([str(d) for d in defect]).to_numpy()
    for col, (low, high) in (ranges or {}).items():
        if col not in scores.columns:
            raise KeyError(f"score table has no column {col!r}")
        values = pd.to_numeric(scores[col], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            keep &= np.isfinite(values) & (values >= float(low)) & (values <= float(high))
    return scores.index[keep]
