"""The score-collapse check: its rules, and kit.score / kit.score_table warning on a deliberately broken scorer."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kit
from kit.collapse import ScoreCollapseWarning, check_column, check_scores, find_collapsed, summary

ROOT = Path(__file__).resolve().parents[1]


def test_the_rules_fire_on_collapse_and_not_on_ties():
    rng = np.random.default_rng(0)
    n = 1000
    assert check_column(np.full(n, 3.0)).reason == "one value"
    near = np.zeros(n)
    near[:5] = rng.integers(1, 6, 5)                       # 99.5% at 0
    found = check_column(near, "x")
    assert found.collapsed and found.top_value == 0.0 and found.top_share == pytest.approx(0.995)
    sparse = np.zeros(n)
    sparse[:16] = rng.integers(1, 6, 16)                   # 98.4% at 0, like a sparse capability rating
    assert not check_column(sparse).collapsed
    tied = rng.choice([0, 1, 2, 3, 4, 5], n, p=[0.02, 0.03, 0.05, 0.8, 0.07, 0.03]).astype(float)
    assert not check_column(tied).collapsed              # most ratings at 3
    flat = 0.3 + 1e-6 * rng.standard_normal(n)             # a saturated head: no spread
    assert check_column(flat).reason.startswith("spread under")
    assert not check_column(0.3 + 0.03 * rng.standard_normal(n)).collapsed
    assert not check_column(1e-9 * rng.standard_normal(n)).collapsed   # centred on 0: judged by the other rules
    empty = check_column(np.full(20, np.nan))
    assert empty.collapsed and empty.reason == "no finite value" and empty.n_missing == 20
    assert not check_column(np.ones(9)).collapsed          # too few to tell ties from collapse
    assert check_column([-0.0] * 10 + [0.0] * 10).n_distinct == 1
    # the fast path the warnings use agrees with the full count on what is collapsed
    for col in (near, sparse, tied, flat):
        assert check_column(col, exact=False).collapsed == check_column(col).collapsed


def test_check_scores_reads_every_numeric_score_column():
    t = pd.DataFrame({"a": np.arange(50.0), "b": np.ones(50), "status": ["ok"] * 50, "flag": [True] * 50,
                      "styles": [["yes/no"]] * 50, "n_tokens": np.ones(50)})
    table = check_scores(t)
    assert list(table.index) == ["a", "b"] and table.loc["b", "collapsed"] and not table.loc["a", "collapsed"]
    assert table.loc["a", "n_distinct"] == 50 and table.loc["b", "top_share"] == 1.0
    assert [f.column for f in find_collapsed(t)] == ["b"]


@pytest.fixture(scope="module")
def pool():
    return kit.load_pool(ROOT / "data_samples" / "pool.json")


@kit.register_scorer("test_broken", overwrite=True)
class BrokenScorer:
    """A deliberately broken scorer: one column at a single value, one with no spread, one that works."""

    def score(self, pool):
        n = len(pool.table)
        t = pd.DataFrame(index=pool.table.index)
        t["broken_const"] = 3.0
        t["broken_flat"] = 0.5 + 1e-7 * np.arange(n)
        t["fine"] = np.arange(n, dtype=float) % 7
        t["styles"] = [["yes/no"]] * n                     # not a number: never checked
        return t


def test_score_warns_and_records_a_collapsed_column(pool):
    with pytest.warns(ScoreCollapseWarning) as caught:
        table = kit.score(pool, "test_broken")
    texts = [str(w.message) for w in caught]
    n = len(pool.table)
    assert any(f"column 'broken_const' (scorer 'test_broken') looks collapsed (one value): 100.0% of {n} scored "
               f"samples at 3, spread (std) 0" == t for t in texts)
    assert any("'broken_flat'" in t and "spread under 0.001 of the median" in t for t in texts)
    assert not any("'fine'" in t or "'styles'" in t for t in texts)
    info = kit.score_info(table)
    assert [c["column"] for c in info.collapse] == ["broken_const", "broken_flat"]
    assert info.collapse[0]["top_share"] == 1.0 and info.collapse[0]["spread"] == 0.0
    assert len(info.summary) == 2 and info.summary[0].startswith("score check: column")
    assert summary(table) == "\n".join(info.summary)
    # a table derived from it carries no info: the summary is a fresh check, with the same finding
    assert summary(table[table["fine"] >= 0]).splitlines()[0].startswith("score check: column 'broken_const'")


def test_score_table_records_the_check_even_when_reused(pool, tmp_path):
    for reused in (False, True):
        with pytest.warns(ScoreCollapseWarning) as caught:
            table = kit.score_table(pool, ["test_broken"], out=tmp_path)
        assert {str(w.message).split("'")[1] for w in caught} == {"broken_const", "broken_flat"}
        info = kit.score_info(table)
        assert info.scorers["test_broken"].reused is reused
        assert [c["column"] for c in info.collapse] == ["broken_const", "broken_flat"]
        assert info.collapse[0]["scorer"] == "test_broken"
    again = kit.load_scores(tmp_path / "score_table.parquet")
    assert [c["column"] for c in kit.score_info(again).collapse] == ["broken_const", "broken_flat"]


def test_a_healthy_scorer_does_not_warn(pool):
    @kit.register_scorer("test_healthy", overwrite=True)
    class Healthy:
        def score(self, pool):
            rng = np.random.default_rng(1)
            t = pd.DataFrame(index=pool.table.index)
            t["s"] = rng.normal(0.3, 0.05, len(t))
            t["rating"] = rng.choice(6, len(t), p=[0.05, 0.05, 0.1, 0.6, 0.15, 0.05]).astype(float)
            return t

    with warnings.catch_warnings():
        warnings.simplefilter("error", ScoreCollapseWarning)
        table = kit.score(pool, "test_healthy")
    assert kit.score_info(table).collapse == ()
    assert kit.score_info(table).summary == ("score check: none of the 2 numeric score columns looks collapsed",)


def test_a_continuous_score_at_one_value_for_90_percent_of_samples_is_collapsed():
    rng = np.random.default_rng(2)
    n = 1000
    loss = np.full(n, 2.5)
    loss[:30] = 2.5 + rng.random(30)                       # 97% at a default value, the rest real losses
    found = check_column(loss, "loss_mean")
    assert found.collapsed and found.kind == "continuous" and found.top_value == 2.5
    assert found.reason == "at least 90% of the samples at one value (a continuous score)"
    rating = np.zeros(n)
    rating[:30] = rng.integers(1, 6, 30)                   # 97% at 0: a sparse integer rating, not collapsed
    assert check_column(rating).kind == "integer" and not check_column(rating).collapsed
    some_ties = np.full(n, 0.3)
    some_ties[:150] = rng.random(150)                      # 85% at one value: under the continuous threshold
    assert not check_column(some_ties).collapsed
    for col in (loss, rating, some_ties):                  # the fast path the warnings use agrees
        assert check_column(col, exact=False).collapsed == check_column(col).collapsed
    with pytest.warns(ScoreCollapseWarning, match="'loss_mean'.*90%"):
        found = kit.collapse.warn_collapsed(pd.DataFrame({"loss_mean": loss, "rating": rating}),
                                            ["loss_mean", "rating"], "selector 'dil'")
    assert [f.column for f in found] == ["loss_mean"]
