"""The 2-D quality space: bounds, points outside them (excluded by default, clipped as an option), grids
(equal-width / equal-frequency), named cells, summaries."""
import numpy as np
import pandas as pd
import pytest

from kit.quality.space import QualitySpace, cell_names, grid_matrix, grid_summary, parse_cells


def layout_table():
    """Cell (r, c) holds r*3 + c + 1 points at its centre (s = r + .5, l = c + .5); two anchors set the
    bounds to exactly [0, 3] in s and l, so the equal-width edges are 0, 1, 2, 3."""
    rows = [{"id": "anchor_lo", "image_text": 0.0, "loss_sum": 0.0},
            {"id": "anchor_hi", "image_text": 3.0, "loss_sum": 3.0}]
    for r in range(3):
        for c in range(3):
            for k in range(r * 3 + c + 1):
                rows.append({"id": f"p{r}{c}_{k}", "image_text": r + 0.5, "loss_sum": c + 0.5})
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
    scores = pd.DataFrame({"image_text": [0.0, 10.0, 0.0, 10.0], "loss_sum": [0.0, 0.0, 10.0, 10.0]},
                          index=["low_s_low_l", "high_s_low_l", "low_s_high_l", "high_s_high_l"])
    space = QualitySpace.fit(scores, bounds=(0, 1))
    assert space.ids_in(scores, "top_left") == ["high_s_low_l"]
    assert space.ids_in(scores, "bottom_right") == ["low_s_high_l"]
    assert space.ids_in(scores, "top_right") == ["high_s_high_l"]


def outlier_table():
    """A 10 x 10 grid of points in [0, 1]^2 and two far outliers, one on each side of the bounds."""
    g = np.linspace(0, 1, 10)
    s, l = np.meshgrid(g, g)
    scores = pd.DataFrame({"image_text": s.ravel(), "loss_sum": l.ravel()}, index=[f"g{i}" for i in range(100)])
    scores.loc["far_top_left"] = [1e6, -1e6]
    scores.loc["far_bottom_right"] = [-1e6, 1e6]
    return scores


def test_points_outside_the_bounds_are_in_no_cell_by_default():
    scores = outlier_table()
    space = QualitySpace.fit(scores, bounds=(0.05, 0.95))
    assert space.outside == "exclude"
    s_min, s_max = np.quantile(scores["image_text"], [0.05, 0.95])
    l_min, l_max = np.quantile(scores["loss_sum"], [0.05, 0.95])
    assert (space.s_min, space.s_max, space.l_min, space.l_max) == pytest.approx((s_min, s_max, l_min, l_max))
    # the paper's regions: S_min <= s <= S_max and L_min <= l <= L_max, computed here independently
    s, l = scores["image_text"], scores["loss_sum"]
    inside = (s >= s_min) & (s <= s_max) & (l >= l_min) & (l <= l_max)
    assert 0 < (~inside).sum() < len(scores)
    cells = space.assign(scores)
    assert cells["in_cell"].tolist() == inside.tolist()
    assert cells["outside"].tolist() == (~inside).tolist() and cells["scored"].all()
    assert (cells.loc[~inside, ["row", "col"]] == -1).all().all()
    assert cells.loc[inside, "row"].between(0, 2).all() and cells.loc[inside, "col"].between(0, 2).all()
    assert space.n_outside == int((~inside).sum()) and space.n_points == len(scores)
    assert f"{space.n_outside} of {len(scores)} scored samples lie outside the bounds and in no cell" in space.notes[0]
    every_cell = [(r, c) for r in range(3) for c in range(3)]
    assert set(space.ids_in(scores, every_cell)) == set(scores.index[inside])
    assert "far_top_left" not in space.ids_in(scores, "top_left")
    names = space.cell_of(scores)
    assert names["far_top_left"] == names["far_bottom_right"] == "outside"
    assert (names[~inside] == "outside").all() and not (names[inside] == "outside").any()
    summary = grid_summary(scores, space)
    assert summary["count"].sum() == inside.sum() and summary.attrs["n_outside"] == (~inside).sum()
    assert summary["fraction"].sum() == pytest.approx(1.0)
    crosstab = space.crosstab(scores, pd.Series("x", index=scores.index, name="defect"))
    assert crosstab.loc["x", "outside"] == (~inside).sum() and crosstab.loc["x"].sum() == len(scores)
    assert space.info()["outside"] == "exclude" and space.info()["n_outside"] == space.n_outside


