"""Helpers on LLaVA conversations: ``[{"from": "human"|"gpt", "value": str}, ...]``."""
from __future__ import annotations

import re

IMAGE_TOKEN = "<image>"
_IMAGE_TOKEN_RE = re.compile(r"\s*<image>\s*")


def strip_image_token(text: str) -> str:
    """Remove ``<image>`` placeholders (and the white space around them)."""
    return _IMAGE_TOKEN_RE.sub(" ", text).strip()


def count_image_tokens(conversations, role: str | None = "human") -> int:
    """How many ``<image>`` placeholders the turns of ``role`` hold (``"human"``, ``"gpt"``, or ``None`` for all)."""
    return sum(t["value"].count(IMAGE_TOKEN) for t in conversations if role is None or t["from"] == role)


def insert_image_tokens(conversations, n: int = 1) -> list[dict]:
    """A copy of ``conversations`` with ``n`` ``"<image>\\n"`` placeholders put at the start of the first human turn.

    What LLaVA-style loaders do with a sample that has an image but no placeholder in its text.
    """
    turns = [dict(t) for t in conversations]
    if turns and n > 0:
        turns[0]["value"] = f"{IMAGE_TOKEN}\n" * n + turns[0]["value"]
    return turns


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
