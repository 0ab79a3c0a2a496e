"""The vision-language capabilities and interaction styles of mmSSR (mmSSR; see docs/methods.md).

Each capability has a short ``key`` (the score-table column), a ``display_name`` (for plots and
tables) and the ``keyword`` that goes into the official scorer prompt::

    On a scale of 0 to 5, how do you rate the helpfulness of the VQA instance in training a
    Multimodal Large Language Model for {keyword}?

The 14 built-in capabilities and the 9 styles are kept in the order of the paper (and of the
released ``mmssr-7b-scorer`` / ``mmssr-7b-styler``). Users add their own capabilities with
:func:`register_capability`; they come after the built-ins in :func:`capability_keys`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Capability:
    """One rated capability: score-table column ``key``, ``display_name`` and prompt ``keyword``."""

    key: str
    display_name: str
    keyword: str


# The 9 interaction styles (multi-label), in the order of the official styler prompt.
STYLES: tuple[str, ...] = (
    "multi-choice",
    "coordinate",
    "yes/no",
    "word/short-phrase",
    "short description",
    "detailed description",
    "comparison",
    "chain-of-thought (step-by-step)",
    "specified style",
)

BUILTIN_CAPABILITIES: tuple[Capability, ...] = (
    Capability("spatial", "Object spatial understanding", "object spatial understanding"),
    Capability("attribute", "Attribute identification", "attribute identification"),
    Capability("logical", "Logical deduction", "logical deduction"),
    Capability("scene", "Scene understanding", "scene understanding"),
    Capability("finegrained", "Fine-grained recognition", "fine-grained recognition"),
    Capability("language", "Language generation", "language generation"),
    Capability("incontext", "In-context learning", "in-context learning"),
    Capability("comparative", "Comparative analysis", "comparative analysis"),
    Capability("activity", "Activity recognition", "activity recognition"),
    Capability("causal", "Causal reasoning", "causal reasoning"),
    Capability("humanities", "Humanities", "humanities"),
    Capability("stem", "STEM knowledge", "stem knowledge"),
    Capability("data", "Data understanding", "data understanding"),
    Capability("ocr", "Optical character recognition", "optical character recognition"),
)

# Columns a score table already uses for other things: a capability may not shadow them.
RESERVED_KEYS = frozenset({"id", "styles", "source", "style", "status", "style_rule", "image"})
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")

_REGISTRY: dict[str, Capability] = {c.key: c for c in BUILTIN_CAPABILITIES}


def register_capability(key: str, display_name: str, keyword: str, *, overwrite: bool = False) -> Capability:
    """Add a user capability (``key`` becomes a score column; ``keyword`` goes into the prompt).

    ``key`` must be a lower-case identifier (``[a-z][a-z0-9_]*``) that is not a reserved column.
    Built-in capabilities cannot be replaced; a user one can with ``overwrite=True``.
    """
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ValueError(f"capability key must match [a-z][a-z0-9_]*, got {key!r}")
    if key in RESERVED_KEYS:
        raise ValueError(f"capability key {key!r} is reserved for a score-table column")
    if not isinstance(keyword, str) or not keyword.strip():
        raise ValueError(f"capability {key!r} needs a non-empty prompt keyword")
    if any(c.key == key for c in BUILTIN_CAPABILITIES):
        raise ValueError(f"{key!r} is a built-in capability and cannot be replaced")
    if key in _REGISTRY and not overwrite:
        raise ValueError(f"capability {key!r} is already registered; pass overwrite=True to replace it")
    cap = Capability(key, display_name or key, keyword.strip())
    _REGISTRY[key] = cap
    return cap


def unregister_capability(key: str) -> None:
    """Remove a user capability (built-ins stay)."""
    if any(c.key == key for c in BUILTIN_CAPABILITIES):
        raise ValueError(f"{key!r} is a built-in capability and cannot be removed")
    if key not in _REGISTRY:
        raise KeyError(f"unknown capability {key!r}")
    del _REGISTRY[key]


def capabilities() -> list[Capability]:
    """All registered capabilities: the 14 built-ins in paper order, then user ones in order added."""
    return list(_REGISTRY.values())


def capability_keys() -> list[str]:
    """The keys of :func:`capabilities`, in the same order."""
    return list(_REGISTRY)


def get_capability(key: str) -> Capability:
    try:
        return _REGISTRY[key]
    except KeyError:
        raise KeyError(f"unknown capability {key!r}; registered: {', '.join(_REGISTRY)}") from None


def keyword(key: str) -> str:
    """The prompt keyword of capability ``key``."""
    return get_capability(key).keyword


def display_name(key: str) -> str:
    return get_capability(key).display_name


EXPECTED_SUFFIX = "_expected"


def expected_column(key: str) -> str:
    """The score-table column of capability ``key``'s expected value (``"<key>_expected"``).

    The capability column ``key`` itself holds the integer rating 0-5 (the official scorer's parsed
    answer; the argmax digit in the VLM logits mode, the most probable rating of the distilled head);
    scorers that know the full rating distribution write its expected value beside it here.
    """
    return f"{key}{EXPECTED_SUFFIX}"


def style_names(value) -> list[str]:
    """A styles cell as a list of distinct names, in order.

    Accepts a list, tuple or array of names, or a ``"a|b"`` string (as in ``labels.csv``); every
    name is split on ``|`` and stripped; ``None`` / NaN (and NaN items) give nothing. Anything else
    raises ``TypeError``. Names are not checked against :data:`STYLES` (see :func:`check_styles`).
    """
    import numpy as np
    import pandas as pd

    def missing(v) -> bool:
        return v is None or (pd.api.types.is_scalar(v) and bool(pd.isna(v)))

    if isinstance(value, str):
        items = [value]
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    elif missing(value):
        items = []
    else:
        raise TypeError(f"styles must be a list of names (or 'a|b'), got {value!r:.80}")
    names: list[str] = []
    for item in items:
        if missing(item):
            continue
        if not isinstance(item, str):
            raise TypeError(f"styles must be a list of names (or 'a|b'), got {value!r:.80}")
        for piece in item.split("|"):
            piece = piece.strip()
            if piece and piece not in names:
                names.append(piece)
    return names


def check_styles(names) -> tuple[list[str], list[str]]:
    """Split ``names`` into (known styles in given order, unknown names), both de-duplicated."""
    known, unknown = [], []
    for name in names:
        bucket = known if name in STYLES else unknown
        if name not in bucket:
            bucket.append(name)
    return known, unknown
