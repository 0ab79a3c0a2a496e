"""A run folder with a ready score table, for the explorer tests and the browser test (no scoring, seconds).

The table is NOT any scorer's output: the capability columns are the pool's hand-written reference ratings
(``labels.csv``), the styles its true styles, and ``image_text`` / ``loss_mean`` / ``loss_sum`` and the
embeddings are seeded random numbers (planted defects get a lower image-text score, so the plane has
structure to look at). It exercises the widgets; it measures nothing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kit.capabilities import capability_keys
from kit.data import load_pool
from kit.eval.labels import labels_path_for, load_labels
from kit.provenance import pool_hash
from kit.quality.image_text.scorer import save_embeddings
from kit.scoreinfo import ScoreInfo, ScoreTableInfo, attach
from kit.scoring import TABLE_FILE, save_scores


def reference_table(pool, labels: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = pool.table.index
    n = len(ids)
    table = pool.table[["source"]].copy()
    defect = labels["defect"].reindex(ids).fillna("none")
    table["image_text"] = np.round(rng.normal(0.30, 0.05, n) - 0.12 * (defect != "none").to_numpy(), 4)
    table["loss_mean"] = np.round(rng.gamma(3.0, 0.5, n), 4)
    table["loss_sum"] = table["loss_mean"] * rng.integers(3, 40, n)
    for key in capability_keys():
        if key in labels.columns:
            table[key] = labels[key].reindex(ids).astype(float)
    table["styles"] = labels["styles"].reindex(ids).map(lambda v: list(v) if isinstance(v, list) else [])
    table.index.name = "id"
    return table


def prepare_run(pool_path, run_dir, seed: int = 0) -> pd.DataFrame:
    """Write ``<run_dir>/scores/score_table.parquet`` (what ``nb.scores()`` reads) and ``<run_dir>/embeddings``."""
    pool_path, run_dir = Path(pool_path), Path(run_dir)
    pool = load_pool(pool_path)
    labels = load_labels(labels_path_for(pool_path))
    table = reference_table(pool, labels, seed)
    emb_dir = run_dir / "embeddings"
    rng = np.random.default_rng(seed + 1)
    save_embeddings(emb_dir, table.index, rng.standard_normal((len(table), 16)),
                    rng.standard_normal((len(table), 16)), {"made_by": "tests/support/explorer_run.py (random)"})
    caps = [k for k in capability_keys() if k in table.columns]
    entries = {
        "image_text": ScoreInfo("image_text", ["image_text"], "random stand-in (test)", "random (test)",
                                options={"embeddings_dir": str(emb_dir)}, pool_dependent=False),
        "loss": ScoreInfo("loss", ["loss_mean", "loss_sum"], "random (test)", pool_dependent=False),
        "rich": ScoreInfo("rich", caps, "reference ratings (labels.csv)", pool_dependent=False),
        "style": ScoreInfo("style", ["styles"], "true styles (labels.csv)", pool_dependent=False)}
    attach(table, ScoreTableInfo(entries, pool_hash(pool)))
    save_scores(table, run_dir / "scores" / TABLE_FILE)
    return table
