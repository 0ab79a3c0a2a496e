"""The distilled rich scorer and styler on a small synthetic pool with a cheap feature extractor."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import kit
from kit.capabilities import STYLES, capability_keys, expected_column
from kit.cli import main as kit_main
from kit.mmssr import distilled as rd
from kit.mmssr.distilled import DistilledHead, cross_validate
from kit.eval.labels import load_ratings

KEYS = capability_keys()
# (question, answer, styles) templates; the text decides the styles and some capabilities
TEMPLATES = [
    ("Is the square red?", "Yes", ["yes/no"]),
    ("What colour is the square? Answer with a single word.", "Red", ["word/short-phrase", "specified style"]),
    ("Which colour is it?\nA. red\nB. blue\nC. green\nAnswer with the option's letter.", "B",
     ["multi-choice", "specified style"]),
    ("Describe the image in detail.", "The image shows a single square filling the whole frame. " * 6,
     ["detailed description"]),
    ("Give the bounding box of the square.", "[0.10, 0.20, 0.90, 0.80]", ["coordinate"]),
    ("Think step by step: is it warm or cool?", "First, look at the hue. Then compare it. Therefore it is warm.",
     ["chain-of-thought (step-by-step)"]),
]


class PixelStats:
    """A cheap extractor: mean RGB of the image + the module's text statistics; counts its calls."""

    name = "pixel_stats_test"
    options: dict = {}
    fingerprint = "pixel_stats_test:v1"
    dim = 3 + len(rd.STAT_NAMES)

    def __init__(self):
        self.n_transformed = 0

    def transform(self, pool, ids):
        self.n_transformed += len(ids)
        rows, errors = [], []
        for sid, img, err in pool.iter_images(ids):
            rgb = np.asarray(img, dtype=np.float32).mean((0, 1)) / 255 if img is not None else np.full(3, np.nan)
            rows.append(np.concatenate([rgb, rd.text_stats(pool.table.at[sid, "conversations"])]))
            errors.append(None if img is not None else f"image_error: {err}")
        return np.stack(rows).astype(np.float32), errors


rd.register_feature_extractor("pixel_stats_test", PixelStats, overwrite=True)


