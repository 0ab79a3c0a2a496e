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


def multilabel_agreement(true: np.ndarray, pred: np.ndarray, names) -> tuple[pd.DataFrame, float, float]:
    """Per-label precision, recall, F1 and support of boolean matrices ``(n_samples, n_labels)``.

    Returns the table (NaN where a ratio is undefined: no predictions, no support) with micro F1 and
    macro F1 (mean over labels that have support).
    """
    true, pred = np.asarray(true, dtype=bool), np.asarray(pred, dtype=bool)
    tp = (true & pred).sum(0).astype(float)
    fp = (~true & pred).sum(0).astype(float)
    fn = (true & ~pred).sum(0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame({"support": (tp + fn).astype(int), "predicted": (tp + fp).astype(int),
                              "precision": tp / (tp + fp), "recall": tp / (tp + fn),
                              "f1": 2 * tp / (2 * tp + fp + fn)}, index=pd.Index(list(names), name="style"))
    denom = 2 * tp.sum() + fp.sum() + fn.sum()
    micro = float(2 * tp.sum() / denom) if denom else float("nan")
    present = table["support"] > 0
    macro = float(table.loc[present, "f1"].mean()) if present.any() else float("nan")
    return table, micro, macro
