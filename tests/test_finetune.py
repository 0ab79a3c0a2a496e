"""kit.finetune on a micro LLaVA model: answer-only masking, determinism, resume, exact ranking, reload."""
import json

import numpy as np
import pandas as pd
import pytest

import kit
import kit.finetune as ft
from kit.finetune.data import ExampleEncoder, batch_order
from tests.support.micro import MICRO, PRESET

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def base(micro_base):
    return micro_base


@pytest.fixture(scope="module")
def pool(repo_root):
    full = kit.load_pool(repo_root / "data_samples" / "pool.json")
    return full


@pytest.fixture(scope="module")
def ids(pool):
    ev = [i for i in pool.table.index if i.startswith("ev_")]
    return ev[:12]


@pytest.fixture(scope="module")
def processor(base):
    return ft.load_model(base)[1]


def _weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_align_writes_a_reusable_hf_folder(base, tmp_path):
    info = json.loads((base / "kit_base.json").read_text())
    assert info["n_records"] == 12 * 4 and info["align"]["train"] == ["projector", "lm"]
    pre = info["vision_pretraining"]
    assert pre["steps"] == 3 and set(pre["train_accuracy"]) == {"color", "shape", "size_word", "third"}
    assert pre["projector"]["output_scale"] > 0 and info["caption_loss_shuffled_images"] > 0
    assert (base / "config.json").is_file() and (base / "align_history.csv").is_file()
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(base)
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    assert AutoProcessor.from_pretrained(base).tokenizer.convert_tokens_to_ids("<image>") == model.config.image_token_id
    assert ft.align(PRESET, out=base, progress=False) == base  # done: returned without training


def test_caption_records_come_from_the_reserved_slice_only():
    from kit.pools.easyvqa import TRAIN_SLICES

    recs = ft.caption_records(limit=5, exclude_pool=None)
    ids = {int(r["id"].split("_")[1]) for r in recs}
    assert len(recs) == 20 and ids <= set(TRAIN_SLICES["reserved"])
    questions = {r["conversations"][0]["value"] for r in recs}
    assert all(q.startswith("<image>\n") and "?" not in q for q in questions)  # captions, no questions


