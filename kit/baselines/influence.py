"""Selecting by gradient influence toward target tasks: ICONS's vote (default), LESS's max, or one task.

Reads the ``influence_<task>`` columns of :class:`kit.influence.scorer.InfluenceScorer` (s_t(z): the mean cosine
of sample z's projected gradient to task t's target gradients). With N scored samples and a budget of n:

``combine="vote"`` ICONS's generalist (Wu et al., arXiv 2501.00654; ``icons/generalist.py:118-135``): with
                   p = 100 n / N (``percent=`` sets it apart from the budget; ICONS uses p = 20 for both),
                   tau_t = the (100 - p)th percentile of s_t (``numpy.percentile``, linear interpolation),
                   votes(z) = #{t : s_t(z) >= tau_t}; the n samples with the most votes.
                   **Ties (ours):** ICONS takes ``np.argsort(votes)[-k:]``, so equal votes fall to numpy's unstable
                   sort; the kit breaks them by the mean over tasks of the sample's percentile rank in s_t
                   (higher first), then by pool order.
``combine="max"``  LESS (Xia et al., arXiv 2402.04333; ``less/data_selection/matching.py:78-79``): Inf(z) =
                   max_t s_t(z), the n highest, ties by pool order (LESS takes the max over the subtasks of one
                   target task and selects per target task; here the tasks are the kit's target tasks).
``task="name"``    one task's specialist (LESS's per-task selection, ICONS's specialist stage): the n highest s_t.

A sample with a missing score for any task used is excluded and counted; the selection's ``report`` holds the
votes (or maxima) of every sample and the thresholds.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from kit.baselines.columns import descending, require, unscored
from kit.collapse import warn_collapsed
from kit.quality.space import numeric_column
from kit.selection import Selection, Shortfall, resolve_budget

COMBINES = ("vote", "max")
PREFIX = "influence_"


def influence_columns(scores: pd.DataFrame, tasks=None) -> list[str]:
    """The influence columns to use: ``tasks`` (names or columns) or every ``influence_*`` column of the table."""
    from kit.influence.targets import column_name

    if tasks is None:
        cols = [c for c in scores.columns if str(c).startswith(PREFIX)]
        if not cols:
            raise KeyError("influence: the score table has no influence_<task> column: make them with "
                           "kit.score(pool, 'influence') or kit.score_table(pool, ['influence', ...])")
        return cols
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    cols = [t if str(t).startswith(PREFIX) else column_name(t) for t in tasks]
    require(scores, cols, "influence")
    return cols


def vote_order(S: np.ndarray, percent: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, votes, thresholds)`` of ICONS's vote on a (samples, tasks) matrix; ``order`` by votes, then mean
    percentile rank, then position."""
    thresholds = np.array([np.percentile(S[:, t], 100.0 - percent) for t in range(S.shape[1])])
    votes = (S >= thresholds[None, :]).sum(axis=1)
    ranks = np.column_stack([rankdata(S[:, t]) / len(S) for t in range(S.shape[1])]).mean(axis=1)
    order = np.lexsort((np.arange(len(S)), -ranks, -votes))
    return order, votes, thresholds


def select_influence(scores: pd.DataFrame, n, seed: int = 0, combine: str = "vote", tasks=None,
                     percent: float | None = None, task: str | None = None) -> Selection:
    """``n`` samples (a count or a fraction) by gradient influence; see the module docstring. Deterministic
    (``seed`` is not used)."""
    n = resolve_budget(n, len(scores))
    if combine not in COMBINES:
        raise ValueError(f"combine must be one of {', '.join(map(repr, COMBINES))}, not {combine!r}")
    if task is not None:
        if tasks is not None:
            raise ValueError("give task= (one task's specialist) or tasks= (the tasks to combine), not both")
        tasks, combine = [task], "task"
    cols = influence_columns(scores, tasks)
    S = np.column_stack([numeric_column(scores, c) for c in cols])
    warn_collapsed(scores, cols, "selector 'influence'")
    rows = np.flatnonzero(np.isfinite(S).all(axis=1))
    notes = [unscored(len(scores) - len(rows), "an influence score for every task")] if len(rows) < len(scores) else []
    resolved = {"combine": combine, "columns": cols, "n_scored": int(len(rows))}
    report: dict = {}
    if not len(rows) or n == 0:
        chosen = np.zeros(0, dtype=np.int64)
    elif combine == "vote":
        p = 100.0 * min(n, len(rows)) / len(rows) if percent is None else float(percent)
        if not 0 < p <= 100:
            raise ValueError(f"percent must be in (0, 100], not {percent}")
        order, votes, thresholds = vote_order(S[rows], p)
        chosen = rows[order[:n]]
        resolved.update({"percent": p, "thresholds": dict(zip(cols, map(float, thresholds))),
                         "tie_break": "mean percentile rank over tasks, then pool order"})
        report["votes"] = pd.Series(votes, index=scores.index[rows], name="votes")
        report["vote_counts"] = report["votes"].value_counts().sort_index(ascending=False).to_dict()
        if len(chosen):
            last = votes[order[min(n, len(rows)) - 1]]
            resolved["votes_at_the_cut"] = int(last)
            resolved["tied_at_the_cut"] = int((votes == last).sum())
    else:
        value = S.max(axis=1)
        chosen = descending(value, rows)[:n]
        report["value"] = pd.Series(value[rows], index=scores.index[rows], name="influence")
    short = Shortfall(n, len(chosen), f"only {len(rows)} samples have influence scores") if len(chosen) < n else None
    return Selection(scores.index[chosen].tolist(), method="influence", resolved=resolved, seed=seed, budget=n,
                     notes=notes, shortfall=short, report=report)
