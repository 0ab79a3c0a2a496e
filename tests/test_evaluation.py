import numpy as np
import pandas as pd
import pytest

from kit.evaluation import defect_auc, defect_pairs, paired_win_rate


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
    from kit.evaluation import multilabel_agreement

    true = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=bool)
    pred = np.array([[1, 0, 1], [0, 1, 0], [0, 1, 0]], dtype=bool)
    table, micro, macro = multilabel_agreement(true, pred, ["a", "b", "c"])
    assert table.loc["a", "precision"] == 1.0 and table.loc["a", "recall"] == 0.5
    assert table.loc["b", "f1"] == 1.0 and table.loc["c", "support"] == 0 and np.isnan(table.loc["c", "recall"])
    assert micro == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))  # tp=3, fp=1, fn=1
    assert macro == pytest.approx((2 / 3 + 1.0) / 2)         # labels with support: a and b

