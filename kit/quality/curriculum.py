"""The K-stage quality curriculum (arXiv 2407.00102), and its export.

Stage k (0-based) draws ``n_k`` samples at random from the region
``{l >= L_min + k*dL and s >= S_min + k*dS}``, ``dL = (L_max - L_min) / K``, ``dS = (S_max - S_min) / K``,
leaving out the samples drawn in earlier stages. L_min, L_max, S_min, S_max are the quantile bounds of
:class:`kit.quality.space.QualitySpace` and every region lies inside them: its lower bounds are the
stage's thresholds, its upper bounds L_max and S_max (closed), as the paper defines regions by
``S_min <= s <= S_max``, ``L_min <= l <= L_max``. So with the default ``outside="exclude"`` stage 0's
region is every sample inside the bounds, and a sample outside them (the top and bottom 1% on either
axis by default) is in no stage, counted in each stage's notes. With ``outside="clip"`` values are
clipped into the bounds first: stage 0's region is then every scored sample and the points above the
upper bounds join every stage whose thresholds they pass. The regions are nested and move toward the
top-right (high s, high l)::

    stages = kit.build_curriculum(scores, stages=3, sizes=1000, seed=0)   # list of Selections (id lists)
    export_curriculum(pool, stages, "out/curriculum")               # stage_0.json ... + manifest

A stage whose region holds fewer samples than asked returns all of them and says so in ``.notes``.
"""
from __future__ import annotations

import json
import numbers
from pathlib import Path

import numpy as np
import pandas as pd

from kit.export import FORMATS, pool_inputs, write_records
from kit.outputs import atomic_write_bytes, check_outputs
from kit.provenance import jsonable, provenance
from kit.quality.space import QualitySpace, outside_note, space_for, unscored_note
from kit.provenance import DeferredHash
from kit.selection import Selection, Shortfall, resolve_budget

MANIFEST_NAME = "curriculum.manifest.json"


def stage_sizes(sizes, stages: int, pool_size: int) -> list[int]:
    """``sizes`` as one count per stage: an int or fraction (every stage), or a list of ints/fractions."""
    if sizes is None:
        raise TypeError("give sizes=: an int per stage, a fraction of the pool, or a list with one per stage "
                        "(or budget=, a total split over the stages)")
    if isinstance(sizes, (numbers.Real, np.number)) and not isinstance(sizes, bool):
        sizes = [sizes] * stages
    sizes = list(sizes)
    if len(sizes) != stages:
        raise ValueError(f"sizes has {len(sizes)} entries for {stages} stages")
    return [resolve_budget(int(s) if isinstance(s, np.integer) else s, pool_size) for s in sizes]


def split_budget(budget, stages: int, pool_size: int) -> list[int]:
    """A total budget (a count or a fraction of the pool) split over ``stages`` as evenly as possible.

    The first ``total % stages`` stages get one sample more, e.g. 10 over 3 stages -> [4, 3, 3].
    """
    total = resolve_budget(budget, pool_size)
    base, extra = divmod(total, stages)
    return [base + (k < extra) for k in range(stages)]


