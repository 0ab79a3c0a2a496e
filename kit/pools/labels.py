"""The label vocabulary of the sample pools: capability keys, style names, defect kinds.

Capability keys and style names come from :mod:`kit.capabilities` (the names of mmSSR, in the
paper's order); this module adds the aliases and defect kinds the pool builders use.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from kit.capabilities import BUILTIN_CAPABILITIES, STYLES

# The 14 mmSSR capabilities (paper order; also the labels.csv columns) and the 9 styles, from the
# one registry in kit.capabilities (built-ins only: a user's extra capability is not a label column).
CAPABILITIES: tuple[str, ...] = tuple(c.key for c in BUILTIN_CAPABILITIES)

# Short aliases used in the template tables of this package (never written to labels.csv).
STYLE_ALIASES: dict[str, str] = {
    "mc": "multi-choice", "coord": "coordinate", "yn": "yes/no", "word": "word/short-phrase",
    "short": "short description", "detailed": "detailed description", "compare": "comparison",
    "cot": "chain-of-thought (step-by-step)", "spec": "specified style",
}

# Defect kinds planted in the pools; "none" marks a clean sample.
DEFECTS: tuple[str, ...] = ("none", "mismatch", "wrong_answer", "truncated", "duplicate")

# How a planted mismatch got its image: from another sample of the same source, or of another source.
MISMATCH_KINDS: tuple[str, ...] = ("within_source", "cross_source")

# Columns of labels.csv, in order.
LABEL_COLUMNS: tuple[str, ...] = ("id", "defect", "origin", "mismatch_kind", "template", "styles", *CAPABILITIES)

MAX_RATING = 5


def styles(spec: str | Iterable[str]) -> tuple[str, ...]:
    """Turn ``"yn cot"`` (aliases or full names) into full style names, in STYLES order."""
    items = spec.split() if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        name = STYLE_ALIASES.get(item, item)
        if name not in STYLES:
            raise ValueError(f"unknown style {item!r}; use one of {STYLES} or {sorted(STYLE_ALIASES)}")
        out.append(name)
    if not out:
        raise ValueError("a sample needs at least one style")
    return tuple(s for s in STYLES if s in out)


def ratings(values: Mapping[str, int] | None = None, **kw: int) -> dict[str, int]:
    """A full capability rating dict (all 14 keys, 0 where not given), checked to be in 0..5."""
    given = dict(values or {}, **kw)
    unknown = set(given) - set(CAPABILITIES)
    if unknown:
        raise ValueError(f"unknown capability keys {sorted(unknown)}; use {CAPABILITIES}")
    out = {c: int(given.get(c, 0)) for c in CAPABILITIES}
    bad = {c: v for c, v in out.items() if not 0 <= v <= MAX_RATING}
    if bad:
        raise ValueError(f"ratings must be integers 0..{MAX_RATING}, got {bad}")
    return out


def defect_ratings(origin: Mapping[str, int], kind: str) -> dict[str, int]:
    """Reference ratings of a defective sample made from a clean one with ``origin`` ratings.

    A duplicate is as useful (per sample) as its origin; a mismatched pair teaches nothing (0);
    a wrong or truncated answer keeps at most 1 where the origin was strong (>= 3), else 0.
    """
    if kind == "duplicate":
        return dict(origin)
    if kind == "mismatch":
        return {c: 0 for c in CAPABILITIES}
    if kind in ("wrong_answer", "truncated"):
        return {c: 1 if origin[c] >= 3 else 0 for c in CAPABILITIES}
    raise ValueError(f"unknown defect kind {kind!r}; use one of {DEFECTS[1:]}")
