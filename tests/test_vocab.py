"""The cut vocabulary of small models (kit.models.vocab): same tokens on the kit's texts, every text still encodable."""
from __future__ import annotations

import functools
import json

import pytest

from kit.models.vlm import VLMSpec, build_vlm, spec_tokenizer, vlm_tokenizer
from kit.finetune.align import easyvqa_texts
from kit.models.vocab import kept_tokens, trim_tokenizer


@functools.lru_cache(maxsize=1)
def _trimmed():
    full = vlm_tokenizer(None)
    texts = easyvqa_texts()
    tok, old_ids = trim_tokenizer(full, 1024, texts)
    return full, tok, old_ids, texts


def _ids(tok, text):
    return list(tok(text, add_special_tokens=False)["input_ids"])


def test_kit_texts_tokenize_exactly_as_before_alone_and_in_the_chat_template():
    full, tok, old_ids, texts = _trimmed()
    assert 1024 < len(tok) < 2500 < len(full)
    assert len(old_ids) == len(tok) and len(set(old_ids)) == len(old_ids)
    for text in texts[::3]:
        assert [old_ids[i] for i in _ids(tok, text)] == _ids(full, text), text
        turns = [{"role": "user", "content": f"<image>\n{text}"}, {"role": "assistant", "content": text}]
        chat = full.apply_chat_template(turns, tokenize=False)
        assert tok.apply_chat_template(turns, tokenize=False) == chat
        assert [old_ids[i] for i in _ids(tok, chat)] == _ids(full, chat), text


def test_special_tokens_keep_their_roles():
    full, tok, old_ids, _ = _trimmed()
    for name in ("<image>", "<video>", "<|im_start|>", "<|im_end|>"):
        assert old_ids[tok.convert_tokens_to_ids(name)] == full.convert_tokens_to_ids(name), name
    assert tok.convert_tokens_to_ids("<image>") == len(tok) - 2
    assert tok.eos_token == full.eos_token and tok.pad_token == full.pad_token


@pytest.mark.parametrize("text", ["Zebra-crossing quantum Fjölnir 😀 naïve ünïcödé", "   spaces\tand\nlines  ",
                                  "x" * 50, "日本語のテキスト"])
def test_any_text_still_encodes_and_decodes_to_itself(text):
    full, tok, _, _ = _trimmed()
    ids = _ids(tok, text)
    assert max(ids) < len(tok)
    assert tok.decode(ids) == full.decode(_ids(full, text)) == text
    assert len(ids) >= len(_ids(full, text))  # rarer words fall back to smaller pieces


def test_kept_tokens_are_closed_under_merges():
    model = {"vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5, "cc": 6, "ccc": 7},
             "merges": [["a", "b"], ["b", "c"], ["ab", "c"], ["a", "bc"], ["c", "c"], ["cc", "c"]]}
    keep = kept_tokens(model, keep_first=0, used={"abc"})
    assert keep == ["a", "b", "c", "ab", "bc", "abc"]  # both ways of building "abc", in id order; no "cc"
    assert kept_tokens(model, keep_first=7, used=set()) == ["a", "b", "c", "ab", "bc", "abc", "cc"]


def test_the_cut_tokenizer_saves_and_loads_like_any_other(tmp_path):
    from transformers import AutoTokenizer

    _, tok, _, texts = _trimmed()
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert len(loaded) == len(tok)
    assert _ids(loaded, texts[-1]) == _ids(tok, texts[-1])
    merges = json.loads((tmp_path / "tokenizer.json").read_text())["model"]["merges"]
    vocab = loaded.get_vocab()
    assert all("".join(m) in vocab and all(p in vocab for p in m) for m in merges)


def test_a_model_with_a_cut_vocabulary_keeps_smollm2s_rows():
    import torch

    from kit.models.smollm2 import load_smollm2

    spec = VLMSpec(image_size=32, patch_size=16, vision_hidden=32, vision_layers=1, vision_heads=1, lm="smollm2",
                   lm_layers=1, system_prompt=None, vocab=1024)
    model, processor = build_vlm(spec)
    tok, old_ids = spec_tokenizer(spec)
    assert len(processor.tokenizer) == len(tok) == model.config.text_config.vocab_size
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<image>")
    rows = model.get_input_embeddings().weight
    reference = load_smollm2()[0].get_input_embeddings().weight
    n = len(old_ids) - 2  # the last two are <image>, <video>
    assert torch.equal(rows[:n], reference[torch.as_tensor(old_ids[:n])])
    assert torch.allclose(rows[n], reference.mean(0), atol=1e-6)


def test_a_preset_with_a_cut_vocabulary_keeps_the_kits_texts_whole():
    from kit.finetune.align import initial_model
    from kit.finetune.presets import Preset

    spec = VLMSpec(image_size=32, patch_size=16, vision_hidden=32, vision_layers=1, vision_heads=1, lm="smollm2",
                   lm_layers=1, system_prompt=None, vocab=1024)
    _, processor = initial_model(Preset(name="micro", spec=spec))
    full, tok, old_ids, texts = _trimmed()  # the same cut, made from the same texts
    assert len(processor.tokenizer) == len(tok)
    for text in texts[1::50]:
        assert _ids(processor.tokenizer, text) == _ids(tok, text), text
    bare = spec_tokenizer(spec)[0]  # without the texts, the cut keeps fewer tokens
    assert len(bare) < len(tok)