def make_rated_pool(root, n=60, seed=0):
    """A pool of solid-colour images; ratings follow the colour (image) and the template (text)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    records, rows = [], []
    for i in range(n):
        rgb = rng.integers(0, 256, 3)
        Image.new("RGB", (8, 8), tuple(int(c) for c in rgb)).save(root / "images" / f"{i}.png")
        t = i % len(TEMPLATES)
        q, a, styles = TEMPLATES[t]
        records.append({"id": f"s{i:03d}", "image": f"{i}.png", "source": f"src{i % 2}",
                        "conversations": [{"from": "human", "value": "<image>\n" + q}, {"from": "gpt", "value": a}]})
        scores = {k: 0 for k in KEYS}
        scores["ocr"] = int(round(5 * rgb[0] / 255))                  # from the image
        scores["spatial"] = 4 if t == 4 else 1                        # from the text
        scores["logical"] = 3 if t == 5 else int(rng.integers(0, 2))
        scores["language"] = 5 if t == 3 else 1
        rows.append({"id": f"s{i:03d}", **scores, "styles": "|".join(styles), "defect": "none",
                     "origin": "s000" if i == 1 else None,  # as if s001 were made from s000
                     "template": f"t{t}"})
    (root / "pool.json").write_text(json.dumps(records))
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return kit.load_pool(root / "pool.json"), load_ratings(root / "labels.csv")


@pytest.fixture(scope="module")
def rated(tmp_path_factory):
    return make_rated_pool(tmp_path_factory.mktemp("rated"))


OPTS = dict(features="pixel_stats_test", steps=200, progress=False)


def test_fit_and_score_table(rated):
    pool, ratings = rated
    scorer = DistilledHead(**OPTS).fit(pool, ratings)
    table = scorer.score(pool)
    expected = [expected_column(k) for k in KEYS]
    assert list(table.index) == pool.ids and list(table.columns) == [*KEYS, *expected, "styles", "source", "status"]
    values = table[KEYS].to_numpy()            # the most probable integer rating, as a teacher would answer
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= 5
    assert np.array_equal(values, np.round(values))
    means = table[expected].to_numpy()         # the expected value beside it
    assert np.isfinite(means).all() and means.min() >= 0 and means.max() <= 5 and not np.array_equal(means, values)
    assert (table["status"] == "ok").all() and table["source"].tolist() == pool.table["source"].tolist()
    assert all(s and set(s) <= set(STYLES) for s in table["styles"])
    # in-sample it has learnt both an image-driven and a text-driven capability
    from scipy.stats import spearmanr

    assert spearmanr(table["ocr_expected"], ratings.loc[pool.ids, "ocr"]).statistic > 0.9
    boxes = ratings.loc[pool.ids, "spatial"] == 4  # spatial is 4 for the bounding-box template, else 1
    assert table.loc[boxes, "spatial_expected"].min() > table.loc[~boxes, "spatial_expected"].max()
    assert table.loc[boxes, "spatial"].min() > table.loc[~boxes, "spatial"].max()
    assert scorer.metadata["n_train"] == len(pool)
    floats = DistilledHead(**OPTS, integer=False).fit(pool, ratings).score(pool)
    assert np.allclose(floats[KEYS].to_numpy(), means)       # integer=False: the expected value in both


def test_most_probable_rating_of_the_ordinal_head():
    import torch

    from kit.mmssr.distilled.net import build_head, predict_head

    head = build_head(1, 2, 1, hidden=0, target="ordinal", dropout=0.0).eval()
    above = torch.tensor([[0.9, 0.8, 0.3, 0.2, 0.1],     # P(y = j) = .1 .1 .5 .1 .1 .1 -> 2
                          [0.2, 0.9, 0.85, 0.8, 0.1]])   # not monotone: P(y = 0) = .8 is the largest -> 0
    with torch.no_grad():
        head.caps.weight.zero_()
        head.caps.bias.copy_(torch.logit(above).reshape(-1))
    scores, _, level = predict_head(head, np.zeros((1, 1)), "ordinal", 2, ratings=True)
    assert level.tolist() == [[2.0, 0.0]]
    assert np.allclose(scores, [[2.3, 2.85]])


def test_cross_validation_beats_shuffled_labels(rated):
    pool, ratings = rated
    report = cross_validate(pool, ratings, folds=3, seed=0, **OPTS)
    caps = report.capabilities
    assert list(caps.index) == KEYS and (caps["n"] == len(pool)).all()
    assert caps.loc["ocr", "spearman"] > 0.8
    boxes = ratings.loc[report.predictions.index, "spatial"] == 4  # out of fold: still separated
    assert report.predictions.loc[boxes, "spatial"].min() > report.predictions.loc[~boxes, "spatial"].max()
    assert np.isnan(caps.loc["humanities", "spearman"])  # a constant rating column has no rank order
    assert caps.loc["humanities", "mae"] < 0.1  # ... and the head learns that constant
    assert report.style_f1_micro > 0.9 and report.style_f1_macro > 0.8
    assert set(report.styles.index) == set(STYLES) and report.styles.loc["comparison", "support"] == 0
    assert len(report.predictions) == len(pool) and "mean" in report.summary()
    d = report.to_dict()
    assert d["spearman"]["humanities"] is None and d["style_f1_micro"] == round(report.style_f1_micro, 4)

    shuffled = ratings.copy()
    perm = np.random.default_rng(0).permutation(len(shuffled))
    shuffled[KEYS] = shuffled[KEYS].to_numpy()[perm]
    shuffled["styles"] = list(shuffled["styles"].to_numpy()[perm])
    noise = cross_validate(pool, shuffled, folds=3, seed=0, **OPTS)
    assert noise.capabilities.loc["ocr", "spearman"] < 0.5 and noise.style_f1_micro < report.style_f1_micro - 0.3


def test_regression_target_and_hidden_layer(rated):
    pool, ratings = rated
    scorer = DistilledHead(**{**OPTS, "target": "regression", "hidden": 16}).fit(pool, ratings)
    table = scorer.score(pool)
    from scipy.stats import spearmanr

    assert spearmanr(table["ocr"], ratings.loc[pool.ids, "ocr"]).statistic > 0.8
    assert table[KEYS].to_numpy().min() >= 0 and table[KEYS].to_numpy().max() <= 5  # clipped to the scale
    with pytest.raises(ValueError, match="do not have"):
        DistilledHead(**OPTS, block_gains={"image": 0.5}).fit(pool, ratings)


def test_save_load_round_trip(rated, tmp_path):
    pool, ratings = rated
    scorer = DistilledHead(**OPTS, seed=3).fit(pool, ratings)
    path = scorer.save(tmp_path / "head.pt", note="test run")
    payload = torch.load(path, weights_only=True)
    assert payload["capabilities"] == KEYS and payload["styles"] == list(STYLES)
    assert payload["features"]["name"] == "pixel_stats_test" and payload["config"]["seed"] == 3
    assert json.loads(payload["metadata_json"])["note"] == "test run"
    loaded = DistilledHead.load(path, progress=False)
    pd.testing.assert_frame_equal(loaded.score(pool), scorer.score(pool))
    assert loaded.metadata["n_train"] == len(pool)
    # the same seed trains the same head
    again = DistilledHead(**OPTS, seed=3).fit(pool, ratings)
    pd.testing.assert_frame_equal(again.score(pool), scorer.score(pool))
    with pytest.raises(TypeError, match="cannot change"):
        DistilledHead.load(path, hidden=32)

    class Other(PixelStats):
        fingerprint = "something else"

    with pytest.raises(ValueError, match="expects features"):
        DistilledHead.load(path, features=Other())
    with pytest.raises(FileNotFoundError, match="train one"):
        DistilledHead.load(tmp_path / "missing.pt")


def test_features_are_computed_once_per_sample(rated, tmp_path):
    pool, ratings = rated
    rd.clear_feature_cache()
    ext = PixelStats()
    scorer = DistilledHead(features=ext, steps=5, progress=False, cache_dir=tmp_path / "cache")
    scorer.fit(pool, ratings)
    scorer.score(pool)
    cross_validate(pool, ratings, folds=3, features=ext, steps=5, progress=False)
    scorer.score(pool.subset(pool.ids[:10]))
    assert ext.n_transformed == len(pool)
    rd.clear_feature_cache()  # a new process: the disk cache still has them
    fresh = PixelStats()
    X, _ = rd.compute_features(fresh, pool, cache_dir=tmp_path / "cache")
    assert fresh.n_transformed == 0 and X.shape == (len(pool), PixelStats.dim)
    assert np.allclose(X, ext.transform(pool, pool.ids)[0])


def test_broken_image_keeps_its_row(rated, tmp_path):
    pool, ratings = rated
    scorer = DistilledHead(**OPTS).fit(pool, ratings)
    broken = make_rated_pool(tmp_path / "p", n=6, seed=1)[0]
    victim = broken.ids[2]
    with open(broken.table.at[victim, "image_path"], "wb") as fh:
        fh.write(b"not a png any more")
    table = scorer.score(broken)
    assert len(table) == 6 and table.loc[victim, KEYS].isna().all() and table.loc[victim, "styles"] == []
    assert table.loc[victim, "status"].startswith("image_error") and (table.drop(victim)["status"] == "ok").all()


def test_ratings_checks(rated):
    pool, ratings = rated
    extra = pd.concat([ratings, ratings.iloc[:2].rename(index=lambda s: s + "_elsewhere")])
    with pytest.warns(UserWarning, match="2 rated ids are not in the pool"):
        DistilledHead(**{**OPTS, "steps": 2}).fit(pool, extra)
    odd = ratings.copy()
    odd["styles"] = [s + ["haiku"] if i == 0 else s for i, s in enumerate(odd["styles"])]
    with pytest.warns(UserWarning, match=f"'haiku' \\(e.g. sample '{odd.index[0]}'\\)"):
        DistilledHead(**{**OPTS, "steps": 2}).fit(pool, odd)
    with pytest.raises(ValueError, match="none of the rated ids"):
        DistilledHead(**OPTS).fit(pool, ratings.rename(index=lambda s: "x" + s))
    with pytest.raises(RuntimeError, match="not trained"):
        DistilledHead(**OPTS).score(pool)
    with pytest.raises(ValueError, match="target must be"):
        DistilledHead(**OPTS, target="softmax")
    with pytest.raises(KeyError, match="unknown feature extractor"):
        DistilledHead(features="nope")
    # a subset of capabilities, and missing teacher scores (NaN) are masked out of the loss
    part = ratings.copy()
    part.loc[part.index[:20], "ocr"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = DistilledHead(**OPTS).fit(pool, part, capabilities=["ocr", "spatial"]).score(pool)
    assert list(table.columns) == ["ocr", "spatial", "ocr_expected", "spatial_expected", "styles", "source", "status"]


def test_text_stats_see_the_styles():
    stats = dict(zip(rd.STAT_NAMES, rd.text_stats([
        {"from": "human", "value": "<image>\nWhich?\nA. red\nB. blue"}, {"from": "gpt", "value": "B"}])))
    assert stats["choices_in_question"] == 1 and stats["letter_answer_frac"] == 1 and stats["short_answer_frac"] == 1
    stats = dict(zip(rd.STAT_NAMES, rd.text_stats([
        {"from": "human", "value": "Where is it?"}, {"from": "gpt", "value": "[0.1, 0.2, 0.5, 0.6]"}])))
    assert stats["coordinates"] == 1 and stats["choices_in_question"] == 0


def test_train_cli_writes_a_reproducible_head_with_its_cv(tmp_path, capsys):
    make_rated_pool(tmp_path / "data", n=30, seed=2)
    args = ["--blocks", "stats", "--steps", "60", "--folds", "3"]
    assert kit_main(["distill", "train", str(tmp_path / "data"), str(tmp_path / "a.pt"), *args]) == 0
    assert "style F1 micro" in capsys.readouterr().out
    assert kit_main(["distill", "train", str(tmp_path / "data"), str(tmp_path / "b.pt"), *args]) == 0
    a, b = (torch.load(tmp_path / f"{x}.pt", weights_only=True) for x in "ab")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    meta = json.loads(a["metadata_json"])
    assert "same pool" in meta["note"] and meta["n_train"] == 30 and meta["cv"]["folds"] == 3
    assert meta["cv"]["options"]["groups"] == "origin"  # labels with an origin column: grouped folds
    assert set(meta["cv"]["spearman"]) == set(KEYS) and a["features"]["options"] == {"blocks": ["stats"]}
    assert a["config"]["block_gains"] == {"stats": 3.0}  # the extractor's default gains, resolved


def test_grouped_cross_validation_keeps_groups_apart(rated):
    pool, ratings = rated
    template = pd.Series([int(s[1:]) % len(TEMPLATES) for s in ratings.index], index=ratings.index)
    report = cross_validate(pool, ratings, folds=3, groups=template, **{**OPTS, "steps": 50})
    assert report.options["groups"] == "custom" and len(report.predictions) == len(pool)
    # a template never seen in training: the text-driven style of the held-out templates is not learnt
    assert report.style_f1_micro < 0.9
    with pytest.raises(KeyError, match="groups has no entry"):
        cross_validate(pool, ratings, folds=3, groups=template.iloc[:10], **OPTS)


def test_held_out_agreement_and_templates_held_out(rated, tmp_path):
    from kit.mmssr.distilled.cv import held_out_agreement, template_held_out

    pool, ratings = rated
    other, other_ratings = make_rated_pool(tmp_path / "other", n=36, seed=5)
    fast = {**OPTS, "steps": 80}
    head = DistilledHead(**fast).fit(pool, ratings)
    agreement = held_out_agreement(head, other, other_ratings, by="source")
    assert set(agreement) == {"all", "src0", "src1"} and len(agreement["all"].predictions) == 36
    assert len(agreement["src0"].predictions) + len(agreement["src1"].predictions) == 36
    assert agreement["all"].folds == 0 and "not trained on" in agreement["all"].summary()
    # the image-driven capability and the template-driven ones carry over to a new pool of the same templates
    assert agreement["all"].capabilities.loc["ocr", "spearman"] > 0.8
    assert agreement["all"].capabilities.loc["language", "spearman"] > 0.5
    held = template_held_out(pool, ratings, other, other_ratings, folds=3, seed=0, **fast)
    assert len(held.predictions) == 36 and held.options["template_held_out"]
    assert "templates held out" in held.summary()
    # a head that never saw a sample's template cannot read its text-driven style
    assert held.style_f1_micro < agreement["all"].style_f1_micro
    assert held.capabilities.loc["ocr", "spearman"] > 0.5   # the image still tells


def test_tune_ranks_settings_and_train_uses_and_records_them(tmp_path, capsys):
    import json as _json

    make_rated_pool(tmp_path / "train", n=36, seed=3)
    make_rated_pool(tmp_path / "held", n=24, seed=4)
    common = ["--blocks", "stats", "--folds", "3", "--groups", "template", "--steps", "30"]
    assert kit_main(["distill", "tune", str(tmp_path / "train"), "--out", str(tmp_path / "tune.json"), *common]) == 0
    tuned = _json.loads((tmp_path / "tune.json").read_text())
    assert len(tuned["table"]) == len(rd.cv.TUNING_GRID) and tuned["groups"] == "template"
    assert tuned["table"][0]["mean_spearman"] >= max(r["mean_spearman"] for r in tuned["table"])
    assert set(tuned["best"]) == {"target", "hidden", "steps", "l2", "block_gains"} and tuned["best"]["steps"] == 30
    capsys.readouterr()
    args = ["train", str(tmp_path / "train"), str(tmp_path / "h.pt"), "--tuning", str(tmp_path / "tune.json"),
            "--holdout", str(tmp_path / "held"), "--blocks", "stats", "--folds", "3", "--groups", "template"]
    assert kit_main(["distill", *args]) == 0
    assert "held out" in capsys.readouterr().out
    payload = torch.load(tmp_path / "h.pt", weights_only=True)
    meta = _json.loads(payload["metadata_json"])
    assert meta["command"] == "kit distill " + " ".join(args)
    assert meta["tuning"]["best"] == tuned["best"] and meta["cv"]["options"]["groups"] == "template"
    assert payload["config"]["steps"] == 30 and payload["config"]["target"] == tuned["best"]["target"]
    assert "none of them from" in meta["note"] and meta["holdout"]["pool"].endswith("pool.json")
    assert set(meta["holdout"]["agreement"]) == {"all", "src0", "src1"}
    assert meta["holdout"]["template_held_out"]["folds"] == 3
    # a held-out pool that shares images with the training pool is refused
    import shutil

    shutil.copytree(tmp_path / "train", tmp_path / "same")
    capsys.readouterr()
    assert kit_main(["distill", "train", str(tmp_path / "train"), str(tmp_path / "x.pt"), "--holdout",
                     str(tmp_path / "same"), "--blocks", "stats", "--folds", "3", "--steps", "5"]) == 1
    assert "share" in capsys.readouterr().err
