"""The pool loader: every rejection kind, strict mode, formats and lazy image decoding."""
import json
import re
import shutil

import pandas as pd
import pytest

import kit
from kit.data import REJECTION_REASONS

EXPECTED_REJECTIONS = {
    # id (None where the record has none) -> reason
    "bad_json": "malformed_json",
    "ok_1": "duplicate_id",
    "no_image": "no_image_field",
    "missing_image": "missing_image",
    "garbage_image": "unreadable_image",
    "truncated_image": "unreadable_image",
    "empty_conv": "empty_conversation",
    "no_conv": "empty_conversation",
    "bad_turn": "malformed_conversation",
    "two_humans": "not_alternating",
    "ends_on_human": "not_alternating",
    "bad_bytes": "not_utf8",
    "two_images": "multiple_images",
    "image_number": "invalid_image_field",
    "dotdot": "path_escapes_root",
    "absolute": "absolute_path",
    "symlink_out": "symlink_escapes_root",
    "bomb": "image_too_large",
    "trailing_slash": "unopenable_path",
    "eps_image": "image_format_not_allowed",
    "token_in_answer": "image_token_in_answer",
    "two_tokens": "image_token_count",
}
# The loader's safety net for a bug in a check: no fixture can plant it (tests/test_hostile.py provokes it).
UNPLANTABLE = {"record_error"}


@pytest.mark.parametrize("name", ["pool.json", "pool.jsonl"])
def test_every_rejection_kind_is_reported(corrupt_pool_dir, name):
    pool = kit.load_pool(corrupt_pool_dir / name)
    assert pool.n_input == 29
    assert pool.n_input == len(pool.table) + len(pool.report)
    assert list(pool.table.index) == ["ok_1", "ok_no_source", "ok_gray", "ok_rgba"]
    # every reason the loader knows is exercised by the fixture
    assert set(pool.report["reason"]) == set(REJECTION_REASONS) - UNPLANTABLE
    by_id = pool.report.dropna(subset=["id"]).set_index("id")["reason"]
    for sid, reason in EXPECTED_REJECTIONS.items():
        if sid == "bad_json":
            continue  # a malformed record has no readable id: it is reported by line
        assert by_id[sid] == reason, sid
    no_id = pool.report[pool.report["id"].isna()]
    assert sorted(no_id["reason"]) == ["invalid_id", "malformed_json", "missing_id", "not_an_object"]
    assert pool.report["line"].is_monotonic_increasing
    assert "25 rejected" in pool.summary()


def test_malformed_json_reports_its_line(corrupt_pool_dir):
    pool = kit.load_pool(corrupt_pool_dir / "pool.json")
    row = pool.report[pool.report["reason"] == "malformed_json"].iloc[0]
    text = (corrupt_pool_dir / "pool.json").read_text(errors="replace").splitlines()
    assert '"bad_json"' in text[row["line"] - 1]
    pool = kit.load_pool(corrupt_pool_dir / "pool.jsonl")
    row = pool.report[pool.report["reason"] == "malformed_json"].iloc[0]
    text = (corrupt_pool_dir / "pool.jsonl").read_text(errors="replace").splitlines()
    assert '"bad_json"' in text[row["line"] - 1]


def test_accepted_table_columns(corrupt_pool_dir):
    pool = kit.load_pool(corrupt_pool_dir / "pool.json")
    t = pool.table
    assert t.loc["ok_1", "source"] == "fixture"
    assert t.loc["ok_no_source", "source"] == "sub"  # first folder of the image path
    assert t.loc["ok_no_source", "n_turns"] == 4
    assert t.loc["ok_1", "text_chars"] == len("<image>\nWhat colour is the square?") + len("Red.")
    assert t.loc["ok_gray", "status"] == "converted from L"
    assert t.loc["ok_rgba", "status"] == "converted from RGBA"
    assert t.loc["ok_1", "status"] == "ok"
    assert pool.records(["ok_1"])[0]["conversations"][1]["value"] == "Red."


