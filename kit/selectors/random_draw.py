"""Uniform random selection: the baseline every method is compared with."""
from __future__ import annotations

import numpy as np
import pandas as pd


def select_random(scores: pd.DataFrame, n: int, seed: int = 0) -> list:
    """``n`` ids drawn without replacement, in draw order (seeded; independent of the score values)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(scores))[: min(n, len(scores))]
    return scores.index[order].tolist()
