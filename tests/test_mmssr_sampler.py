"""The mmSSR sampler: hand-computed cases, and the fast sampler equals the plain reference
(tests/support/reference_mmssr.py) and a port of the official loop (tests/support/official_mmssr.py)."""
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import kit
from kit.selection import Selection, SelectionShortfall
from kit.mmssr.sampler import _descending_order, select_mmssr
from tests.support.official_mmssr import official_mmssr
from tests.support.reference_mmssr import reference_mmssr


def table(rows, source="s"):
    """rows: (id, {cap: score}, styles[, source])."""
    records = []
    for row in rows:
        rid, scores, styles = row[:3]
        records.append({"id": rid, **scores, "styles": styles, "source": row[3] if len(row) > 3 else source})
    return pd.DataFrame(records).set_index("id")


def both(scores, n, **kw):
    fast = select_mmssr(scores, n, **kw)
    ref = reference_mmssr(scores, n, kw.get("capabilities"), kw.get("threshold", 0.0),
                           kw.get("bin_order", "official"), kw.get("values", "rating"), kw.get("tie_break", "pool"))
    assert list(fast) == ref
    return fast


def test_two_capabilities_hand_computed():
    # pool order p q r s t u; sources s s t t s s
    scores = pd.DataFrame({
        "a": [5, 4, 3, np.nan, 2, 1.0], "b": [1, 2, 3, 4, 5, 0],
        "styles": [["x"], ["x", "y"], ["y"], ["x"], [], "x|z"],
        "source": ["s", "s", "t", "t", "s", "s"]}, index=list("pqrstu"))
    sel = both(scores, 4, capabilities=["a", "b"])
    # round 1, b = 4 // 2 = 2.  a: bins "x+s"=[p,q,u] "y+s"=[q] "y+t"=[r] "z+s"=[u], q = max(2//4, 1) = 1,
    # visit by size, then key string: "y+s" "y+t" "z+s" "x+s": take q, then r -> b reached.
    # b: candidates (score > 0, not taken) t s p; t has no style; bins "x+s"=[p] "x+t"=[s]; q = 1: take p, then s.
    assert list(sel) == ["q", "r", "p", "s"]
    assert isinstance(sel, Selection)
    caps = sel.report["capabilities"]
    assert caps.loc["a", "taken"] == 2 and caps.loc["b", "taken"] == 2
    assert caps.loc["a", "candidates"] == 5
    assert any("no style" in note and "'t'" in note for note in sel.notes)
    styles = sel.report["styles"]
    assert list(styles.index) == ["x", "y", "z"]   # non-standard names after the 9 in their own order
    assert styles.loc["x", "pool"] == 4 and styles.loc["x", "selected"] == 3   # p q s
    assert sel.report["sources"].loc["t", "selected"] == 2                     # r s


def test_debt_is_carried_to_the_next_bin():
    rows = [("r0", {"a": 9}, ["x"])] + [(f"r{i}", {"a": 9 - i}, ["y"]) for i in range(1, 5)] + \
           [(f"r{i}", {"a": 9 - i}, ["z"]) for i in range(5, 10)]
    # bins x:1, y:4, z:5; b = 6, q = 2. x takes 1 (debt 1), y takes 3 (debt 0), z takes 2.
    assert list(both(table(rows), 6, capabilities=["a"])) == ["r0", "r1", "r2", "r3", "r5", "r6"]


def test_sample_taken_in_one_bin_is_not_free_in_the_next():
    rows = [("r0", {"a": 5}, ["x", "y"]), ("r1", {"a": 4}, ["y"]), ("r2", {"a": 3}, ["x"])]
    # bins x=[r0, r2], y=[r0, r1] (same size: x first); q = 1: x takes r0, y skips r0 and takes r1
    assert list(both(table(rows), 2, capabilities=["a"])) == ["r0", "r1"]


def test_ties_by_pool_order_and_equal_bins_by_key_string():
    rows = [("a", {"c": 3}, ["y"], "s2"), ("b", {"c": 3}, ["x"], "s2"), ("c", {"c": 3}, ["y"], "s1"),
            ("d", {"c": 3}, ["y"], "s1")]
    # bins "y+s1"=[c,d] "x+s2"=[b] "y+s2"=[a]; sizes 2,1,1 -> visit "x+s2" "y+s2" "y+s1"; b = 3, q = 1
    assert list(both(table(rows), 3, capabilities=["c"])) == ["b", "a", "c"]
    # the key string decides, not (source, style): "b+z" < "bz+" although source "" < "z"
    rows = [("p", {"c": 3}, ["bz"], ""), ("q", {"c": 3}, ["b"], "z")]
    assert list(both(table(rows), 1, capabilities=["c"])) == ["q"]


