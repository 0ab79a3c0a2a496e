"""Input token ids of the mmSSR scorer/styler, built the way the official inference builds them.

The official inference (``llava/eval/model_ss.py`` of github.com/lyumengyao/mmssr) does not tokenise the chat
string as a whole. Its ``preprocess_qwen`` builds the ids piece by piece::

    [<|im_start|>] + tok("system") + NL + tok(system message) + [<|im_end|>] + NL
    + tok("<|im_start|>user") + NL
    + for each chunk of the user text split at "<image>":  tok(chunk), then IMAGE + NL between chunks
    + [<|im_end|>] + NL
    + tok("<|im_start|>assistant") + NL

with ``NL = tok("\\n")`` and ``IMAGE`` = ``IMAGE_TOKEN_INDEX`` (-200), which the model replaces by the image
features. Two consequences:

- the newline ids ``NL`` are inserted after every image, *in addition* to the ``"\\n"`` that starts the
  next chunk (``"Question: <image>\\nWhat ..."``): the image is followed by two separate ``"\\n"`` tokens.
  Tokenising ``"<image>\\nWhat"`` whole has one newline less; tokenising ``"<image>\\n\\nWhat"`` whole
  gives the merged ``"\\n\\n"`` token with Qwen2's tokenizer (its pre-tokenizer keeps a run of newlines
  together), and two ``"\\n"`` tokens with SmolLM2's (whose pre-tokenizer splits the run before a letter);
- each chunk is tokenised on its own, so no token spans an image placeholder.

The script imports ``tokenizer_image_token`` (``llava/mm_utils.py``) but does not call it: that function
splits at ``<image>`` and inserts the image id *without* the extra newline (and keeps one BOS), which gives
the same ids as tokenising the whole string for these tokenizers. The kit follows the code path that runs,
``preprocess_qwen`` (:func:`official_input_ids`); :func:`text_input_ids` is the whole-string alternative
(``VLMRichScorer(tokens="text")``). Differences of detail, on purpose: ``<|im_start|>``/``<|im_end|>`` are
looked up by name (the official ``tokenizer.additional_special_tokens_ids`` holds them only for Qwen2's
tokenizer, and no longer exists in transformers 5), and chunks are tokenised without special tokens
(Qwen2's tokenizer adds none anyway; one that adds a BOS would get one per chunk officially).
"""
from __future__ import annotations

from typing import Sequence

from kit.mmssr.prompts import IM_END, IM_START, IMAGE_TOKEN, SYSTEM_PROMPT

IMAGE_TOKEN_INDEX = -200   # the official placeholder id (llava/constants.py); replaced by the image features
TOKEN_MODES = ("official", "text")


def _special_id(tokenizer, token: str) -> int:
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is None or tid == getattr(tokenizer, "unk_token_id", None):
        raise ValueError(f"the tokenizer has no {token!r} token (the ChatML template of the mmSSR scorer needs it)")
    return int(tid)


def official_input_ids(tokenizer, user_text: str, system: str = SYSTEM_PROMPT) -> list[int]:
    """The ids ``preprocess_qwen`` builds for one user turn and an open assistant turn (see the module doc).

    ``user_text`` is the user turn (conversation text, ``"\\n"``, query); each ``<image>`` in it becomes
    :data:`IMAGE_TOKEN_INDEX` followed by the newline ids.
    """
    return official_input_ids_batch(tokenizer, [user_text], system)[0]


def official_input_ids_batch(tokenizer, user_texts: Sequence[str], system: str = SYSTEM_PROMPT) -> list[list[int]]:
    """:func:`official_input_ids` of several user turns, their chunks tokenised in one batched call."""
    im_start, im_end = _special_id(tokenizer, IM_START), _special_id(tokenizer, IM_END)
    fixed = ["\n", "system", system, f"{IM_START}user", f"{IM_START}assistant"]
    chunks = [text.split(IMAGE_TOKEN) for text in user_texts]
    flat = fixed + [c for parts in chunks for c in parts]
    encoded = iter(tokenizer(flat, add_special_tokens=False)["input_ids"])
    nl, sys_word, sys_text, user, assistant = (list(next(encoded)) for _ in fixed)
    head = [im_start] + sys_word + nl + sys_text + [im_end] + nl + user + nl
    tail = [im_end] + nl + assistant + nl
    out = []
    for parts in chunks:
        ids = list(head)
        for i in range(len(parts)):
            ids += next(encoded)
            if i < len(parts) - 1:
                ids += [IMAGE_TOKEN_INDEX] + nl
        out.append(ids + tail)
    return out


def text_input_ids(tokenizer, prompt: str, image_token_id: int | None) -> list[int]:
    """The whole chat string tokenised at once (as a Hugging Face processor does, special tokens included),
    each image token id replaced by :data:`IMAGE_TOKEN_INDEX`."""
    ids = list(tokenizer(prompt)["input_ids"])
    if image_token_id is None:
        return ids
    return [IMAGE_TOKEN_INDEX if t == image_token_id else t for t in ids]


def split_shared_prefix(id_lists: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """``(prefix, suffixes)``: the ids all lists share (each keeps at least one of its own), and the rest."""
    if not id_lists:
        raise ValueError("no token lists to split")
    first = id_lists[0]
    k = min(len(ids) for ids in id_lists) - 1
    for ids in id_lists[1:]:
        j = 0
        while j < k and ids[j] == first[j]:
            j += 1
        k = j
    k = max(k, 0)
    return list(first[:k]), [list(ids[k:]) for ids in id_lists]
