"""Selections in the 2-D quality space of the quality-driven curriculum (arXiv 2407.00102).

- ``dis``: the ``n`` highest image-text scores s (DIS = top x% by s; ties by pool order).
- ``dil``: the ``n`` highest losses l (DIL = top x% by l; ties by pool order).
- ``diq``: a seeded random draw of ``n`` from the top-right cell (highest s and highest l).
- ``cells``: a seeded random draw of ``n`` from a cell or a union of cells (``cells=[...]``).

The budget ``n`` is a count or a fraction of the table (resolved by :func:`kit.selection.resolve_budget`,
as for every selector). A draw is the first ``n`` of a
seeded permutation of the region (region in pool order), so with one seed a smaller draw is a
prefix of a larger one; a region smaller than ``n`` is returned whole in that permuted order, with a
note. Unscored samples (missing or non-finite s or l) are never selected and are counted in the
notes. With the default ``outside="exclude"`` a sample outside the space's bounds is in no cell, so
``diq`` and ``cells`` never draw it (counted in the notes and ``report["n_outside"]``); ``outside="clip"``
puts it in the edge cells. ``dis`` and ``dil`` rank the whole table (no bounds). The loss is ``loss_sum``
by default (the paper); ``loss="mean"`` ranks by ``loss_mean``. Space options (``score_col``,
``loss_col`` or ``loss="mean"|"sum"``, ``bounds``, ``grid``, ``binning``, ``outside``) or a ready
``space=`` are passed through to :class:`kit.quality.space.QualitySpace`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from kit.collapse import warn_collapsed
from kit.quality.space import (SCORE_COL, QualitySpace, cell_label, numeric_column, outside_note,
                               resolve_loss_col, space_for, unscored_note)
from kit.selection import Selection, Shortfall, resolve_budget


def _top(scores: pd.DataFrame, n, col: str, method: str) -> Selection:
    n = resolve_budget(n, len(scores))
    values = numeric_column(scores, col)
    warn_collapsed(scores, [col], f"selector {method!r}")
    ok = np.isfinite(values)
    notes = []
    if (~ok).sum():
        notes.append(unscored_note(int((~ok).sum()), [col]))
    idx = np.flatnonzero(ok)
    order = idx[np.argsort(-values[idx], kind="stable")][:n]
    short = Shortfall(n, len(idx), f"only {len(idx)} samples have a finite {col!r}") if len(idx) < n else None
    return Selection(scores.index[order].tolist(), method=method, resolved={"col": col}, budget=n, notes=notes,
                     shortfall=short, report={"n_scored": int(ok.sum()), "n_excluded": int((~ok).sum())})


def select_dis(scores: pd.DataFrame, n: int, seed: int = 0, score_col: str = SCORE_COL) -> Selection:
    """DIS: the ``n`` samples with the highest image-text score (ties by pool order; ``seed`` unused)."""
    return _top(scores, n, score_col, "dis")


def select_dil(scores: pd.DataFrame, n: int, seed: int = 0, loss_col: str | None = None,
               loss: str | None = None) -> Selection:
    """DIL: the ``n`` samples with the highest loss (``loss_sum`` by default, as in the paper; ``loss="mean"``
    for the per-token mean)."""
    return _top(scores, n, resolve_loss_col(loss_col, loss), "dil")


def draw_region(scores: pd.DataFrame, mask: np.ndarray, n: int, seed: int,
                region: str) -> tuple[list, Shortfall | None]:
    """The first ``n`` of a seeded permutation of the ids where ``mask`` holds, and any shortfall."""
    idx = np.flatnonzero(mask)
    order = idx[np.random.default_rng(seed).permutation(len(idx))][:n]
    short = None
    if len(idx) < n:
        short = Shortfall(n, len(idx), f"region {region} holds {len(idx)} (all returned, in seeded random order)")
    return scores.index[order].tolist(), short


def select_cells(scores: pd.DataFrame, n: int, seed: int = 0, cells=None, space: QualitySpace | None = None,
                 **space_options) -> Selection:
    """A seeded random draw of ``n`` samples from one cell or a union of cells (no duplicates).

    ``cells`` is a name (``"top_right"``), a ``(row, col)`` pair (row 0 = low s, col 0 = low l) or a
    list of them.
    """
    if cells is None:
        raise TypeError("select_cells needs cells=, e.g. cells='top_right' or cells=[(2, 2), (2, 1)]")
    return _draw_cells(scores, n, seed, cells, space, space_options, method="cells")


def select_diq(scores: pd.DataFrame, n: int, seed: int = 0, space: QualitySpace | None = None,
               **space_options) -> Selection:
    """DIQ: a seeded random draw of ``n`` samples from the top-right cell (highest s and highest l)."""
    return _draw_cells(scores, n, seed, "top_right", space, space_options, method="diq")


def _draw_cells(scores, n, seed, cells, space, space_options, method) -> Selection:
    n = resolve_budget(n, len(scores))
    score_col = space.score_col if space is not None else space_options.get("score_col", SCORE_COL)
    loss_col = space.loss_col if space is not None else resolve_loss_col(space_options.get("loss_col"),
                                                                         space_options.get("loss"))
    ok = np.isfinite(numeric_column(scores, score_col)) & np.isfinite(numeric_column(scores, loss_col))
    warn_collapsed(scores, [score_col, loss_col], f"selector {method!r}")
    notes = [unscored_note(int((~ok).sum()), (score_col, loss_col))] if (~ok).sum() else []
    if not ok.any():
        short = Shortfall(n, 0, f"no sample has finite {score_col!r} and {loss_col!r} scores: nothing selected")
        return Selection([], method=method, seed=seed, budget=n, notes=notes, shortfall=short if n else None,
                         report={"n_excluded": int((~ok).sum()), "region_size": 0})
    space = space_for(scores, space, **space_options)
    rc = space.parse_cells(cells)
    region = " + ".join(cell_label(c, space.grid) for c in rc)
    mask = space.mask(scores, rc)
    n_outside = int(space.outside_mask(scores).sum())
    if n_outside:
        notes.append(outside_note(n_outside, space.outside))
    ids, short = draw_region(scores, mask, n, seed, region)
    resolved = {"cells": [list(c) for c in rc], "cell_names": [cell_label(c, space.grid) for c in rc],
                "space": space.info()}
    return Selection(ids, method=method, resolved=resolved, seed=seed, budget=n, notes=notes, shortfall=short,
                     report={"space": space.info(), "cells": rc, "region_size": int(mask.sum()),
                             "n_excluded": int((~ok).sum()), "n_outside": n_outside})


def union(*selections) -> Selection:
    """The ids of several selections in first-seen order, without duplicates (notes are kept)."""
    seen: dict = {}
    notes: list[str] = []
    for sel in selections:
        for sid in sel:
            seen.setdefault(sid, None)
        notes.extend(getattr(sel, "notes", []))
    parts = [getattr(sel, "method", None) or "ids" for sel in selections]
    return Selection(list(seen), method="union", params={"of": parts}, notes=notes)