def test_official_order_inside_a_bin_first_styles_first():
    # bin "a+s": p (a is its 2nd style, rating 5), q (a is its 1st style, rating 4); bin "b+s": p r s
    rows = [("p", {"c": 5}, ["b", "a"]), ("q", {"c": 4}, ["a"]), ("r", {"c": 3}, ["b"]), ("s", {"c": 2}, ["b"])]
    # "a+s" is smaller, so visited first; b = 1: officially its first-style samples come first (q), by score p
    assert list(both(table(rows), 1, capabilities=["c"])) == ["q"]
    assert list(both(table(rows), 1, capabilities=["c"], bin_order="score")) == ["p"]
    # b = 2, q = 1: official "a+s" takes q, "b+s" takes p; by score "a+s" takes p, "b+s" takes r
    assert list(both(table(rows), 2, capabilities=["c"])) == ["q", "p"]
    assert list(both(table(rows), 2, capabilities=["c"], bin_order="score")) == ["p", "r"]


def test_unknown_style_names_form_their_own_bins_and_are_counted():
    rows = [("p", {"c": 5}, ["yes/no"]), ("q", {"c": 4}, ["banana split"]), ("r", {"c": 3}, ["yes/no", "odd"]),
            ("s", {"c": 2}, ["yes/no"])]
    sel = both(table(rows), 2, capabilities=["c"])
    # bins "banana split+s"=[q] "odd+s"=[r] "yes/no+s"=[p, r, s]: visit banana, odd: q then r
    assert list(sel) == ["q", "r"]
    assert sel.report["unknown_styles"] == {"names": 2, "samples": 2, "selected": 2}
    styles = sel.report["styles"]
    assert list(styles.index) == ["yes/no", "banana split", "odd"]
    assert styles["official"].tolist() == [True, False, False]
    assert any("outside the 9" in note and "'banana split'" in note for note in sel.notes)


def test_expected_values_as_tie_break_or_as_the_scores():
    rows = [("p", {"c": 4, "c_expected": 3.6}, ["yes/no"]), ("q", {"c": 4, "c_expected": 4.4}, ["yes/no"]),
            ("r", {"c": 3, "c_expected": 3.4}, ["yes/no"]), ("s", {"c": 4, "c_expected": np.nan}, ["yes/no"])]
    assert list(both(table(rows), 3, capabilities=["c"])) == ["p", "q", "s"]                   # pool order
    assert list(both(table(rows), 3, capabilities=["c"], tie_break="expected")) == ["q", "p", "s"]  # NaN last
    sel = both(table(rows), 3, capabilities=["c"], values="expected", threshold=3.5)
    assert list(sel) == ["q", "p"] and sel.shortfall is not None   # r (3.4) and s (NaN) are not above 3.5
    assert sel.resolved["columns"] == ["c_expected"] and sel.resolved["values"] == "expected"
    with pytest.raises(KeyError, match="c_expected"):
        select_mmssr(table([("p", {"c": 4}, ["yes/no"])]), 1, capabilities=["c"], tie_break="expected")
    with pytest.raises(ValueError, match="bin_order"):
        select_mmssr(table(rows), 1, capabilities=["c"], bin_order="random")


def test_threshold_nan_and_shortfall():
    rows = [("a", {"c": 5}, ["x"]), ("b", {"c": np.nan}, ["x"]), ("c", {"c": 0}, ["x"]),
            ("d", {"c": 2}, ["x"]), ("e", {"c": 1}, ["x"])]
    sel = both(table(rows), 5, capabilities=["c"])
    assert list(sel) == ["a", "d", "e"]          # NaN and 0 are never > 0
    assert (sel.shortfall.asked, sel.shortfall.returned) == (5, 3) and "ran out" in sel.shortfall.reason
    assert str(sel.shortfall) in sel.notes
    assert sel.report["capabilities"].loc["c", "dropped_after_round"] == 2
    assert list(both(table(rows), 5, capabilities=["c"], threshold=1)) == ["a", "d"]
    assert list(both(table(rows), 5, capabilities=["c"], threshold=-1)) == ["a", "d", "e", "c"]


def test_exhausted_capability_is_dropped_and_others_fill_the_budget():
    rows = [(f"r{i}", {"a": 5 if i == 0 else np.nan, "b": 10 - i}, ["yes/no"]) for i in range(6)]
    sel = both(table(rows), 5, capabilities=["a", "b"])
    # round 1: b = 2; a takes r0, b takes r1 r2. round 2: b = 1; a takes nothing (dropped), b takes r3.
    # round 3: b = 1; b takes r4.
    assert list(sel) == ["r0", "r1", "r2", "r3", "r4"]
    caps = sel.report["capabilities"]
    assert caps.loc["a", "taken"] == 1 and caps.loc["b", "taken"] == 4
    assert caps.loc["a", "dropped_after_round"] == 2 and pd.isna(caps.loc["b", "dropped_after_round"])
    assert sel.notes == []


