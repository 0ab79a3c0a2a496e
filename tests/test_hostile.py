"""A corpus of broken pools: every case ends in a clear error or a per-sample status, never a crash or a silent drop.

For the loader (JSONL and JSON: accepted + rejected = input, each record with its own reason) and for every
scorer that reads text or images (one row per accepted sample, a status for what it could not score).
Cheap models only: the stand-in encoders (real, small), the shipped distilled head, the tiny random
LLaVA-OneVision of tests/support/tiny_llava.py.
"""
import math

import numpy as np
import pandas as pd
import pytest

import kit
from kit.data import REJECTION_REASONS
from kit.records import PoolFormatError
from tests.support.hostile_pools import ACCEPTED, MAX_PIXELS, write_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LOAD = {"text_only": True, "multi_image": True, "max_image_pixels": MAX_PIXELS}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def pool(corpus):
    return kit.load_pool(corpus.jsonl, **LOAD)


def _rejections(pool):
    return [(None if pd.isna(i) else i, r) for i, r in zip(pool.report["id"], pool.report["reason"])]


@pytest.mark.parametrize("kind", ["jsonl", "json"])
def test_the_loader_accounts_for_every_record(corpus, kind):
    path = corpus.jsonl if kind == "jsonl" else corpus.json
    pool = kit.load_pool(path, **LOAD)
    expected = corpus.rejected_jsonl if kind == "jsonl" else corpus.rejected_json
    assert pool.n_input == len(ACCEPTED) + len(expected) == len(pool.table) + len(pool.report)
    assert dict(pool.table["status"]) == ACCEPTED  # in file order, each with its status
    assert list(pool.table.index) == list(ACCEPTED)
    assert _rejections(pool) == expected
    assert set(pool.report["reason"]) <= set(REJECTION_REASONS)
    assert pool.report["detail"].map(lambda d: isinstance(d, str) and len(d) > 5).all()
    assert pool.table.at["two_images", "n_images"] == 2 and pool.table.at["text_only", "n_images"] == 0
    # the same pool, streamed in chunks of 3 accepted samples, gives the same table and report
    stream = kit.data.iter_pool(path, chunk_size=3, **LOAD)
    chunks = list(stream)
    assert pd.concat([c.table for c in chunks]).index.tolist() == list(ACCEPTED)
    assert _rejections(stream) == expected and stream.n_input == pool.n_input


def test_defaults_reject_text_only_and_multi_image_samples_with_their_own_reasons(corpus):
    pool = kit.load_pool(corpus.jsonl)
    by_id = dict(zip(pool.report["id"], pool.report["reason"]))
    assert by_id["text_only"] == "no_image_field" and by_id["two_images"] == "multiple_images"
    assert "huge" in pool.table.index  # under the default limit (about 89 MP) a 4.4 MP image is fine
    assert by_id["bomb"] == "image_too_large"
    # opting in to images elsewhere
    lax = kit.load_pool(corpus.jsonl, allow_symlinks_out=True, allow_absolute_paths=True, check_images=False)
    assert {"symlink_out", "absolute"} <= set(lax.table.index)
    assert "dotdot" not in lax.table.index  # '..' never leaves the folder


def test_whole_file_failures_are_clear_errors(corpus):
    for path, text in corpus.broken_files.items():
        with pytest.raises(PoolFormatError, match=text):
            kit.load_pool(path)
    empty = corpus.root / "broken" / "empty.jsonl"
    empty.write_bytes(b"")
    assert kit.load_pool(empty).n_input == 0  # an empty JSONL file is an empty pool
    with pytest.raises(FileNotFoundError, match="is a folder"):
        kit.load_pool(corpus.root)


def _check_rows(table, pool, name):
    assert list(table.index) == pool.ids, name  # one row per accepted sample, pool order
    if "status" in table.columns:
        assert table["status"].map(lambda s: isinstance(s, str) and s != "").all(), name


def test_the_rule_styler_and_sharded_scoring_keep_every_sample(pool, corpus, tmp_path):
    styles = kit.score(pool, "style", progress=False)
    _check_rows(styles, pool, "style")
    assert styles["styles"].map(len).gt(0).all()
    run = kit.scoring.score_shards(corpus.jsonl, "style", tmp_path / "style", shard_size=4, progress=False,
                                   loader=LOAD)
    assert run.n_samples == len(pool)
    pd.testing.assert_frame_equal(kit.load_scores(tmp_path / "style"), styles)
    info = kit.shards.read_manifest(tmp_path / "style")["pool"]
    assert info["n_input"] == pool.n_input and info["n_rejected"] == len(pool.report)


def test_the_image_text_scorer_gives_a_status_for_what_it_cannot_score(pool):
    table = kit.score(pool, "image_text", neighbours=3, progress=False)
    _check_rows(table, pool, "image_text")
    assert table.at["text_only", "status"].startswith("text-only sample")
    assert table.at["two_images", "status"].startswith("multi-image sample")
    assert math.isnan(table.at["text_only", "image_text"]) and math.isnan(table.at["two_images", "image_text"])
    ok = table["status"] == "ok"
    assert ok.sum() >= 7 and np.isfinite(table.loc[ok, "image_text"]).all()
    assert bool(table.at["long_answer", "truncated"])


def test_the_distilled_rich_scorer_gives_a_status_for_what_it_cannot_score(pool):
    table = kit.score(pool, "rich", progress=False)
    _check_rows(table, pool, "rich")
    caps = table.attrs["columns"]
    for sid in ("text_only", "two_images"):
        assert table.at[sid, "status"] != "ok" and table.loc[sid, [c for c in caps if c != "styles"]].isna().all()
    assert (table.drop(index=["text_only", "two_images"])["status"] == "ok").all()


@pytest.fixture(scope="module")
def tiny():
    from tests.support.tiny_llava import build_tiny_llava

    return build_tiny_llava(seed=0)


def test_the_loss_scorer_on_a_vlm_and_on_its_text(pool, tiny):
    model, processor = tiny
    vlm = kit.score(pool, "loss", model=model, processor=processor, max_length=256, progress=False)
    _check_rows(vlm, pool, "loss (vlm)")
    assert vlm.at["text_only", "status"].startswith("image_error: text-only sample")
    assert vlm.at["two_images", "status"].startswith("image_error: multi-image sample")
    assert vlm.at["empty_answer", "status"] == "no_answer_tokens"
    assert bool(vlm.at["long_answer", "truncated"]) and vlm.at["long_answer", "status"] == "ok"
    text = kit.score(pool, "loss", model=model, processor=processor, vision=False, max_length=256, progress=False)
    _check_rows(text, pool, "loss (text)")
    # the text path reads no image: text-only and multi-image samples are scored on their text
    assert text.at["text_only", "status"] == "ok" and text.at["two_images", "status"] == "ok"


def test_the_vlm_rich_scorer_gives_a_status_for_what_it_cannot_score(pool, tiny):
    model, processor = tiny
    table = kit.score(pool, "rich", backend="vlm", model=model, processor=processor, capabilities=["ocr"],
                      progress=False)
    _check_rows(table, pool, "rich (vlm)")
    assert table.at["text_only", "status"].startswith("image_error: text-only sample")
    assert math.isnan(table.at["two_images", "ocr"])
