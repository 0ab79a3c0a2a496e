"""The exact text input of the released mmSSR scorer and styler (mmSSR; see docs/methods.md).

The official inference script builds, for one sample and one query::

    <|im_start|>system
    You are a helpful assistant.<|im_end|>
    <|im_start|>user
    {conversation text}
    {query}<|im_end|>
    <|im_start|>assistant

where the conversation text is, per (human, gpt) pair of turns,
``"Question: " + human.strip('Question: ') + " Answer: " + gpt`` (pairs joined by ``"\\n"``), except
that a human turn starting with ``"<image>\\nHint:"`` or ``"Hint:"`` is kept as it is. ``strip`` is
Python's ``str.strip`` with a *character set*: it removes every leading and trailing character in
{Q, u, e, s, t, i, o, n, :, space}, so ``"What is the season"`` becomes ``"What is the sea"``. The
quirk is kept on purpose: the released checkpoints were trained and run on these strings.

Where the image placeholder goes. A LLaVA conversation starts with ``"<image>\\nWhat ..."``; ``"<"`` is
not in the strip set, so the placeholder survives and the official inference text reads
``"Question: <image>\\nWhat ..."`` (``image="inline"``, the default, byte for byte). LLaVA-NeXT's
training pre-processing instead moves a single placeholder to the front of the user turn
(``"<image>\\n" + rest.strip()``); ``image="front"`` reproduces that variant.

A second, token-level quirk of the official inference: its ``preprocess_qwen`` inserts extra newline ids
after every image token (:mod:`kit.mmssr.tokens` builds those ids). :func:`add_image_newline` gives the
text equivalent; the strings built here do not include it.

For key/value-cache reuse, :func:`prompt_parts` splits the chat string into a ``prefix`` (system turn,
user header, conversation text and the ``"\\n"`` after it: identical for the 15 queries of a sample)
and a ``suffix`` (the query, end of turn and the assistant header). ``prefix + suffix`` is always
exactly :func:`build_prompt`. Splitting right after a ``"\\n"`` keeps the Qwen2 BPE pre-tokenisation
the same on both sides, because no pre-token spans a newline followed by a letter.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

from kit.capabilities import STYLES, capability_keys, keyword

IMAGE_TOKEN = "<image>"
SYSTEM_PROMPT = "You are a helpful assistant."
QUESTION_STRIP_CHARS = "Question: "  # a character set for str.strip, not a prefix
TURN_SEP = "\n"      # between (question, answer) pairs, and between conversation and query
QA_SEP = " "         # between the question and "Answer: "
CAPABILITY_QUERY_TEMPLATE = ("On a scale of 0 to 5, how do you rate the helpfulness of the VQA instance in "
                             "training a Multimodal Large Language Model for {keyword}?")
STYLE_QUERY = "Interaction style candidates: [" + ", ".join(STYLES) + "]" + "\nStyles: "
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
ASSISTANT_HEADER = f"{IM_START}assistant\n"
IMAGE_MODES = ("inline", "front")


# ----------------------------------------------------------------------------- conversation text
def format_question(turn: str) -> str:
    """One human turn as the official scorer sees it (``strip`` character-set quirk kept)."""
    if turn.startswith(f"{IMAGE_TOKEN}\nHint:") or turn.startswith("Hint:"):
        return turn
    return "Question: " + turn.strip(QUESTION_STRIP_CHARS)


def _turn_value(turn, position: int) -> str:
    if not isinstance(turn, Mapping) or not isinstance(turn.get("value"), str):
        raise ValueError(f"turn {position} is not a {{'from': ..., 'value': str}} mapping: {turn!r:.80}")
    return turn["value"]


def format_conversation(conversations: Sequence[Mapping]) -> str:
    """The conversation text of the official prompt.

    Turns are taken by position as the official code does: even positions are questions, the turn
    after each is its answer (``"Question: q Answer: a"``); a trailing unanswered question gives
    ``"Question: q Answer: "``. Answers are kept exactly as they are (not stripped).
    """
    if isinstance(conversations, (str, bytes)) or not len(conversations):
        raise ValueError("conversations must be a non-empty list of {'from', 'value'} turns")
    pieces = []
    for i in range(0, len(conversations), 2):
        piece = format_question(_turn_value(conversations[i], i)) + QA_SEP + "Answer: "
        if i + 1 < len(conversations):
            piece += _turn_value(conversations[i + 1], i + 1)
        pieces.append(piece)
    return TURN_SEP.join(pieces)


def ensure_image_token(conversations: Sequence[Mapping]) -> list[dict]:
    """A copy of ``conversations`` whose first turn starts with ``"<image>\\n"`` if no turn has a placeholder.

    The official script silently ignores the image of a sample whose text has no ``<image>``; a
    backend that wants the image seen calls this first (LLaVA puts the placeholder there).
    """
    turns = [dict(t) for t in conversations]
    if turns and not any(IMAGE_TOKEN in str(t.get("value", "")) for t in turns):
        turns[0]["value"] = f"{IMAGE_TOKEN}\n" + turns[0]["value"]
    return turns


def add_image_newline(text: str) -> str:
    """Text equivalent of the official inference tokenizer: an extra ``"\\n"`` after every image token."""
    return text.replace(IMAGE_TOKEN, IMAGE_TOKEN + "\n")


# ----------------------------------------------------------------------------- queries
def capability_query(keyword_text: str) -> str:
    """The scorer query for a capability keyword (e.g. ``"optical character recognition"``)."""
    return CAPABILITY_QUERY_TEMPLATE.format(keyword=keyword_text)


def style_query() -> str:
    """The styler query (ends with ``"Styles: "``, trailing space included)."""
    return STYLE_QUERY


def queries(capabilities: Iterable[str] | None = None, style: bool = True) -> dict[str, str]:
    """``{capability key: query}`` (registry order by default) plus ``{"style": style query}``."""
    keys = capability_keys() if capabilities is None else list(capabilities)
    out = {key: capability_query(keyword(key)) for key in keys}
    if style:
        out["style"] = STYLE_QUERY
    return out


# ----------------------------------------------------------------------------- chat template
def chat_header(system: str = SYSTEM_PROMPT) -> str:
    """System turn and the user header of Qwen ChatML."""
    return f"{IM_START}system\n{system}{IM_END}\n{IM_START}user\n"


def chat_footer() -> str:
    """End of the user turn and the assistant header (generation starts after it)."""
    return f"{IM_END}\n{ASSISTANT_HEADER}"


def user_content(conversations: Sequence[Mapping], query: str, image: str = "inline") -> str:
    """The user turn: conversation text, ``"\\n"``, query (see the module doc for ``image``)."""
    prefix, suffix = _content_parts(format_conversation(conversations), query, image)
    return prefix + suffix


def _content_parts(conv_text: str, query: str, image: str) -> tuple[str, str]:
    if image not in IMAGE_MODES:
        raise ValueError(f"image must be one of {IMAGE_MODES}, not {image!r}")
    if image == "inline":
        return conv_text + TURN_SEP, query
    content = conv_text + TURN_SEP + query
    if content.count(IMAGE_TOKEN) != 1 or content.startswith(IMAGE_TOKEN):
        return conv_text + TURN_SEP, query   # LLaVA-NeXT leaves these alone
    # LLaVA-NeXT: content.replace(image, "").strip(), then "<image>\n" + it. The strip only touches
    # the two ends, so it is applied to the conversation's start and the query's end separately.
    body = conv_text.replace(IMAGE_TOKEN, "")
    if (body + TURN_SEP).strip() == "":      # the whole conversation is white space: strip eats it
        return IMAGE_TOKEN + "\n", query.replace(IMAGE_TOKEN, "").strip()
    return IMAGE_TOKEN + "\n" + body.lstrip() + TURN_SEP, query.replace(IMAGE_TOKEN, "").rstrip()


def prompt_parts(conversations: Sequence[Mapping], query: str, *, image: str = "inline",
                 system: str = SYSTEM_PROMPT) -> tuple[str, str]:
    """``(prefix, suffix)`` with ``prefix + suffix == build_prompt(...)``.

    ``prefix`` = system turn + user header + conversation text + ``"\\n"`` (shared by all queries of a
    sample); ``suffix`` = query + ``"<|im_end|>\\n<|im_start|>assistant\\n"``.
    """
    head, tail = _content_parts(format_conversation(conversations), query, image)
    return chat_header(system) + head, tail + chat_footer()


def build_prompt(conversations: Sequence[Mapping], query: str, *, image: str = "inline",
                 system: str = SYSTEM_PROMPT) -> str:
    """The full ChatML string the official scorer/styler sees for one sample and one query."""
    prefix, suffix = prompt_parts(conversations, query, image=image, system=system)
    return prefix + suffix


# ----------------------------------------------------------------------------- parsing
def parse_score(text) -> float:
    """``int(text)`` as the official parse (surrounding white space allowed), but only 0..5 count, else NaN.

    The official ``parse_score`` (``llava/select/utils.py``) keeps any integer: ``"6"`` stays 6 and ``"-1"``
    stays -1 there (docs/methods.md, "Where the kit differs").
    """
    if isinstance(text, bool) or text is None:
        return math.nan
    if isinstance(text, (int, float)):
        value = float(text)
        return value if value.is_integer() and 0 <= value <= 5 else math.nan
    try:
        value = int(str(text))
    except ValueError:
        return math.nan
    return float(value) if 0 <= value <= 5 else math.nan


def parse_styles(text) -> tuple[list[str], list[str]]:
    """Split a styler answer on commas -> ``(known styles, unknown names)``.

    Names are stripped and de-duplicated in order; empty pieces are ignored; a name not among the 9
    styles goes to ``unknown`` (reported, never kept silently).
    """
    if text is None:
        return [], []
    known, unknown = [], []
    for piece in str(text).split(","):
        name = piece.strip()
        if not name:
            continue
        bucket = known if name in STYLES else unknown
        if name not in bucket:
            bucket.append(name)
    return known, unknown
