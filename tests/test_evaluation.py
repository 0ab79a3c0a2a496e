import numpy as np
import pandas as pd
import pytest

from kit.eval.metrics import defect_auc, defect_pairs, paired_win_rate


@pytest.fixture
def labels():
    return pd.DataFrame({"defect": ["none", "none", "none", "mismatch", "mismatch", "wrong_answer"],
                         "origin": [None, None, None, "a", "b", "c"]},
                        index=["a", "b", "c", "m1", "m2", "w1"])


def test_defect_auc(labels):
    v = pd.Series([0.9, 0.8, 0.7, 0.1, 0.75, 0.5], index=labels.index)
    # clean {0.9, 0.8, 0.7} vs mismatch {0.1, 0.75}: 5 of 6 pairs ordered right
    assert defect_auc(v, labels["defect"], "mismatch") == pytest.approx(5 / 6)
    assert defect_auc(-v, labels["defect"], "mismatch", higher_means_clean=False) == pytest.approx(5 / 6)
    with pytest.raises(ValueError):
        defect_auc(v, labels["defect"], "truncated")


def test_defect_pairs(labels):
    v = pd.Series([0.9, 0.8, 0.7, 0.1, 0.85, np.nan], index=labels.index)
    pairs = defect_pairs(v, labels, "mismatch")
    assert list(pairs.index) == ["m1", "m2"] and list(pairs["origin"]) == ["a", "b"]
    assert list(pairs["clean"]) == [0.9, 0.8] and list(pairs["defective"]) == [0.1, 0.85]
    assert paired_win_rate(pairs, defective_higher=False) == 0.5
    assert np.isnan(paired_win_rate(defect_pairs(v, labels, "wrong_answer"), True))


def test_multilabel_agreement():
    from kit.eval.metrics import multilabel_agreement

    true = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=bool)
    pred = np.array([[1, 0, 1], [0, 1, 0], [0, 1, 0]], dtype=bool)
    table, micro, macro = multilabel_agreement(true, pred, ["a", "b", "c"])
    assert table.loc["a", "precision"] == 1.0 and table.loc["a", "recall"] == 0.5
    assert table.loc["b", "f1"] == 1.0 and table.loc["c", "support"] == 0 and np.isnan(table.loc["c", "recall"])
    assert micro == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))  # tp=3, fp=1, fn=1
    assert macro == pytest.approx((2 / 3 + 1.0) / 2)         # labels with support: a and b
    assert table.loc["c", "predicted"] == 1 and table.loc["c", "f1"] == 0.0   # predicted without support


def test_multilabel_agreement_of_one_label_is_not_read_as_a_binary_target():
    """scikit-learn reads a single column as a binary target (support would count the False rows): one label is
    still one label."""
    from kit.eval.metrics import multilabel_agreement

    true = np.array([[1], [0], [1], [0]], dtype=bool)
    pred = np.array([[1], [1], [0], [0]], dtype=bool)
    table, micro, macro = multilabel_agreement(true, pred, ["yes/no"])
    assert table.loc["yes/no", ["support", "predicted"]].tolist() == [2, 2]
    assert table.loc["yes/no", "precision"] == table.loc["yes/no", "recall"] == micro == macro == 0.5



@pytest.fixture
def kinds():
    """Four clean samples, two within-source and one cross-source mismatch, two duplicates."""
    return pd.DataFrame({
        "defect": ["none", "none", "none", "none", "mismatch", "mismatch", "mismatch", "duplicate", "duplicate"],
        "origin": [None, None, None, None, "a", "b", "c", "a", "d"],
        "mismatch_kind": [None, None, None, None, "within_source", "within_source", "cross_source", None, None],
    }, index=["a", "b", "c", "d", "w1", "w2", "x1", "d1", "d2"])


def test_defect_auc_among_some_defective_samples(kinds):
    from kit.eval.metrics import defect_auc, mismatch_aucs

    v = pd.Series([0.9, 0.8, 0.7, 0.6, 0.75, 0.85, 0.1, 0.9, 0.6], index=kinds.index)
    within = kinds["mismatch_kind"] == "within_source"
    # clean {0.9, 0.8, 0.7, 0.6} vs within {0.75, 0.85}: (2 + 3) of 8 pairs ordered right
    assert defect_auc(v, kinds["defect"], "mismatch", among=within) == pytest.approx(3 / 8)
    # vs the cross-source one {0.1}: all 4 right
    assert defect_auc(v, kinds["defect"], "mismatch", among=kinds["mismatch_kind"] == "cross_source") == 1.0
    aucs = mismatch_aucs(v, kinds)
    assert aucs["all"] == pytest.approx((2 + 1 + 4) / 12) and aucs["within_source"] == pytest.approx(3 / 8)
    assert aucs["cross_source"] == 1.0 and (aucs["n_all"], aucs["n_within_source"], aucs["n_cross_source"]) == (3, 2, 1)
    # a pool without the column (or without one kind): NaN for that kind, not an error
    plain = mismatch_aucs(v, kinds.drop(columns="mismatch_kind"))
    assert plain["all"] == aucs["all"] and np.isnan(plain["within_source"]) and plain["n_within_source"] == 0


def test_duplicate_placement_and_detection_table(kinds):
    from kit.eval.metrics import detection_table, duplicate_placement

    v = pd.Series([0.9, 0.8, 0.7, 0.6, 0.75, 0.85, 0.1, 0.95, 0.6], index=kinds.index)
    dup = duplicate_placement(v, kinds)
    # duplicates {0.95, 0.6} vs clean {0.9, 0.8, 0.7, 0.6}: clean above in 0 + 3.5 of 8 pairs
    assert dup["auc"] == pytest.approx(3.5 / 8) and dup["n"] == 2
    # 0.95 sits above every clean sample (100th percentile), 0.6 on the lowest (mid-rank 12.5th)
    assert dup["median_percentile"] == pytest.approx((100 + 12.5) / 2)
    assert dup["above_clean_median"] == 0.5 and dup["same_as_origin"] == 0.5   # d2 equals its origin d
    scores = pd.DataFrame({"s": v, "flat": 0.5}, index=kinds.index)
    table = detection_table(scores, kinds, ["s", "flat"])
    assert table.loc["s", "auc_within_source"] == pytest.approx(3 / 8) and table.loc["s", "auc_cross_source"] == 1.0
    assert table.loc["s", "below_origin_all"] == pytest.approx(2 / 3)   # w1 < a, x1 < c; w2 > b
    assert table.loc["s", "below_origin_within_source"] == 0.5 and table.loc["s", "below_origin_cross_source"] == 1.0
    assert table.loc["flat", "auc_all"] == 0.5 and table.loc["flat", "duplicate_auc"] == 0.5
    assert table.attrs["n_mismatch"] == {"all": 3, "within_source": 2, "cross_source": 1}


def test_defect_kinds_split_mismatches(kinds):
    from kit.eval.metrics import defect_kinds

    assert defect_kinds(kinds).tolist() == ["none"] * 4 + ["mismatch (within source)"] * 2 + \
        ["mismatch (cross source)", "duplicate", "duplicate"]
    assert defect_kinds(kinds.drop(columns="mismatch_kind")).tolist() == kinds["defect"].tolist()
