"""One pool sample with its truth, and the writers for ``pool.json`` and ``labels.csv``."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from kit.pools.labels import CAPABILITIES, DEFECTS, LABEL_COLUMNS, STYLES

IMAGE_PREFIX = "<image>\n"


def conversation(*turns: str) -> list[dict[str, str]]:
    """``conversation(q1, a1, q2, a2, ...)`` as LLaVA turns, ``<image>\\n`` before the first question."""
    if not turns or len(turns) % 2:
        raise ValueError("give question/answer pairs")
    out = []
    for k, text in enumerate(turns):
        role = "human" if k % 2 == 0 else "gpt"
        out.append({"from": role, "value": (IMAGE_PREFIX + text) if k == 0 else text})
    return out


@dataclass
class Sample:
    """A pool sample before it gets its final id.

    ``key`` is a stable internal name (unique within a build); the final ``id`` is given when the
    pool is written. ``origin`` holds the key of the clean sample a defect was made from.
    ``wrong`` is a plausible but wrong replacement for the last answer (used to plant
    ``wrong_answer`` defects); ``meta`` keeps generator facts (e.g. easy-vqa truth). ``template`` names
    the question template whose reference ratings the sample carries (``easyvqa/<template>`` for
    easy-vqa; a hand-written or rendered question is its own template, so it defaults to ``key``); a
    defect keeps its origin's.
    """

    key: str
    image: str
    conversations: list[dict[str, str]]
    source: str
    styles: tuple[str, ...]
    ratings: dict[str, int]
    defect: str = "none"
    origin: str = ""
    wrong: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    template: str = ""

    def __post_init__(self):
        if not self.template:
            self.template = self.key
        if self.defect not in DEFECTS:
            raise ValueError(f"{self.key}: unknown defect {self.defect!r}")
        bad = [s for s in self.styles if s not in STYLES]
        if bad or not self.styles:
            raise ValueError(f"{self.key}: bad styles {self.styles!r}")
        if set(self.ratings) != set(CAPABILITIES):
            raise ValueError(f"{self.key}: ratings must cover exactly the 14 capabilities")
        conv = self.conversations
        if not conv or len(conv) % 2 or not conv[0]["value"].startswith(IMAGE_PREFIX):
            raise ValueError(f"{self.key}: conversation must alternate human/gpt and start with <image>")

    def derive(self, key: str, **changes) -> "Sample":
        """A copy (deep for conversations) under a new key."""
        conv = [dict(t) for t in changes.pop("conversations", self.conversations)]
        meta = dict(changes.pop("meta", self.meta))
        return replace(self, key=key, conversations=conv, meta=meta, id="", **changes)

    @property
    def last_answer(self) -> str:
        return self.conversations[-1]["value"]

    def record(self) -> dict[str, Any]:
        """The LLaVA record written to pool.json."""
        return {"id": self.id, "image": self.image, "conversations": self.conversations,
                "source": self.source}

    @property
    def mismatch_kind(self) -> str:
        """For a planted mismatch, whether its image came from the same source (``within_source``) or
        another one (``cross_source``); ``""`` otherwise."""
        return str(self.meta.get("mismatch_kind", "")) if self.defect == "mismatch" else ""

    def label_row(self, origin_id: str, extra_columns: tuple = ()) -> dict[str, Any]:
        extra = {c: self.meta.get(c, "") for c in extra_columns}
        return {"id": self.id, "defect": self.defect, "origin": origin_id, "mismatch_kind": self.mismatch_kind,
                "template": self.template, **extra, "styles": "|".join(self.styles), **self.ratings}


def pool_json(samples: Iterable[Sample]) -> str:
    """pool.json text: a JSON list, one record per sample, stable formatting."""
    return json.dumps([s.record() for s in samples], ensure_ascii=False, indent=1) + "\n"


def labels_csv(samples: list[Sample], extra_columns: tuple = ()) -> str:
    """labels.csv text; ``origin`` is written as the final id of the origin sample; ``extra_columns`` (values
    from each sample's ``meta``, e.g. the testbed's ``family``) come after ``template``."""
    by_key = {s.key: s for s in samples}
    buf = io.StringIO()
    k = LABEL_COLUMNS.index("template") + 1
    columns = [*LABEL_COLUMNS[:k], *extra_columns, *LABEL_COLUMNS[k:]]
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for s in samples:
        origin = by_key[s.origin].id if s.origin else ""
        writer.writerow(s.label_row(origin, tuple(extra_columns)))
    return buf.getvalue()


def write_pool(out_dir: Path, samples: list[Sample], extra_columns: tuple = ()) -> None:
    """Write pool.json and labels.csv (with ``extra_columns`` from the samples' ``meta``) into ``out_dir`` (the
    images are written by the builders)."""
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids) or not all(ids):
        raise ValueError("every sample needs a unique final id before writing")
    missing = [s.id for s in samples if not (out_dir / "images" / s.image).is_file()]
    if missing:
        raise FileNotFoundError(f"images missing for samples {missing[:5]}")
    (out_dir / "pool.json").write_text(pool_json(samples), encoding="utf-8")
    (out_dir / "labels.csv").write_text(labels_csv(samples, tuple(extra_columns)), encoding="utf-8")


def make_sample(key: str, image: str, turns, source: str, style_spec: str, rating: dict,
                wrong: str | None = None, **meta) -> Sample:
    """Shorthand used by the generators: style aliases, ``conversation`` turns, ``meta`` kwargs."""
    from kit.pools.labels import styles

    return Sample(key=key, image=image, conversations=conversation(*turns), source=source,
                  styles=styles(style_spec), ratings=dict(rating), wrong=wrong, meta=meta)
