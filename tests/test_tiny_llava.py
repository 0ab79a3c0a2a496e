"""The tiny, randomly initialised LLaVA-OneVision used to test vision-language code paths."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

from tests.support.tiny_llava import NUM_IMAGE_TOKENS, build_tiny_llava  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tiny_llava):
    return tiny_llava


@pytest.fixture(scope="module")
def image():
    from PIL import Image

    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))


def _inputs(processor, image, question="What is in the picture?"):
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"},
                                                                       {"type": "text", "text": question}]}],
                                         add_generation_prompt=True, tokenize=False)
    return text, processor(images=[image], text=[text], return_tensors="pt")


def test_tokenizer_is_smollm2_with_image_tokens(tiny):
    _, processor = tiny
    tok = processor.tokenizer
    assert len(tok) == 49152 + 2
    for special in ("<image>", "<video>"):
        ids = tok.encode(special, add_special_tokens=False)
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids) == [special]
    for digit in "012345":  # one token per digit, as the logits-mode scorer needs
        ids = tok.encode(digit, add_special_tokens=False)
        assert len(ids) == 1 and tok.decode(ids) == digit
    assert tok.encode("Hello world", add_special_tokens=False) == tok.encode("Hello world")  # no BOS added


def test_chat_template_is_qwen_chatml(tiny, image):
    _, processor = tiny
    text, inputs = _inputs(processor, image)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\n"
                    "What is in the picture?<|im_end|>\n<|im_start|>assistant\n")
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    n_image = int((inputs["input_ids"] == image_id).sum())
    assert n_image >= NUM_IMAGE_TOKENS  # one placeholder expanded into base features plus the anyres tile


def test_build_is_seeded_and_small(tiny):
    model, _ = tiny
    again, _ = build_tiny_llava(seed=0)
    other, _ = build_tiny_llava(seed=1)
    n_params = sum(p.numel() for p in model.parameters())
    assert 5e6 < n_params < 8e6
    a, b, c = (dict(m.named_parameters()) for m in (model, again, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert not model.training and next(model.parameters()).dtype == torch.float32


def test_forward_and_generate_run(tiny, image):
    model, processor = tiny
    _, inputs = _inputs(processor, image)
    with torch.inference_mode():
        logits = model(**inputs).logits
        out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert logits.shape == (1, inputs["input_ids"].shape[1], len(processor.tokenizer))
    assert torch.isfinite(logits).all()
    assert out.shape[1] == inputs["input_ids"].shape[1] + 3


def test_saved_model_loads_by_path_like_a_hub_model(tiny, image, tiny_llava_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model, processor = tiny
    path = tiny_llava_dir   # saved by save_tiny_llava (tests/conftest.py)
    loaded = AutoModelForImageTextToText.from_pretrained(path).eval()
    loaded_proc = AutoProcessor.from_pretrained(path)
    text, inputs = _inputs(processor, image)
    loaded_inputs = loaded_proc(images=[image], text=[text], return_tensors="pt")
    assert torch.equal(inputs["input_ids"], loaded_inputs["input_ids"])
    assert loaded_proc.tokenizer.chat_template == processor.tokenizer.chat_template
    with torch.inference_mode():
        diff = (model(**inputs).logits - loaded(**loaded_inputs).logits).abs().max()
    assert float(diff) < 1e-5
