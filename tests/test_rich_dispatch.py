"""The ``rich`` and ``style`` scorer dispatchers, and the shipped distilled head."""
import subprocess
import sys

import numpy as np
import pytest

import kit
from kit.capabilities import STYLES, capability_keys, expected_column
from kit.mmssr.rich import RichScorer
from kit.mmssr.distilled import DEFAULT_WEIGHTS, DistilledHead
from kit.mmssr.style import Styler

KEYS = capability_keys()


def test_dispatchers_import_their_backends_lazily():
    code = ("import sys, kit.mmssr.rich, kit.mmssr.style, kit\n"
            "kit.SCORERS.get('rich'); kit.SCORERS.get('style')\n"
            "mods = ['torch', 'kit.mmssr.rich_vlm', 'kit.mmssr.distilled', 'kit.mmssr.style_rules']\n"
            "print([m for m in mods if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_backends_are_named():
    with pytest.raises(KeyError, match="unknown rich-scorer backend 'gpt'.*Registered: distilled, vlm"):
        RichScorer(backend="gpt")
    with pytest.raises(KeyError, match="unknown styler backend 'gpt'.*Registered: distilled, rules, vlm"):
        Styler(backend="gpt")
    with pytest.raises(KeyError, match="did you mean 'distilled'"):
        RichScorer(backend="distiled")


def test_vlm_backends_reach_the_vlm_scorer():
    # without a model the VLM scorer itself refuses, which shows the options got there
    with pytest.raises(ValueError, match="needs model="):
        RichScorer(backend="vlm")
    with pytest.raises(ValueError, match="needs model="):
        Styler(backend="vlm", mode="generate")


@pytest.fixture(scope="module")
def samples(repo_root):
    pool = kit.load_pool(repo_root / "data_samples" / "pool.json")
    return pool.subset(pool.ids[:: max(len(pool) // 12, 1)][:12])


def test_shipped_head_is_small_and_says_how_it_was_made():
    assert DEFAULT_WEIGHTS.is_file() and DEFAULT_WEIGHTS.stat().st_size < 2_000_000
    scorer = DistilledHead.load(progress=False)
    meta = scorer.metadata
    assert scorer.capabilities == KEYS and scorer.styles == list(STYLES)
    assert meta["trained_on"].endswith("labels.csv") and meta["pool_command"].startswith("python -m kit.pools distill")
    assert set(meta["cv"]["spearman"]) == set(KEYS) and 0 <= meta["cv"]["style_f1_micro"] <= 1
    assert meta["command"].startswith("python -m kit.mmssr.distilled train")
    # trained apart from data_samples/, reported there as held out, settings chosen on the training pool
    assert "none of them from data_samples" in meta["note"] and "--holdout data_samples" in meta["command"]
    assert meta["holdout"]["pool"] == "data_samples/pool.json" and meta["pool"] != meta["holdout"]["pool"]
    assert set(meta["holdout"]["agreement"]) >= {"all", "easyvqa", "photos", "rendered"}
    assert meta["holdout"]["template_held_out"]["options"]["template_held_out"]
    assert meta["tuning"]["groups"] == "template" and meta["tuning"]["pool"] == meta["pool"]
    assert meta["cv"]["options"]["groups"] == "template"


def test_default_rich_and_distilled_styles_on_data_samples(samples):
    table = kit.score(samples, "rich", progress=False)  # the offline default: the shipped head
    assert list(table.index) == samples.ids and list(table.columns[:14]) == KEYS
    expected = [expected_column(k) for k in KEYS]
    assert list(kit.score_info(table).columns) == KEYS + expected   # what kit.score_table carries
    assert np.array_equal(table[KEYS].to_numpy(), np.round(table[KEYS].to_numpy()))   # integer ratings
    assert (table[expected].to_numpy() != table[KEYS].to_numpy()).any()
    assert (table["status"] == "ok").all() and table[KEYS].notna().all().all()
    assert table[KEYS].to_numpy().min() >= 0 and table[KEYS].to_numpy().max() <= 5
    assert all(s and set(s) <= set(STYLES) for s in table["styles"])
    assert table["source"].tolist() == samples.table["source"].tolist()
    styles = kit.score(samples, "style", backend="distilled", progress=False)
    assert list(styles.columns) == ["styles", "status"] and styles["styles"].tolist() == table["styles"].tolist()
    # the shipped head never saw these samples (held out), yet their styles mostly agree with the labels
    from kit.eval.labels import load_ratings

    labels = load_ratings(samples.path.parent / "labels.csv").loc[samples.ids]
    hits = sum(bool(set(a) & set(b)) for a, b in zip(table["styles"], labels["styles"]))
    assert hits >= 0.75 * len(samples)


def test_rules_styler_is_the_default(samples):
    table = kit.score(samples, "style")
    assert "styles" in table.columns and len(table) == len(samples)
    assert all(isinstance(s, list) and set(s) <= set(STYLES) for s in table["styles"])


def test_rich_backend_options_reach_the_distilled_head(samples, tmp_path):
    table, info = RichScorer(integer=True, style_threshold=0.99, at_least_one_style=False,
                             progress=False).score(samples)
    assert np.array_equal(table[KEYS].to_numpy(), np.round(table[KEYS].to_numpy()))
    assert info.details["weights"] and list(info.columns) == KEYS + [expected_column(k) for k in KEYS]
    default, _ = RichScorer(progress=False).score(samples)
    assert sum(map(len, table["styles"])) <= sum(map(len, default["styles"]))
    missing = RichScorer(weights=tmp_path / "none.pt")  # constructing loads nothing ...
    with pytest.raises(FileNotFoundError):
        missing.score(samples)                          # ... the first use does
