"""Figures of the testbed's ablation across pool conditions (drawn from the tidy tables, never from training).

:func:`which_method_when` answers "which method when": method × condition, the difference from random in units of
the seeds' pooled spread, /FULL written beside it. :func:`family_accuracy` shows where a method's accuracy comes
from, family by family; :func:`subset_family_shares` what the method put in its subset.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from kit.plotting.experiments import _colour


def which_method_when(verdicts: pd.DataFrame, budget: float, ax=None, limit: float = 3.0, title: str | None = None):
    """Heat map of ``z`` (difference from random / pooled sd of the seeds) for one budget: rows methods, columns
    conditions; each cell reads the difference, its z and the share of the full pool's accuracy (/FULL).
    Cells beyond ±1 are the verdicts "beats" / "loses to"; the colour saturates at ±``limit``."""
    at = verdicts[(verdicts["budget"] == budget) & (verdicts["method"] != "random")]
    methods = list(dict.fromkeys(at["method"]))
    conditions = list(dict.fromkeys(at["condition"]))
    z = at.pivot(index="method", columns="condition", values="z").reindex(index=methods, columns=conditions)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.9 * len(conditions) + 2.5, 0.52 * len(methods) + 1.4))
    ax.imshow(np.clip(z.to_numpy(dtype=float), -limit, limit), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for (i, m) in enumerate(methods):
        for (j, c) in enumerate(conditions):
            row = at[(at["method"] == m) & (at["condition"] == c)]
            if not len(row):
                continue
            r = row.iloc[0]
            mark = "▲" if r["z"] > 1 else "▼" if r["z"] < -1 else ""
            dark = np.isfinite(r["z"]) and abs(r["z"]) > 0.6 * limit   # light text on the saturated cells
            ax.text(j, i, f"{r['diff']:+.3f} {mark}\nz {r['z']:+.1f} · {r['of_full']:.0%} FULL", ha="center",
                    va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(len(conditions)), conditions)
    ax.set_yticks(range(len(methods)), methods)
    ax.set_title(title or f"difference from random at {budget:.0%} (▲▼: beyond the seeds' pooled sd)", fontsize=10)
    return ax


def family_accuracy(table: pd.DataFrame, condition: str, budget: str, methods, families, ax=None):
    """Mean accuracy over seeds per family for ``methods`` at one budget of one condition, the full pool's as a
    black tick and each family's blind rate (question without image) as a grey one."""
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * len(families) + 2, 4))
    at = table[table["condition"] == condition]
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(families))
    for k, m in enumerate(methods):
        rows = at[(at["method"] == m) & (at["budget"].astype(str) == str(budget))]
        if not len(rows):
            continue
        means = [rows[f"accuracy_{f}"].mean() for f in families]
        ax.bar(x + (k - (len(methods) - 1) / 2) * width, means, width, label=m, color=_colour(m, k))
    full = at[at["method"] == "full"]
    for j, f in enumerate(families):
        if len(full):
            ax.hlines(full[f"accuracy_{f}"].mean(), j - 0.4, j + 0.4, color="black", lw=1.5)
        if f"blind_{f}" in at:
            ax.hlines(at[f"blind_{f}"].iloc[0], j - 0.4, j + 0.4, color="0.6", lw=1.2, ls="--")
    ax.set_xticks(x, families, rotation=30, ha="right")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(f"{condition}, {float(budget):.0%}: per family (black: full pool; grey dashes: image-blind rate)",
                 fontsize=9)
    ax.legend(fontsize=7, ncol=min(len(methods), 4))
    ax.grid(axis="y", alpha=0.3)
    return ax


def subset_family_shares(table: pd.DataFrame, condition: str, budget: str, methods, ax=None):
    """What each method's subset holds, family by family (mean share over seeds), stacked to 1."""
    at = table[(table["condition"] == condition) & (table["budget"].astype(str) == str(budget))]
    cols = [c for c in at.columns if c.startswith("family_share_")]
    shares = at[at["method"].isin(methods)].groupby("method", sort=False)[cols].mean().reindex(methods)
    shares.columns = [c.removeprefix("family_share_") for c in cols]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * len(methods) + 1.5))
    shares.plot.barh(stacked=True, ax=ax, width=0.8, colormap="tab10", legend=True)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the subset")
    ax.set_title(f"{condition}, {float(budget):.0%}: the subsets' families", fontsize=9)
    ax.legend(fontsize=7, ncol=5, loc="lower center", bbox_to_anchor=(0.5, 1.08))
    return ax