def test_only_answer_and_end_tokens_are_trained(pool, ids, processor):
    enc = ExampleEncoder(processor)
    tok = processor.tokenizer
    multi = next(i for i in pool.table.index if len(pool.table.loc[i, "conversations"]) > 2)
    examples, rejected = enc.encode_pool(pool, ids[:4] + [multi])
    assert not rejected
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    image_id = tok.convert_tokens_to_ids("<image>")
    for e in examples:
        ids_ = e.inputs["input_ids"][0].numpy()
        trained = ids_[e.labels]
        assert not (trained == image_id).any()
        answers = [t["value"].strip() for t in pool.table.loc[e.sid, "conversations"] if t["from"] == "gpt"]
        assert (trained == im_end).sum() == len(answers)           # one end-of-turn token per answer
        assert tok.decode(trained[trained != im_end]).replace(" ", "") == "".join(answers).replace(" ", "")
        assert not e.labels[0]
    # an empty answer (a planted truncation) trains its end-of-turn token alone
    conv = [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": ""}]
    from PIL import Image

    e = enc.encode("empty", conv, Image.new("RGB", (64, 64), "white"))
    assert e.inputs["input_ids"][0].numpy()[e.labels].tolist() == [im_end]


def test_batch_order_is_seeded_covers_every_sample_and_keeps_stages():
    lengths = np.arange(30) % 7
    a = batch_order(lengths, 4, 15, seed=0)
    assert [b.tolist() for b in a] == [b.tolist() for b in batch_order(lengths, 4, 15, seed=0)]
    assert [b.tolist() for b in a] != [b.tolist() for b in batch_order(lengths, 4, 15, seed=1)]
    flat = np.concatenate(a)
    assert len(flat) == 60 and np.bincount(flat, minlength=30).tolist() == [2] * 30  # two epochs
    stages = [list(range(0, 12)), list(range(12, 24)), list(range(24, 30))]
    b = batch_order(lengths, 3, 10, seed=0, stages=stages)
    owner = [max(k for k, s in enumerate(stages) if i in s) for batch in b for i in batch]
    assert owner == sorted(owner)                                    # stage 0, then 1, then 2


def test_training_is_deterministic_and_learns(pool, ids, base, tmp_path):
    a = ft.finetune(pool, ids, preset=PRESET, base=base, out=tmp_path / "a", seed=0, progress=False,
                    epochs=4.0, save_model=False)
    b = ft.finetune(pool, ids, preset=PRESET, base=base, out=tmp_path / "b", seed=0, progress=False,
                    epochs=4.0, save_model=False)
    c = ft.finetune(pool, ids, preset=PRESET, base=base, out=tmp_path / "c", seed=1, progress=False,
                    epochs=4.0, save_model=False)
    wa, wb, wc = _weights(a.model), _weights(b.model), _weights(c.model)
    assert all(np.array_equal(wa[n].numpy(), wb[n].numpy()) for n in wa)
    assert any(not np.array_equal(wa[n].numpy(), wc[n].numpy()) for n in wa)
    assert a.history["loss"].tolist() == b.history["loss"].tolist()
    h = a.history["loss"]
    assert h.iloc[-3:].mean() < 0.8 * h.iloc[:3].mean()            # it learns the answers
    frozen = [n for n in wa if "vision_tower" in n or "embed_tokens" in n]
    base_model, _ = ft.load_model(base)
    wbase = _weights(base_model)
    assert frozen and all(np.array_equal(wa[n].numpy(), wbase[n].numpy()) for n in frozen)
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert run["config"]["train"] == ["projector", "lm"] and manifest["ids"] == ids
    assert (tmp_path / "a" / "done.json").is_file() and not (tmp_path / "a" / "checkpoint.pt").exists()


def test_bfloat16_autocast_is_deterministic_and_keeps_float32_weights(pool, ids, base, tmp_path):
    import torch

    runs = [ft.finetune(pool, ids, preset=PRESET, base=base, out=tmp_path / name, seed=0, progress=False,
                        epochs=2.0, save_model=False, autocast="bfloat16") for name in ("a", "b")]
    plain = ft.finetune(pool, ids, preset=PRESET, base=base, out=tmp_path / "fp32", seed=0, progress=False,
                        epochs=2.0, save_model=False)
    wa, wb = (_weights(r.model) for r in runs)
    assert all(np.array_equal(wa[n].numpy(), wb[n].numpy()) for n in wa)
    assert all(w.dtype == torch.float32 for w in wa.values())
    # the matmuls ran in bfloat16: same start, other rounding, so the losses differ a little, not a lot
    la, lp = runs[0].history["loss"].to_numpy(), plain.history["loss"].to_numpy()
    assert not np.array_equal(la, lp) and np.allclose(la[0], lp[0], rtol=0.05)
    assert json.loads((tmp_path / "a" / "run.json").read_text())["config"]["autocast"] == "bfloat16"


def test_attention_implementation_is_set_per_run_and_changes_rounding_only(pool, ids, base, tmp_path):
    from kit.finetune.presets import PRESETS

    assert PRESETS["tiny"].train.attention == "eager"   # the CPU default: faster backward than SDPA here
    runs = {name: ft.finetune(pool, ids, preset=PRESET, base=base, out=tmp_path / name, seed=0, progress=False,
                              epochs=2.0, save_model=False, attention=att)
            for name, att in (("eager", "eager"), ("eager2", "eager"), ("sdpa", "sdpa"))}
    assert runs["eager"].model.config._attn_implementation == "eager"
    assert runs["eager"].model.model.language_model.config._attn_implementation == "eager"
    assert runs["sdpa"].model.config._attn_implementation == "sdpa"
    we, we2, ws = (_weights(runs[k].model) for k in ("eager", "eager2", "sdpa"))
    assert all(np.array_equal(we[n].numpy(), we2[n].numpy()) for n in we)   # deterministic under a seed
    le, ls = runs["eager"].history["loss"].to_numpy(), runs["sdpa"].history["loss"].to_numpy()
    np.testing.assert_allclose(le, ls, rtol=1e-3)   # the same attention, computed another way
    assert json.loads((tmp_path / "eager" / "run.json").read_text())["config"]["attention"] == "eager"


def test_resume_after_interruption_gives_the_same_model(pool, ids, base, tmp_path):
    whole = ft.finetune(pool, ids, preset=PRESET, base=base, out=tmp_path / "whole", seed=3, progress=False,
                        epochs=2.0, save_model=False)
    part = ft.finetune(pool, ids, preset=PRESET, base=base, out=tmp_path / "cut", seed=3, progress=False,
                       epochs=2.0, stop_after=3, save_model=False)
    assert not part.finished and (tmp_path / "cut" / "checkpoint.pt").is_file()
    assert not (tmp_path / "cut" / "done.json").exists()
    resumed = ft.finetune(pool, ids, preset=PRESET, base=base, out=tmp_path / "cut", seed=3, progress=False,
                          epochs=2.0, save_model=False)
    assert resumed.finished and len(resumed.history) == len(whole.history)
    np.testing.assert_array_equal(resumed.history["loss"].to_numpy(), whole.history["loss"].to_numpy())
    w1, w2 = _weights(whole.model), _weights(resumed.model)
    assert all(np.array_equal(w1[n].numpy(), w2[n].numpy()) for n in w1)
    with pytest.raises(FileExistsError, match="other settings"):
        ft.finetune(pool, ids[:5], preset=PRESET, base=base, out=tmp_path / "cut", seed=3, progress=False,
                    epochs=2.0, save_model=False)


def test_curriculum_trains_stages_in_order(pool, ids, base, tmp_path):
    stages = [ids[:4], ids[4:8], ids[8:12]]
    run = ft.finetune(pool, stages=stages, preset=PRESET, base=base, out=tmp_path / "cur", seed=0, progress=False,
                      save_model=False)
    manifest = json.loads((tmp_path / "cur" / "manifest.json").read_text())
    assert manifest["stages"] == stages and manifest["ids"] == ids
    assert run.info["n_examples"] == 12


def test_ranking_is_exact_against_brute_force(base):
    import torch

    model, processor = ft.load_model(base)
    questions = ft.easyvqa_eval_set(per_type=2, seed=1)
    ranked = ft.evaluate(model, processor, questions, batch_size=4).table
    from kit.finetune.evaluate import ANSWERS, _Prompts, answer_text
    from kit.data import decode_image

    prompts = _Prompts(processor)
    with torch.inference_mode():
        for qid, row in questions.iterrows():
            prompt = prompts.prompt(row["question"])
            image = decode_image(row["image_path"])
            base_ids = processor(text=[prompt], images=[image], return_tensors="pt", add_special_tokens=False)
            n = base_ids["input_ids"].shape[1]
            for a in ANSWERS:
                enc = processor(text=[prompt + answer_text(a)], images=[image], return_tensors="pt",
                                add_special_tokens=False)
                logp = torch.log_softmax(model(**enc).logits[0].float(), -1)
                ids = enc["input_ids"][0]
                want = sum(float(logp[t - 1, ids[t]]) for t in range(n, len(ids)))
                assert abs(ranked.loc[qid, a] - want) < 1e-3, (qid, a)
    assert (ranked["prediction"] == ranked[list(ANSWERS)].idxmax(axis=1)).all()


def test_ranking_of_per_question_candidates_is_exact(base, tmp_path):
    """Questions that carry their own candidates (the testbed's: words, letters, numbers, two-word answers) are
    ranked exactly too, one score per candidate in order."""
    import torch

    from kit.data import decode_image
    from kit.finetune.evaluate import _Prompts
    from kit.pools import testbed

    model, processor = ft.load_model(base)
    q = testbed.heldout_questions(families=["position", "arithmetic", "ocr"], per_family=3, seed=2,
                                  folder=tmp_path / "q")
    ranked = ft.evaluate(model, processor, q, batch_size=4).table
    prompts = _Prompts(processor)
    with torch.inference_mode():
        for qid, row in q.iterrows():
            prompt = prompts.prompt(row["question"])
            image = decode_image(row["image_path"])
            n = processor(text=[prompt], images=[image], return_tensors="pt", add_special_tokens=False)[
                "input_ids"].shape[1]
            for k, cand in enumerate(row["candidates"]):
                enc = processor(text=[prompt + cand], images=[image], return_tensors="pt", add_special_tokens=False)
                logp = torch.log_softmax(model(**enc).logits[0].float(), -1)
                ids = enc["input_ids"][0]
                want = sum(float(logp[t - 1, ids[t]]) for t in range(n, len(ids)))
                assert abs(ranked.loc[qid, "scores"][k] - want) < 1e-3, (qid, cand)
            assert ranked.loc[qid, "prediction"] == row["candidates"][int(np.argmax(ranked.loc[qid, "scores"]))]
    assert set(ranked["family"]) == {"position", "arithmetic", "ocr"}


def test_eval_set_is_balanced_held_out_and_typed():
    q = ft.easyvqa_eval_set(per_type=50, seed=0)
    assert q["type"].value_counts().to_dict() == {"colour": 50, "shape": 50, "yes/no": 50}
    assert q.index.str.startswith("test_").all() and q.equals(ft.easyvqa_eval_set(per_type=50, seed=0))
    assert set(q["template"]) <= {"word_color", "word_shape", "yn_color", "yn_color_negated", "yn_shape",
                                  "yn_shape_negated"}
    from kit.finetune.evaluate import summarise

    truth = pd.Series(q["answer"].to_numpy(), index=q.index)
    s = summarise(q, truth)
    assert s["accuracy"] == 1.0 and s["accuracy_cap_attribute"] == 1.0 and "accuracy_cap_logical" in s
    assert 0 < s["majority"] < s["majority_yes/no"] <= 1


def test_finetuned_folder_loads_in_the_loss_scorer(pool, ids, base, tmp_path):
    run = ft.finetune(pool, ids[:6], preset=PRESET, base=base, out=tmp_path / "keep", seed=0, progress=False)
    folder = tmp_path / "keep" / "model"
    assert (folder / "config.json").is_file() and (folder / "processor_config.json").is_file() or \
        (folder / "preprocessor_config.json").is_file()
    sub = pool.subset(ids[:6])
    by_folder = kit.score(sub, "loss", model=str(folder), progress=False)
    from kit.quality.loss import LossScorer

    in_memory = LossScorer(run.model, processor=run.processor, progress=False).score(sub)
    assert (by_folder["status"] == "ok").all()
    np.testing.assert_allclose(by_folder["loss_mean"], in_memory["loss_mean"], rtol=1e-4)
    again = ft.finetune(pool, ids[:6], preset=PRESET, base=base, out=tmp_path / "keep", seed=0, progress=False)
    assert again.finished and again.model is not None  # a finished run folder is returned, model reloaded


def test_lora_trains_adapters_and_saves_a_plain_model(pool, ids, base, tmp_path):
    pytest.importorskip("peft")
    run = ft.finetune(pool, ids[:6], preset=PRESET, base=base, out=tmp_path / "lora", seed=0, progress=False,
                      lora=True, lora_r=4, lora_alpha=8, min_steps=3, max_steps=3)
    from transformers import AutoModelForImageTextToText

    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "lora" / "model")
    names = [n for n, _ in reloaded.named_parameters()]
    assert not any("lora_" in n for n in names)
    base_model, _ = ft.load_model(base)
    b = dict(base_model.named_parameters())
    changed = [n for n, p in reloaded.named_parameters() if not np.allclose(p.detach().numpy(), b[n].detach().numpy())]
    assert any("q_proj" in n for n in changed) and all("vision_tower" not in n for n in changed)
    assert run.info["steps"] == 3


