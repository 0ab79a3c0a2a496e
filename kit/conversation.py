"""Helpers on LLaVA conversations: ``[{"from": "human"|"gpt", "value": str}, ...]``."""
from __future__ import annotations

import re

IMAGE_TOKEN = "<image>"
_IMAGE_TOKEN_RE = re.compile(r"\s*<image>\s*")


def strip_image_token(text: str) -> str:
    """Remove ``<image>`` placeholders (and the white space around them)."""
    return _IMAGE_TOKEN_RE.sub(" ", text).strip()


def questions(conversations) -> list[str]:
    return [strip_image_token(t["value"]) for t in conversations if t["from"] == "human"]


def answers(conversations) -> list[str]:
    return [t["value"].strip() for t in conversations if t["from"] == "gpt"]


def conversation_text(conversations, part: str = "all", sep: str = "\n") -> str:
    """The text of a conversation without image placeholders.

    ``part`` is ``"all"`` (questions and answers in order), ``"questions"`` or ``"answers"``.
    """
    if part == "all":
        return sep.join(strip_image_token(t["value"]) for t in conversations)
    if part == "questions":
        return sep.join(questions(conversations))
    if part == "answers":
        return sep.join(answers(conversations))
    raise ValueError(f"part must be 'all', 'questions' or 'answers', not {part!r}")


def common_prefix_length(a, b) -> int:
    """How many leading items two sequences share (characters of two strings, or two token-id lists)."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
