"""The answer-loss scorer: answer-token masking, batching == one at a time, VLM path, proof on data_samples."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kit
from kit.quality.loss import (LossScorer, answer_token_mask, chat_messages, render_with_answer_spans)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data_samples"

CONVERSATIONS = [
    [{"from": "human", "value": "<image>\nWhat colour is the shape?"}, {"from": "gpt", "value": "It is red."}],
    [{"from": "human", "value": "How many circles are there?\n<image>"},
     {"from": "gpt", "value": "There are three circles in the picture."},
     {"from": "human", "value": "And squares?"}, {"from": "gpt", "value": "None at all."}],
    [{"from": "human", "value": "<image>\nDescribe the image in detail."},
     {"from": "gpt", "value": "A small blue square sits on a white background, slightly left of the centre, "
                              "next to a larger green circle whose edge is partly hidden behind it."}],
    [{"from": "human", "value": "Is it a triangle?"}, {"from": "gpt", "value": "No."}],
    [{"from": "human", "value": "<image>\nWhat is written on the sign?"}, {"from": "gpt", "value": "STOP"}],
]


def _make_pool(folder: Path, conversations=CONVERSATIONS, seed=0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for k, conv in enumerate(conversations):
        size = (24 + 8 * k, 40 - 4 * k, 3)  # different sizes and aspect ratios
        Image.fromarray(rng.integers(0, 255, size, dtype=np.uint8)).save(folder / "images" / f"{k}.png")
        records.append({"id": f"s{k}", "image": f"{k}.png", "conversations": conv})
    path = folder / "pool.json"
    path.write_text(json.dumps(records))
    return path


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return kit.load_pool(_make_pool(tmp_path_factory.mktemp("loss_pool")))


# --------------------------------------------------------------------------- pure helpers (no model)

def test_answer_token_mask_counts_tokens_that_touch_the_answer():
    offsets = [(0, 5), (5, 6), (6, 9), (9, 12), (12, 12), (12, 20)]
    mask = answer_token_mask(offsets, [(6, 12)])
    assert mask.tolist() == [False, False, True, True, False, False]
    # a token straddling the answer start covers answer characters: it counts; empty spans never do
    assert answer_token_mask(offsets, [(8, 10), (20, 20)]).tolist() == [False, False, True, True, False, False]


def test_render_spans_point_at_the_answers_not_the_template():
    def render(messages, add_generation_prompt):
        text = "".join(f"<{m['role']}>{m['content']}</s>" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")

    messages = [{"role": "user", "content": "say yes"}, {"role": "assistant", "content": "yes"},
                {"role": "user", "content": "again: yes"}, {"role": "assistant", "content": "yes"}]
    text, spans = render_with_answer_spans(render, messages)
    assert [text[a:b] for a, b in spans] == ["yes", "yes"]
    # the second answer is found after the user's own "yes", inside the assistant turn
    assert text[:spans[1][0]].endswith("again: yes</s><assistant>")

    def dropping(messages, add_generation_prompt):  # a template that loses the assistant content
        return "".join(f"<{m['role']}>" + (m["content"] if m["role"] == "user" else "") for m in messages)

    with pytest.raises(ValueError, match="verbatim"):
        render_with_answer_spans(dropping, messages)


def test_chat_messages_place_or_remove_the_image():
    conv = CONVERSATIONS[1]
    text_only = chat_messages(conv)
    assert [m["role"] for m in text_only] == ["user", "assistant", "user", "assistant"]
    assert "<image>" not in text_only[0]["content"] and text_only[0]["content"] == "How many circles are there?"
    as_string = chat_messages(conv, image="<IMG>")
    assert as_string[0]["content"] == "How many circles are there?\n<IMG>"
    parts = chat_messages(CONVERSATIONS[3], image="<IMG>", image_parts=True)  # no placeholder: first turn
    assert parts[0]["content"][0] == {"type": "image"} and parts[1]["content"] == [{"type": "text", "text": "No."}]
    two = [{"from": "human", "value": "<image> <image> which?"}, {"from": "gpt", "value": "left"}]
    with pytest.raises(ValueError, match="placeholders"):
        chat_messages(two, image="<IMG>")


# --------------------------------------------------------------------------- the SmolLM2 cache (no model)

class _FakeSaver:
    def __init__(self, fail=False):
        self.fail = fail

    def save_pretrained(self, folder):
        (Path(folder) / "weights.bin").write_bytes(b"x" * 10)
        if self.fail:
            raise OSError("disk full")


def test_smollm2_cache_is_written_atomically(tmp_path, monkeypatch):
    from kit.models import smollm2

    monkeypatch.setenv("KIT_CACHE", str(tmp_path / "root"))
    target = smollm2.default_cache_dir()
    assert target == tmp_path / "root" / "smollm2-135m-instruct"
    with pytest.raises(OSError, match="disk full"):
        smollm2._write_cache(_FakeSaver(fail=True), _FakeSaver(), target)
    assert not target.exists() and list(target.parent.iterdir()) == []  # nothing half-written is left
    assert not smollm2.is_cached(target)
    target.mkdir()  # a folder without the completion marker (e.g. copied by hand) is not a cache: replaced
    smollm2._write_cache(_FakeSaver(), _FakeSaver(), target)
    assert smollm2.is_cached(target) and (target / "weights.bin").is_file()
    assert [p.name for p in target.parent.iterdir()] == [target.name]


# --------------------------------------------------------------------------- SmolLM2 (text-only LM)

@pytest.fixture(scope="module")
def smollm2():
    return LossScorer("smollm2", batch_size=3, progress=False).load()


@pytest.mark.slow
def test_smollm2_masks_everything_but_the_answers(smollm2, pool):
    tok = smollm2.tokenizer
    for sid, conv in zip(pool.table.index, pool.table["conversations"]):
        e = smollm2.encode(sid, conv)
        answers = [t["value"] for t in conv if t["from"] == "gpt"]
        picked = np.asarray(e.ids)[e.answer]
        # ChatML puts "\n" before and <|im_end|> after each answer, so the answer tokens are exactly the
        # answers tokenised on their own; system prompt, questions and template tokens are all masked
        expected = sum((tok(a, add_special_tokens=False)["input_ids"] for a in answers), [])
        assert picked.tolist() == expected, sid
        assert "<image>" not in e.text and "<|im_end|>" not in tok.decode(picked)


@pytest.fixture(scope="module")
def smollm2_scores(smollm2, pool):
    """The built pool scored in batches of 4 and one sample at a time."""
    smollm2.batch_size = 4
    batched = smollm2.score(pool)
    smollm2.batch_size = 1
    single = smollm2.score(pool)
    smollm2.batch_size = 3
    return batched, single


def _assert_same_losses(batched, single):
    assert len(set(batched["n_tokens"])) > 1  # the batches really were padded
    np.testing.assert_allclose(batched["loss_mean"], single["loss_mean"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(batched["loss_sum"], single["loss_sum"],
                               atol=1e-4 * batched["n_answer_tokens"].max(), rtol=0)
    assert (batched["n_answer_tokens"] == single["n_answer_tokens"]).all()


@pytest.mark.slow
def test_smollm2_loss_equals_the_hf_loss_on_answer_labels(smollm2, pool, smollm2_scores):
    import torch

    table = smollm2_scores[1]
    sid = "s1"
    e = smollm2.encode(sid, pool.table.at[sid, "conversations"])
    ids = torch.tensor([e.ids])
    labels = torch.where(torch.from_numpy(e.answer)[None], ids, torch.full_like(ids, -100))
    with torch.inference_mode():
        hf = smollm2.model(input_ids=ids, labels=labels).loss.item()  # mean over labelled tokens
    assert table.at[sid, "loss_mean"] == pytest.approx(hf, abs=1e-4)
    assert table.at[sid, "loss_sum"] == pytest.approx(hf * table.at[sid, "n_answer_tokens"], rel=1e-4)
    assert (table["status"] == "ok").all() and (table["loss_mean"] > 0).all()


@pytest.mark.slow
def test_smollm2_batched_equals_one_at_a_time(pool, smollm2_scores):
    batched, single = smollm2_scores
    assert batched.index.tolist() == list(pool.table.index)
    _assert_same_losses(batched, single)


@pytest.mark.slow
def test_smollm2_truncation_and_empty_answers_keep_their_rows(tmp_path, smollm2):
    long_question = "<image>\nRead every label in the figure, then list them from left to right, please."
    conv = [CONVERSATIONS[2], [{"from": "human", "value": long_question}, {"from": "gpt", "value": "A, B."}],
            [{"from": "human", "value": "<image>\nAnything?"}, {"from": "gpt", "value": "   "}]]
    pool = kit.load_pool(_make_pool(tmp_path, conv))
    # cut inside the long answer of s0: fewer answer tokens, flagged; s1's answer is cut away entirely
    e0 = smollm2.encode("s0", conv[0])
    first_answer = int(np.flatnonzero(e0.answer)[0])
    cut = LossScorer(smollm2.model, processor=smollm2.tokenizer, max_length=first_answer + 5, progress=False)
    short = cut.score(pool)
    assert len(short) == 3
    assert short.at["s0", "status"] == "ok" and bool(short.at["s0", "truncated"])
    assert short.at["s0", "n_answer_tokens"] == 5 < e0.answer.sum()
    assert short.at["s0", "n_tokens"] == first_answer + 5
    assert short.at["s1", "status"] == "truncated_away" and math.isnan(short.at["s1", "loss_sum"])
    assert short.at["s2", "status"] == "no_answer_tokens" and math.isnan(short.at["s2", "loss_mean"])
    assert short.at["s2", "n_answer_tokens"] == 0


@pytest.mark.slow
def test_registry_route_writes_parquet(tmp_path, pool, smollm2, smollm2_scores):
    out = tmp_path / "loss"
    sub = pool.subset(["s3", "s0"])
    table = kit.score(sub, "loss", out=out, model=smollm2.model, processor=smollm2.tokenizer, progress=False)
    back = kit.load_scores(out)
    assert list(back.index) == ["s3", "s0"]
    np.testing.assert_allclose(back["loss_mean"], table["loss_mean"])
    np.testing.assert_allclose(back["loss_mean"], smollm2_scores[1].loc[["s3", "s0"], "loss_mean"], atol=1e-4)
    assert {"loss_mean", "loss_sum", "n_answer_tokens", "status"} <= set(back.columns)


# --------------------------------------------------------------------------- tiny LLaVA-OneVision (VLM path)

@pytest.fixture(scope="module")
def tiny_vlm(tiny_llava):
    model, processor = tiny_llava
    return LossScorer(model, processor=processor, batch_size=3, progress=False).load()


def test_vlm_batched_equals_one_at_a_time_and_masks_image_tokens(tiny_vlm, pool):
    assert tiny_vlm.vision
    tiny_vlm.batch_size = 3
    batched = tiny_vlm.score(pool)
    tiny_vlm.batch_size = 1
    single = tiny_vlm.score(pool)
    tiny_vlm.batch_size = 3
    np.testing.assert_allclose(batched["loss_mean"], single["loss_mean"], atol=1e-4, rtol=0)
    assert (batched["status"] == "ok").all()
    tok = tiny_vlm.tokenizer
    for sid, conv in zip(pool.table.index, pool.table["conversations"]):
        answers = [t["value"] for t in conv if t["from"] == "gpt"]
        n_answer = sum(len(tok(a, add_special_tokens=False)["input_ids"]) for a in answers)
        assert batched.at[sid, "n_answer_tokens"] == n_answer  # no image or question token counted
        # the image is in the sequence: expanded into many image tokens by the processor
        assert batched.at[sid, "n_tokens"] > len(tiny_vlm.encode(sid, conv).ids) + 10


def test_vlm_sees_the_image(tiny_vlm, pool, tmp_path):
    from PIL import Image

    before = tiny_vlm.score(pool)
    moved = tmp_path / "images"
    shutil.copytree(pool.image_root, moved)
    Image.new("RGB", (32, 32), (255, 255, 255)).save(moved / "0.png")
    other = kit.load_pool(pool.path, images=moved)
    after = tiny_vlm.score(other)
    assert abs(after.at["s0", "loss_mean"] - before.at["s0", "loss_mean"]) > 1e-6
    np.testing.assert_allclose(after.loc[["s1", "s2"], "loss_mean"], before.loc[["s1", "s2"], "loss_mean"],
                               atol=1e-5)


def test_vlm_unscorable_samples_keep_their_rows(tiny_vlm, tmp_path):
    two_images = [{"from": "human", "value": "<image>\nLeft or <image> right?"}, {"from": "gpt", "value": "Left."}]
    path = _make_pool(tmp_path, [*CONVERSATIONS[:3], two_images])
    assert kit.load_pool(path).report["reason"].tolist() == ["image_token_count"]  # the loader refuses s3 now
    pool = kit.load_pool(path)
    pool = kit.data.Pool(pd.concat([pool.table, pool.table.loc[["s0"]].rename(index={"s0": "s3"})]), pool.report)
    pool.table.at["s3", "conversations"] = two_images  # the scorer still guards a table that holds them
    (tmp_path / "images" / "1.png").write_bytes(b"not a png any more")
    table = tiny_vlm.score(pool)
    assert table.index.tolist() == ["s0", "s1", "s2", "s3"]
    assert table.at["s1", "status"].startswith("image_error") and math.isnan(table.at["s1", "loss_mean"])
    assert table.at["s3", "status"].startswith("error:") and "placeholders" in table.at["s3", "status"]
    assert math.isnan(table.at["s3", "loss_sum"])
    assert (table.loc[["s0", "s2"], "status"] == "ok").all()


def test_vlm_loads_from_a_saved_folder(tiny_vlm, pool, tiny_llava_dir):
    by_path = LossScorer(str(tiny_llava_dir), batch_size=2, progress=False).score(pool)
    in_memory = tiny_vlm.score(pool)
    np.testing.assert_allclose(by_path["loss_mean"], in_memory["loss_mean"], atol=1e-5)


def test_vlm_string_only_chat_template_gives_the_same_losses(tiny_vlm, pool):
    import copy

    processor = copy.deepcopy(tiny_vlm.processor)
    # a template that only takes string content (list content raises): the scorer falls back to strings
    processor.chat_template = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] "
                               "+ '<|im_end|>\\n' }}{% endfor %}"
                               "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    scorer = LossScorer(tiny_vlm.model, processor=processor, progress=False).load()
    table = scorer.score(pool)
    assert scorer._encoder._parts_format is False
    reference = tiny_vlm.score(pool)
    assert (table["n_answer_tokens"] == reference["n_answer_tokens"]).all()
    assert (table["status"] == "ok").all()


# --------------------------------------------------------------------------- proof on data_samples

@pytest.fixture(scope="module")
def wrong_answer_pairs(smollm2):
    """(pairs, scores): labels of the planted wrong answers, and both sides of every pair scored in batches."""
    if not (DATA / "pool.json").is_file() or not (DATA / "labels.csv").is_file():
        pytest.skip("data_samples/pool.json + labels.csv not generated yet")
    labels = pd.read_csv(DATA / "labels.csv").set_index("id")
    pool = kit.load_pool(DATA / "pool.json")
    pairs = labels[(labels["defect"] == "wrong_answer") & labels.index.isin(pool.table.index)
                   & labels["origin"].isin(pool.table.index)]
    assert len(pairs) >= 5, "too few wrong_answer pairs to judge"
    sub = pool.subset(dict.fromkeys([*pairs.index, *pairs["origin"]]))
    smollm2.batch_size = 8
    scores = smollm2.score(sub)
    smollm2.batch_size = 3
    return pairs, sub, scores


@pytest.mark.slow
def test_batched_equals_one_at_a_time_on_data_samples(smollm2, wrong_answer_pairs):
    _, sub, batched = wrong_answer_pairs
    # four real samples of clearly different lengths, each scored alone
    order = batched["n_tokens"].sort_values(kind="stable").index
    picks = list(dict.fromkeys(order[np.linspace(0, len(order) - 1, 4).astype(int)]))
    smollm2.batch_size = 1
    single = smollm2.score(sub.subset(picks))
    smollm2.batch_size = 3
    _assert_same_losses(batched.loc[picks], single)


@pytest.mark.slow
def test_wrong_answers_cost_more_than_their_correct_originals(wrong_answer_pairs, capsys):
    pairs, _, table = wrong_answer_pairs
    assert (table["status"] == "ok").all()
    wrong, right = table.loc[pairs.index], table.loc[pairs["origin"]]
    higher_mean = wrong["loss_mean"].to_numpy() > right["loss_mean"].to_numpy()
    higher_sum = wrong["loss_sum"].to_numpy() > right["loss_sum"].to_numpy()
    with capsys.disabled():
        print(f"\nwrong_answer pairs: {len(pairs)}; wrong > original in loss_mean {higher_mean.mean():.2f} "
              f"({higher_mean.sum()}/{len(pairs)}), in loss_sum {higher_sum.mean():.2f} "
              f"({higher_sum.sum()}/{len(pairs)}) [SmolLM2 is text-only: it cannot see the image]")
    assert higher_mean.mean() >= 0.6
