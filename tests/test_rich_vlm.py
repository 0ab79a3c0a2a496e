"""The vision-language rich scorer and styler, on the tiny random LLaVA-OneVision."""
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

import kit  # noqa: E402
from kit.capabilities import STYLES, capability_keys, expected_column  # noqa: E402
from kit.mmssr.rich_vlm import (STYLE, BatchConfig, DecodeConfig, InputConfig, LoadConfig, VLMRichScorer,  # noqa: E402
                                VLMStyler, digit_token_ids)
from kit.mmssr.tokens import IMAGE_TOKEN_INDEX  # noqa: E402
from tests.support.official_inputs import siglip_preprocess_port  # noqa: E402

CAPS = ["spatial", "ocr", "stem"]  # a few capabilities keep the tests fast; the full 14 run in one test
CONVERSATIONS = [
    [{"from": "human", "value": "<image>\nWhat colour is the square?"}, {"from": "gpt", "value": "Red."}],
    [{"from": "human", "value": "<image>\nHint: look closely.\nIs it big?"}, {"from": "gpt", "value": "Yes."},
     {"from": "human", "value": "Why?"}, {"from": "gpt", "value": "Because it is large  "}],  # trailing spaces
    [{"from": "human", "value": "Describe the season in this photo."},  # no <image>: the scorer adds one
     {"from": "gpt", "value": "Winter, with snow on the ground.\n"}],
    [{"from": "human", "value": "<image>\nHow many circles?"}, {"from": "gpt", "value": "3"}],
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tiny_llava):
    return tiny_llava


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """Four samples with small PNGs of different sizes; the last image is deleted after loading."""
    from PIL import Image

    root = tmp_path_factory.mktemp("vlm_pool")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    records = []
    for i, conv in enumerate(CONVERSATIONS):
        shape = (20 + 12 * i, 44 - 6 * i, 3)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(root / "images" / f"{i}.png")
        records.append({"id": f"s{i}", "image": f"{i}.png", "source": "a" if i % 2 else "b", "conversations": conv})
    (root / "pool.json").write_text(json.dumps(records))
    loaded = kit.load_pool(root / "pool.json")
    assert len(loaded) == 4
    return loaded


def _scorer(tiny, **options):
    model, processor = tiny
    options.setdefault("progress", False)
    return VLMRichScorer(model, processor, **options)


def _samples(scorer, pool, n=3):
    return [scorer.prepare(sid, pool.table.at[sid, "conversations"], pool.image(sid)) for sid in pool.ids[:n]]


def _base_view_features(model, processor, image):
    """The official single view (a port of the official preprocessing) through the Hugging Face model's own
    packing of an untiled image (base features + image_newline)."""
    ip = processor.image_processor
    pixels = siglip_preprocess_port(image, (ip.size.height, ip.size.width), ip.image_mean, ip.image_std)
    feats = model.model.get_image_features(pixel_values=pixels[:, None].repeat(2, 1, 1, 1, 1),
                                           image_sizes=torch.tensor([[40, 56]] * 2),
                                           batch_num_images=torch.tensor([2]))   # 2 images: no tiling
    return feats.pooler_output[0]


def _full_forward_logits(scorer, sample, name):
    """Next-token logits of one complete query, one plain forward (no cache), from the default official input:
    the sample's official ids with the base-view features spliced in at the placeholder."""
    model, processor = scorer.model, scorer.processor
    ids = sample.ids[name]
    emb = model.get_input_embeddings()(torch.tensor([max(t, 0) for t in ids]))
    if IMAGE_TOKEN_INDEX in ids:
        at = ids.index(IMAGE_TOKEN_INDEX)
        emb = torch.cat([emb[:at], _base_view_features(model, processor, sample.image), emb[at + 1:]])
    with torch.inference_mode():
        return model(inputs_embeds=emb[None]).logits[0, -1].float()


def _processor_forward_logits(scorer, sample, name):
    """Next-token logits of the Hugging Face path: the processor's text tokens and anyres tiles, one forward."""
    inputs = scorer.processor(images=[sample.image], text=[scorer.full_prompt(sample, name)], return_tensors="pt")
    with torch.inference_mode():
        return scorer.model(**inputs).logits[0, -1].float()


def test_digits_are_single_tokens(tiny):
    _, processor = tiny
    ids = digit_token_ids(processor.tokenizer)
    assert len(ids) == 6
    assert [processor.tokenizer.decode([v[0]]) for v in ids] == list("012345")
    assert len({v[0] for v in ids}) == 6


