"""The scorer's input ids are built like the official inference builds them (``preprocess_qwen`` of
``llava/eval/model_ss.py``), checked on every query of every sample of data_samples with the offline tokenizer."""
import json

import pytest

pytest.importorskip("transformers")
pytest.importorskip("gguf")

from kit.capabilities import capability_keys  # noqa: E402
from kit.mmssr.prompts import SYSTEM_PROMPT, add_image_newline, build_prompt, queries, user_content  # noqa: E402
from kit.mmssr.tokens import (IMAGE_TOKEN_INDEX, official_input_ids, split_shared_prefix,  # noqa: E402
                              text_input_ids)
from tests.support.tiny_llava import tiny_tokenizer  # noqa: E402


class Encoded(dict):
    @property
    def input_ids(self):
        return self["input_ids"]


class MemoTokenizer:
    """The tokenizer with its encodings cached (the same chunks recur across the 15 queries); same answers."""

    def __init__(self, tokenizer):
        self.tokenizer, self.memo = tokenizer, {}

    def warm(self, texts):
        texts = sorted(set(texts))
        for flag in (True, False):
            for text, ids in zip(texts, self.tokenizer(texts, add_special_tokens=flag)["input_ids"]):
                self.memo[text, flag] = list(ids)

    def __call__(self, text, add_special_tokens=True):
        key = (text, add_special_tokens)
        if key not in self.memo:
            self.memo[key] = list(self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])
        return Encoded(input_ids=list(self.memo[key]))

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def preprocess_qwen_port(qs, tokenizer, system_message=SYSTEM_PROMPT):
    """The official ``preprocess_qwen`` for [user qs, assistant None] with has_image=True, written out plainly.

    Deviation: ``<|im_start|>``/``<|im_end|>`` by name (officially ``tokenizer.additional_special_tokens_ids``,
    which is Qwen2's pair and does not exist on transformers 5 tokenizers).
    """
    im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    nl_tokens = tokenizer("\n").input_ids
    input_id = [im_start] + tokenizer("system").input_ids + nl_tokens
    input_id += tokenizer(system_message).input_ids + [im_end] + nl_tokens
    # the user turn
    if "<image>" in qs:
        turn = tokenizer("<|im_start|>user").input_ids + nl_tokens
        texts = qs.split("<image>")
        for i, text in enumerate(texts):
            turn += tokenizer(text).input_ids
            if i < len(texts) - 1:
                turn += [IMAGE_TOKEN_INDEX] + nl_tokens
        turn += [im_end] + nl_tokens
    else:
        turn = tokenizer("<|im_start|>user").input_ids + nl_tokens + tokenizer(qs).input_ids + [im_end] + nl_tokens
    input_id += turn
    # the open assistant turn (value None)
    input_id += tokenizer("<|im_start|>assistant").input_ids + nl_tokens
    return input_id


def tokenizer_image_token_port(prompt, tokenizer, bos_token_id=None):
    """``llava/mm_utils.py`` ``tokenizer_image_token``, which the official script imports but does not call.

    ``bos_token_id`` None as for Qwen2's tokenizer (SmolLM2's BOS is ``<|im_start|>``, with which the function
    would double the image id and drop the first token after it).
    """
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split("<image>")]
    out, offset = [], 0
    if chunks and chunks[0] and chunks[0][0] == bos_token_id:
        offset = 1
        out.append(chunks[0][0])
    for i, chunk in enumerate(chunks):
        if i:
            out += [IMAGE_TOKEN_INDEX] * (offset + 1)
        out += chunk[offset:]
    return out


def test_official_ids_on_every_query_of_data_samples(tok, repo_root):
    records = json.loads((repo_root / "data_samples" / "pool.json").read_text())
    qs_all = queries()
    assert len(qs_all) == 15 and list(qs_all)[:14] == capability_keys()[:14]
    memo = MemoTokenizer(tok)
    memo.warm(chunk for rec in records for q in qs_all.values()
              for chunk in user_content(rec["conversations"], q).split("<image>"))
    assert memo("x", add_special_tokens=False).input_ids == tok("x", add_special_tokens=False)["input_ids"]
    checked = extra_newline = 0
    for rec in records:
        for name, query in qs_all.items():
            qs = user_content(rec["conversations"], query)          # format_convs + "\n" + query
            ours = official_input_ids(memo, qs)
            assert ours == preprocess_qwen_port(qs, memo), (rec["id"], name)
            checked += 1
            if "<image>" in qs:
                at = ours.index(IMAGE_TOKEN_INDEX)
                nl = tok("\n")["input_ids"]
                extra_newline += ours[at + 1:at + 1 + len(nl)] == nl
    assert checked == 15 * len(records) and extra_newline == checked


def test_the_official_ids_differ_from_the_whole_string_and_from_tokenizer_image_token(tok):
    conv = [{"from": "human", "value": "<image>\nWhat colour is the square?"}, {"from": "gpt", "value": "Red."}]
    query = queries()["ocr"]
    ours = official_input_ids(tok, user_content(conv, query))
    whole = text_input_ids(tok, build_prompt(conv, query), tok.convert_tokens_to_ids("<image>"))
    legacy = tokenizer_image_token_port(build_prompt(conv, query), tok)
    nl = tok("\n")["input_ids"]
    at = ours.index(IMAGE_TOKEN_INDEX)
    assert ours[at + 1:at + 1 + 2 * len(nl)] == nl + nl          # the inserted newline, then the text's own
    assert whole == legacy != ours                                # tokenizer_image_token = the whole string here
    assert len(ours) == len(whole) + len(nl)                      # ... exactly the extra newline apart
    # the text equivalent of the extra newline: SmolLM2's pre-tokenizer splits "\n\nWhat" into "\n", "\n",
    # "What", so here it gives the official ids; Qwen2's (pattern \s*[\r\n]+) keeps "\n\n" together as one token
    merged = text_input_ids(tok, add_image_newline(build_prompt(conv, query)), tok.convert_tokens_to_ids("<image>"))
    assert merged == ours and tok("\n\n")["input_ids"] != nl + nl


def test_shared_prefix_split():
    prefix, rest = split_shared_prefix([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]])
    assert prefix == [1, 2] and rest == [[3, 4], [5], [3]]
    prefix, rest = split_shared_prefix([[7, 8, 9]])
    assert prefix == [7, 8] and rest == [[9]]              # a query keeps at least one token of its own
    assert split_shared_prefix([[1], [1]]) == ([], [[1], [1]])
