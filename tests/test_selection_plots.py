"""Coverage tables and the figures built on them: radar, violins and the several-selections panel."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import kit  # noqa: E402
from kit.compare import capability_coverage, compare_selections, coverage_label  # noqa: E402
from kit.plotting.selection import capability_violins, coverage_radar, selection_panel  # noqa: E402

CAPS = ["spatial", "attribute", "ocr", "stem"]


@pytest.fixture
def table():
    ids = pd.Index([f"s{i}" for i in range(6)], name="id")
    return pd.DataFrame({
        "source": ["a", "a", "b", "b", "c", "c"],
        "styles": [["yes/no"]] * 6,
        "image_text": np.linspace(0.1, 0.6, 6),
        "spatial": [0, 1, 2, 3, 4, 5],
        "attribute": [5, 5, 0, 0, np.nan, 2],
        "ocr": [0, 0, 0, 0, 0, 0],
        "stem": [2.5, 1.9, 2.0, np.nan, np.nan, np.nan],
    }, index=ids)


def test_coverage_is_the_share_rated_at_least_the_threshold(table):
    cov = capability_coverage(table, {"top": ["s4", "s5"], "first": ["s0", "s1", "s2"]}, CAPS, at_least=2)
    assert list(cov.index) == ["pool", "top", "first"] and list(cov.columns) == CAPS
    assert cov.at["pool", "spatial"] == pytest.approx(4 / 6)
    assert cov.at["pool", "attribute"] == pytest.approx(3 / 5)      # the unrated sample is left out
    assert cov.at["top", "attribute"] == 1.0                        # s4 unrated, s5 rated 2
    assert cov.at["first", "stem"] == pytest.approx(2 / 3)          # 2.5 and 2.0 count, 1.9 does not
    assert np.isnan(cov.at["top", "stem"])                          # nobody in it is rated
    assert (cov["ocr"] == 0).all()
    assert cov.attrs["coverage"]["n"] == {"pool": 6, "top": 2, "first": 3}
    assert coverage_label(cov) == "share of samples rated ≥ 2 (of 5)"
    mean = capability_coverage(table, {"top": ["s4", "s5"]}, CAPS, stat="mean")
    assert mean.at["top", "spatial"] == 4.5 and mean.at["pool", "attribute"] == pytest.approx(12 / 5)
    assert coverage_label(mean) == "mean rating (0-5)"


def test_coverage_refuses_what_it_cannot_compute(table):
    with pytest.raises(ValueError, match="stat"):
        capability_coverage(table, {}, CAPS, stat="median")
    with pytest.raises(KeyError, match="language"):
        capability_coverage(table, {}, ["language"])
    with pytest.raises(KeyError, match="not in the score table"):
        capability_coverage(table, {"x": ["nope"]}, CAPS)
    assert list(capability_coverage(table, {}).columns) == ["spatial", "attribute", "stem", "ocr"]  # registry order


def test_radar_draws_the_pool_filled_and_one_line_per_subset(table):
    cov = capability_coverage(table, {"top": ["s4", "s5"], "first": ["s0", "s1", "s2"]}, CAPS)
    fig = coverage_radar(cov)
    ax = fig.axes[0]
    assert ax.name == "polar"
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["pool (6)", "top (2)", "first (3)"]
    assert len(ax.patches) == 1                                     # the pool's filled area
    assert [t.get_text() for t in ax.get_xticklabels()] == CAPS
    assert "rated ≥ 2" in ax.get_title()
    top = ax.get_lines()[1].get_ydata()
    assert np.allclose(top[:-1], cov.loc["top"].to_numpy(), equal_nan=True) and top[-1] == top[0]   # closed
    plt.close(fig)
    _, flat = plt.subplots()
    with pytest.raises(ValueError, match="polar"):
        coverage_radar(cov, ax=flat)
    with pytest.raises(ValueError, match="3 capabilities"):
        coverage_radar(cov[CAPS[:2]])
    plt.close("all")


def test_violins_show_pool_and_subset_per_capability(table):
    fig = capability_violins(table, ["s4", "s5"], CAPS[:2], name="top")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == CAPS[:2]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["pool (6)", "top (2)"]
    assert ax.get_ylabel() == "capability rating (0–5)"
    plt.close(fig)


def test_panel_shows_counts_coverage_and_jaccard(table):
    chosen = {"top": kit.select(table, "clip_top", 3), "hand": ["s0", "s5"], "again": kit.select(table, "clip_top", 3)}
    labels = pd.DataFrame({"defect": ["none", "mismatch", "none", "none", "duplicate", "none"]}, index=table.index)
    tables = compare_selections(table, chosen, labels=labels)
    cov = capability_coverage(table, chosen, CAPS)
    fig = selection_panel(tables, cov, title="three")
    counts, coverage, jaccard = fig.axes[:3]
    assert [t.get_text() for t in counts.get_yticklabels()] == ["top", "hand", "again"]
    widths = [p.get_width() for p in counts.patches]
    assert widths[:3] == [3, 2, 3]                                  # selected
    assert widths[3:] == [1, 0, 1]                                  # planted defects let through (s4 in top)
    assert [t.get_text() for t in coverage.get_yticklabels()] == ["pool", "top", "hand", "again"]
    texts = {t.get_text() for t in jaccard.texts}
    assert "1.00" in texts and f"{1 / 4:.2f}" in texts              # |top & hand| / |top | hand| = 1/4
    assert fig._suptitle.get_text() == "three"
    plt.close(fig)
