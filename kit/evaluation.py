"""Checking scores against a pool's planted truth (``labels.csv``): do the scorers find the defects?"""
from __future__ import annotations

import numpy as np
import pandas as pd


def defect_auc(values: pd.Series, defects: pd.Series, defect: str, higher_means_clean: bool = True) -> float:
    """ROC AUC of telling clean samples from ``defect`` samples by ``values`` (NaN rows left out).

    With ``higher_means_clean`` (e.g. image-text similarity), 1.0 means every clean sample scores above
    every defective one; for a loss, pass ``False``. 0.5 is chance.
    """
    from sklearn.metrics import roc_auc_score

    both = pd.DataFrame({"v": values, "d": defects}).dropna()
    both = both[both["d"].isin(["none", defect])]
    if both["d"].nunique() < 2:
        raise ValueError(f"need both clean and {defect!r} samples with scores")
    y_clean = (both["d"] == "none").to_numpy()
    v = both["v"].to_numpy(dtype=float)
    return float(roc_auc_score(y_clean, v if higher_means_clean else -v))


def defect_pairs(values: pd.Series, labels: pd.DataFrame, defect: str) -> pd.DataFrame:
    """Each planted ``defect`` next to the clean sample it was made from: columns origin, clean, defective.

    ``labels`` needs ``defect`` and ``origin`` columns (as ``kit.labels.load_labels`` gives them).
    """
    rows = labels[(labels["defect"] == defect) & labels.index.isin(values.index)]
    rows = rows[rows["origin"].isin(values.index)]
    out = pd.DataFrame({"origin": rows["origin"],
                        "clean": values.reindex(rows["origin"]).to_numpy(dtype=float),
                        "defective": values.reindex(rows.index).to_numpy(dtype=float)}, index=rows.index)
    out.index.name = "id"
    return out


def paired_win_rate(pairs: pd.DataFrame, defective_higher: bool) -> float:
    """Share of pairs in which the defective sample scores higher (or lower) than its clean origin."""
    ok = pairs.dropna(subset=["clean", "defective"])
    if not len(ok):
        return float("nan")
    diff = ok["defective"] - ok["clean"]
    return float(np.mean(diff > 0 if defective_higher else diff < 0))