def test_alignment_is_cached_by_its_settings(base, monkeypatch, tmp_path):
    import importlib
    import shutil

    align_module = importlib.import_module("kit.finetune.align")  # the package's ``align`` is the function

    monkeypatch.setattr(align_module, "cache_root", lambda: tmp_path)
    where = ft.aligned_path(PRESET)
    assert where.parent == tmp_path / "finetune" and where == ft.aligned_path(PRESET)
    assert ft.aligned_path(PRESET, steps=5) != where and ft.aligned_path(PRESET, seed=1) != where
    shutil.copytree(base, where)
    assert ft.align(PRESET, progress=False) == where and ft.base_model(PRESET) == where  # found, not rebuilt
    assert sorted(p.name for p in tmp_path.joinpath("finetune").iterdir()) == [where.name]  # no work folder


def test_standardised_projector_gives_centred_image_tokens_of_text_size():
    import torch

    from kit.models.vlm import build_vlm, standardise_projector

    model, _ = build_vlm(MICRO, seed=0)
    gen = torch.Generator().manual_seed(0)
    pixels = torch.rand(6, 3, MICRO.image_size, MICRO.image_size, generator=gen) * 2 - 1
    info = standardise_projector(model, pixels, target=2.0)
    with torch.no_grad():
        feats = model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[-1]
        out = model.model.multi_modal_projector(feats).reshape(-1, MICRO.lm_hidden)
    assert abs(float(out.norm(dim=-1).mean()) - 2.0) < 1e-3
    assert float(out.mean(0).norm()) < 1e-3 * float(out.norm(dim=-1).mean())
    assert info["feature_spread"] <= info["feature_norm"]


def test_per_sample_loss_reduction_matches_brute_force(pool, ids, processor, base):
    import torch

    from kit.finetune.train import batch_loss

    model, _ = ft.load_model(base)
    enc = ExampleEncoder(processor)
    examples, _ = enc.encode_pool(pool, ids[:3])
    inputs, labels = enc.collate(examples)
    with torch.inference_mode():
        token, n, _ = batch_loss(model, inputs, labels, reduction="token")
        sample, _, _ = batch_loss(model, inputs, labels, reduction="sample")
        means = [float(batch_loss(model, *enc.collate([e]), reduction="token")[0]) for e in examples]
    assert n == int(labels.sum())
    assert abs(float(sample) - np.mean(means)) < 1e-4
    weights = [e.n_trained for e in examples]
    assert abs(float(token) - np.average(means, weights=weights)) < 1e-4
    with pytest.raises(ValueError, match="reduction"):
        batch_loss(model, inputs, labels, reduction="mean")