def build_curriculum(scores: pd.DataFrame, stages: int = 3, sizes=None, seed: int = 0,
                     space: QualitySpace | None = None, budget=None, **space_options) -> list[Selection]:
    """K stages of ids drawn toward the top-right of the quality space; one :class:`Selection` each.

    ``sizes``: an int (the same count for every stage), a float fraction of the score table, or a
    list with one int or fraction per stage; or give ``budget`` instead, a total (count or fraction)
    split over the stages by :func:`split_budget`. Draws are seeded (one generator over the stages, so
    the whole curriculum is reproducible from ``seed``) and no sample appears in two stages.
    Space options (``score_col``, ``loss_col``/``loss`` (default ``loss_sum``), ``bounds``, ``grid``,
    ``binning``, ``outside``) or a ready ``space=`` are passed to :class:`QualitySpace`; the grid itself
    plays no part here.
    """
    space = space_for(scores, space, **space_options)
    thresholds = space.stage_thresholds(stages)
    if budget is not None:
        if sizes is not None:
            raise TypeError("give sizes= (per stage) or budget= (in all), not both")
        sizes = split_budget(budget, stages, len(scores))
    counts = stage_sizes(sizes, stages, len(scores))
    s, l, _ = space.points(scores)
    scored = np.isfinite(s) & np.isfinite(l)
    n_unscored = int((~scored).sum())
    n_outside = int(space.outside_mask(scores).sum())
    taken = np.zeros(len(scores), dtype=bool)
    rng = np.random.default_rng(seed)
    digest = DeferredHash(scores)   # computed once, when a stage's scores_hash is first read
    out: list[Selection] = []
    for k, ((l_thr, s_thr), n_k) in enumerate(zip(thresholds, counts)):
        region = space.stage_mask(scores, l_thr, s_thr)
        free = np.flatnonzero(region & ~taken)
        pick = free[rng.permutation(len(free))][:n_k]
        taken[pick] = True
        notes = [unscored_note(n_unscored, (space.score_col, space.loss_col))] if n_unscored else []
        if n_outside:
            notes.append(outside_note(n_outside, space.outside))
        short = None
        if len(free) < n_k:
            short = Shortfall(n_k, len(free), f"stage {k}: region {l_thr:.4g} <= l <= {space.l_max:.4g} and "
                                              f"{s_thr:.4g} <= s <= {space.s_max:.4g} holds "
                                              f"{len(free)} not drawn in earlier stages (all returned)"
                              if space.outside == "exclude" else
                              f"stage {k}: region l >= {l_thr:.4g} and s >= {s_thr:.4g} (clipped) holds "
                              f"{len(free)} not drawn in earlier stages (all returned)")
        resolved = {"stage": k, "stages": stages, "l_threshold": float(l_thr), "s_threshold": float(s_thr),
                    "space": space.info()}
        out.append(Selection(scores.index[pick].tolist(), method="curriculum", params=dict(space_options),
                             resolved=resolved, seed=seed, budget=n_k, scores_hash=digest, notes=notes,
                             shortfall=short,
                             report={"region_size": int(region.sum()), "available": int(len(free)),
                                     "n_outside": n_outside, "space": space.info()}))
    return out


def export_curriculum(pool, stages: list, out_dir, format: str = "llava", prefix: str = "stage",
                      extra: dict | None = None, *, overwrite: bool = True, inputs=()) -> Path:
    """Write one data file per stage (``<prefix>_<k>.json``) and ``curriculum.manifest.json``.

    The manifest's ``order`` lists the stage files in training order; ``stages`` holds, per stage,
    its file, ids, size, thresholds and notes. No file may be the pool file, one of its images or one of
    ``inputs`` (``(name, path)`` pairs); existing files are replaced (atomically) unless ``overwrite=False``.
    Returns the manifest's path.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; use one of {sorted(FORMATS)}")
    stages = [s if isinstance(s, Selection) else Selection(s) for s in stages]
    seen: dict = {}
    for k, stage in enumerate(stages):
        pool.check_ids(stage, f"stage {k}", unique=False)
        for sid in stage:
            if sid in seen:
                where = "twice in stage" if seen[sid] == k else f"in stages {seen[sid]} and"
                raise ValueError(f"sample {sid!r} appears {where} {k}")
            seen[sid] = k
    out_dir = Path(out_dir)
    width = len(str(max(len(stages) - 1, 0)))
    files = [out_dir / f"{prefix}_{k:0{width}d}{FORMATS[format]}" for k in range(len(stages))]
    check_outputs([*files, out_dir / MANIFEST_NAME], [*pool_inputs(pool), *inputs], overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for k, stage in enumerate(stages):
        path = write_records(pool.records(stage), files[k], format)
        entries.append({"stage": k, "data_file": path.name, "n_samples": len(stage),
                        "ids": [str(i) for i in stage], "budget": stage.budget,
                        "params": jsonable(stage.params), "resolved": jsonable(stage.resolved),
                        "shortfall": stage.shortfall.to_dict() if stage.shortfall else None,
                        "notes": list(stage.notes)})
    first = stages[0] if stages else Selection()
    manifest = {
        "method": "curriculum",
        "format": format,
        "order": [e["data_file"] for e in entries],
        "n_stages": len(stages),
        "n_samples": sum(e["n_samples"] for e in entries),
        "seed": first.seed,
        "scores_hash": first.scores_hash,
        "space": jsonable(first.report.get("space")),
        "stages": entries,
        **provenance(pool),
    }
    if extra:
        manifest.update(jsonable(extra))
    path = out_dir / MANIFEST_NAME
    atomic_write_bytes(path, json.dumps(manifest, indent=1).encode("utf-8"))
    return path
