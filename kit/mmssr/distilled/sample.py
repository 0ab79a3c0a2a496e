"""mmSSR's own protocol on a new pool: a teacher rates a seeded sample, a cheap head learns from it, and rates all.

The paper (arXiv 2503.13383, Sec. 3) has a strong teacher rate a part of the pool and trains the cheap scorer on
those ratings only; the scorer then rates the whole pool. :func:`distil_on_sample` does that with the kit's
distilled head (:class:`~kit.mmssr.distilled.model.DistilledHead`): the teacher's ratings are any ratings table
(a pool's per-template reference ratings in ``labels.csv``, or a teacher's JSONL from :mod:`kit.mmssr.teacher`),
of which only a seeded ``share`` of the pool is read. The head is saved with that sample's ids and its agreement
with the teacher on the rest of the pool (held out: the head saw none of it), per ``by`` group too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def teacher_sample(ids, share: float = 0.1, seed: int = 0) -> list[str]:
    """A seeded ``share`` of ``ids`` (at least one), in the given order."""
    ids = list(ids)
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    k = max(1, int(round(share * len(ids))))
    pick = set(np.random.default_rng([seed, 31]).choice(len(ids), size=k, replace=False).tolist())
    return [sid for j, sid in enumerate(ids) if j in pick]


def distil_on_sample(pool, ratings: pd.DataFrame, out, share: float = 0.1, seed: int = 0, by: str | None = None,
                     **head_options) -> dict:
    """Train a distilled head on the teacher's ratings of a seeded ``share`` of ``pool`` and save it to ``out``.

    Returns ``{"weights": out, "n_teacher": ..., "agreement": {...}}``: the head's agreement with the teacher's
    ratings of the samples it did not see (mean Spearman over capabilities, style F1), overall and per value
    of ``by`` (e.g. ``"family"`` or ``"source"``). Written into the head's metadata as well.
    """
    from kit.mmssr.distilled.cv import held_out_agreement
    from kit.mmssr.distilled.model import DistilledHead

    rated = ratings.index.intersection(pool.table.index)
    seen = teacher_sample(rated, share, seed)
    rest = rated.difference(pd.Index(seen))
    head = DistilledHead(seed=seed, **head_options).fit(pool, ratings.loc[seen])
    reports = held_out_agreement(head, pool, ratings.loc[rest], by=by) if len(rest) else {}
    agreement = {k: _brief(r) for k, r in reports.items()}
    info = {"weights": str(out), "share": share, "seed": seed, "n_teacher": len(seen), "n_rest": len(rest),
            "agreement": agreement}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    head.save(out, teacher_sample=info)
    return info


def _brief(report) -> dict:
    d = report.to_dict()
    return {"n": len(report.predictions), "mean_spearman": d["mean_spearman"], "spearman": d["spearman"],
            "style_f1_micro": d["style_f1_micro"], "style_f1_macro": d["style_f1_macro"]}
