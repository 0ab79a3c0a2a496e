"""Selections in the 2-D quality space of method B (arXiv 2407.00102).

- ``dis``: the ``n`` highest image-text scores s (DIS = top x% by s; ties by pool order).
- ``dil``: the ``n`` highest losses l (DIL = top x% by l; ties by pool order).
- ``diq``: a seeded random draw of ``n`` from the top-right cell (highest s and highest l).
- ``cells``: a seeded random draw of ``n`` from a cell or a union of cells (``cells=[...]``).

The budget ``n`` arrives resolved (an int) from :func:`kit.select`. A draw is the first ``n`` of a
seeded permutation of the region (region in pool order), so with one seed a smaller draw is a
prefix of a larger one; a region smaller than ``n`` is returned whole in that permuted order, with a
note. Unscored samples (missing or non-finite s or l) are never selected and are counted in the
notes. Space options (``score_col``, ``loss_col`` or ``loss="mean"|"sum"``, ``bounds``, ``grid``,
``binning``) or a ready ``space=`` are passed through to :class:`kit.quality_space.QualitySpace`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from kit.quality_space import (SCORE_COL, QualitySpace, cell_label, numeric_column,
                               resolve_loss_col, space_for, unscored_note)
from kit.selection import Selection


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a resolved count (int >= 0), got {n!r}; kit.select resolves budgets")
    return int(n)


def _top(scores: pd.DataFrame, n: int, col: str, method: str) -> Selection:
    n = _check_n(n)
    values = numeric_column(scores, col)
    ok = np.isfinite(values)
    notes = []
    if (~ok).sum():
        notes.append(unscored_note(int((~ok).sum()), [col]))
    idx = np.flatnonzero(ok)
    order = idx[np.argsort(-values[idx], kind="stable")][:n]
    if len(idx) < n:
        notes.append(f"asked for {n}, only {len(idx)} samples have a finite {col!r}: returned all {len(idx)}")
    return Selection(scores.index[order].tolist(), method=method, params={"col": col}, budget=n, notes=notes,
                     report={"n_scored": int(ok.sum()), "n_excluded": int((~ok).sum())})


def select_dis(scores: pd.DataFrame, n: int, seed: int = 0, score_col: str = SCORE_COL) -> Selection:
    """DIS: the ``n`` samples with the highest image-text score (ties by pool order; ``seed`` unused)."""
    return _top(scores, n, score_col, "dis")


def select_dil(scores: pd.DataFrame, n: int, seed: int = 0, loss_col: str | None = None,
               loss: str | None = None) -> Selection:
    """DIL: the ``n`` samples with the highest loss (``loss_mean`` by default, ``loss="sum"`` for the sum)."""
    return _top(scores, n, resolve_loss_col(loss_col, loss), "dil")


def draw_region(scores: pd.DataFrame, mask: np.ndarray, n: int, seed: int, region: str) -> tuple[list, list[str]]:
    """The first ``n`` of a seeded permutation of the ids where ``mask`` holds, and any shortfall note."""
    n = _check_n(n)
    idx = np.flatnonzero(mask)
    order = idx[np.random.default_rng(seed).permutation(len(idx))][:n]
    notes = []
    if len(idx) < n:
        notes.append(f"asked for {n}, region {region} holds {len(idx)}: returned all {len(idx)} "
                     f"(in seeded random order)")
    return scores.index[order].tolist(), notes


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
    n = _check_n(n)
    score_col = space.score_col if space is not None else space_options.get("score_col", SCORE_COL)
    loss_col = space.loss_col if space is not None else resolve_loss_col(space_options.get("loss_col"),
                                                                         space_options.get("loss"))
    ok = np.isfinite(numeric_column(scores, score_col)) & np.isfinite(numeric_column(scores, loss_col))
    notes = [unscored_note(int((~ok).sum()), (score_col, loss_col))] if (~ok).sum() else []
    if not ok.any():
        notes.append(f"no sample has finite {score_col!r} and {loss_col!r} scores: nothing selected")
        return Selection([], method=method, seed=seed, budget=n, notes=notes,
                         report={"n_excluded": int((~ok).sum()), "region_size": 0})
    space = space_for(scores, space, **space_options)
    rc = space.parse_cells(cells)
    region = " + ".join(cell_label(c, space.grid) for c in rc)
    mask = space.mask(scores, rc)
    ids, short = draw_region(scores, mask, n, seed, region)
    params = {"cells": [list(c) for c in rc], **{k: v for k, v in space_options.items()}}
    return Selection(ids, method=method, params=params, seed=seed, budget=n, notes=notes + short,
                     report={"space": space.info(), "cells": rc, "region_size": int(mask.sum()),
                             "n_excluded": int((~ok).sum())})


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
