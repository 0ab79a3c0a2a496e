"""A corpus of broken pools: every case ends in a clear error or a per-sample status, never a crash or a silent drop.

For the loader (JSONL and JSON: accepted + rejected = input, each record with its own reason) and for every
scorer that reads text or images (one row per accepted sample, a status for what it could not score).
Cheap models only: the stand-in encoders (real, small), the shipped distilled head, the tiny random
LLaVA-OneVision of tests/support/tiny_llava.py.
"""
import json
import math
import os

import numpy as np
import pandas as pd
import pytest

import kit
from kit.data import REJECTION_REASONS
from kit.records import PoolFormatError
import tests.support.hostile_pools as hp
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
    caps = kit.score_info(table).columns
    for sid in ("text_only", "two_images"):
        assert table.at[sid, "status"] != "ok" and table.loc[sid, [c for c in caps if c != "styles"]].isna().all()
    assert (table.drop(index=["text_only", "two_images"])["status"] == "ok").all()


@pytest.fixture(scope="module")
def tiny(tiny_llava):
    return tiny_llava


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


# --------------------------------------------------------------------------- issue 23: each hostile case, one promise

def _accounted(pool):
    assert pool.n_input == len(pool.table) + len(pool.report)
    return dict(zip(pool.report["id"], pool.report["reason"]))


def test_symlinked_dir_with_dotdot_cannot_escape_root(tmp_path):
    from PIL import Image

    (tmp_path / "outside" / "inner").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "outside" / "secret.png")
    path = hp.write_pool(tmp_path, [hp.record("escape", "d/../secret.png")])
    (tmp_path / "images" / "d").symlink_to(tmp_path / "outside" / "inner")
    # as text 'd/../secret.png' is images/secret.png; on disk, d leads outside first and '..' climbs from there
    assert _accounted(kit.load_pool(path)) == {"escape": "symlink_escapes_root"}
    assert _accounted(kit.load_pool(path, check_images=False)) == {"escape": "symlink_escapes_root"}


def test_the_path_an_export_names_is_the_file_that_was_checked(tmp_path):
    (tmp_path / "images" / "sub").mkdir(parents=True)
    path = hp.write_pool(tmp_path, [hp.record("via_link", "alias/../ok.png"), hp.record("plain", "sub/../ok.png")])
    (tmp_path / "images" / "alias").symlink_to(tmp_path / "images" / "sub")
    pool = kit.load_pool(path)
    assert _accounted(pool) == {} and pool.ids == ["via_link", "plain"]
    for rec, checked in zip(pool.records(), pool.table["image_path"]):
        # what a LLaVA loader opens, os.path.join(root, path), is the file the kit checked and will decode
        assert os.path.realpath(os.path.join(tmp_path / "images", rec["image"])) == checked
    assert checked == os.path.realpath(tmp_path / "images" / "ok.png")


def test_an_image_swapped_for_a_symlink_after_loading_is_not_decoded(tmp_path):
    from PIL import Image

    from kit.images import ImageChanged

    (tmp_path / "outside").mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "outside" / "secret.png")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "outside" / "b.png")
    path = hp.write_pool(tmp_path, [hp.record("a"), hp.record("b", "sub/b.png"), hp.record("kept")])
    (tmp_path / "images" / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "sub" / "b.png")
    pool = kit.load_pool(path)
    assert len(pool) == 3
    (tmp_path / "images" / "ok.png").rename(tmp_path / "images" / "kept.png")
    (tmp_path / "images" / "ok.png").symlink_to(tmp_path / "outside" / "secret.png")  # the file itself
    (tmp_path / "images" / "sub").rename(tmp_path / "images" / "sub_old")
    (tmp_path / "images" / "sub").symlink_to(tmp_path / "outside")                      # a folder on its way
    with pytest.raises(ImageChanged, match="symbolic link"):
        pool.image("a")
    with pytest.raises(ImageChanged, match="now opens"):
        pool.image("b")
    errors = {sid: err for sid, img, err in pool.iter_images()}
    assert errors["a"].startswith("ImageChanged") and errors["b"].startswith("ImageChanged")


def test_an_unencodable_id_costs_only_its_own_record(tmp_path):
    path = hp.write_pool(tmp_path, [hp.record("good_1"), hp.record("\ud800"), hp.record("good_2"),
                                    hp.record("src", source="\udcff")])
    pool = kit.load_pool(path)
    assert pool.ids == ["good_1", "good_2"]
    assert _accounted(pool) == {"\\ud800": "not_utf8", "src": "not_utf8"}  # the id stored escaped
    pool.report.to_csv(tmp_path / "report.csv", index=False)           # and the report writes
    assert "\\ud800" in (tmp_path / "report.csv").read_text(encoding="utf-8")


def test_a_record_whose_checking_fails_unexpectedly_is_reported_not_fatal(tmp_path, monkeypatch):
    real = kit.data._source_of

    def fragile(rec, images):
        if rec["id"] == "boom":
            raise RuntimeError("a bug in a check")
        return real(rec, images)

    monkeypatch.setattr(kit.data, "_source_of", fragile)
    pool = kit.load_pool(hp.write_pool(tmp_path, [hp.record("a"), hp.record("boom"), hp.record("b")]))
    assert pool.ids == ["a", "b"] and _accounted(pool) == {"boom": "record_error"}
    assert "a bug in a check" in pool.report.at[0, "detail"]


