"""Selecting by a verdict shift (CVS, arXiv 2603.09715): keep the samples whose shift is positive, highest first.

CVS keeps samples where adding the question raises the frozen judge's verdict on the answer ("visual
necessity") and filters those where it lowers it ("semantic conflict"). The paper's exact selection rule is not
public; the kit's (ours): among the samples whose ``shift`` column is finite and above ``floor`` (0: only
positive shifts), the n highest, ties by pool order. Fewer than n such samples give a shortfall (the selection is
not topped up with negative shifts: that would keep the conflicts CVS filters out); ``floor=None`` ranks every
scored sample.

``shift``: ``"cvs_shift"`` (default; the question shift of :class:`kit.quality.cvs.CVSScorer`) or any column,
e.g. ``"image_gain"`` (:class:`kit.quality.image_gain.ImageGainScorer`: the same rule on the image's shift, our
visual counterpart).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from kit.baselines.columns import descending, read_scores, unscored
from kit.selection import Selection, Shortfall, resolve_budget


def select_cvs(scores: pd.DataFrame, n, seed: int = 0, shift: str = "cvs_shift", floor: float | None = 0.0) -> Selection:
    """``n`` samples (a count or a fraction) by ``shift`` above ``floor``; see the module docstring. Deterministic
    (``seed`` is not used)."""
    n = resolve_budget(n, len(scores))
    values = read_scores(scores, shift, "cvs")
    finite = np.isfinite(values)
    keep = finite & (values > floor) if floor is not None else finite
    rows = np.flatnonzero(keep)
    chosen = descending(values, rows)[:n]
    notes = [unscored(int((~finite).sum()), f"a finite {shift!r}")] if (~finite).any() else []
    if floor is not None and (finite & ~keep).any():
        notes.append(f"{int((finite & ~keep).sum())} samples with {shift} <= {floor:g} filtered out")
    short = None
    if len(chosen) < n:
        short = Shortfall(n, len(chosen), f"only {len(rows)} samples have {shift} above {floor:g}"
                          if floor is not None else f"only {len(rows)} samples have a finite {shift}")
    resolved = {"shift": shift, "floor": floor, "n_candidates": int(len(rows)), "n_filtered": int((finite & ~keep).sum())}
    return Selection(scores.index[chosen].tolist(), method="cvs", resolved=resolved, seed=seed, budget=n,
                     notes=notes, shortfall=short)
