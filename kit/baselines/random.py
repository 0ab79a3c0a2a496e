"""Uniform random selection: the baseline every method is compared with."""
from __future__ import annotations

import numpy as np
import pandas as pd

from kit.selection import resolve_budget


def select_random(scores: pd.DataFrame, n, seed: int = 0) -> list:
    """``n`` ids (a count or a fraction) drawn without replacement, in draw order (seeded; ignores the scores)."""
    n = resolve_budget(n, len(scores))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(scores))[: min(n, len(scores))]
    return scores.index[order].tolist()
