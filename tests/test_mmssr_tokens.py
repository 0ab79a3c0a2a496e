"""The scorer's input ids are built like the official inference builds them (``preprocess_qwen`` of
``llava/eval/model_ss.py``), checked on every query of every sample of data_samples with the offline tokenizer."""
import json

import pytest

pytest.importorskip("transformers")
pytest.importorskip("gguf")

from kit.capabilities import capability_keys  # noqa: E402
from kit.mmssr.prompts import add_image_newline, build_prompt, queries, user_content  # noqa: E402
from kit.mmssr.tokens import (IMAGE_TOKEN_INDEX, official_input_ids, split_shared_prefix,  # noqa: E402
                              text_input_ids)
from tests.support.official_inputs import preprocess_qwen_port, tokenizer_image_token_port  # noqa: E402
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
        if isinstance(text, list):
            return Encoded(input_ids=[self(t, add_special_tokens).input_ids for t in text])
        key = (text, add_special_tokens)
        if key not in self.memo:
            self.memo[key] = list(self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])
        return Encoded(input_ids=list(self.memo[key]))

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


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
