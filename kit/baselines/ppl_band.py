"""Perplexity bands: the samples with the lowest, middle or highest answer loss (PPL-low / PPL-mid / PPL-high).

With the N scored samples sorted by loss ascending (ties by pool order) and n' = min(n, N)::

    low  = ranks [0, n')                      lowest loss first
    mid  = ranks [lo, lo + n'), lo = (N - n') // 2   the n' samples around the median, ascending
    high = the n' highest losses              highest first (ties by pool order; the same set as DIL)

Source: Marion et al., "When Less is More: Investigating Data Pruning for Pretraining LLMs at Scale",
arXiv 2309.04564 (2023): rank the data by the perplexity a reference model assigns it and keep the bottom,
middle or top part; keeping the middle was their best perplexity pruning, and it is the PPL-mid baseline of
mmSSR (arXiv 2503.13383). Perplexity is exp(mean token loss), so ranking by ``loss_mean`` (the default) is
ranking by perplexity; here the loss is the answer-token loss of the loss scorer (``kit/quality/loss.py``),
the reference model that scorer's model. ``loss="sum"`` ranks by the summed loss instead (not a perplexity).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from kit.baselines.columns import descending, read_scores, unscored
from kit.quality.space import resolve_loss_col
from kit.selection import Selection, Shortfall, resolve_budget

BANDS = ("low", "mid", "high")


def band_positions(values: np.ndarray, n: int, band: str) -> tuple[np.ndarray, tuple[int, int]]:
    """Row positions of the band (in selection order) and its rank range [lo, hi) in the ascending order."""
    if band not in BANDS:
        raise ValueError(f"band must be one of {', '.join(map(repr, BANDS))}, not {band!r}")
    idx = np.flatnonzero(np.isfinite(values))
    N = len(idx)
    m = min(n, N)
    if band == "high":
        return descending(values, idx)[:m], (N - m, N)
    ascending = idx[np.argsort(values[idx], kind="stable")]
    lo = 0 if band == "low" else (N - m) // 2
    return ascending[lo:lo + m], (lo, lo + m)


def select_ppl_band(scores: pd.DataFrame, n, seed: int = 0, band: str = "mid", loss_col: str | None = None,
                    loss: str | None = None) -> Selection:
    """``n`` samples (a count or a fraction) from the ``band`` (``"low"``, ``"mid"`` or ``"high"``) of the loss
    ranking. ``loss_col`` / ``loss="mean"|"sum"`` pick the column (``loss_mean`` by default); samples without a
    finite loss are excluded and counted. ``seed`` is unused (deterministic)."""
    n = resolve_budget(n, len(scores))
    col = resolve_loss_col(loss_col, loss)
    if band not in BANDS:
        raise ValueError(f"band must be one of {', '.join(map(repr, BANDS))}, not {band!r}")
    values = read_scores(scores, col, "ppl_band")
    ok = np.isfinite(values)
    order, (lo, hi) = band_positions(values, n, band)
    notes = [unscored(int((~ok).sum()), f"a finite {col!r}")] if (~ok).any() else []
    short = Shortfall(n, len(order), f"only {int(ok.sum())} samples have a finite {col!r}") if len(order) < n else None
    picked = values[order]
    resolved = {"band": band, "loss_col": col, "ranks": [int(lo), int(hi)], "n_ranked": int(ok.sum()),
                "edges": [float(picked.min()), float(picked.max())] if len(order) else None,
                "median": float(np.median(values[ok])) if ok.any() else None}
    return Selection(scores.index[order].tolist(), method="ppl_band", resolved=resolved, seed=seed, budget=n,
                     notes=notes, shortfall=short,
                     report={"n_scored": int(ok.sum()), "n_excluded": int((~ok).sum())})
