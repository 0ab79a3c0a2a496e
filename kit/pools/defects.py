"""Plant defects of known kinds into a list of clean samples.

Every defect is made from one clean sample (its ``origin``; each origin is used once):

- ``mismatch``: the origin's conversation paired with the image of another clean sample that really
  contradicts it, either from the same source (``within_source``: an easy-vqa image whose shape and
  colour both differ and whose truth makes the answer wrong; a photo of another subject; a rendered
  image of another kind, e.g. a bar-chart question on a pie chart) or from another source
  (``cross_source``; never for an answer that may stay right on any image, such as a bare "No").
  ``plant_defects(..., within_source=k)`` makes the first ``k`` mismatches
  within their source; the kind is kept in ``meta["mismatch_kind"]`` (and labels.csv);
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


_BARE_YES_NO = re.compile(r"^\W*(yes|no)\W*$", re.I)


def answer_can_stay_right(origin: Sample) -> bool:
    """Whether ``origin``'s last answer may stay right on an unrelated image: a bare "Yes"/"No" (a "No,
    there is no circle" holds for most photos) or a photo question many photos answer alike."""
    from kit.pools import photos

    if _BARE_YES_NO.match(origin.last_answer):
        return True
    question = origin.conversations[0]["value"].split("\n", 1)[-1]
    return origin.source == photos.SOURCE and question in photos.PORTABLE_QUESTIONS


def contradicts_within_source(origin: Sample, other: Sample) -> bool:
    """Whether ``other``'s image (same source) really contradicts ``origin``'s conversation.

    easy-vqa: ``other`` shows one image (or a pair) like ``origin``, with another shape and another colour,
    and ``origin``'s answer is wrong for it (:func:`kit.pools.easyvqa.contradicts`). Photos: another
    subject. Rendered: another kind of image (``rendered.kind``). Outside easy-vqa, an answer that can
    stay right on an unrelated image (:func:`answer_can_stay_right`) never counts; neither does a source
    this module does not know.
    """
    from kit.pools import easyvqa, photos, rendered

    if other.source != origin.source or other.image == origin.image:
        return False
    if origin.source == easyvqa.SOURCE:
        own, theirs = origin.meta.get("truth"), other.meta.get("truth")
        if own is None or theirs is None or isinstance(own, tuple) != isinstance(theirs, tuple):
            return False
        return easyvqa.contradicts(origin, theirs)
    if answer_can_stay_right(origin):
        return False
    if origin.source == photos.SOURCE:
        return photos.subject(origin.meta["photo"]) != photos.subject(other.meta["photo"])
    if origin.source == rendered.SOURCE:
        return rendered.kind(origin) != rendered.kind(other)
    return False


def _mismatch_image(origin: Sample, clean: list[Sample], rng: np.random.Generator,
                    within_source: bool) -> str | None:
    """The image of a clean sample that contradicts ``origin`` (None if none is found): from another
    source (never for an answer that can stay right on an unrelated image, :func:`answer_can_stay_right`),
    or with ``within_source`` from the same source (:func:`contradicts_within_source`)."""
    if within_source:
        others = [s for s in clean if contradicts_within_source(origin, s)]
    elif answer_can_stay_right(origin):
        return None
    else:
        others = [s for s in clean if s.source != origin.source]
    if not others:
        return None
    return others[int(rng.integers(len(others)))].image


def make_defect(kind: str, origin: Sample, clean: list[Sample], rng: np.random.Generator,
                within_source: bool = False) -> Sample | None:
    """One defective sample made from ``origin`` (None if this origin cannot carry that defect).

    ``within_source`` (mismatches only): take the image from ``origin``'s own source.
    """
    key = f"{origin.key}#{kind}"
    common = dict(defect=kind, origin=origin.key, ratings=defect_ratings(origin.ratings, kind), wrong=None,
                  meta={"made_from": origin.key})
    if kind == "duplicate":
        return origin.derive(key, **common)
    if kind == "mismatch":
        image = _mismatch_image(origin, clean, rng, within_source)
        common["meta"]["mismatch_kind"] = "within_source" if within_source else "cross_source"
        return None if image is None else origin.derive(key, image=image, **common)
    conv = [dict(t) for t in origin.conversations]
    if kind == "wrong_answer":
        conv[-1]["value"] = origin.wrong
    elif kind == "truncated":
        conv[-1]["value"] = truncate_answer(origin.last_answer, rng)
    else:
        raise ValueError(f"unknown defect kind {kind!r}; use one of {KINDS}")
    return origin.derive(key, conversations=conv, **common)


def plant_defects(clean: list[Sample], counts: Mapping[str, int], rng: np.random.Generator,
                  within_source: int | None = None) -> list[Sample]:
    """Make ``counts[kind]`` defects of each kind from distinct clean origins, spread over sources.

    Origins are taken round-robin over the sources (in order of first appearance), each source's
    candidates in a seeded random order, so every source gets defects of every kind when it can.
    ``within_source``: how many of the mismatches (the first ones made, so they too go round the
    sources) take their image from their own source; the rest take it from another source. Default:
    all of them when the pool has one source, none otherwise.
    """
    unknown = set(counts) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown defect kinds {sorted(unknown)}; use {KINDS}")
    sources = list(dict.fromkeys(s.source for s in clean))
    n_mismatch = int(counts.get("mismatch", 0))
    if within_source is None:
        within_source = n_mismatch if len(sources) <= 1 else 0
    if not 0 <= int(within_source) <= max(n_mismatch, 0):
        raise ValueError(f"within_source must be between 0 and the {n_mismatch} mismatches, got {within_source}")
    if len(sources) <= 1 and within_source < n_mismatch:
        raise ValueError("a pool with one source can only have mismatches within that source")
    if any(s.defect != "none" for s in clean):
        raise ValueError("plant_defects expects clean samples only")
    if sum(counts.values()) > len(clean):
        raise ValueError(f"{sum(counts.values())} defects need as many distinct origins, "
                         f"but there are only {len(clean)} clean samples")
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
                defect = make_defect(kind, origin, clean, rng, within_source=kind == "mismatch" and made < within_source)
                if defect is None:
                    continue
                used.add(origin.key)
                out.append(defect)
                made += 1
                break
        if made < want:
            raise ValueError(f"could only plant {made} of {want} {kind} defects (not enough eligible samples)")
    return out
