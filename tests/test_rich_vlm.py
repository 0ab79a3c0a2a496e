"""The vision-language rich scorer and styler, on the tiny random LLaVA-OneVision."""
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

import kit  # noqa: E402
from kit.capabilities import STYLES, capability_keys  # noqa: E402
from tests.support.tiny_llava import build_tiny_llava, save_tiny_llava  # noqa: E402
from kit.mmssr.rich_vlm import STYLE, VLMRichScorer, VLMStyler, digit_token_ids  # noqa: E402

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
def tiny():
    return build_tiny_llava(seed=0)


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


def _full_forward_logits(scorer, sample, name):
    model, processor = scorer.model, scorer.processor
    inputs = processor(images=[sample.image], text=[scorer.full_prompt(sample, name)], return_tensors="pt")
    with torch.inference_mode():
        return model(**inputs).logits[0, -1].float()


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
    plans = scorer._split_tokens(samples)
    assert any(drop > 0 for drop, _, _ in plans)  # a whitespace merge across the prefix/suffix boundary is covered
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


def test_expected_score_is_the_digit_distribution_of_a_full_forward(tiny, pool):
    scorer = _scorer(tiny, capabilities=CAPS)
    table = scorer.score(pool.subset(pool.ids[:2]))
    digits = [v[0] for v in digit_token_ids(scorer.tokenizer)]
    for sid in table.index:
        sample = scorer.prepare(sid, pool.table.at[sid, "conversations"], pool.image(sid))
        for key in CAPS:
            probs = torch.softmax(_full_forward_logits(scorer, sample, key)[digits], dim=0).numpy()
            assert table.at[sid, key] == pytest.approx(float(probs @ np.arange(6)), abs=1e-4)
            assert table.at[sid, f"{key}_argmax"] == int(probs.argmax())
            assert 0 <= table.at[sid, key] <= 5
        assert 0 < table.at[sid, "digit_mass"] < 1


def test_logits_argmax_equals_digit_restricted_generation(tiny, pool):
    sub = pool.subset(pool.ids[:3])
    logits = _scorer(tiny, capabilities=CAPS).score(sub)
    generated = _scorer(tiny, capabilities=CAPS, mode="generate", restrict_digits=True).score(sub)
    for key in CAPS:
        assert generated[key].notna().all()
        assert (generated[key].astype(int).to_numpy() == logits[f"{key}_argmax"].to_numpy()).all(), key
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
    assert row["styles"] == ["yes/no", "multi-choice"] and row["styles_unknown"] == ["banana split"]
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
    for styles in cached["styles"]:
        assert set(styles) <= set(STYLES)


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
    assert {f"{k}_argmax" for k in keys} <= set(table.columns)
    assert {"styles", "styles_unknown", "style_text", "digit_mass", "source", "status"} <= set(table.columns)
    assert table.loc[["s0", "s1", "s2"], keys].notna().all().all()
    assert table.loc["s3", keys].isna().all() and table.at["s3", "status"].startswith("image_error")
    assert table.at["s3", "styles"] == []
    assert table["source"].tolist() == pool.table["source"].tolist()


def test_loads_a_saved_model_by_path(tiny, pool, tmp_path):
    path = save_tiny_llava(tmp_path / "tiny", seed=0)
    by_path = VLMRichScorer(str(path), capabilities=CAPS, progress=False).score(pool.subset(["s0", "s1"]))
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
