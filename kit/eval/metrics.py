"""Checking scores against a pool's planted truth (``labels.csv``): do the scorers find the defects?

Metrics: :func:`defect_auc` (ROC AUC clean vs one defect kind, optionally among some of the defective
samples), :func:`mismatch_aucs` (all planted mismatches, and within-source / cross-source apart),
:func:`defect_pairs` and :func:`paired_win_rate` (each defect against the clean sample it was made
from), :func:`duplicate_placement` (where exact duplicates land among the clean samples),
:func:`detection_table` (all of these for several score columns), :func:`wrong_answer_flags` (planted
wrong answers that loss tables flag), :func:`multilabel_agreement`.
``kit report data_samples/`` prints every figure docs/results.md reports (:mod:`kit.eval.report`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def defect_auc(values: pd.Series, defects: pd.Series, defect: str, higher_means_clean: bool = True,
               among=None) -> float:
    """ROC AUC of telling clean samples from ``defect`` samples by ``values`` (NaN rows left out).

    With ``higher_means_clean`` (e.g. image-text similarity), 1.0 means every clean sample scores above
    every defective one; for a loss, pass ``False``. 0.5 is chance. ``among`` (a boolean Series indexed
    by id) keeps only the ``defect`` samples where it holds, e.g. ``labels["mismatch_kind"] ==
    "within_source"``; every clean sample still counts.
    """
    from sklearn.metrics import roc_auc_score

    both = pd.DataFrame({"v": values, "d": defects}).dropna()
    both = both[both["d"].isin(["none", defect])]
    if among is not None:
        keep = pd.Series(among).reindex(both.index).fillna(False).astype(bool)
        both = both[(both["d"] == "none") | keep]
    if both["d"].nunique() < 2:
        raise ValueError(f"need both clean and {defect!r} samples with scores")
    y_clean = (both["d"] == "none").to_numpy()
    v = both["v"].to_numpy(dtype=float)
    return float(roc_auc_score(y_clean, v if higher_means_clean else -v))


def defect_pairs(values: pd.Series, labels: pd.DataFrame, defect: str) -> pd.DataFrame:
    """Each planted ``defect`` next to the clean sample it was made from: columns origin, clean, defective.

    ``labels`` needs ``defect`` and ``origin`` columns (as ``kit.eval.labels.load_labels`` gives them).
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


MISMATCH_KINDS = ("within_source", "cross_source")


def mismatch_groups(labels: pd.DataFrame) -> dict[str, pd.Series]:
    """Boolean Series over ``labels`` for ``all`` planted mismatches and each ``mismatch_kind`` present
    (``within_source``: the image came from a sample of the same source; ``cross_source``: another)."""
    is_mismatch = labels["defect"] == "mismatch"
    out = {"all": is_mismatch}
    kind = labels["mismatch_kind"] if "mismatch_kind" in labels.columns else pd.Series(None, index=labels.index)
    for k in MISMATCH_KINDS:
        out[k] = is_mismatch & (kind == k)
    return out


def defect_kinds(labels: pd.DataFrame) -> pd.Series:
    """Each sample's planted defect, with mismatches split by kind: ``"mismatch (within source)"`` and
    ``"mismatch (cross source)"`` (for plots and counts; other defects and ``"none"`` as they are)."""
    out = labels["defect"].astype(object).copy()
    if "mismatch_kind" in labels.columns:
        m = (labels["defect"] == "mismatch") & labels["mismatch_kind"].notna()
        out[m] = "mismatch (" + labels.loc[m, "mismatch_kind"].str.replace("_", " ") + ")"
    return out.rename("defect")


def mismatch_aucs(values: pd.Series, labels: pd.DataFrame, higher_means_clean: bool = True) -> pd.Series:
    """ROC AUC of clean vs planted mismatch for ``all`` mismatches, ``within_source`` and ``cross_source``
    ones (NaN where a pool has none of that kind), with the number of mismatches of each as ``n_<group>``."""
    out = {}
    for name, mask in mismatch_groups(labels).items():
        n = int((mask & labels.index.isin(values.dropna().index)).sum())
        out[name] = defect_auc(values, labels["defect"], "mismatch", higher_means_clean, among=mask) if n else np.nan
        out[f"n_{name}"] = n
    return pd.Series(out, dtype=float)


