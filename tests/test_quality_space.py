"""The 2-D quality space: bounds, grids (equal-width / equal-frequency), clipping, named cells, summaries."""
import numpy as np
import pandas as pd
import pytest

from kit.quality.space import QualitySpace, cell_names, grid_matrix, grid_summary, parse_cells


def layout_table():
    """Cell (r, c) holds r*3 + c + 1 points at its centre (s = r + .5, l = c + .5); two anchors set the
    bounds to exactly [0, 3] in s and l, so the equal-width edges are 0, 1, 2, 3."""
    rows = [{"id": "anchor_lo", "image_text": 0.0, "loss_mean": 0.0},
            {"id": "anchor_hi", "image_text": 3.0, "loss_mean": 3.0}]
    for r in range(3):
        for c in range(3):
            for k in range(r * 3 + c + 1):
                rows.append({"id": f"p{r}{c}_{k}", "image_text": r + 0.5, "loss_mean": c + 0.5})
    return pd.DataFrame(rows).set_index("id")


def test_equal_width_grid_puts_points_in_their_cells():
    scores = layout_table()
    space = QualitySpace.fit(scores, bounds=(0.0, 1.0))
    np.testing.assert_allclose(space.s_edges, [0, 1, 2, 3])
    np.testing.assert_allclose(space.l_edges, [0, 1, 2, 3])
    cells = space.assign(scores)
    for sid, row in cells.iterrows():
        if sid.startswith("p"):
            assert (row["row"], row["col"]) == (int(sid[1]), int(sid[2])), sid
    assert tuple(cells.loc["anchor_lo", ["row", "col"]]) == (0, 0)
    assert tuple(cells.loc["anchor_hi", ["row", "col"]]) == (2, 2)  # the upper bound belongs to the last cell
    assert space.ids_in(scores, "top_right") == ["anchor_hi"] + [f"p22_{k}" for k in range(9)]
    assert space.ids_in(scores, "center") == [f"p11_{k}" for k in range(5)]
    assert space.ids_in(scores, (1, 2)) == space.ids_in(scores, "middle_right")
    assert set(space.ids_in(scores, ["bottom_left", (0, 1)])) == {"anchor_lo", "p00_0", "p01_0", "p01_1"}


def test_row_is_score_and_col_is_loss():
    scores = pd.DataFrame({"image_text": [0.0, 10.0, 0.0, 10.0], "loss_mean": [0.0, 0.0, 10.0, 10.0]},
                          index=["low_s_low_l", "high_s_low_l", "low_s_high_l", "high_s_high_l"])
    space = QualitySpace.fit(scores, bounds=(0, 1))
    assert space.ids_in(scores, "top_left") == ["high_s_low_l"]
    assert space.ids_in(scores, "bottom_right") == ["low_s_high_l"]
    assert space.ids_in(scores, "top_right") == ["high_s_high_l"]


def test_outliers_are_clipped_into_edge_cells_not_dropped():
    g = np.linspace(0, 1, 10)
    s, l = np.meshgrid(g, g)
    scores = pd.DataFrame({"image_text": s.ravel(), "loss_mean": l.ravel()},
                          index=[f"g{i}" for i in range(100)])
    scores.loc["far_top_left"] = [1e6, -1e6]
    scores.loc["far_bottom_right"] = [-1e6, 1e6]
    space = QualitySpace.fit(scores, bounds=(0.05, 0.95))
    assert space.s_min == pytest.approx(np.quantile(scores["image_text"], 0.05))
    assert space.l_max == pytest.approx(np.quantile(scores["loss_mean"], 0.95))
    cells = space.assign(scores)
    assert tuple(cells.loc["far_top_left", ["row", "col"]]) == (2, 0)
    assert tuple(cells.loc["far_bottom_right", ["row", "col"]]) == (0, 2)
    assert cells["scored"].all() and cells["row"].between(0, 2).all() and cells["col"].between(0, 2).all()
    summary = grid_summary(scores, space)
    assert summary["count"].sum() == len(scores)
    clipped = space.clip(scores)
    assert clipped.loc["far_top_left", "s"] == space.s_max and clipped.loc["far_top_left", "l"] == space.l_min


def test_equal_frequency_bins_give_equal_counts():
    rng = np.random.default_rng(3)
    scores = pd.DataFrame({"image_text": rng.lognormal(0, 1.5, 900), "loss_mean": rng.exponential(2.0, 900)},
                          index=[f"s{i}" for i in range(900)])
    freq = QualitySpace.fit(scores, binning="frequency").assign(scores)
    assert freq["row"].value_counts().sort_index().tolist() == [300, 300, 300]
    assert freq["col"].value_counts().sort_index().tolist() == [300, 300, 300]
    width = QualitySpace.fit(scores, binning="width").assign(scores)
    assert width["row"].value_counts().max() > 400  # skewed scores crowd equal-width bins


