"""A small score table with embeddings for the baseline-selector tests (importable without pytest)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from kit.capabilities import capability_keys


def make_table(n=200, seed=0, dim=8):
    """A score table with ties, NaNs, sources, styles, and embeddings with planted near-duplicates."""
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"s{i:04d}" for i in range(n)], name="id")
    t = pd.DataFrame(index=ids)
    t["source"] = rng.choice(["a", "b", "c"], n)
    t["image_text"] = np.round(rng.normal(0.3, 0.05, n), 3)          # rounded: some ties
    t["loss_mean"] = np.round(rng.gamma(2.0, 1.0, n), 2)
    t["loss_sum"] = t["loss_mean"] * rng.integers(3, 30, n)
    for k in capability_keys():
        t[k] = rng.integers(0, 6, n).astype(float)
    t.loc[ids[[3, 50]], "image_text"] = np.nan
    t.loc[ids[[7, 8, 9]], "loss_mean"] = np.nan
    t.loc[ids[11], "ocr"] = np.nan
    t["styles"] = [["yes/no"] if i % 3 else ["multi-choice", "comparison"] for i in range(n)]
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    dup = rng.choice(n, 40, replace=False)
    emb[dup[20:]] = emb[dup[:20]] + 0.01 * rng.standard_normal((20, dim)).astype(np.float32)
    return t, emb
