"""Plots of the 2-D quality space: answer loss (x) against image-text score (y), with the grid."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from kit.quality.space import QualitySpace, grid_matrix, grid_summary


def draw_grid(ax, space: QualitySpace, names: bool = True, color="0.25"):
    """The cell edges over a (loss, score) axis, with the bounds dashed and the cell names."""
    for x in space.l_edges:
        ax.axvline(x, color=color, lw=0.8, ls="--" if x in (space.l_min, space.l_max) else "-", alpha=0.6)
    for y in space.s_edges:
        ax.axhline(y, color=color, lw=0.8, ls="--" if y in (space.s_min, space.s_max) else "-", alpha=0.6)
    if names:
        n = space.grid
        for r in range(n):
            for c in range(n):
                x = (space.l_edges[c] + space.l_edges[c + 1]) / 2
                y = (space.s_edges[r] + space.s_edges[r + 1]) / 2
                ax.text(x, y, f"({r},{c})", ha="center", va="center", fontsize=7, color=color, alpha=0.7)


def quality_scatter(scores: pd.DataFrame, space: QualitySpace, hue=None, ax=None, title: str = "",
                    palette="tab10", s: float = 14, order=None, score_label: str = "image-text score s",
                    highlight=None):
    """Scatter of (loss, score) over the grid, coloured by ``hue`` (a Series aligned with ``scores``).

    Points outside the bounds are drawn where they are; with the space's default ``outside="exclude"``
    they lie in no cell and are marked with a grey cross (with ``"clip"`` they count in the edge cells).
    ``highlight`` maps a label to a list of ids drawn on top with a black edge.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    x = pd.to_numeric(scores[space.loss_col], errors="coerce")
    y = pd.to_numeric(scores[space.score_col], errors="coerce")
    if hue is None:
        ax.scatter(x, y, s=s, alpha=0.6, color="#4C72B0", lw=0)
    else:
        hue = pd.Series(hue, index=scores.index).astype(str)
        levels = order or sorted(hue.unique())
        colors = plt.get_cmap(palette)(np.linspace(0, 1, max(len(levels), 2))) if palette != "tab10" \
            else plt.get_cmap("tab10").colors
        for k, level in enumerate(levels):
            m = (hue == level).to_numpy()
            ax.scatter(x[m], y[m], s=s, alpha=0.7, color=colors[k % len(colors)], lw=0,
                       label=f"{level} ({int(m.sum())})")
    for k, (label, ids) in enumerate((highlight or {}).items()):
        ids = [i for i in ids if i in scores.index]
        ax.scatter(x.loc[ids], y.loc[ids], s=s * 2.2, facecolor="none", edgecolor=["k", "crimson", "darkgreen",
                   "purple"][k % 4], lw=1.1, label=f"{label} ({len(ids)})")
    out = space.outside_mask(scores) if space.outside == "exclude" else np.zeros(len(scores), dtype=bool)
    if out.any():
        ax.scatter(x[out], y[out], s=s * 1.6, marker="x", color="0.35", lw=0.9,
                   label=f"outside the bounds, in no cell ({int(out.sum())})")
    draw_grid(ax, space)
    ax.set_xlabel(f"answer loss l ({space.loss_col})")
    ax.set_ylabel(score_label)
    ax.set_title(title)
    if hue is not None or highlight or out.any():
        ax.legend(fontsize=7, loc="best", framealpha=0.8)
    return ax


def quality_density(scores: pd.DataFrame, space: QualitySpace, ax=None, title: str = "density",
                    score_label: str = "image-text score s"):
    """Hexbin density of the plane with the grid drawn over it."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    x = pd.to_numeric(scores[space.loss_col], errors="coerce")
    y = pd.to_numeric(scores[space.score_col], errors="coerce")
    ok = np.isfinite(x) & np.isfinite(y)
    hb = ax.hexbin(x[ok], y[ok], gridsize=25, cmap="Blues", mincnt=1)
    plt.colorbar(hb, ax=ax, label="samples")
    draw_grid(ax, space)
    ax.set_xlabel(f"answer loss l ({space.loss_col})")
    ax.set_ylabel(score_label)
    ax.set_title(title)
    return ax


def cell_heatmap(scores: pd.DataFrame, space: QualitySpace, value: str = "count", ax=None, title: str = "",
                 fmt: str = ".0f", cmap="viridis"):
    """An n x n heatmap of a ``grid_summary`` column laid out like the plane (high s on top)."""
    import seaborn as sns

    summary = grid_summary(scores, space)
    if value not in summary.columns:
        raise KeyError(f"{value!r} is not in the grid summary (columns: {list(summary.columns)})")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    sns.heatmap(grid_matrix(summary, value), annot=True, fmt=fmt, cmap=cmap, ax=ax, cbar=False)
    ax.set_title(title or value)
    ax.set_xlabel("col: loss bin (low → high)")
    ax.set_ylabel("row: score bin (high ↑)")
    return ax


def curriculum_plot(scores: pd.DataFrame, space: QualitySpace, stages, ax=None, title: str = "curriculum stages",
                    score_label: str = "image-text score s"):
    """The pool in grey, each curriculum stage in its colour, and each stage's region corner."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    x = pd.to_numeric(scores[space.loss_col], errors="coerce")
    y = pd.to_numeric(scores[space.score_col], errors="coerce")
    ax.scatter(x, y, s=8, color="0.8", lw=0, label=f"pool ({len(scores)})")
    cmap = plt.get_cmap("plasma")
    thresholds = space.stage_thresholds(len(stages))
    for k, (ids, (l_t, s_t)) in enumerate(zip(stages, thresholds)):
        col = cmap(0.15 + 0.7 * k / max(len(stages) - 1, 1))
        ax.scatter(x.loc[list(ids)], y.loc[list(ids)], s=16, color=col, lw=0, label=f"stage {k} ({len(ids)})")
        ax.axvline(l_t, color=col, lw=1, ls=":")
        ax.axhline(s_t, color=col, lw=1, ls=":")
    ax.set_xlabel(f"answer loss l ({space.loss_col})")
    ax.set_ylabel(score_label)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return ax
