"""Cross-validated agreement of the distilled head with the ratings it learns from."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from kit.evaluation import multilabel_agreement
from kit.mmssr.distilled.model import DistilledHead
from kit.mmssr.distilled.net import fit_head, predict_head, styles_from_probs


@dataclass
class CVReport:
    """Out-of-fold agreement of the distilled head with the teacher."""

    capabilities: pd.DataFrame          # per capability: spearman, mae, n, teacher_mean
    styles: pd.DataFrame                # per style: precision, recall, f1, support
    style_f1_micro: float
    style_f1_macro: float
    predictions: pd.DataFrame           # out-of-fold scores and styles, indexed by id
    folds: int
    seed: int
    options: dict = field(default_factory=dict)

    @property
    def mean_spearman(self) -> float:
        return float(np.nanmean(self.capabilities["spearman"].to_numpy(dtype=float)))

    def to_dict(self) -> dict:
        """Plain-type summary (for metadata and JSON)."""
        def clean(v):
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)

        return {"folds": self.folds, "seed": self.seed, "options": self.options,
                "spearman": {k: clean(v) for k, v in self.capabilities["spearman"].items()},
                "mean_spearman": clean(self.mean_spearman),
                "mae": {k: clean(v) for k, v in self.capabilities["mae"].items()},
                "style_f1": {k: clean(v) for k, v in self.styles["f1"].items()},
                "style_f1_micro": clean(self.style_f1_micro), "style_f1_macro": clean(self.style_f1_macro)}

    def summary(self) -> str:
        caps = self.capabilities.copy()
        grouped = f", grouped by {self.options['groups']}" if self.options.get("groups") else ""
        lines = [f"{self.folds}-fold cross-validation (seed {self.seed}{grouped}), {len(self.predictions)} samples",
                 "capability     spearman    mae    n",
                 *[f"{k:<14}{r.spearman:>9.3f}{r.mae:>7.3f}{int(r.n):>5}" for k, r in caps.iterrows()],
                 f"{'mean':<14}{self.mean_spearman:>9.3f}",
                 "style                              P      R     F1  support",
                 *[f"{k:<32}{r.precision:>6.2f}{r.recall:>7.2f}{r.f1:>7.2f}{int(r.support):>8}"
                   for k, r in self.styles.iterrows()],
                 f"style F1 micro {self.style_f1_micro:.3f}, macro {self.style_f1_macro:.3f}"]
        return "\n".join(lines)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan
    return float(spearmanr(a[ok], b[ok]).statistic)


def cross_validate(pool, ratings: pd.DataFrame, folds: int = 5, seed: int = 0,
                   capabilities: Iterable[str] | None = None, groups=None, **scorer_options) -> CVReport:
    """K-fold agreement of the distilled head with the teacher on the rated samples of ``pool``.

    Features are computed once; each fold trains a fresh head (``scorer_options`` as for
    :class:`DistilledHead`, its ``seed`` defaulting to ``seed``) on the other folds and
    predicts its own. Spearman is computed per capability over all out-of-fold predictions.
    ``groups`` (a column of ``ratings`` or a Series indexed by id) keeps each group in one fold, e.g.
    a duplicate or a defective copy together with the sample it was made from.
    """
    from sklearn.model_selection import GroupKFold, KFold

    scorer_options.setdefault("seed", seed)
    base = DistilledHead(**scorer_options)
    base._resolve_columns(ratings, capabilities)
    ids = base._training_ids(pool, ratings)
    X, errors = base.features(pool, ids)
    ok = np.array([e is None for e in errors], dtype=bool)
    ids = [sid for sid, good in zip(ids, ok) if good]
    X = X[ok]
    if len(ids) < folds:
        raise ValueError(f"{len(ids)} usable rated samples are too few for {folds} folds")
    Y, S = base._targets(ratings, ids)
    pred = np.full(Y.shape, np.nan)
    probs = np.zeros(S.shape)
    if groups is None:
        splits = KFold(folds, shuffle=True, random_state=seed).split(X)
    else:
        if isinstance(groups, str):  # a column; an empty cell is a group of its own
            g = ratings[groups].where(ratings[groups].notna(), ratings.index.to_series())
        else:
            g = pd.Series(groups)
        missing = [sid for sid in ids if sid not in g.index]
        if missing:
            raise KeyError(f"groups has no entry for {len(missing)} samples, e.g. {missing[:3]}")
        splits = GroupKFold(folds, shuffle=True, random_state=seed).split(X, groups=g.loc[ids].astype(str).to_numpy())
    for train, test in splits:
        head = fit_head(X[train], Y[train], S[train], base.config, base._gain(X.shape[1]))
        pred[test], probs[test] = predict_head(head, X[test], base.config.target, len(base.capabilities))
    cap_rows = {}
    for j, k in enumerate(base.capabilities):
        y = Y[:, j]
        good = np.isfinite(y)
        cap_rows[k] = {"spearman": _spearman(pred[:, j], y), "mae": float(np.abs(pred[good, j] - y[good]).mean())
                       if good.any() else math.nan, "n": int(good.sum()),
                       "teacher_mean": float(y[good].mean()) if good.any() else math.nan}
    cap_table = pd.DataFrame.from_dict(cap_rows, orient="index")
    cap_table.index.name = "capability"
    style_lists = styles_from_probs(probs, base.styles, base.config.style_threshold, base.config.at_least_one_style)
    pred_bool = np.zeros_like(S, dtype=bool)
    for i, names in enumerate(style_lists):
        for name in names:
            pred_bool[i, base.styles.index(name)] = True
    style_table, micro, macro = multilabel_agreement(S > 0.5, pred_bool, base.styles)
    predictions = pd.DataFrame(pred, index=pd.Index(ids, name="id"), columns=base.capabilities)
    predictions["styles"] = style_lists
    opts = {k: v for k, v in scorer_options.items()
            if isinstance(v, (int, float, str, bool, type(None))) and k not in ("cache_dir", "progress")}
    opts["block_gains"] = base.config.block_gains
    opts.update({"features": base.extractor.name, **{f"feature_{k}": str(v) for k, v in
                                                     getattr(base.extractor, "options", {}).items()}})
    if groups is not None:
        opts["groups"] = groups if isinstance(groups, str) else "custom"
    return CVReport(cap_table, style_table, micro, macro, predictions, folds, seed, opts)
