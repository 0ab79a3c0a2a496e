"""2-D maps of the embeddings a scorer keeps (UMAP), coloured by source or defect."""
from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def umap_2d(features: np.ndarray, n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "cosine",
            seed: int = 0) -> np.ndarray:
    """UMAP coordinates (n, 2) of ``features`` (seeded, so the map is the same on every run)."""
    import umap

    n_neighbors = max(2, min(n_neighbors, len(features) - 1))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        reducer = umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, metric=metric, random_state=seed)
        return reducer.fit_transform(np.asarray(features, dtype=np.float32))


def embedding_map(coords: np.ndarray, ids, hue: pd.Series, ax=None, title: str = "", highlight=None, s: float = 12):
    """Scatter of 2-D ``coords`` (rows in ``ids`` order) coloured by ``hue`` (a Series indexed by id).

    ``highlight`` maps a label to ids drawn on top with a black edge (e.g. planted mismatches).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    frame = pd.DataFrame(coords, index=pd.Index(list(ids), name="id"), columns=["x", "y"])
    frame["hue"] = hue.reindex(frame.index).astype(str)
    colors = plt.get_cmap("tab10").colors
    for k, level in enumerate(sorted(frame["hue"].unique())):
        part = frame[frame["hue"] == level]
        ax.scatter(part["x"], part["y"], s=s, color=colors[k % len(colors)], alpha=0.75, lw=0,
                   label=f"{level} ({len(part)})")
    for label, chosen in (highlight or {}).items():
        part = frame.loc[[i for i in chosen if i in frame.index]]
        ax.scatter(part["x"], part["y"], s=s * 3, facecolor="none", edgecolor="k", lw=1.1,
                   label=f"{label} ({len(part)})")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best", framealpha=0.8)
    return ax