@pytest.mark.parametrize("batch_size,packed", [(1, True), (3, True), (3, False)])
def test_cached_prefix_logits_equal_full_forward(tiny, pool, batch_size, packed):
    # packed: all queries of a sample in one row with a 4-D mask; else the cache expanded to a row per query
    scorer = _scorer(tiny, capabilities=CAPS, style=True, batch_size=batch_size, query_batch_size=4, packed=packed)
    samples = _samples(scorer, pool)
    names = CAPS + [STYLE]
    for (prefix, rest), sample in zip(scorer._split_tokens(samples), samples):
        assert all(prefix + rest[name] == sample.ids[name] for name in names)
        assert IMAGE_TOKEN_INDEX in prefix
    # capabilities alone go through the two-level cache (prefix, then the shared query stem); with the style
    # query the queries share no stem
    cached = torch.cat([torch.cat([scorer.next_token_logits(samples[i:i + batch_size], CAPS),
                                   scorer.next_token_logits(samples[i:i + batch_size], [STYLE])], dim=1)
                        for i in range(0, len(samples), batch_size)])
    assert cached.shape == (3, len(names), len(scorer.tokenizer))
    for i, sample in enumerate(samples):
        for q, name in enumerate(names):
            full = _full_forward_logits(scorer, sample, name)
            assert float((cached[i, q] - full).abs().max()) < 1e-4, (sample.id, name)


def test_text_tokens_and_tiles_reproduce_the_processor_path(tiny, pool):
    scorer = _scorer(tiny, capabilities=CAPS, style=True, batch_size=2, tokens="text", image_view="tiles")
    samples = _samples(scorer, pool)
    cached = torch.cat([scorer.next_token_logits(samples[i:i + 2], CAPS + [STYLE]) for i in (0, 2)])
    official = _scorer(tiny, capabilities=CAPS)
    for i, sample in enumerate(samples):
        for q, name in enumerate(CAPS + [STYLE]):
            assert float((cached[i, q] - _processor_forward_logits(scorer, sample, name)).abs().max()) < 1e-4
        # the default input differs: one more newline token after the image, and one view instead of tiles
        prepared = official.prepare(sample.id, pool.table.at[sample.id, "conversations"], sample.image)
        assert len(prepared.ids[CAPS[0]]) == len(sample.ids[CAPS[0]]) + 1
        base = official.image_features([sample.image])[0]
        tiles = scorer.image_features([sample.image])[0]
        assert base.shape[0] == 16 + 1 and tiles.shape[0] > base.shape[0]   # 4x4 patches + image_newline
        assert torch.allclose(base, _base_view_features(*tiny, sample.image), atol=1e-6)


def test_rating_is_the_argmax_digit_and_the_expected_value_sits_beside_it(tiny, pool):
    scorer = _scorer(tiny, capabilities=CAPS)
    table = scorer.score(pool.subset(pool.ids[:2]))
    digits = [v[0] for v in digit_token_ids(scorer.tokenizer)]
    for sid in table.index:
        sample = scorer.prepare(sid, pool.table.at[sid, "conversations"], pool.image(sid))
        for key in CAPS:
            probs = torch.softmax(_full_forward_logits(scorer, sample, key)[digits], dim=0).numpy()
            assert table.at[sid, key] == int(probs.argmax())
            assert table.at[sid, expected_column(key)] == pytest.approx(float(probs @ np.arange(6)), abs=1e-4)
            assert 0 <= table.at[sid, expected_column(key)] <= 5
        assert 0 < table.at[sid, "digit_mass"] < 1
    rich = kit.score(pool.subset(pool.ids[:2]), "rich", backend="vlm", model=tiny[0], processor=tiny[1],
                     capabilities=CAPS, progress=False)
    keys = [k for k in capability_keys() if k in CAPS]                    # registry order
    assert list(kit.score_info(rich).columns) == keys + [expected_column(k) for k in keys]


def test_logits_argmax_equals_digit_restricted_generation(tiny, pool):
    sub = pool.subset(pool.ids[:3])
    logits = _scorer(tiny, capabilities=CAPS).score(sub)
    generated = _scorer(tiny, capabilities=CAPS, mode="generate", restrict_digits=True).score(sub)
    for key in CAPS:
        assert generated[key].notna().all()
        assert (generated[key].to_numpy() == logits[key].to_numpy()).all(), key
    assert (generated["status"] == "ok").all()


def test_generate_mode_parses_scores_and_styles(tiny, pool, monkeypatch):
    scorer = _scorer(tiny, capabilities=["spatial", "ocr", "stem", "data", "logical"], style=True, mode="generate")
    answers = {"spatial": "3", "ocr": " 4\n", "stem": "six", "data": "7", "logical": "3.5",
               STYLE: "yes/no, multi-choice, banana split, yes/no"}
    monkeypatch.setattr(scorer, "generate_text", lambda sample, name, restrict_digits=None: answers[name])
    table = scorer.score(pool.subset(pool.ids[:2]))
    row = table.iloc[0]
    assert row["spatial"] == 3 and row["ocr"] == 4
    assert all(math.isnan(row[k]) for k in ("stem", "data", "logical"))
    # every name is kept (the official sampler bins any text); those outside the 9 are listed too
    assert row["styles"] == ["yes/no", "multi-choice", "banana split"] and row["styles_unknown"] == ["banana split"]
    assert "unparsed score: stem,data,logical" in row["status"] and "banana split" in row["status"]


