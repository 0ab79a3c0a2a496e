"""Plant defects of known kinds into a list of clean samples.

Every defect is made from one clean sample (its ``origin``; each origin is used once):

- ``mismatch``: the origin's conversation paired with the image of a very different sample (from
  another source when the pool has several, else an easy-vqa image whose truth contradicts the answer);
- ``wrong_answer``: the last answer replaced by the origin's plausible wrong answer;
- ``truncated``: the last answer cut mid-sentence (answers of 6+ words) or emptied (shorter ones);
- ``duplicate``: an exact copy of the origin's image and conversation under a new id.
"""
from __future__ import annotations

import re
from typing import Mapping

import numpy as np

from kit.pools.labels import DEFECTS, defect_ratings
from kit.pools.sample import Sample

KINDS = DEFECTS[1:]


def truncate_answer(text: str, rng: np.random.Generator) -> str:
    """Cut ``text`` after 30-70% of its words (trailing punctuation removed), or return "" if short."""
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    if len(spans) < 6:
        return ""
    k = int(rng.integers(max(2, round(0.3 * len(spans))), max(3, round(0.7 * len(spans)))))
    cut = text[:spans[k - 1][1]].rstrip(" ,.;:!?\n")
    return cut if cut and cut != text else ""


def _eligible(kind: str, s: Sample) -> bool:
    if kind == "wrong_answer":
        return s.wrong is not None and s.wrong != s.last_answer
    return True


def _mismatch_image(origin: Sample, clean: list[Sample], rng: np.random.Generator) -> str | None:
    """The image of a clean sample that is very different from ``origin`` (None if none is found)."""
    from kit.pools import easyvqa

    others = [s for s in clean if s.source != origin.source]
    if others:
        return others[int(rng.integers(len(others)))].image
    for _ in range(500):
        cand = clean[int(rng.integers(len(clean)))]
        if cand.image == origin.image or "truth" not in cand.meta:
            continue
        if easyvqa.contradicts(origin, cand.meta["truth"]):
            return cand.image
    return None


def make_defect(kind: str, origin: Sample, clean: list[Sample], rng: np.random.Generator) -> Sample | None:
    """One defective sample made from ``origin`` (None if this origin cannot carry that defect)."""
    key = f"{origin.key}#{kind}"
    common = dict(defect=kind, origin=origin.key, ratings=defect_ratings(origin.ratings, kind), wrong=None,
                  meta={"made_from": origin.key})
    if kind == "duplicate":
        return origin.derive(key, **common)
    if kind == "mismatch":
        image = _mismatch_image(origin, clean, rng)
        return None if image is None else origin.derive(key, image=image, **common)
    conv = [dict(t) for t in origin.conversations]
    if kind == "wrong_answer":
        conv[-1]["value"] = origin.wrong
    elif kind == "truncated":
        conv[-1]["value"] = truncate_answer(origin.last_answer, rng)
    else:
        raise ValueError(f"unknown defect kind {kind!r}; use one of {KINDS}")
    return origin.derive(key, conversations=conv, **common)


def plant_defects(clean: list[Sample], counts: Mapping[str, int], rng: np.random.Generator) -> list[Sample]:
    """Make ``counts[kind]`` defects of each kind from distinct clean origins, spread over sources.

    Origins are taken round-robin over the sources (in order of first appearance), each source's
    candidates in a seeded random order, so every source gets defects of every kind when it can.
    """
    unknown = set(counts) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown defect kinds {sorted(unknown)}; use {KINDS}")
    if any(s.defect != "none" for s in clean):
        raise ValueError("plant_defects expects clean samples only")
    if sum(counts.values()) > len(clean):
        raise ValueError(f"{sum(counts.values())} defects need as many distinct origins, "
                         f"but there are only {len(clean)} clean samples")
    sources = list(dict.fromkeys(s.source for s in clean))
    used: set[str] = set()
    out: list[Sample] = []
    for j, kind in enumerate(KINDS):
        want = int(counts.get(kind, 0))
        if want <= 0:
            continue
        queues = {src: [clean[i] for i in rng.permutation(len(clean)) if clean[i].source == src]
                  for src in sources}
        made = 0
        turn = j  # start each kind on a different source
        while made < want and any(queues.values()):
            src = sources[turn % len(sources)]
            turn += 1
            queue = queues[src]
            while queue:
                origin = queue.pop(0)
                if origin.key in used or not _eligible(kind, origin):
                    continue
                defect = make_defect(kind, origin, clean, rng)
                if defect is None:
                    continue
                used.add(origin.key)
                out.append(defect)
                made += 1
                break
        if made < want:
            raise ValueError(f"could only plant {made} of {want} {kind} defects (not enough eligible samples)")
    return out
