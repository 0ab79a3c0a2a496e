"""CLIP-top: the samples with the highest image-text score (the CLIP baseline of the mmSSR paper).

    selected = the n samples with the highest s, s = cos(image features, text features)

Source: the CLIP baseline of mmSSR (Lyu et al., arXiv 2503.13383, Table 1): rank the pool by the CLIP
image-text similarity and keep the top of the ranking. ``s`` is the ``image_text`` column of the score table
(``kit.score(pool, "image_text")``, see ``docs/methods.md``): CLIP with ``backend="open_clip"``, the offline
stand-in otherwise, which is not CLIP (the selection's ``resolved["scorer"]`` says which). Same ranking as the
quality curriculum's DIS (``kit/quality/selectors.py``), under the name the mmSSR comparison uses.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from kit.baselines.columns import descending, read_scores, unscored
from kit.quality.space import SCORE_COL
from kit.scoreinfo import scorer_entry
from kit.selection import Selection, Shortfall, resolve_budget


def select_clip_top(scores: pd.DataFrame, n, seed: int = 0, score_col: str = SCORE_COL) -> Selection:
    """The ``n`` samples (a count or a fraction) with the highest ``score_col``, highest first, ties by pool
    order; samples without a finite score are excluded and counted. ``seed`` is unused (deterministic)."""
    n = resolve_budget(n, len(scores))
    values = read_scores(scores, score_col, "clip_top")
    ok = np.isfinite(values)
    order = descending(values, np.flatnonzero(ok))[:n]
    notes = [unscored(int((~ok).sum()), f"a finite {score_col!r}")] if (~ok).any() else []
    short = None
    if len(order) < n:
        short = Shortfall(n, len(order), f"only {int(ok.sum())} samples have a finite {score_col!r}")
    entry = scorer_entry(scores, "image_text") if score_col == SCORE_COL else None   # a joined table's record
    label = entry.label if entry is not None else None
    resolved = {"col": score_col, "scorer": label,
                "min_selected": float(values[order[-1]]) if len(order) else None}
    return Selection(scores.index[order].tolist(), method="clip_top", resolved=resolved, seed=seed, budget=n,
                     notes=notes, shortfall=short,
                     report={"n_scored": int(ok.sum()), "n_excluded": int((~ok).sum())})
