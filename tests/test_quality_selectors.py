"""DIS, DIL, DIQ, draws from cells and unions of selections (quality-driven curriculum), directly and through kit.select."""
import warnings

import numpy as np
import pandas as pd
import pytest

import kit
from kit.quality.space import QualitySpace
from kit.selection import SelectionShortfall
from kit.quality.selectors import select_cells, select_dil, select_dis, select_diq, union


def cells_table(per_cell: int = 10, seed: int = 0) -> pd.DataFrame:
    """``per_cell`` points inside each cell (r, c) of [0, 3]^2 (ids ``c<r><c>_k``), anchors at 0 and 3."""
    rng = np.random.default_rng(seed)
    rows = [("anchor_lo", 0.0, 0.0, 0.0), ("anchor_hi", 3.0, 3.0, 0.3)]
    for r in range(3):
        for c in range(3):
            for k in range(per_cell):
                s, l = r + rng.uniform(0.1, 0.9), c + rng.uniform(0.1, 0.9)
                rows.append((f"c{r}{c}_{k}", s, l, l / (k + 1)))  # summed over k + 1 tokens
    return pd.DataFrame(rows, columns=["id", "image_text", "loss_sum", "loss_mean"]).set_index("id")


OPTS = {"bounds": (0.0, 1.0)}
TOP_RIGHT = {f"c22_{k}" for k in range(10)} | {"anchor_hi"}


def expected_top(values, ids, n):
    """Top n by value, ties by position, NaN never (computed without numpy sorting)."""
    order = sorted((i for i, v in enumerate(values) if v == v), key=lambda i: (-values[i], i))
    return [ids[i] for i in order[:n]]


def test_dis_and_dil_are_exact_top_n_with_ties_in_pool_order():
    rng = np.random.default_rng(1)
    s = np.round(rng.random(60), 1)  # many ties
    l = np.round(rng.random(60), 1)
    s[5] = np.nan
    ids = [f"x{i}" for i in range(60)]
    scores = pd.DataFrame({"image_text": s, "loss_sum": l, "loss_mean": l[::-1].copy()}, index=ids)
    for n in (0, 1, 7, 30):
        assert select_dis(scores, n) == expected_top(list(s), ids, n)
        assert select_dil(scores, n) == expected_top(list(l), ids, n)   # summed loss by default (the paper)
        assert select_dil(scores, n, loss="mean") == expected_top(list(l[::-1]), ids, n)
    assert select_dil(scores, 5).resolved == {"col": "loss_sum"}
    sel = select_dis(scores, 10)
    assert "x5" not in select_dis(scores, 59)
    assert any("1 sample without a finite 'image_text'" in note for note in sel.notes)
    short = select_dis(scores, 100)
    assert len(short) == 59 and short.shortfall.asked == 100 and short.shortfall.returned == 59
    assert str(short.shortfall) in short.notes and "finite 'image_text'" in short.shortfall.reason
    assert short.resolved == {"col": "image_text"}


def test_diq_draws_from_the_top_right_cell_only():
    scores = cells_table()
    sel = select_diq(scores, 5, seed=0, **OPTS)
    assert len(sel) == 5 and set(sel) <= TOP_RIGHT and len(set(sel)) == 5
    assert sel.report["region_size"] == len(TOP_RIGHT)
    assert select_diq(scores, 5, seed=0, **OPTS) == sel  # reproducible
    draws = [tuple(select_diq(scores, 5, seed=k, **OPTS)) for k in range(1, 6)]
    assert len(set(draws) | {tuple(sel)}) > 1  # seeds matter
    assert select_diq(scores, 8, seed=0, **OPTS)[:5] == sel  # a smaller draw is a prefix of a larger one


def test_diq_region_smaller_than_budget_returns_all_and_says_so():
    scores = cells_table()
    sel = select_diq(scores, 100, seed=3, **OPTS)
    assert set(sel) == TOP_RIGHT and len(sel) == len(TOP_RIGHT)
    assert sel.shortfall == kit.Shortfall(100, len(TOP_RIGHT), f"region top_right holds {len(TOP_RIGHT)} "
                                                                 "(all returned, in seeded random order)")
    assert sel.notes == [str(sel.shortfall)]
    assert sel.resolved["cells"] == [[2, 2]] and sel.resolved["cell_names"] == ["top_right"]


def test_unscored_samples_are_never_drawn():
    scores = cells_table()
    scores.loc["c22_0", "loss_sum"] = np.nan
    scores.loc["c22_1", "image_text"] = np.nan
    sel = select_diq(scores, 100, **OPTS)
    assert set(sel) == TOP_RIGHT - {"c22_0", "c22_1"}
    assert any(note.startswith("2 samples without a finite") for note in sel.notes)
    assert sel.report["n_excluded"] == 2
    empty = scores.assign(image_text=np.nan)
    nothing = select_diq(empty, 5)
    assert list(nothing) == [] and "nothing selected" in nothing.shortfall.reason