def test_generate_mode_on_a_random_model_gives_nan_not_garbage(tiny, pool):
    table = _scorer(tiny, capabilities=["ocr"], mode="generate", max_new_tokens=3).score(pool.subset(["s0"]))
    assert math.isnan(table.at["s0", "ocr"])  # random tokens are not a digit 0-5
    assert table.at["s0", "status"].startswith("unparsed score: ocr")


def test_style_from_cached_prefix_equals_generate_mode(tiny, pool):
    sub = pool.subset(pool.ids[:3])
    cached = VLMStyler(*tiny, style_max_new_tokens=6, batch_size=3, progress=False).score(sub)
    generated = VLMStyler(*tiny, mode="generate", style_max_new_tokens=6, progress=False).score(sub)
    assert list(cached.columns) == ["styles", "styles_unknown", "style_text", "source", "status"]
    assert cached["style_text"].tolist() == generated["style_text"].tolist()
    assert all(text for text in cached["style_text"])
    for styles, unknown in zip(cached["styles"], cached["styles_unknown"]):
        assert unknown == [name for name in styles if name not in STYLES]


def test_table_has_one_row_per_sample_and_reports_failures(tiny, pool):
    import os

    broken = pool.table.at["s3", "image_path"]
    os.remove(broken)  # the image disappears after the pool was loaded
    try:
        table = _scorer(tiny, style=True, style_max_new_tokens=3, batch_size=2).score(pool)
    finally:
        from PIL import Image
        Image.new("RGB", (8, 8)).save(broken)
    keys = capability_keys()
    assert list(table.index) == pool.ids and table.index.name == "id"
    assert list(table.columns[:len(keys)]) == keys
    assert {expected_column(k) for k in keys} <= set(table.columns)
    assert {"styles", "styles_unknown", "style_text", "digit_mass", "source", "status"} <= set(table.columns)
    assert table.loc[["s0", "s1", "s2"], keys].notna().all().all()
    assert table.loc["s3", keys].isna().all() and table.at["s3", "status"].startswith("image_error")
    assert table.at["s3", "styles"] == []
    assert table["source"].tolist() == pool.table["source"].tolist()


def test_loads_a_saved_model_by_path(tiny, pool, tiny_llava_dir):
    by_path = VLMRichScorer(str(tiny_llava_dir), capabilities=CAPS, progress=False).score(pool.subset(["s0", "s1"]))
    in_memory = _scorer(tiny, capabilities=CAPS).score(pool.subset(["s0", "s1"]))
    np.testing.assert_allclose(by_path[CAPS].to_numpy(), in_memory[CAPS].to_numpy(), atol=1e-5)


def test_bad_options_fail_clearly(tiny):
    with pytest.raises(ValueError, match="needs model="):
        VLMRichScorer()
    with pytest.raises(ValueError, match="mode"):
        _scorer(tiny, mode="sample")
    with pytest.raises(KeyError, match="unknown capability"):
        _scorer(tiny, capabilities=["telepathy"])
    with pytest.raises(ValueError, match="nothing to ask"):
        _scorer(tiny, capabilities=[])
    with pytest.raises(ValueError, match="tokens"):
        _scorer(tiny, tokens="words")
    with pytest.raises(ValueError, match="image_view"):
        _scorer(tiny, image_view="crops")
    with pytest.raises(ValueError, match="tokens='text'"):
        _scorer(tiny, image_newline=True)


def test_options_group_into_configs_and_flat_options_still_work(tiny, pool):
    flat = _scorer(tiny, capabilities=CAPS, style=True, batch_size=2, query_batch_size=3, packed=False,
                   style_max_new_tokens=4, system="Be brief.", image_view="tiles")
    grouped = _scorer(tiny, capabilities=CAPS, style=True, batching=BatchConfig(2, 3, packed=False),
                      decoding=DecodeConfig(style_max_new_tokens=4), inputs=InputConfig(system="Be brief.",
                                                                                         image_view="tiles"))
    for attr in ("loading", "inputs", "decoding", "batching"):
        assert getattr(flat, attr) == getattr(grouped, attr), attr
    assert flat.loading == LoadConfig() and flat.inputs.tokens == "official" and flat.decoding.max_new_tokens == 8
    sub = pool.subset(pool.ids[:2])
    a, b = flat.score(sub), grouped.score(sub)
    np.testing.assert_allclose(a[CAPS].to_numpy(), b[CAPS].to_numpy())
    assert a["style_text"].tolist() == b["style_text"].tolist()

    given = BatchConfig(batch_size=4)
    both = _scorer(tiny, capabilities=CAPS, batching=given, batch_size=2)   # a flat option overrides its field
    assert both.batching == BatchConfig(batch_size=2) and given.batch_size == 4
    with pytest.raises(TypeError, match="unknown options \\['batchsize'\\].*'batch_size'"):
        _scorer(tiny, batchsize=2)
    with pytest.raises(TypeError, match="batching= takes a BatchConfig, not dict"):
        _scorer(tiny, batching={"batch_size": 2})
    with pytest.raises(ValueError, match="at least 1"):
        BatchConfig(batch_size=0)
    with pytest.raises(ValueError, match="tokens='text'"):
        InputConfig(image_newline=True)
