"""compare_selections: counts per source, style and planted defect, defects let through, overlaps."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kit
from kit.compare import compare_selections, jaccard


@pytest.fixture
def small():
    ids = pd.Index([f"x{i}" for i in range(8)], name="id")
    scores = pd.DataFrame({
        "source": ["a", "a", "b", "b", "b", "c", "c", None],
        "styles": [["yes/no"], ["yes/no", "comparison"], ["multi-choice"], [], "yes/no|multi-choice",
                   ["coordinate"], ["yes/no"], ["yes/no"]],
        "image_text": np.linspace(0, 1, 8),
    }, index=ids)
    labels = pd.DataFrame({"defect": ["none", "duplicate", "none", "mismatch", "none", "none", "mismatch"]},
                          index=ids[:7])                  # x7 is not in the truth table
    return scores, labels


def test_counts_defects_and_overlaps(small):
    scores, labels = small
    top = kit.select(scores, "clip_top", 4)                # x7, x6, x5, x4
    picked = ["x0", "x1", "x3", "x6"]
    out = compare_selections(scores, {"top": top, "hand": picked}, labels=labels)
    assert list(out) == ["summary", "sources", "styles", "defects", "jaccard", "overlap"]
    assert out["sources"].loc[:, "top"].to_dict() == {"": 1, "a": 0, "b": 1, "c": 2}
    assert out["sources"].loc[:, "hand"].to_dict() == {"": 0, "a": 2, "b": 1, "c": 1}
    assert out["sources"]["pool"].sum() == 8
    styles = out["styles"]
    assert list(styles.index[:4]) == ["multi-choice", "coordinate", "yes/no", "comparison"]   # the STYLES order
    assert styles.loc["yes/no"].to_dict() == {"pool": 5, "top": 3, "hand": 3}
    assert styles.loc["multi-choice"].to_dict() == {"pool": 2, "top": 1, "hand": 0}
    defects = out["defects"]
    assert defects.index[0] == "none"
    assert defects.loc["mismatch"].to_dict() == {"pool": 2, "top": 1, "hand": 2}
    assert defects.loc["unlabelled"].to_dict() == {"pool": 1, "top": 1, "hand": 0}
    summary = out["summary"]
    assert summary.loc["top", "method"] == "clip_top" and summary.loc["top", "asked"] == 4
    assert pd.isna(summary.loc["hand", "method"]) and pd.isna(summary.loc["hand", "asked"])
    assert summary.loc["pool", "selected"] == 8
    assert summary["planted_defects"].to_dict() == {"pool": 3, "top": 1, "hand": 3}
    assert summary.loc["hand", "defect_share"] == pytest.approx(0.75)
    assert summary.loc["hand", "share_of_planted"] == pytest.approx(1.0)
    assert summary["unlabelled"].to_dict() == {"pool": 1, "top": 1, "hand": 0}
    assert out["overlap"].loc["top", "hand"] == 1 and out["overlap"].loc["top", "top"] == 4
    assert out["jaccard"].loc["top", "hand"] == pytest.approx(1 / 7)
    assert (np.diag(out["jaccard"]) == 1).all()


def test_jaccard_against_sets():
    rng = np.random.default_rng(0)
    subsets = {k: list(rng.choice(50, size, replace=False)) for k, size in (("a", 10), ("b", 25), ("c", 0))}
    jac, inter = jaccard(subsets)
    for p in subsets:
        for q in subsets:
            a, b = set(subsets[p]), set(subsets[q])
            want = len(a & b) / len(a | b) if a | b else 1.0
            assert jac.loc[p, q] == pytest.approx(want) and inter.loc[p, q] == len(a & b)


def test_bad_selections_are_named(small):
    scores, _ = small
    with pytest.raises(KeyError, match="selection 'odd' has 1 ids not in the score table"):
        compare_selections(scores, {"odd": ["x0", "nope"]})
    with pytest.raises(ValueError, match="selection 'twice' names a sample twice"):
        compare_selections(scores, {"twice": ["x0", "x0"]})
    without = compare_selections(scores[["image_text"]], {"one": ["x1"]})
    assert list(without) == ["summary", "jaccard", "overlap"]


def test_select_each_names_every_run_and_the_heatmap_draws(small):
    import matplotlib

    matplotlib.use("Agg")
    from kit.compare import select_each
    from kit.plotting.selection import overlap_heatmap

    scores, labels = small
    low = ("bottom", "ppl_band", {"band": "low", "loss_col": "image_text"})
    chosen = select_each(scores, ["random", "clip_top", low], [0.5, 3], seed=2)
    assert list(chosen) == ["random 50%", "random 3", "clip_top 50%", "clip_top 3", "bottom 50%", "bottom 3"]
    assert list(chosen["random 50%"]) == list(kit.select(scores, "random", 0.5, seed=2))
    assert chosen["bottom 3"].resolved["band"] == "low" and list(chosen["bottom 3"]) == ["x0", "x1", "x2"]
    tables = compare_selections(scores, chosen, labels=labels)
    ax = overlap_heatmap(tables["jaccard"])
    assert len(ax.texts) == len(chosen) ** 2 and ax.texts[0].get_text() == "1.00"