def test_capability_order_matters_and_subset_is_customisation():
    rows = [("p", {"a": 5, "b": 1}, ["x"]), ("q", {"a": 1, "b": 5}, ["x"])]
    assert list(both(table(rows), 1, capabilities=["a", "b"])) == ["p"]
    assert list(both(table(rows), 1, capabilities=["b", "a"])) == ["q"]
    assert list(both(table(rows), 1, capabilities=["b"])) == ["q"]


def test_default_capabilities_are_the_registered_ones_present():
    rows = [("p", {"ocr": 5, "stem": 1}, ["x"]), ("q", {"ocr": 1, "stem": 5}, ["x"])]
    sel = select_mmssr(table(rows), 1)
    assert sel.resolved["capabilities"] == ["stem", "ocr"]   # registry order
    assert sel.resolved["threshold"] == 0.0 and sel.resolved["bin_order"] == "official"
    assert sel.resolved["values"] == "rating" and sel.resolved["tie_break"] == "pool"
    assert list(sel) == ["q"]
    assert any("not in the score table" in note for note in sel.notes)


def test_through_kit_select_with_a_fraction():
    rng = np.random.default_rng(0)
    scores = random_table(rng, 40)
    sel = kit.select(scores, "mmssr", 0.25, seed=7, capabilities=["c0", "c1"])
    assert len(sel) == 10 and sel.method == "mmssr" and sel.seed == 7
    assert sel.params == {"capabilities": ["c0", "c1"]} and sel.resolved["capabilities"] == ["c0", "c1"]
    assert list(sel) == reference_mmssr(scores, 10, ["c0", "c1"])
    assert list(kit.select(scores, "mmssr", 0.25, seed=1, capabilities=["c0", "c1"])) == list(sel)  # seed unused
    assert "capabilities" in sel.report and "styles" in sel.report


def test_zero_budget_and_budget_larger_than_pool():
    rows = [("p", {"a": 5}, ["x"]), ("q", {"a": 4}, ["y"])]
    assert list(both(table(rows), 0, capabilities=["a"])) == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SelectionShortfall)
        sel = kit.select(table(rows), "mmssr", 10, capabilities=["a"])
    assert sorted(sel) == ["p", "q"] and (sel.shortfall.asked, sel.shortfall.returned) == (10, 2)


def test_bad_input_errors_name_the_problem():
    rows = [("p", {"a": 5}, ["x"]), ("q", {"a": "high"}, ["y"])]
    with pytest.raises(TypeError, match="'q'"):
        select_mmssr(table(rows), 1, capabilities=["a"])
    with pytest.raises(KeyError, match="zzz"):
        select_mmssr(table([("p", {"a": 5}, ["x"])]), 1, capabilities=["zzz"])
    with pytest.raises(KeyError, match="styles"):
        select_mmssr(pd.DataFrame({"a": [1.0]}, index=["p"]), 1, capabilities=["a"])
    with pytest.raises(TypeError, match="'q'"):
        select_mmssr(table([("p", {"a": 5}, ["x"]), ("q", {"a": 4}, [3])]), 1, capabilities=["a"])


STYLE_POOL = ["multi-choice", "yes/no", "coordinate", "comparison", "detailed description", "a+b", "a"]


def random_table(rng, n_rows, n_caps=2, integer=True, nan_rate=0.1, n_sources=3):
    data = {}
    for c in range(n_caps):
        v = rng.integers(0, 6, n_rows).astype(float) if integer else np.round(rng.normal(2, 1.5, n_rows), 1)
        v[rng.random(n_rows) < nan_rate] = np.nan
        data[f"c{c}"] = v
    styles = []
    for _ in range(n_rows):
        k = rng.choice([0, 1, 1, 1, 2, 2, 3]) if rng.random() < 0.95 else 0
        names = list(rng.choice(STYLE_POOL, size=k, replace=True))   # duplicates allowed on purpose
        styles.append(names)
    data["styles"] = styles
    data["source"] = [["src", "b+src", "b", "s3"][int(s)] for s in rng.integers(0, n_sources, n_rows)]  # keys may collide
    return pd.DataFrame(data, index=[f"id{i:03d}" for i in rng.permutation(n_rows)])