def test_broken_image_data_is_rejected_because_validation_decodes(tmp_path):
    img = tmp_path / "images"
    img.mkdir()
    hp.truncated_jpeg(img / "cut.jpg")
    hp.png_with_broken_data(img / "broken.png")
    hp.truncated_ppm(img / "cut.ppm")
    path = hp.write_pool(tmp_path, [hp.record("jpeg", "cut.jpg"), hp.record("png", "broken.png"),
                                    hp.record("ppm", "cut.ppm"), hp.record("fine")])
    pool = kit.load_pool(path)
    assert pool.ids == ["fine"]
    assert _accounted(pool) == {"jpeg": "unreadable_image", "png": "unreadable_image", "ppm": "unreadable_image"}
    # the documented fast switch reads headers only: these pass it, and fail when a scorer decodes them
    fast = kit.load_pool(path, fast_image_check=True)
    assert _accounted(fast) == {} and len(fast) == 4
    assert {sid for sid, _, err in fast.iter_images() if err} == {"jpeg", "png", "ppm"}


def test_only_allowed_image_formats_are_opened(tmp_path):
    from kit.images import ImageFormatNotAllowed, decode_image

    img = tmp_path / "images"
    img.mkdir()
    hp.eps_named_png(img / "eps.png")
    (img / "doc.png").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    formats = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif", "PPM": "ppm"}
    for fmt, ext in formats.items():
        hp._noise((8, 8)).save(img / f"x.{ext}", format=fmt)
    records = [hp.record(fmt, f"x.{ext}") for fmt, ext in formats.items()]
    pool = kit.load_pool(hp.write_pool(tmp_path, records + [hp.record("eps", "eps.png"), hp.record("pdf", "doc.png")]))
    assert pool.ids == list(formats)
    assert _accounted(pool) == {"eps": "image_format_not_allowed", "pdf": "image_format_not_allowed"}
    with pytest.raises(ImageFormatNotAllowed, match="EPS"):
        decode_image(img / "eps.png")  # never handed to Ghostscript, whoever asks


@pytest.mark.parametrize("kind,name", [("png16", "g.png"), ("tiff32", "g.tif"), ("float", "g.tif")])
def test_16_bit_and_float_images_keep_their_gradient(tmp_path, kind, name):
    (tmp_path / "images").mkdir()
    hp.gradient(kind, tmp_path / "images" / name)
    pool = kit.load_pool(hp.write_pool(tmp_path, [hp.record("g", name)]))
    assert _accounted(pool) == {} and pool.table.at["g", "status"].startswith("converted from")
    row = np.asarray(pool.image("g"))[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255 and (np.diff(row) >= 0).all()  # a gradient, not two values
    assert len(np.unique(row)) >= 250


def test_paths_the_os_cannot_open_are_rejected(tmp_path):
    (tmp_path / "images" / "sub").mkdir(parents=True)
    path = hp.write_pool(tmp_path, [hp.record("slash", "ok.png/"), hp.record("nodir", "nodir/../ok.png"),
                                    hp.record("folder", "sub"), hp.record("fine", "sub/../ok.png")])
    pool = kit.load_pool(path)
    assert pool.ids == ["fine"]
    assert _accounted(pool) == {"slash": "unopenable_path", "nodir": "unopenable_path", "folder": "missing_image"}


def test_jsonl_records_are_counted_as_records_with_any_line_ending(tmp_path):
    lines = [json.dumps(hp.record(f"r{i}")) for i in range(3)]
    hp.write_pool(tmp_path, [])
    for ending in ("\r", "\r\n", "\n"):
        path = tmp_path / "pool.jsonl"
        path.write_bytes(ending.join(lines).encode() + ending.encode())
        pool = kit.load_pool(path)
        assert pool.ids == ["r0", "r1", "r2"] and _accounted(pool) == {}, repr(ending)
    # two records on one line are two records, and text after them one more (malformed) record
    path.write_bytes((lines[0] + lines[1] + ' {"id": \n' + lines[2] + "\n").encode())
    pool = kit.load_pool(path)
    assert pool.n_input == 4 and pool.ids == ["r0", "r1", "r2"]
    assert pool.report[["line", "reason"]].values.tolist() == [[1, "malformed_json"]]


def test_a_missing_image_token_is_inserted_and_said_in_the_notes(tmp_path):
    path = hp.write_pool(tmp_path, [hp.record("none", q="What is shown?"), hp.record("one")])
    pool = kit.load_pool(path)
    assert _accounted(pool) == {} and pool.ids == ["none", "one"]
    assert pool.table.at["none", "conversations"][0]["value"] == "<image>\nWhat is shown?"
    assert pool.records(["none"])[0]["conversations"][0]["value"] == "<image>\nWhat is shown?"  # exported so
    assert len(pool.notes) == 1 and "inserted in 1 sample that had none" in pool.notes[0] and "'none'" in pool.notes[0]
    assert "inserted" in pool.summary()
    stream = kit.data.iter_pool(path)
    list(stream)
    assert stream.notes == pool.notes


def test_misplaced_or_extra_image_tokens_are_rejected(tmp_path):
    path = hp.write_pool(tmp_path, [
        hp.record("twice", q="<image>\n<image>\nWhat is shown?"),
        hp.record("in_answer", a="It shows <image>."),
        {"id": "text_token", "conversations": [{"from": "human", "value": "<image>\nHi?"},
                                               {"from": "gpt", "value": "Hi."}]},
        hp.record("two_for_two", image=["ok.png", "ok.png"], q="<image>\n<image>\nSame?"),
    ])
    pool = kit.load_pool(path, text_only=True, multi_image=True)
    assert pool.ids == ["two_for_two"]
    assert _accounted(pool) == {"twice": "image_token_count", "in_answer": "image_token_in_answer",
                                "text_token": "image_token_count"}
