"""Agreement of the distilled head with the ratings it learns from: cross-validated (optionally grouped,
e.g. by question template), on a held-out pool, with question templates held out, and the comparison of
settings (``tune``) used to choose the shipped head's settings on its training pool."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from kit.eval.metrics import multilabel_agreement
from kit.mmssr.distilled.model import DistilledHead
from kit.mmssr.distilled.net import fit_head, predict_head, styles_from_probs


@dataclass
class CVReport:
    """Out-of-sample agreement of the distilled head with the ratings it learns from (``folds=0``: a head
    scored on a pool it was not trained on)."""

    capabilities: pd.DataFrame          # per capability: spearman, mae, n, rating_mean (the ratings' mean)
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
        if self.options.get("template_held_out"):
            title = (f"{self.folds} folds of question templates held out of training (seed {self.seed}), "
                     f"{len(self.predictions)} held-out samples")
        elif self.folds == 0:
            title = f"a head scored on a pool it was not trained on, {len(self.predictions)} samples"
        else:
            title = f"{self.folds}-fold cross-validation (seed {self.seed}{grouped}), {len(self.predictions)} samples"
        lines = [title,
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


def _group_labels(ratings: pd.DataFrame, ids, groups) -> np.ndarray:
    """One group label per id: a column of ``ratings`` (an empty cell is a group of its own) or a Series."""
    if isinstance(groups, str):
        if groups not in ratings.columns:
            raise KeyError(f"the ratings have no {groups!r} column to group by")
        g = ratings[groups].where(ratings[groups].notna(), ratings.index.to_series())
    else:
        g = pd.Series(groups)
    missing = [sid for sid in ids if sid not in g.index]
    if missing:
        raise KeyError(f"groups has no entry for {len(missing)} samples, e.g. {missing[:3]}")
    return g.loc[list(ids)].astype(str).to_numpy()


def _usable(base: DistilledHead, pool, ratings, capabilities=None):
    """Rated ids of ``pool`` with usable features, their features and targets."""
    base._resolve_columns(ratings, capabilities)
    ids = base._training_ids(pool, ratings)
    X, errors = base.features(pool, ids)
    ok = np.array([e is None for e in errors], dtype=bool)
    ids = [sid for sid, good in zip(ids, ok) if good]
    Y, S = base._targets(ratings, ids)
    return ids, X[ok], Y, S


def _agreement(base: DistilledHead, ids, Y, S, pred, probs):
    """Per-capability Spearman / MAE and per-style P/R/F1 of out-of-sample predictions."""
    cap_rows = {}
    for j, k in enumerate(base.capabilities):
        y = Y[:, j]
        good = np.isfinite(y) & np.isfinite(pred[:, j])
        cap_rows[k] = {"spearman": _spearman(pred[:, j], y), "mae": float(np.abs(pred[good, j] - y[good]).mean())
                       if good.any() else math.nan, "n": int(good.sum()),
                       "rating_mean": float(y[good].mean()) if good.any() else math.nan}
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
    return cap_table, style_table, micro, macro, predictions


def _options(base: DistilledHead, scorer_options: dict, groups) -> dict:
    opts = {k: v for k, v in scorer_options.items()
            if isinstance(v, (int, float, str, bool, type(None))) and k not in ("cache_dir", "progress")}
    opts["block_gains"] = base.config.block_gains
    opts.update({"features": base.extractor.name, **{f"feature_{k}": str(v) for k, v in
                                                     getattr(base.extractor, "options", {}).items()}})
    if groups is not None:
        opts["groups"] = groups if isinstance(groups, str) else "custom"
    return opts


def cross_validate(pool, ratings: pd.DataFrame, folds: int = 5, seed: int = 0,
                   capabilities: Iterable[str] | None = None, groups=None, **scorer_options) -> CVReport:
    """K-fold agreement of the distilled head with the ratings on the rated samples of ``pool``.

    Features are computed once; each fold trains a fresh head (``scorer_options`` as for
    :class:`DistilledHead`, its ``seed`` defaulting to ``seed``) on the other folds and
    predicts its own. Spearman is computed per capability over all out-of-fold predictions.
    ``groups`` (a column of ``ratings`` or a Series indexed by id) keeps each group in one fold, e.g.
    a duplicate or a defective copy together with the sample it was made from (``"origin"``), or every
    sample of a question template together (``"template"``, so each fold is scored on templates its head
    never saw).
    """
    from sklearn.model_selection import GroupKFold, KFold

    scorer_options.setdefault("seed", seed)
    base = DistilledHead(**scorer_options)
    ids, X, Y, S = _usable(base, pool, ratings, capabilities)
    if len(ids) < folds:
        raise ValueError(f"{len(ids)} usable rated samples are too few for {folds} folds")
    pred = np.full(Y.shape, np.nan)
    probs = np.zeros(S.shape)
    if groups is None:
        splits = KFold(folds, shuffle=True, random_state=seed).split(X)
    else:
        g = _group_labels(ratings, ids, groups)
        splits = GroupKFold(folds, shuffle=True, random_state=seed).split(X, groups=g)
    for train, test in splits:
        head = fit_head(X[train], Y[train], S[train], base.config, base._gain(X.shape[1]))
        pred[test], probs[test] = predict_head(head, X[test], base.config.target, len(base.capabilities))
    cap_table, style_table, micro, macro, predictions = _agreement(base, ids, Y, S, pred, probs)
    return CVReport(cap_table, style_table, micro, macro, predictions, folds, seed,
                    _options(base, scorer_options, groups))


def held_out_agreement(head: DistilledHead, pool, ratings: pd.DataFrame, by: str | None = "source") -> dict:
    """Agreement of a trained ``head`` with the ratings of a pool it was not trained on.

    Returns ``{"all": CVReport, <value of by>: CVReport, ...}`` (``folds=0``): Spearman per capability of the
    head's expected scores against the ratings, MAE, style P/R/F1, over all rated samples and per value of
    ``by`` (a pool column such as ``source``, or a ratings column; ``None`` for the whole pool only).
    """
    ids, X, Y, S = _usable(head, pool, ratings, capabilities=list(head.capabilities))
    pred, probs = head.predict_arrays(X)
    out = {"all": CVReport(*_agreement(head, ids, Y, S, pred, probs), 0, int(head.config.seed),
                           {"held_out": True})}
    if by is not None:
        col = pool.table[by] if by in pool.table.columns else ratings[by]
        values = col.reindex(ids).astype(str).to_numpy()
        for value in dict.fromkeys(values):
            m = values == value
            sub = [sid for sid, keep in zip(ids, m) if keep]
            out[value] = CVReport(*_agreement(head, sub, Y[m], S[m], pred[m], probs[m]), 0, int(head.config.seed),
                                  {"held_out": True, by: value})
    return out


def template_held_out(train_pool, train_ratings: pd.DataFrame, test_pool, test_ratings: pd.DataFrame,
                      folds: int = 5, seed: int = 0, group: str = "template", **scorer_options) -> CVReport:
    """Agreement on ``test_pool`` with every question template held out of training.

    The templates of both pools (``group`` column of the ratings) are dealt into ``folds`` folds (seeded);
    for each fold a head is trained on the ``train_pool`` samples whose template is in another fold and
    predicts the ``test_pool`` samples whose template is in this one. So each test sample is scored by a
    head that saw neither it nor its template (templates only ``test_pool`` has, such as hand-written
    questions, are never in training anyway). The test pool's samples are never trained on.
    """
    scorer_options.setdefault("seed", seed)
    base = DistilledHead(**scorer_options)
    tr_ids, Xtr, Ytr, Str = _usable(base, train_pool, train_ratings)
    te_ids, Xte, Yte, Ste = _usable(base, test_pool, test_ratings)
    g_tr, g_te = _group_labels(train_ratings, tr_ids, group), _group_labels(test_ratings, te_ids, group)
    templates = sorted(set(g_tr) | set(g_te))
    order = np.random.default_rng(seed).permutation(len(templates))
    fold_of = {templates[i]: k % folds for k, i in enumerate(order)}
    f_tr = np.array([fold_of[t] for t in g_tr])
    f_te = np.array([fold_of[t] for t in g_te])
    pred = np.full(Yte.shape, np.nan)
    probs = np.zeros(Ste.shape)
    for k in range(folds):
        test = f_te == k
        if not test.any():
            continue
        train = f_tr != k
        head = fit_head(Xtr[train], Ytr[train], Str[train], base.config, base._gain(Xtr.shape[1]))
        pred[test], probs[test] = predict_head(head, Xte[test], base.config.target, len(base.capabilities))
    opts = _options(base, scorer_options, group)
    opts["template_held_out"] = True
    return CVReport(*_agreement(base, te_ids, Yte, Ste, pred, probs), folds, seed, opts)


# The settings compared by ``tune`` (``python -m kit.mmssr.distilled tune``): the head's defaults and one
# change at a time.
TUNING_GRID: tuple[dict, ...] = (
    {},
    {"l2": 1e-3},
    {"l2": 1e-2},
    {"block_gains": None},
    {"target": "regression"},
    {"hidden": 64},
)


def tune(pool, ratings: pd.DataFrame, grid=TUNING_GRID, folds: int = 5, seed: int = 0, groups="template",
         progress: bool = True, **scorer_options) -> pd.DataFrame:
    """Cross-validate each setting of ``grid`` (dicts of :class:`DistilledHead` options over
    ``scorer_options``) on ``pool`` and rank them: one row per setting with its mean Spearman, style F1
    micro/macro; best first (mean Spearman, then style macro F1). Choose settings on a training pool,
    never on the pool the head is reported on."""
    from tqdm.auto import tqdm

    rows = []
    for k, change in enumerate(tqdm(list(grid), desc="settings", disable=not progress)):
        report = cross_validate(pool, ratings, folds=folds, seed=seed, groups=groups,
                                **{**scorer_options, **change})
        rows.append({"setting": k, "change": json.dumps(change, sort_keys=True), "mean_spearman": report.mean_spearman,
                     "style_f1_micro": report.style_f1_micro, "style_f1_macro": report.style_f1_macro})
    table = pd.DataFrame(rows).sort_values(["mean_spearman", "style_f1_macro"], ascending=False, kind="stable")
    table.attrs.update({"folds": folds, "seed": seed, "groups": groups if isinstance(groups, str) else "custom"})
    return table.reset_index(drop=True)
