"""The sample pool's footprint, shipped inside the package (kit.pools.footprint): it equals what data_samples/
holds, and the alignment and the distillation pool keep out exactly what they kept out when they read
data_samples/ from the checkout, under the same cache key."""
from __future__ import annotations

import hashlib
import importlib
import json
import re
from pathlib import Path

import pytest

from kit.pools.footprint import SAMPLE_POOL, SAMPLE_POOL_NAME, PoolFootprint, footprint, sample_pool_footprint

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data_samples"
align = importlib.import_module("kit.finetune.align")   # kit.finetune.align is also the name of a function


def _checkout_facts(pool_json: Path) -> dict:
    """What the alignment and the distillation pool read from data_samples/ before the footprint shipped (their
    code then, written out here): the pool file's hash, easy-vqa ids by file name, image and conversation hashes."""
    records = json.loads(pool_json.read_text(encoding="utf-8"))
    ids = {}
    for split in ("train", "test"):
        pattern = re.compile(rf"easyvqa/(?:pair_)?{split}_(\d+)(?:_(\d+))?\.png$")
        ids[split] = {int(g) for r in records for m in [pattern.search(r["image"])] if m
                      for g in m.groups() if g is not None}
    images = pool_json.parent / "images"
    return {"tag": hashlib.sha1(pool_json.read_bytes()).hexdigest()[:12], "easyvqa_ids": ids,
            "images": {hashlib.sha1((images / r["image"]).read_bytes()).hexdigest() for r in records
                       if (images / r["image"]).is_file()},
            "texts": {json.dumps(r["conversations"], sort_keys=True) for r in records}}


def test_the_shipped_footprint_is_what_data_samples_holds():
    shipped = sample_pool_footprint()
    assert shipped == PoolFootprint.of_pool(DATA / "pool.json", SAMPLE_POOL_NAME), (
        "kit/pools/sample_pool_footprint.json is stale: rewrite it with PoolFootprint.of_pool("
        "'data_samples/pool.json', SAMPLE_POOL_NAME).write('kit/pools/sample_pool_footprint.json')")
    facts = _checkout_facts(DATA / "pool.json")
    assert shipped.tag == facts["tag"] and shipped.name == "data_samples/pool.json"
    assert {k: set(v) for k, v in shipped.easyvqa_ids.items()} == facts["easyvqa_ids"]
    assert len(shipped.easyvqa_ids["train"]) >= 150
    assert shipped.image_sha1 == facts["images"]
    assert shipped.conversation_sha1 == {hashlib.sha1(t.encode()).hexdigest() for t in facts["texts"]}


def test_alignment_keeps_the_same_images_out_under_the_same_cache_key():
    """The default (the shipped footprint) and the pool file give identical alignment data and cache folders; the
    images left out are exactly the reserved slice's images that data_samples/ names."""
    from kit.pools import easyvqa

    shipped = align.caption_records()
    assert shipped == align.caption_records(exclude_pool=DATA / "pool.json")
    used = _checkout_facts(DATA / "pool.json")["easyvqa_ids"]["train"]
    kept = {int(Path(r["image"]).stem.split("_")[-1]) for r in shipped}
    assert kept == set(easyvqa.train_slice("reserved")) - used
    assert len(align.caption_records(exclude_pool=None)) > len(shipped)
    for preset in ("tiny", "small"):
        assert align.aligned_path(preset) == align.aligned_path(preset, exclude_pool=DATA / "pool.json")
        assert align.aligned_path(preset) != align.aligned_path(preset, exclude_pool=None)
    assert align._pool_tag(SAMPLE_POOL) == _checkout_facts(DATA / "pool.json")["tag"]


def test_distillation_pool_is_the_same_from_the_shipped_footprint_or_the_pool(tmp_path):
    from kit.pools.distill import build_distill_pool

    options = dict(n_easyvqa=24, rendered_seeds=(1,), defect_rate=0.04, progress=False)
    build_distill_pool(tmp_path / "shipped", **options)
    build_distill_pool(tmp_path / "file", exclude_pool=DATA / "pool.json", **options)
    for name in ("pool.json", "labels.csv"):
        assert (tmp_path / "shipped" / name).read_bytes() == (tmp_path / "file" / name).read_bytes(), name
    infos = [json.loads((tmp_path / d / "build_info.json").read_text()) for d in ("shipped", "file")]
    assert infos[0]["exclude_pool"] == SAMPLE_POOL_NAME
    assert infos[0]["rendered_dropped_as_in_exclude_pool"] == infos[1]["rendered_dropped_as_in_exclude_pool"] > 0


def test_exclude_pool_arguments(tmp_path):
    from kit.pools.distill import build_distill_pool

    assert footprint(None) is None and footprint(SAMPLE_POOL) is sample_pool_footprint()
    own = footprint(DATA / "pool.json")
    assert footprint(own) is own and own.tag == sample_pool_footprint().tag
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        footprint(tmp_path / "nowhere.json")
    with pytest.raises(ValueError, match="stays apart from a pool"):
        build_distill_pool(tmp_path / "d", exclude_pool=None, progress=False)


def test_another_pool_can_be_kept_out(tmp_path):
    """An explicit pool: its easy-vqa images are left out of the alignment data, and it names its own cache folder."""
    from kit.pools import easyvqa

    taken = easyvqa.train_slice("reserved")[:3]
    records = [{"id": f"s{i}", "image": f"easyvqa/train_{i:05d}.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat shape is it?"}, {"from": "gpt", "value": "circle"}]} for i in taken]
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps(records))
    fp = footprint(pool)
    assert fp.easyvqa_ids == {"train": frozenset(taken), "test": frozenset()} and not fp.image_sha1
    kept = {int(Path(r["image"]).stem.split("_")[-1]) for r in align.caption_records(exclude_pool=pool)}
    everything = {int(Path(r["image"]).stem.split("_")[-1]) for r in align.caption_records(exclude_pool=None)}
    assert kept == everything - set(taken)
    assert align.aligned_path("tiny", exclude_pool=pool) != align.aligned_path("tiny")