def test_bounds_are_closed():
    scores = layout_table()  # the anchors sit exactly on the bounds
    space = QualitySpace.fit(scores, bounds=(0.0, 1.0))
    assert space.n_outside == 0 and not space.notes
    cells = space.assign(scores)
    assert tuple(cells.loc["anchor_lo", ["row", "col"]]) == (0, 0)
    assert tuple(cells.loc["anchor_hi", ["row", "col"]]) == (2, 2)
    # applied to new points: on a bound is inside, a hair beyond it is outside
    probe = pd.DataFrame({"image_text": [3.0, 3.0 + 1e-9, 0.0, 1.5], "loss_sum": [3.0, 1.5, -1e-9, 0.0]},
                         index=["on_top", "above", "left_of", "on_left"])
    assert space.cell_of(probe).tolist() == ["top_right", "outside", "outside", "middle_left"]


def test_clip_option_puts_outliers_in_the_edge_cells():
    scores = outlier_table()
    space = QualitySpace.fit(scores, bounds=(0.05, 0.95), outside="clip")
    cells = space.assign(scores)
    assert tuple(cells.loc["far_top_left", ["row", "col"]]) == (2, 0)
    assert tuple(cells.loc["far_bottom_right", ["row", "col"]]) == (0, 2)
    assert cells["in_cell"].all() and cells["row"].between(0, 2).all() and cells["col"].between(0, 2).all()
    assert cells["outside"].sum() == space.n_outside > 0   # still counted as outside the bounds
    assert "clipped into the edge cells" in space.notes[0]
    summary = grid_summary(scores, space)
    assert summary["count"].sum() == len(scores) and summary.attrs["n_outside"] == 0
    assert "outside" not in set(space.cell_of(scores))
    clipped = space.clip(scores)
    assert clipped.loc["far_top_left", "s"] == space.s_max and clipped.loc["far_top_left", "l"] == space.l_min
    # the bounds and edges are the same in both modes; only the outliers move
    excluded = QualitySpace.fit(scores, bounds=(0.05, 0.95))
    np.testing.assert_allclose(excluded.s_edges, space.s_edges)
    with pytest.raises(ValueError, match="outside"):
        QualitySpace.fit(scores, outside="drop")


def test_equal_frequency_bins_give_equal_counts():
    rng = np.random.default_rng(3)
    scores = pd.DataFrame({"image_text": rng.lognormal(0, 1.5, 900), "loss_sum": rng.exponential(2.0, 900)},
                          index=[f"s{i}" for i in range(900)])
    clip = QualitySpace.fit(scores, binning="frequency", outside="clip").assign(scores)
    assert clip["row"].value_counts().sort_index().tolist() == [300, 300, 300]
    assert clip["col"].value_counts().sort_index().tolist() == [300, 300, 300]
    # by default the edges are quantiles of the points in cells: equal counts among those
    freq = QualitySpace.fit(scores, binning="frequency").assign(scores)
    inside = freq[freq["in_cell"]]
    assert 800 < len(inside) < 900
    for axis in ("row", "col"):
        counts = inside[axis].value_counts().sort_index()
        assert counts.index.tolist() == [0, 1, 2] and counts.max() - counts.min() <= 1, (axis, counts.tolist())
    width = QualitySpace.fit(scores, binning="width").assign(scores)
    assert width["row"].value_counts().max() > 400  # skewed scores crowd equal-width bins


def test_grid_size_and_binning_options():
    rng = np.random.default_rng(0)
    scores = pd.DataFrame({"image_text": rng.random(400), "loss_sum": rng.random(400)})
    space = QualitySpace.fit(scores, grid=4, binning="frequency", bounds=(0.0, 1.0))
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


def test_loss_sum_is_the_default_and_mean_an_option():
    scores = pd.DataFrame({"image_text": [0.0, 1.0], "loss_mean": [0.0, 1.0], "loss_sum": [5.0, 0.0]},
                          index=["a", "b"])
    sum_space = QualitySpace.fit(scores, bounds=(0, 1))   # the paper sums the loss over the answer tokens
    mean_space = QualitySpace.fit(scores, bounds=(0, 1), loss="mean")
    assert sum_space.loss_col == "loss_sum" and sum_space.l_max == 5.0
    assert QualitySpace.fit(scores, bounds=(0, 1), loss="sum").loss_col == "loss_sum"
    assert mean_space.loss_col == "loss_mean"
    assert mean_space.ids_in(scores, "top_right") == ["b"]
    assert sum_space.ids_in(scores, "top_left") == ["b"]
    assert QualitySpace.fit(scores, loss_col="loss_mean").loss_col == "loss_mean"
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
    scores = pd.DataFrame({"image_text": [0.1, "oops"], "loss_sum": [1.0, 2.0]}, index=["fine", "broken"])
    with pytest.raises(ValueError, match="broken"):
        QualitySpace.fit(scores)
    with pytest.raises(KeyError, match="loss_sum"):
        QualitySpace.fit(scores.loc[["fine"]].drop(columns="loss_sum"))


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
