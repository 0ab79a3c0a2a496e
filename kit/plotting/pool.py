"""Plots of a pool: counts, and images with their conversations; saving figures."""
from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd


def save_figure(fig, out_dir, name: str) -> Path | None:
    """Save ``fig`` as ``<out_dir>/<name>.png`` (no-op when ``out_dir`` is None)."""
    if not out_dir:
        return None
    path = Path(out_dir) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def count_bars(counts: pd.Series, title: str, ax=None, color="#4C72B0", horizontal: bool = True):
    """A labelled bar chart of counts (largest first)."""
    counts = counts.sort_values(ascending=horizontal)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 0.3 * len(counts) + 1.2))
    if horizontal:
        ax.barh([str(i) for i in counts.index], counts.values, color=color)
        for y, v in enumerate(counts.values):
            ax.text(v, y, f" {v}", va="center", fontsize=8)
        ax.set_xlabel("samples")
    else:
        ax.bar([str(i) for i in counts.index], counts.values, color=color)
        ax.set_ylabel("samples")
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def conversation_caption(conversations, width: int = 44, max_chars: int = 260) -> str:
    """A short, wrapped text of a conversation for a figure caption (Q:/A: prefixes)."""
    parts = []
    for turn in conversations:
        who = "Q" if turn["from"] == "human" else "A"
        text = turn["value"].replace("<image>", "").strip().replace("\n", " ")
        parts.append(f"{who}: {text}")
    text = " ".join(parts)
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return "\n".join(textwrap.wrap(text, width))


def sample_grid(pool, ids, titles=None, ncols: int = 4, image_size: float = 2.6):
    """Images of ``ids`` with their conversations underneath."""
    ids = list(ids)
    nrows = max(1, -(-len(ids) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * image_size * 1.25, nrows * image_size * 2.0),
                             squeeze=False)
    images = {sid: img for sid, img, _ in pool.iter_images(ids)}
    for ax in axes.flat:
        ax.axis("off")
    for k, sid in enumerate(ids):
        ax = axes.flat[k]
        if images.get(sid) is not None:
            ax.imshow(images[sid])
        title = titles[k] if titles is not None else f"{sid} [{pool.table.at[sid, 'source']}]"
        ax.set_title(title, fontsize=8)
        ax.text(0.0, -0.04, conversation_caption(pool.table.at[sid, "conversations"]), transform=ax.transAxes,
                fontsize=6.5, va="top", ha="left", family="monospace")
    fig.tight_layout()
    return fig