@pytest.mark.parametrize("seed", range(200))
def test_fast_equals_reference_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    n_rows = int(rng.integers(1, 60))
    n_caps = int(rng.integers(1, 5))
    scores = random_table(rng, n_rows, n_caps=n_caps, integer=bool(seed % 3), nan_rate=rng.choice([0, 0.1, 0.6]),
                          n_sources=int(rng.integers(1, 4)))
    n = int(rng.integers(0, n_rows + 6))
    threshold = float(rng.choice([0.0, 1.0, 2.0, 3.0, 4.0, -1.0, 2.5]))
    caps = [f"c{i}" for i in rng.permutation(n_caps)]
    fast = select_mmssr(scores, n, capabilities=caps, threshold=threshold)
    assert list(fast) == official_mmssr(scores, n, caps, threshold)   # as lists: the same set, in the same order
    assert list(fast) == reference_mmssr(scores, n, caps, threshold)
    by_score = select_mmssr(scores, n, capabilities=caps, threshold=threshold, bin_order="score")
    assert list(by_score) == reference_mmssr(scores, n, caps, threshold, bin_order="score")
    assert len(set(fast)) == len(fast) <= n
    assert fast.report["capabilities"]["taken"].sum() == len(fast)
    if len(fast) < n:
        assert (fast.shortfall.asked, fast.shortfall.returned) == (n, len(fast))
    else:
        assert fast.shortfall is None


@pytest.mark.parametrize("integer", [True, False])
def test_larger_random_table_agrees_with_reference(integer):
    rng = np.random.default_rng(123)
    scores = random_table(rng, 1500, n_caps=5, integer=integer, n_sources=4)
    caps = [f"c{i}" for i in range(5)]
    for n in (1, 37, 450, 1400):
        sel = select_mmssr(scores, n, capabilities=caps)
        assert set(sel.report["capabilities"]["ordering"]) == {"levels" if integer else "sorted"}
        assert list(sel) == reference_mmssr(scores, n, caps)


def test_styles_from_parquet_arrays_and_pipe_strings():
    base = table([("p", {"a": 5}, ["x", "y"]), ("q", {"a": 4}, ["y"]), ("r", {"a": 3}, ["x"])])
    arrays = base.copy()
    arrays["styles"] = [np.array(s) for s in base["styles"]]
    piped = base.copy()
    piped["styles"] = ["|".join(s) for s in base["styles"]]
    expected = list(select_mmssr(base, 2, capabilities=["a"]))
    assert list(select_mmssr(arrays, 2, capabilities=["a"])) == expected
    assert list(select_mmssr(piped, 2, capabilities=["a"])) == expected
    report = select_mmssr(base, 2, capabilities=["a"]).report["styles"]
    assert math.isclose(report["pool_share"].sum(), 4 / 3)   # multi-label shares add up to > 1


def test_descending_order_matches_a_stable_argsort_on_hard_floats():
    rng = np.random.default_rng(5)
    base = np.array([1.0, -1.0, 0.0, -0.0, np.inf, -np.inf, np.nan, 5.0, 1e-300, -1e-300])
    near = 1.0 + np.arange(60) * np.finfo(float).eps        # differ only in the lowest bits: packed keys collide
    vals = np.concatenate([base, near, near[::-1], rng.normal(size=4000), rng.integers(0, 6, 4000).astype(float)])
    vals = vals[rng.permutation(len(vals))]
    for threshold in (-np.inf, -1.0, 0.0, 1.0, 10.0):
        idx = np.flatnonzero(vals > threshold)
        expected = idx[np.argsort(-vals[idx], kind="stable")]
        assert np.array_equal(_descending_order(vals, threshold), expected)


def test_wide_keys_path_agrees(monkeypatch):
    import kit.mmssr.sampler as mmssr
    monkeypatch.setattr(mmssr, "_PACK32_LIMIT", 0)   # force the 64-bit (bin, rank) keys of huge pools
    for seed in range(5):
        rng = np.random.default_rng(1000 + seed)
        scores = random_table(rng, 200, n_caps=3, integer=bool(seed % 2))
        caps = ["c0", "c1", "c2"]
        assert list(select_mmssr(scores, 70, capabilities=caps)) == reference_mmssr(scores, 70, caps)


def test_long_style_lists_mixed_cells_and_wide_integer_ranges():
    rng = np.random.default_rng(7)
    names = [f"style {i}" for i in range(45)] + ["yes/no"]
    rows = []
    for i in range(120):
        k = int(rng.integers(0, 50)) if i % 10 == 0 else int(rng.integers(0, 3))
        styles = list(rng.choice(names, size=k))                       # long rows with repeats
        cell = styles if i % 3 else ("|".join(styles) if styles else None)   # lists, "a|b" strings, missing
        rows.append((f"r{i:03d}", {"a": float(rng.integers(0, 101)), "b": float(rng.integers(0, 6))}, cell,
                     f"s{i % 4}"))
    scores = table(rows)
    for n in (5, 40, 119):
        for order in ("official", "score"):
            sel = both(scores, n, capabilities=["a", "b"], bin_order=order, threshold=2)
            assert sel.report["capabilities"]["ordering"].tolist() == ["sorted", "levels"]  # 0-100 is too wide