def test_grid_size_and_binning_options():
    rng = np.random.default_rng(0)
    scores = pd.DataFrame({"image_text": rng.random(400), "loss_mean": rng.random(400)})
    space = QualitySpace.fit(scores, grid=4, binning="frequency")
    assert space.grid == 4 and len(space.l_edges) == 5
    assert space.assign(scores)["col"].value_counts().tolist() == [100] * 4
    assert "top_right" in space.cell_names() and "center" not in space.cell_names()
    with pytest.raises(ValueError, match="binning"):
        QualitySpace.fit(scores, binning="quantile")
    with pytest.raises(ValueError, match="bounds"):
        QualitySpace.fit(scores, bounds=(0.9, 0.1))


def test_unscored_rows_lie_in_no_cell():
    scores = layout_table()
    scores.loc["no_loss"] = [1.5, np.nan]
    scores.loc["no_score"] = [np.nan, 1.5]
    space = QualitySpace.fit(scores, bounds=(0.0, 1.0))
    np.testing.assert_allclose(space.s_edges, [0, 1, 2, 3])  # NaNs play no part in the bounds
    cells = space.assign(scores)
    assert not cells.loc["no_loss", "scored"] and cells.loc["no_loss", "row"] == -1
    assert "no_score" not in space.ids_in(scores, [(r, c) for r in range(3) for c in range(3)])
    summary = grid_summary(scores, space)
    assert summary["count"].sum() == len(scores) - 2 and summary.attrs["n_unscored"] == 2


def test_loss_sum_option_uses_the_sum_column():
    scores = pd.DataFrame({"image_text": [0.0, 1.0], "loss_mean": [0.0, 1.0], "loss_sum": [5.0, 0.0]},
                          index=["a", "b"])
    mean_space = QualitySpace.fit(scores, bounds=(0, 1))
    sum_space = QualitySpace.fit(scores, bounds=(0, 1), loss="sum")
    assert sum_space.loss_col == "loss_sum" and sum_space.l_max == 5.0
    assert mean_space.ids_in(scores, "top_right") == ["b"]
    assert sum_space.ids_in(scores, "top_left") == ["b"]
    with pytest.raises(ValueError, match="disagree"):
        QualitySpace.fit(scores, loss="sum", loss_col="loss_mean")


def test_parse_cells_names_pairs_and_errors():
    assert cell_names(3)["top_right"] == (2, 2) and cell_names(3)["bottom_left"] == (0, 0)
    assert parse_cells("center", 3) == [(1, 1)]
    assert parse_cells((2, 1), 3) == [(2, 1)]
    assert parse_cells([2, 1], 3) == [(2, 1)]  # a pair from JSON
    assert parse_cells(["top_right", (2, 2), [0, 0]], 3) == [(2, 2), (0, 0)]
    with pytest.raises(ValueError, match="unknown cell name"):
        parse_cells("upper_right", 3)
    with pytest.raises(ValueError, match="outside"):
        parse_cells((3, 0), 3)
    with pytest.raises(ValueError, match="unknown cell name"):
        parse_cells("center", 2)


def test_bad_values_name_the_sample():
    scores = pd.DataFrame({"image_text": [0.1, "oops"], "loss_mean": [1.0, 2.0]}, index=["fine", "broken"])
    with pytest.raises(ValueError, match="broken"):
        QualitySpace.fit(scores)
    with pytest.raises(KeyError, match="loss_mean"):
        QualitySpace.fit(scores.loc[["fine"]].drop(columns="loss_mean"))


def test_grid_summary_counts_edges_tokens_and_matrix():
    scores = layout_table()
    scores["n_answer_tokens"] = [10 * (int(i[1]) * 3 + int(i[2])) if i.startswith("p") else np.nan
                                 for i in scores.index]
    summary = grid_summary(scores, bounds=(0.0, 1.0))
    assert len(summary) == 9
    cell = summary.set_index(["row", "col"])
    for r in range(3):
        for c in range(3):
            extra = (r, c) in [(0, 0), (2, 2)]  # the anchors
            assert cell.loc[(r, c), "count"] == r * 3 + c + 1 + extra
            assert cell.loc[(r, c), "mean_tokens"] == pytest.approx(10 * (r * 3 + c))
            assert (cell.loc[(r, c), "s_low"], cell.loc[(r, c), "s_high"]) == (r, r + 1)
            assert (cell.loc[(r, c), "l_low"], cell.loc[(r, c), "l_high"]) == (c, c + 1)
    assert cell.loc[(1, 1), "name"] == "center" and cell.loc[(2, 2), "mean_l"] == pytest.approx(2.55)
    mat = grid_matrix(summary)
    assert mat.index.tolist() == [2, 1, 0]  # high s on top, as in the plane
    assert mat.iloc[0, -1] == cell.loc[(2, 2), "count"] and mat.iloc[-1, 0] == cell.loc[(0, 0), "count"]
    assert summary.attrs["space"]["s_edges"] == [0.0, 1.0, 2.0, 3.0]


def test_stage_thresholds_step_toward_top_right():
    space = QualitySpace.fit(layout_table(), bounds=(0.0, 1.0))
    assert space.stage_thresholds(3) == [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)]
    with pytest.raises(ValueError):
        space.stage_thresholds(0)