def test_non_rgb_images_decode_as_rgb(corrupt_pool_dir):
    pool = kit.load_pool(corrupt_pool_dir / "pool.json")
    got = {sid: (img, err) for sid, img, err in pool.iter_images()}
    assert set(got) == set(pool.table.index)
    for sid, (img, err) in got.items():
        assert err is None and img.mode == "RGB" and img.size == (16, 16), sid
    assert pool.image("ok_gray").getpixel((0, 0)) == (128, 128, 128)


def test_decode_failure_after_loading_is_reported_not_raised(corrupt_pool_dir, tmp_path):
    shutil.copytree(corrupt_pool_dir, tmp_path / "p")
    pool = kit.load_pool(tmp_path / "p" / "pool.json")
    (tmp_path / "p" / "images" / "red.png").write_bytes(b"broken later")
    got = {sid: err for sid, img, err in pool.iter_images()}
    assert got["ok_1"] is not None and got["ok_gray"] is None


@pytest.mark.parametrize("name", ["pool.json", "pool.jsonl"])
def test_strict_mode_raises_naming_the_sample(corrupt_pool_dir, name, tmp_path):
    with pytest.raises(kit.PoolValidationError) as info:
        kit.load_pool(corrupt_pool_dir / name, strict=True)
    assert info.value.reason == "malformed_json"
    # without the malformed records, the first problem is the missing id, then the duplicate
    records = json.loads((corrupt_pool_dir / "pool.jsonl").read_text(errors="replace").splitlines()[0])
    good = tmp_path / "pool.jsonl"
    good.write_text(json.dumps(records) + "\n" + json.dumps({**records, "conversations": []}) + "\n")
    with pytest.raises(kit.PoolValidationError, match="ok_1") as info:
        kit.load_pool(good, images=corrupt_pool_dir / "images", strict=True)
    assert info.value.reason == "duplicate_id"


def test_parquet_pool_and_image_root(corrupt_pool_dir, tmp_path):
    pool = kit.load_pool(corrupt_pool_dir / "pool.json")
    pd.DataFrame.from_records(pool.records()).to_parquet(tmp_path / "pool.parquet")
    again = kit.load_pool(tmp_path / "pool.parquet", images=corrupt_pool_dir / "images")
    assert list(again.table.index) == list(pool.table.index)
    assert again.table.loc["ok_no_source", "conversations"] == pool.table.loc["ok_no_source", "conversations"]
    # without the image root, every image is missing, and still nothing is dropped
    lost = kit.load_pool(tmp_path / "pool.parquet")
    assert len(lost.table) == 0 and set(lost.report["reason"]) == {"missing_image"}
    assert lost.n_input == len(pool.table)


def test_unreadable_pool_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        kit.load_pool(tmp_path / "nope.json")
    (tmp_path / "pool.csv").write_text("id\n1\n")
    with pytest.raises(kit.PoolFormatError, match="unknown pool format"):
        kit.load_pool(tmp_path / "pool.csv")
    (tmp_path / "obj.json").write_text('{"id": 1}')
    with pytest.raises(kit.PoolFormatError, match="JSON array"):
        kit.load_pool(tmp_path / "obj.json")
    (tmp_path / "open.json").write_text('[{"id": "a"},\n {"id": "b"')
    with pytest.raises(kit.PoolFormatError, match="line 2"):
        kit.load_pool(tmp_path / "open.json")


def test_subset_keeps_order(corrupt_pool_dir):
    pool = kit.load_pool(corrupt_pool_dir / "pool.json")
    sub = pool.subset(["ok_gray", "ok_1"])
    assert sub.ids == ["ok_gray", "ok_1"]
    with pytest.raises(KeyError):
        pool.subset(["nope"])


def test_the_docs_list_the_rejection_reasons_of_the_code(repo_root):
    """docs/scale.md's hostile-input table (the README links to it) names every reason once, and no other."""
    text = (repo_root / "docs" / "scale.md").read_text(encoding="utf-8")
    section = text[text.index("## Hostile input"):]
    section = section[:section.index("\n## ", 1)]
    table = section[section.index("| reason | when |"):].split("\n\n")[0].splitlines()[2:]
    listed = [name for row in table for name in re.findall(r"`([a-z0-9_]+)`", row.split("|")[1])]
    assert sorted(listed) == sorted(REJECTION_REASONS)
