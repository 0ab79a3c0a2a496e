"""The sample pool (data_samples/) and the easy-vqa pool builder (kit.pools)."""
from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import kit
from kit.pools import CAPABILITIES, DEFECTS, LABEL_COLUMNS, STYLES, build_easyvqa_pool, load_labels
from kit.pools import easyvqa
from kit.pools.build import build_sample_pool, defect_counts, library_versions, pool_easyvqa_ids
from kit.pools.defects import truncate_answer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data_samples"
MAX_BYTES = 15 * 1024 * 1024


def _pool(path: Path) -> list[dict]:
    return json.loads((path / "pool.json").read_text(encoding="utf-8"))


def _labels(path: Path) -> list[dict]:
    with open(path / "labels.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _image_hashes(path: Path) -> dict[str, str]:
    root = path / "images"
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rebuilt_samples(tmp_path_factory):
    """The pool rebuilt into a temporary folder, and the builder's samples (with their truth)."""
    out = tmp_path_factory.mktemp("data_samples")
    return out, build_sample_pool(out, progress=False)


@pytest.fixture(scope="module")
def rebuilt(rebuilt_samples) -> Path:
    return rebuilt_samples[0]


@pytest.fixture(scope="module")
def committed():
    pool, labels = _pool(DATA), _labels(DATA)
    return pool, {row["id"]: row for row in labels}, labels


# --------------------------------------------------------------------------- determinism

def test_rebuild_is_byte_identical(rebuilt):
    for name in ("pool.json", "labels.csv", "README.md"):
        assert (rebuilt / name).read_bytes() == (DATA / name).read_bytes(), \
            f"{name} differs from the committed one: run `python -m kit.pools build data_samples/`"
    recorded = json.loads((DATA / "build_info.json").read_text())["library_versions"]
    if recorded == library_versions():  # same encoders and rasterisers: identical bytes
        assert (rebuilt / "build_info.json").read_bytes() == (DATA / "build_info.json").read_bytes()
        assert _image_hashes(rebuilt) == _image_hashes(DATA)
        return
    # other library versions may encode or anti-alias differently: compare pixels instead
    from PIL import Image

    new, old = _image_hashes(rebuilt), _image_hashes(DATA)
    assert set(new) == set(old)
    for rel in new:
        with Image.open(rebuilt / "images" / rel) as a, Image.open(DATA / "images" / rel) as b:
            assert (a.size, a.mode) == (b.size, b.mode), rel
            diff = np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean()
            assert diff < 6, f"{rel}: mean pixel difference {diff:.1f} with library versions != {recorded}"


# --------------------------------------------------------------------------- counts and truth

def test_counts(committed):
    pool, labels, _ = committed
    assert len(pool) >= 300
    clean = Counter(r["source"] for r in pool if labels[r["id"]]["defect"] == "none")
    assert clean["easyvqa"] >= 150 and clean["photos"] >= 60 and clean["rendered"] >= 60
    defects = Counter(row["defect"] for row in labels.values())
    assert sum(n for d, n in defects.items() if d != "none") >= 0.10 * len(pool)
    for kind in DEFECTS[1:]:
        assert defects[kind] >= 8, kind
        sources = {r["source"] for r in pool if labels[r["id"]]["defect"] == kind}
        assert sources == {"easyvqa", "photos", "rendered"}, f"{kind} not spread over all sources"


def test_pool_records(committed):
    pool, labels, _ = committed
    ids = [r["id"] for r in pool]
    assert len(set(ids)) == len(ids)
    for r in pool:
        assert set(r) == {"id", "image", "conversations", "source"}, r["id"]
        conv = r["conversations"]
        assert conv[0]["from"] == "human" and conv[0]["value"].startswith("<image>\n"), r["id"]
        assert [t["from"] for t in conv] == ["human", "gpt"] * (len(conv) // 2), r["id"]
        assert sum("<image>" in t["value"] for t in conv) == 1, r["id"]
        if labels[r["id"]]["defect"] != "mismatch":
            assert r["image"].split("/")[0] == r["source"], r["id"]


def test_defects_are_made_from_clean_origins(committed):
    pool, labels, _ = committed
    by_id = {r["id"]: r for r in pool}
    origins = []
    for r in pool:
        row = labels[r["id"]]
        if row["defect"] == "none":
            assert row["origin"] == "", r["id"]
            continue
        origin = by_id[row["origin"]]
        assert labels[origin["id"]]["defect"] == "none", r["id"]
        assert r["source"] == origin["source"], r["id"]
        origins.append(origin["id"])
        conv, oconv = r["conversations"], origin["conversations"]
        if row["defect"] == "duplicate":
            assert (r["image"], conv) == (origin["image"], oconv), r["id"]
        elif row["defect"] == "mismatch":
            assert conv == oconv and r["image"] != origin["image"], r["id"]
            owners = [x for x in pool if x["image"] == r["image"] and labels[x["id"]]["defect"] == "none"]
            assert owners, r["id"]
            if row["mismatch_kind"] == "within_source":
                assert all(x["source"] == r["source"] for x in owners), r["id"]
            else:
                assert row["mismatch_kind"] == "cross_source", r["id"]
                assert all(x["source"] != r["source"] for x in owners), r["id"]
        else:
            assert r["image"] == origin["image"] and conv[:-1] == oconv[:-1], r["id"]
            new, old = conv[-1]["value"], oconv[-1]["value"]
            assert new != old, r["id"]
            if row["defect"] == "truncated":
                assert new == "" or (old.startswith(new) and len(new) < len(old)), r["id"]
            else:
                assert new.strip(), r["id"]
    assert len(origins) == len(set(origins)), "each clean sample is the origin of at most one defect"


def test_labels(committed):
    pool, labels, rows = committed
    with open(DATA / "labels.csv", newline="", encoding="utf-8") as f:
        assert tuple(next(csv.reader(f))) == LABEL_COLUMNS
    assert [row["id"] for row in rows] == [r["id"] for r in pool]
    for row in rows:
        assert row["defect"] in DEFECTS
        assert (row["mismatch_kind"] in ("within_source", "cross_source")) == (row["defect"] == "mismatch"), row["id"]
        assert row["template"], row["id"]
        if row["origin"]:
            assert row["template"] == labels[row["origin"]]["template"], row["id"]
        styles = row["styles"].split("|")
        assert styles and all(s in STYLES for s in styles), row["id"]
        values = {c: int(row[c]) for c in CAPABILITIES}
        assert all(0 <= v <= 5 for v in values.values()), row["id"]
        if row["defect"] == "none":
            assert max(values.values()) >= 1, row["id"]
        elif row["defect"] == "duplicate":
            origin = labels[row["origin"]]
            assert values == {c: int(origin[c]) for c in CAPABILITIES}
            assert row["styles"] == origin["styles"]
        else:
            assert max(values.values()) <= 1, row["id"]
    styles_seen = {s for row in rows for s in row["styles"].split("|")}
    assert styles_seen == set(STYLES), "every style appears in the pool"
    df = load_labels(DATA / "labels.csv")
    assert len(df) == len(pool) and isinstance(df["styles"].iloc[0], list)


def test_mismatches_swap_images_within_and_across_sources(committed, rebuilt_samples):
    """At least half of the planted mismatches take their image from their own source, and every
    swapped image really contradicts the conversation."""
    from kit.pools.build import SAMPLE_POOL_DEFECTS
    from kit.pools.defects import answer_can_stay_right, contradicts_within_source

    pool, labels, rows = committed
    mismatches = [row for row in rows if row["defect"] == "mismatch"]
    kinds = Counter(row["mismatch_kind"] for row in mismatches)
    assert len(mismatches) == SAMPLE_POOL_DEFECTS["mismatch"] == 11
    assert kinds["within_source"] >= len(mismatches) / 2 and kinds["cross_source"] >= 3
    by_id = {r["id"]: r for r in pool}
    within_sources = {by_id[row["id"]]["source"] for row in mismatches if row["mismatch_kind"] == "within_source"}
    assert within_sources == {"easyvqa", "photos", "rendered"}
    # the builder's own samples carry the truth that shows each swapped image contradicts its text
    samples = rebuilt_samples[1]
    by_key = {s.key: s for s in samples}
    donors = {s.image: s for s in samples if s.defect == "none"}
    for s in samples:
        if s.defect != "mismatch":
            continue
        origin, donor = by_key[s.origin], donors[s.image]
        assert not answer_can_stay_right(origin), s.key
        if s.mismatch_kind == "within_source":
            assert contradicts_within_source(origin, donor), s.key
        else:
            assert donor.source != origin.source, s.key


def test_images_small(committed):
    from PIL import Image

    pool, _, _ = committed
    files = [p for p in (DATA / "images").rglob("*") if p.is_file()]
    for p in files:
        with Image.open(p) as im:
            assert max(im.size) <= 256, p
    used = {r["image"] for r in pool}
    assert {p.relative_to(DATA / "images").as_posix() for p in files} == used, "no orphan or missing images"
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert total <= MAX_BYTES, f"data_samples/ is {total / 2**20:.1f} MB"


def test_load_pool_accepts_everything(committed):
    pool = kit.load_pool(DATA / "pool.json")
    assert len(pool.report) == 0, pool.report
    assert len(pool.table) == len(committed[0])
    assert set(pool.table["source"]) == {"easyvqa", "photos", "rendered"}


# --------------------------------------------------------------------------- easy-vqa truth and templates

def test_easyvqa_truth_checked_against_dataset():
    t = easyvqa.truth("train", 0)
    assert (t.shape, t.color) == ("rectangle", "blue")
    x1, y1, x2, y2 = t.bbox
    assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
    with pytest.raises(ValueError, match="easy-vqa answers"):
        easyvqa.check_against_questions(replace(t, color="red"))


def test_easyvqa_templates_answer_from_truth(tmp_path):
    rng = np.random.default_rng(0)
    t = easyvqa.truth("test", 3)
    word = easyvqa.TEMPLATES["word_color"]
    assert word.render(t, word.params(t, rng))[-1] == t.color.capitalize()
    mc = easyvqa.TEMPLATES["mc_color"]
    p = mc.params(t, rng)
    assert p["options"]["ABCD".index(mc.render(t, p)[-1])] == t.color
    coord = easyvqa.TEMPLATES["coordinate_bbox"].render(t, {})
    assert json.loads(coord[-1]) == list(t.bbox)
    s = easyvqa.make_sample("k", "cot_match", t, easyvqa.TEMPLATES["cot_match"].params(t, rng), tmp_path, rng)
    assert s.wrong and s.wrong != s.last_answer
    assert (tmp_path / s.image).read_bytes() == Path(easyvqa.image_paths("test")[3]).read_bytes()


def test_truncate_answer():
    rng = np.random.default_rng(0)
    text = "The left panel shows a red circle and the right panel a blue square."
    cut = truncate_answer(text, rng)
    assert cut and text.startswith(cut) and len(cut) < len(text) and not cut.endswith(".")
    assert truncate_answer("Yes", rng) == ""


# --------------------------------------------------------------------------- larger easy-vqa pools

def test_easyvqa_pool_builder(tmp_path):
    rates = {"mismatch": 0.05, "wrong_answer": 0.05, "truncated": 0.02, "duplicate": 0.03}
    samples = build_easyvqa_pool(tmp_path / "a", n=200, rates=rates, seed=3, progress=False)
    assert len(samples) == 200
    rows = _labels(tmp_path / "a")
    counts = Counter(row["defect"] for row in rows)
    assert counts == {"none": 170, "mismatch": 10, "wrong_answer": 10, "truncated": 4, "duplicate": 6}
    pool = kit.load_pool(tmp_path / "a" / "pool.json")
    assert len(pool.table) == 200 and len(pool.report) == 0
    by_key = {s.key: s for s in samples}
    for s in samples:  # a mismatched easy-vqa image really contradicts the conversation
        if s.defect == "mismatch":
            origin = by_key[s.origin]
            other = next(x for x in samples if x.image == s.image and x.defect == "none")
            assert easyvqa.contradicts(origin, other.meta["truth"])
    build_easyvqa_pool(tmp_path / "b", n=200, rates=rates, seed=3, progress=False)
    assert (tmp_path / "a" / "pool.json").read_bytes() == (tmp_path / "b" / "pool.json").read_bytes()
    assert _image_hashes(tmp_path / "a") == _image_hashes(tmp_path / "b")


def test_easyvqa_pool_can_exclude_sample_pool_images(tmp_path):
    used = pool_easyvqa_ids(DATA / "pool.json", "train")
    assert len(used) >= 150
    build_easyvqa_pool(tmp_path, n=300, rates={}, seed=0, exclude_pool=DATA / "pool.json", progress=False)
    assert pool_easyvqa_ids(tmp_path / "pool.json", "train").isdisjoint(used)


def test_defect_rates_validated():
    assert defect_counts(1000, {"mismatch": 0.05}) == {"mismatch": 50, "wrong_answer": 0, "truncated": 0,
                                                       "duplicate": 0}
    with pytest.raises(ValueError, match="unknown defect"):
        defect_counts(100, {"blurry": 0.1})
    with pytest.raises(ValueError, match="too few clean"):
        defect_counts(100, {"mismatch": 0.3, "duplicate": 0.3})


def test_cli_easyvqa(tmp_path):
    from kit.cli import main

    assert main(["pools", "easyvqa", str(tmp_path), "--n", "40", "--mismatch", "0.1", "--wrong-answer", "0",
                 "--truncated", "0", "--duplicate", "0.1", "--seed", "1"]) == 0
    counts = Counter(row["defect"] for row in _labels(tmp_path))
    assert counts == {"none": 32, "mismatch": 4, "duplicate": 4}


def test_distill_pool_stays_apart_from_data_samples(tmp_path):
    """The distilled head's training pool: same templates and reference ratings, none of data_samples' images
    or rendered conversations, no photos, defects planted (half the mismatches within their source)."""
    from kit.pools.distill import build_distill_pool

    samples = build_distill_pool(tmp_path, n_easyvqa=57, rendered_seeds=(1,), defect_rate=0.04, progress=False)
    rows = _labels(tmp_path)
    assert [r["id"] for r in rows] == [r["id"] for r in _pool(tmp_path)]
    assert {s.source for s in samples} == {"easyvqa", "rendered"}
    ours = set(_image_hashes(tmp_path).values())
    assert not ours & set(_image_hashes(DATA).values())
    committed = {json.dumps(r["conversations"], sort_keys=True) for r in _pool(DATA) if r["source"] == "rendered"}
    assert not any(json.dumps(s.conversations, sort_keys=True) in committed for s in samples if s.source == "rendered")
    info = json.loads((tmp_path / "build_info.json").read_text())
    assert info["rendered_dropped_as_in_exclude_pool"] > 0 and info["exclude_pool"] == "data_samples/pool.json"
    # every easy-vqa template, with the ratings data_samples gives it
    data_rows = {r["template"]: r for r in _labels(DATA) if r["defect"] == "none"}
    clean = [r for r in rows if r["defect"] == "none"]
    assert {r["template"] for r in clean if r["template"].startswith("easyvqa/")} == \
        {f"easyvqa/{t}" for t in easyvqa.TEMPLATES}
    for r in clean:
        if r["template"] in data_rows:
            assert all(r[c] == data_rows[r["template"]][c] for c in CAPABILITIES), r["id"]
    defects = Counter(r["defect"] for r in rows)
    n = round(0.04 * len(clean))
    assert all(defects[k] == n for k in DEFECTS[1:])
    kinds = Counter(r["mismatch_kind"] for r in rows if r["defect"] == "mismatch")
    assert kinds["within_source"] == (n + 1) // 2 and kinds["cross_source"] == n - (n + 1) // 2
