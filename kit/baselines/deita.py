"""Deita-style selection: score first, then a diversity filter on embeddings.

With the scored samples ordered by score descending (ties by pool order), e the unit embedding of a sample
and t the threshold (default 0.9)::

    S = []
    for x in that order, while |S| < n:
        if max over s in S of cos(e_x, e_s) <= t:  S.append(x)       # (the first x is always kept)

Source: Liu et al., "What Makes Good Data for Alignment? A Comprehensive Study of Automatic Data Selection in
Instruction Tuning" (Deita), arXiv 2312.15685 (2023): the score-first, diversity-aware selection (the
"Repr Filter" with cosine threshold 0.9); official code ``src/deita/selection/filter/base.py`` of
https://github.com/hkust-nlp/deita (a candidate is dropped when its cosine to any kept sample exceeds the
threshold). Deita's score is its complexity x quality "evol score"; here it is any score column
(``score=``), by default the mean of the 14 capability ratings (``score="capabilities"``, the mmSSR rich
scores), and the embeddings come from ``embeddings=`` (:mod:`kit.baselines.embeddings`; Deita used
LLaMA hidden states).

The loop is exact (the same result as the plain loop above) and vectorised in chunks: each chunk of
candidates is compared with every kept sample in one matrix product, the survivors with each other in a
second one; only candidates that conflict with an earlier survivor of their own chunk are settled one by one
(a boolean test per candidate, never a Python loop over pairs). Cosines are float32 dot products.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from kit.baselines.columns import capability_mean, descending, read_scores, unscored
from kit.baselines.embeddings import resolve_embeddings
from kit.selection import Selection, Shortfall, resolve_budget

CAPABILITIES = "capabilities"


def _max_similarity(block: np.ndarray, kept: np.ndarray, width: int = 8192) -> np.ndarray:
    """Largest cosine of each row of ``block`` to the rows of ``kept`` (-inf when none), ``width`` kept at a time."""
    best = np.full(len(block), -np.inf, dtype=np.float32)
    for start in range(0, len(kept), width):
        np.maximum(best, (block @ kept[start:start + width].T).max(axis=1), out=best)
    return best


def diversity_filter(emb: np.ndarray, order: np.ndarray, n: int, threshold: float = 0.9,
                     chunk: int = 2048) -> tuple[np.ndarray, int]:
    """The rows of ``order`` the greedy filter keeps (at most ``n``, in order) and how many of ``order`` it read.

    ``emb`` holds unit rows; a candidate is kept when its cosine to every kept row is <= ``threshold``.
    """
    d = emb.shape[1]
    kept = np.empty((min(n, len(order)), d), dtype=np.float32)
    chosen: list[np.ndarray] = []
    n_kept = 0
    start = 0
    read = 0
    while n_kept < n and start < len(order):
        size = int(min(chunk, max(256, 2 * (n - n_kept))))
        where = np.arange(start, min(start + size, len(order)))   # positions in ``order``
        start += len(where)
        read = start
        block = emb[order[where]]
        if n_kept:
            alive = _max_similarity(block, kept[:n_kept]) <= threshold
            where, block = where[alive], block[alive]
        if not len(where):
            continue
        conflict = np.triu(block @ block.T > threshold, k=1)      # conflict[j, i]: j < i in this chunk
        keep = ~conflict.any(axis=0)
        for i in np.flatnonzero(~keep):                          # in order, so earlier ones are settled
            keep[i] = not (conflict[:i, i] & keep[:i]).any()
        new = where[keep][: n - n_kept]
        kept[n_kept:n_kept + len(new)] = emb[order[new]]
        n_kept += len(new)
        chosen.append(order[new])
        if n_kept == n:
            read = int(new[-1]) + 1                              # the candidates after the last kept one
    out = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    return out, read


def select_deita(scores: pd.DataFrame, n, seed: int = 0, score: str = CAPABILITIES, threshold: float = 0.9,
                 embeddings=None, use: str | None = None, chunk: int = 2048) -> Selection:
    """Score-first selection with Deita's diversity filter (see the module docstring).

    ``score``: a column of the table, or ``"capabilities"`` (default) for the mean of the capability columns
    present (NaN when any is NaN). ``threshold``: keep a sample only if its cosine similarity to every kept
    sample is at most this. ``embeddings`` / ``use``: see :mod:`kit.baselines.embeddings`. Samples without a
    finite score or without an embedding are excluded and counted. ``seed`` is unused (deterministic).
    ``chunk``: candidates compared at once (memory, not results).
    """
    n = resolve_budget(n, len(scores))
    threshold = float(threshold)
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
    if score == CAPABILITIES and CAPABILITIES not in scores.columns:
        values, used = capability_mean(scores, "deita")
        what = f"mean of {len(used)} capability columns"
    else:
        values, used, what = read_scores(scores, score, "deita"), [score], f"column {score!r}"
    emb = resolve_embeddings(scores, embeddings, use, selector="deita")
    scored = np.isfinite(values)
    ok = scored & emb.valid
    notes = []
    if (~scored).any():
        notes.append(unscored(int((~scored).sum()), f"a finite score ({what})"))
    if (scored & ~emb.valid).any():
        notes.append(unscored(int((scored & ~emb.valid).sum()), "an embedding"))
    order = descending(values, np.flatnonzero(ok))
    chosen, read = diversity_filter(emb.matrix, order, n, threshold, chunk)
    short = None
    if len(chosen) < n:
        filtered = f"the other {read - len(chosen)} are within cosine {threshold:g} of a kept sample"
        if len(order) < n:
            reason = f"only {len(order)} samples have a finite score and an embedding; {filtered}"
        else:
            reason = f"all {len(order)} candidates were read; {filtered}"
        short = Shortfall(n, len(chosen), reason)
    resolved = {"score": score, "score_columns": used, "threshold": threshold, "embeddings": emb.info()}
    report = {"n_candidates": int(len(order)), "n_read": int(read),
              "n_filtered": int(read - len(chosen)), "n_excluded": int((~ok).sum())}
    return Selection(scores.index[chosen].tolist(), method="deita", resolved=resolved, seed=seed, budget=n,
                     notes=notes, shortfall=short, report=report)