def duplicate_placement(values: pd.Series, labels: pd.DataFrame) -> pd.Series:
    """Where planted exact duplicates land among the clean samples by ``values``.

    ``auc``: ROC AUC of clean vs duplicate read as "higher means clean" (below 0.5: duplicates score above
    clean samples); ``median_percentile``: the duplicates' median percentile in the clean distribution
    (50 = typical); ``above_clean_median``: their share above the clean median; ``same_as_origin``: the
    share scoring within 1e-6 of the clean sample they copy; ``n``.
    """
    v = values.dropna()
    clean = np.sort(v[v.index.isin(labels.index[labels["defect"] == "none"])].to_numpy(dtype=float))
    dup = v[v.index.isin(labels.index[labels["defect"] == "duplicate"])]
    if not len(dup) or not len(clean):
        return pd.Series({"auc": np.nan, "median_percentile": np.nan, "above_clean_median": np.nan,
                          "same_as_origin": np.nan, "n": float(len(dup))})
    pct = 100.0 * (np.searchsorted(clean, dup.to_numpy(dtype=float), side="left")
                   + np.searchsorted(clean, dup.to_numpy(dtype=float), side="right")) / (2 * len(clean))
    pairs = defect_pairs(values, labels, "duplicate").dropna()
    same = float(np.mean(np.abs(pairs["defective"] - pairs["clean"]) <= 1e-6)) if len(pairs) else np.nan
    return pd.Series({"auc": defect_auc(values, labels["defect"], "duplicate"),
                      "median_percentile": float(np.median(pct)),
                      "above_clean_median": float(np.mean(dup.to_numpy(dtype=float) > np.median(clean))),
                      "same_as_origin": same, "n": float(len(dup))})


def detection_table(scores: pd.DataFrame, labels: pd.DataFrame, columns, higher_means_clean: bool = True) -> pd.DataFrame:
    """For each score column: mismatch ROC AUC (all, within-source, cross-source), the share of mismatches
    scoring below their clean origin (all, within, cross), and where duplicates land (their AUC and median
    percentile among clean samples, see :func:`duplicate_placement`)."""
    groups = mismatch_groups(labels)
    rows = {}
    for col in columns:
        values = scores[col]
        aucs = mismatch_aucs(values, labels, higher_means_clean)
        pairs = defect_pairs(values, labels, "mismatch")
        row = {f"auc_{g}": aucs[g] for g in ("all", *MISMATCH_KINDS)}
        for g in ("all", *MISMATCH_KINDS):
            sub = pairs[pairs.index.isin(labels.index[groups[g]])]
            row[f"below_origin_{g}"] = paired_win_rate(sub, defective_higher=not higher_means_clean)
        dup = duplicate_placement(values if higher_means_clean else -values, labels)
        row["duplicate_auc"], row["duplicate_median_percentile"] = dup["auc"], dup["median_percentile"]
        rows[col] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.attrs["n_mismatch"] = {g: int(aucs[f"n_{g}"]) for g in ("all", *MISMATCH_KINDS)} if rows else {}
    return table


def multilabel_agreement(true: np.ndarray, pred: np.ndarray, names) -> tuple[pd.DataFrame, float, float]:
    """Per-label precision, recall, F1 and support of boolean matrices ``(n_samples, n_labels)``.

    Returns the table (NaN where a ratio is undefined: no predictions, no support) with micro F1 and
    macro F1 (mean over labels that have support).
    """
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    true, pred = np.asarray(true, dtype=bool), np.asarray(pred, dtype=bool)
    labels = list(range(true.shape[1]))
    if len(labels) == 1:   # sklearn reads one column as a binary target: an empty second label keeps it multilabel
        true, pred = (np.hstack([a, np.zeros_like(a)]) for a in (true, pred))
    precision, recall, f1, support = precision_recall_fscore_support(true, pred, labels=labels,
                                                                     zero_division=np.nan)
    table = pd.DataFrame({"support": support.astype(int), "predicted": pred[:, labels].sum(0).astype(int),
                          "precision": precision, "recall": recall, "f1": f1},
                         index=pd.Index(list(names), name="style"))
    micro = float(f1_score(true, pred, labels=labels, average="micro", zero_division=np.nan))
    present = table["support"] > 0
    macro = float(table.loc[present, "f1"].mean()) if present.any() else float("nan")
    return table, micro, macro


def wrong_answer_flags(tables: dict, labels: pd.DataFrame, sources: pd.Series | None = None,
                       columns=("loss_sum", "loss_mean")) -> pd.DataFrame:
    """In how many planted wrong-answer pairs each loss table gives the wrong answer the higher loss.

    ``tables``: ``{name: loss table}`` (e.g. the text-only model and an aligned vision-language model);
    ``sources``: the pool's ``source`` column, for a count per source beside the total. One row per
    (name, source); columns: ``pairs`` and, per loss column, the number of pairs it flags.
    """
    rows = []
    for name, table in tables.items():
        groups = {"all": None}
        if sources is not None:
            groups.update({s: s for s in sorted(sources.dropna().unique())})
        for group, source in groups.items():
            row = {"scorer": name, "source": group}
            for col in columns:
                if col not in table:
                    continue
                pairs = defect_pairs(table[col], labels, "wrong_answer").dropna(subset=["clean", "defective"])
                if source is not None:
                    pairs = pairs[sources.reindex(pairs.index).to_numpy() == source]
                row["pairs"] = len(pairs)
                row[col] = int((pairs["defective"] > pairs["clean"]).sum())
            if row.get("pairs"):
                rows.append(row)
    return pd.DataFrame(rows).set_index(["scorer", "source"])