def test_cells_draw_from_a_union_of_cells():
    scores = cells_table()
    region = TOP_RIGHT | {f"c21_{k}" for k in range(10)}
    sel = select_cells(scores, 15, seed=2, cells=["top_right", (2, 1), (2, 2)], **OPTS)
    assert len(sel) == 15 and len(set(sel)) == 15 and set(sel) <= region
    every = select_cells(scores, 1000, seed=2, cells=["top_right", (2, 1)], **OPTS)
    assert set(every) == region and len(every) == len(region)
    assert "region top_right + top_center holds 21" in every.shortfall.reason
    centre = select_cells(scores, 4, seed=0, cells="center", **OPTS)
    assert all(sid.startswith("c11_") for sid in centre)
    with pytest.raises(TypeError, match="cells="):
        select_cells(scores, 4)


def test_space_options_and_ready_space():
    scores = cells_table()
    # loss="mean": the top-right cell is now judged by the per-token loss
    space = QualitySpace.fit(scores, loss="mean", **OPTS)
    expected = set(space.ids_in(scores, "top_right"))
    assert set(select_diq(scores, 1000, loss="mean", **OPTS)) == expected != TOP_RIGHT
    # a space fitted on the whole pool applied to part of it
    full = QualitySpace.fit(scores, **OPTS)
    part = scores.drop(index=["anchor_lo", "anchor_hi"])
    sel = select_diq(part, 1000, space=full)
    assert set(sel) == TOP_RIGHT - {"anchor_hi"}
    with pytest.raises(TypeError, match="not both"):
        select_diq(part, 3, space=full, grid=4)
    with pytest.raises(TypeError, match="unknown option"):
        select_diq(part, 3, gird=4)
    # a 2x2 equal-frequency grid: the top-right quarter by both medians
    quarters = select_cells(scores, 1000, cells="top_right", grid=2, binning="frequency", outside="clip")
    s_med, l_med = np.quantile(scores["image_text"], 0.5), np.quantile(scores["loss_sum"], 0.5)
    want = scores.index[(scores["image_text"] >= s_med) & (scores["loss_sum"] >= l_med)]
    assert set(quarters) == set(want)


def test_points_outside_the_bounds_are_never_drawn_unless_clipped():
    scores = cells_table()
    scores.loc["far_top_right"] = [50.0, 50.0, 5.0]    # beyond S_max and L_max
    scores.loc["far_low_score"] = [-50.0, 2.5, 0.5]   # below S_min, high loss
    space = QualitySpace.fit(scores, bounds=(0.01, 0.99))
    outside = set(scores.index[space.outside_mask(scores)])
    assert {"far_top_right", "far_low_score"} <= outside
    every = select_diq(scores, 1000, bounds=(0.01, 0.99))
    assert set(every) == set(space.ids_in(scores, "top_right")) and not set(every) & outside
    assert every.report["n_outside"] == len(outside)
    assert any(f"{len(outside)} scored samples lie outside the bounds and in no cell" in n for n in every.notes)
    all_cells = select_cells(scores, 1000, cells=[(r, c) for r in range(3) for c in range(3)], bounds=(0.01, 0.99))
    assert set(all_cells) == set(scores.index) - outside
    clipped = select_diq(scores, 1000, bounds=(0.01, 0.99), outside="clip")
    assert "far_top_right" in clipped and "far_low_score" not in clipped
    assert any("clipped into the edge cells" in n for n in clipped.notes)
    assert clipped.resolved["space"]["outside"] == "clip"
    everywhere = [(r, c) for r in range(3) for c in range(3)]
    assert set(select_cells(scores, 1000, cells=everywhere, bounds=(0.01, 0.99), outside="clip")) == set(scores.index)
    # DIS and DIL rank the whole table: no bounds
    assert select_dis(scores, 1)[0] == "far_top_right"


def test_union_keeps_first_seen_order_without_duplicates():
    a = kit.Selection(["x", "y", "z"], notes=["note a"])
    b = ["z", "w", "x", "v"]
    u = union(a, b)
    assert list(u) == ["x", "y", "z", "w", "v"] and u.notes == ["note a"]
    scores = cells_table()
    dis, dil = select_dis(scores, 20), select_dil(scores, 20)
    both = union(dis, dil)
    assert len(both) == len(set(dis) | set(dil)) == len(set(both))
    assert list(both)[:20] == list(dis)


def test_registry_through_kit_select():
    scores = cells_table()
    sel = kit.select(scores, "diq", 10, **OPTS)
    assert isinstance(sel, kit.Selection) and len(sel) == 10 and set(sel) <= TOP_RIGHT
    assert sel.method == "diq" and sel.budget == 10
    assert kit.select(scores, "dis", 0.1) == select_dis(scores, int(0.1 * len(scores)))
    assert kit.select(scores, "dil", 5, loss="sum") == select_dil(scores, 5, loss="sum")
    cells = kit.select(scores, "cells", 6, seed=4, cells=["bottom_left"], **OPTS)
    assert all(sid.startswith("c00_") or sid == "anchor_lo" for sid in cells)
    with pytest.warns(SelectionShortfall, match="region top_right holds 11"):
        short = kit.select(scores, "diq", 50, **OPTS)
    assert len(short) == 11 and short.shortfall.returned == 11 and short.params == OPTS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kit.select(scores, "diq", 0, **OPTS) == []
