"""Plots of a selected subset against its pool: shares of styles/sources, capability profiles."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def share_bars(table: pd.DataFrame, title: str, ax=None, pool_col: str = "pool_share",
               selected_col: str = "selected_share", labels=("pool", "subset")):
    """Side-by-side horizontal bars of two shares per row (e.g. a style's share of pool and subset)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.38 * len(table) + 1.2))
    y = np.arange(len(table))
    ax.barh(y + 0.2, table[pool_col], height=0.4, color="0.7", label=labels[0])
    ax.barh(y - 0.2, table[selected_col], height=0.4, color="#C44E52", label=labels[1])
    ax.set_yticks(y, [str(i) for i in table.index])
    ax.invert_yaxis()
    ax.set_xlabel("share of samples")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def style_shares(styles: pd.Series, ids) -> pd.DataFrame:
    """Share of samples carrying each style, in the pool and in the subset ``ids`` (multi-label)."""
    pool = styles.explode().value_counts() / len(styles)
    sub = styles.loc[list(ids)].explode().value_counts() / max(len(ids), 1)
    out = pd.DataFrame({"pool_share": pool, "selected_share": sub}).fillna(0.0)
    return out.sort_values("pool_share", ascending=False)


def capability_profile(scores: pd.DataFrame, subsets: dict, capabilities, ax=None,
                       title: str = "mean capability score"):
    """Mean score per capability for the pool and each named subset (lines over the capabilities)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.8))
    caps = list(capabilities)
    x = np.arange(len(caps))
    ax.plot(x, scores[caps].mean().to_numpy(), color="0.5", lw=2, marker="o", label=f"pool ({len(scores)})")
    for name, ids in subsets.items():
        ax.plot(x, scores.loc[list(ids), caps].mean().to_numpy(), marker=".", label=f"{name} ({len(ids)})")
    ax.set_xticks(x, caps, rotation=40, ha="right")
    ax.set_ylabel("mean score (0–5)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return ax


def defect_rates(defects: pd.Series, subsets: dict, ax=None, title: str = "planted defects in each subset"):
    """Share of each planted defect kind in the pool and in each named subset (stacked bars)."""
    rows = {"pool": defects}
    rows.update({name: defects.loc[list(ids)] for name, ids in subsets.items()})
    table = pd.DataFrame({name: d[d != "none"].value_counts() / max(len(d), 1) for name, d in rows.items()})
    table = table.fillna(0.0).T
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.35 * len(table) + 1.3))
    table.plot.barh(stacked=True, ax=ax, colormap="tab10")
    ax.invert_yaxis()
    ax.set_xlabel("share of the subset that is defective")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    return ax, table


def overlap_heatmap(jaccard: pd.DataFrame, ax=None, title: str = "overlap between subsets (Jaccard)"):
    """The Jaccard matrix of :func:`kit.compare.compare_selections` as an annotated heatmap (0 to 1)."""
    n = len(jaccard)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * n + 2.5, 0.5 * n + 1.8))
    im = ax.imshow(jaccard.to_numpy(dtype=float), vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(n), [str(c) for c in jaccard.columns], rotation=45, ha="right")
    ax.set_yticks(range(n), [str(i) for i in jaccard.index])
    for i in range(n):
        for j in range(n):
            v = float(jaccard.iat[i, j])
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black" if v > 0.6 else "white")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title)
    return ax
