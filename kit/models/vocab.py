"""A smaller vocabulary for small models: SmolLM2's byte-level BPE cut to its commonest tokens plus the kit's own.

In the ``tiny`` preset the output head over SmolLM2's 49,152 tokens costs more than the rest of the model: for
answers of 40 tokens, one training step takes 0.59 s with the whole vocabulary and 0.12 s with 4,096 tokens
(one core, batch 16; ``docs/methods.md``). :func:`trim_tokenizer` keeps

- the special tokens and the 256 byte tokens (so every text still tokenizes: a word without its own token
  falls back to smaller pieces, down to bytes),
- the ``keep_first`` tokens of lowest id (SmolLM2 numbers its merges in the order BPE learned them, commonest
  first), and
- every token that tokenizing ``texts`` produces, alone and inside the chat template, with the tokens its
  merges are built from (the ``tiny`` preset passes the kit's easy-vqa texts,
  :func:`kit.finetune.align.easyvqa_texts`).

Merges whose result or parts are dropped are removed. A text made of kept tokens therefore tokenizes exactly as
before (the merges that fire on it all survive, and the ones removed never fire on it), only with new ids;
:func:`trim_tokenizer` returns the old id of every new one so that embeddings can be cut the same way.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Iterable


def _merge_pair(merge) -> tuple[str, str]:
    return tuple(merge) if isinstance(merge, (list, tuple)) else tuple(merge.split(" ", 1))


def kept_tokens(model: dict, keep_first: int, used: Iterable[str]) -> list[str]:
    """Tokens of a BPE ``model`` (tokenizer.json's ``model``) to keep, in their old id order (see module doc)."""
    vocab: dict[str, int] = model["vocab"]
    parents: dict[str, list[tuple[str, str]]] = {}
    for merge in model["merges"]:
        a, b = _merge_pair(merge)
        parents.setdefault(a + b, []).append((a, b))
    # the first keep_first tokens, the tokens no merge builds (bytes), the used ones, and (closure) the parts
    # of every merge that builds a kept token, whichever way a word happens to be merged
    stack = [t for t, i in vocab.items() if i < keep_first or t not in parents] + [t for t in used if t in vocab]
    keep: set[str] = set()
    while stack:
        t = stack.pop()
        if t in keep:
            continue
        keep.add(t)
        for a, b in parents.get(t, ()):
            stack.extend((a, b))
    return sorted(keep, key=vocab.__getitem__)


def _in_chat(tokenizer, text: str) -> str:
    """``text`` as a user turn (after an image) and as the answer, in the tokenizer's chat template."""
    if not tokenizer.chat_template:
        return text
    turns = [{"role": "system", "content": text}, {"role": "user", "content": f"<image>\n{text}"},
             {"role": "assistant", "content": text}]
    return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=False)


def trim_tokenizer(tokenizer, keep_first: int, texts: Iterable[str]):
    """``(tokenizer, old_ids)``: a copy of a byte-level BPE ``tokenizer`` with a smaller vocabulary.

    ``old_ids[new_id]`` is the id the token had in ``tokenizer`` (added tokens such as ``<image>`` keep their
    order and come last). The copy keeps the chat template and special tokens; ``save_pretrained`` writes it
    like any tokenizer.
    """
    from transformers import AutoTokenizer

    tmp = Path(tempfile.mkdtemp(prefix="kit-vocab-"))
    try:
        tokenizer.save_pretrained(tmp)
        path = tmp / "tokenizer.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        model = data["model"]
        if model.get("type") != "BPE":
            raise ValueError(f"trim_tokenizer needs a BPE tokenizer, not {model.get('type')!r}")
        used = set()
        for text in texts:
            for piece in (text, _in_chat(tokenizer, text)):
                used.update(tokenizer.convert_ids_to_tokens(tokenizer(piece, add_special_tokens=False)["input_ids"]))
        tokens = kept_tokens(model, keep_first, used)
        new_id = {t: i for i, t in enumerate(tokens)}
        old_ids = [model["vocab"][t] for t in tokens]
        model["merges"] = [m for m in model["merges"]
                           if all(t in new_id for t in (*_merge_pair(m), "".join(_merge_pair(m))))]
        model["vocab"] = new_id
        added = sorted(data.get("added_tokens", []), key=lambda a: a["id"])
        next_id = len(tokens)
        for a in added:
            if a["content"] in new_id:
                a["id"] = new_id[a["content"]]
            else:
                old_ids.append(a["id"])
                a["id"] = next_id
                next_id += 1
        data["added_tokens"] = added
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        trimmed = AutoTokenizer.from_pretrained(tmp)
        trimmed.chat_template = tokenizer.chat_template
        trimmed.padding_side = tokenizer.padding_side
        return trimmed, old_ids
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

