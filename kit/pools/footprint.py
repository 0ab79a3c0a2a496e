"""What a pool holds that other data must stay apart from: its footprint, and the committed sample pool's one,
shipped inside the package.

The alignment data (:mod:`kit.finetune.align`) and the distilled head's training pool (:mod:`kit.pools.distill`)
keep the samples of ``data_samples/`` out. An installed kit has no ``data_samples/``, so the few facts they compare
on ship as package data (``kit/pools/sample_pool_footprint.json``)::

    fp = PoolFootprint.of_pool("data_samples/pool.json")   # read from a pool
    fp = footprint(SAMPLE_POOL)                             # the shipped one: the same facts, no checkout needed

The facts: the SHA-1 of ``pool.json``'s bytes (its first 12 hex digits key the aligned base's cache folder), the
easy-vqa image ids its image file names use, per split, the SHA-1 of each image file's bytes and of each
conversation (``json.dumps(conversations, sort_keys=True)``). ``tests/test_footprint.py`` checks that the shipped
file equals what ``data_samples/`` holds; after rebuilding the sample pool, rewrite it in the checkout with
``PoolFootprint.of_pool("data_samples/pool.json", SAMPLE_POOL_NAME).write("kit/pools/sample_pool_footprint.json")``.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kit.package import shipped

# ``exclude_pool=SAMPLE_POOL`` (the default of the alignment and the distillation pool): the committed sample
# pool, as its shipped footprint. Any other value is a pool.json path, a PoolFootprint, or None (exclude nothing).
SAMPLE_POOL = "sample-pool"
SAMPLE_POOL_NAME = "data_samples/pool.json"   # how build records and messages name the sample pool
SHIPPED_PARTS = ("pools", "sample_pool_footprint.json")
SPLITS = ("train", "test")


def conversation_hash(conversations) -> str:
    """SHA-1 of a conversation as the pools compare them (``json.dumps(..., sort_keys=True)``)."""
    return hashlib.sha1(json.dumps(conversations, sort_keys=True).encode("utf-8")).hexdigest()


def easyvqa_ids(records, split: str) -> set[int]:
    """easy-vqa image ids of ``split`` that pool records use (read from the image file names, e.g.
    ``easyvqa/train_01723.png``, ``easyvqa/pair_train_00106_03688.png``)."""
    from kit.pools.easyvqa import SOURCE

    pattern = re.compile(rf"{SOURCE}/(?:pair_)?{split}_(\d+)(?:_(\d+))?\.png$")
    ids: set[int] = set()
    for rec in records:
        m = pattern.search(str(rec.get("image", "")))
        if m:
            ids.update(int(g) for g in m.groups() if g is not None)
    return ids


@dataclass(frozen=True)
class PoolFootprint:
    """What a pool holds, as other data compares on it (see the module docstring)."""

    name: str
    pool_sha1: str
    easyvqa_ids: dict[str, frozenset[int]]
    image_sha1: frozenset[str]
    conversation_sha1: frozenset[str]

    @property
    def tag(self) -> str:
        """The short hash of ``pool.json`` that names this pool in a cache key (the aligned base's)."""
        return self.pool_sha1[:12]

    @classmethod
    def of_pool(cls, pool_path, name: str | None = None) -> "PoolFootprint":
        """Read the footprint of a ``pool.json`` (images under ``images/`` beside it; a missing image has no hash)."""
        path = Path(pool_path)
        if not path.is_file():
            raise FileNotFoundError(f"no pool file at {path} to stay apart from")
        raw = path.read_bytes()
        records = json.loads(raw.decode("utf-8"))
        images = path.parent / "images"
        image_sha1 = {hashlib.sha1((images / r["image"]).read_bytes()).hexdigest() for r in records
                      if (images / r["image"]).is_file()}
        return cls(name=name or str(pool_path), pool_sha1=hashlib.sha1(raw).hexdigest(),
                   easyvqa_ids={split: frozenset(easyvqa_ids(records, split)) for split in SPLITS},
                   image_sha1=frozenset(image_sha1),
                   conversation_sha1=frozenset(conversation_hash(r["conversations"]) for r in records))

    def to_json(self) -> dict:
        return {"name": self.name, "pool_sha1": self.pool_sha1,
                "easyvqa_ids": {split: sorted(ids) for split, ids in self.easyvqa_ids.items()},
                "image_sha1": sorted(self.image_sha1), "conversation_sha1": sorted(self.conversation_sha1)}

    @classmethod
    def from_json(cls, data: dict) -> "PoolFootprint":
        return cls(name=data["name"], pool_sha1=data["pool_sha1"],
                   easyvqa_ids={split: frozenset(ids) for split, ids in data["easyvqa_ids"].items()},
                   image_sha1=frozenset(data["image_sha1"]), conversation_sha1=frozenset(data["conversation_sha1"]))

    def write(self, path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=0) + "\n", encoding="utf-8")
        return path


@lru_cache(maxsize=1)
def sample_pool_footprint() -> PoolFootprint:
    """The committed sample pool's footprint, read from the package (no checkout needed)."""
    return PoolFootprint.from_json(json.loads(shipped(*SHIPPED_PARTS).read_text(encoding="utf-8")))


def footprint(exclude_pool) -> PoolFootprint | None:
    """The footprint an ``exclude_pool`` argument names: :data:`SAMPLE_POOL` (the shipped one), a
    :class:`PoolFootprint`, a ``pool.json`` path (read; a missing file is an error), or ``None`` (nothing)."""
    if exclude_pool is None:
        return None
    if isinstance(exclude_pool, PoolFootprint):
        return exclude_pool
    if isinstance(exclude_pool, str) and exclude_pool == SAMPLE_POOL:
        return sample_pool_footprint()
    return PoolFootprint.of_pool(exclude_pool)
