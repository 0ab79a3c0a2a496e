"""``kit convert`` (``python -m kit.mmssr.convert``): a tiny checkpoint in the original LLaVA-NeXT key layout, built offline with
random weights, converts to the Hugging Face format, and the converted model's logits equal a reference forward
computed from the original weights the way the official inference runs (SigLIP features of the base view, the
mlp2x_gelu projector, image_newline, the ids of preprocess_qwen, the Qwen2 language model)."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

from kit.cli import main as kit_main  # noqa: E402
from kit.mmssr.convert import ConversionError, grid_pinpoints  # noqa: E402
from kit.mmssr.prompts import queries, user_content  # noqa: E402
from kit.mmssr.rich_vlm import VLMRichScorer  # noqa: E402
from kit.mmssr.tokens import IMAGE_TOKEN_INDEX  # noqa: E402
from tests.support.official_inputs import preprocess_qwen_port, siglip_preprocess_port  # noqa: E402
from tests.support.tiny_llava import tiny_tokenizer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
IMAGE, PATCH, VISION, HIDDEN = 32, 8, 32, 64
CONV = [{"from": "human", "value": "<image>\nWhat colour is the square?"}, {"from": "gpt", "value": "Red."}]


def _original_parts(seed=0):
    """The modules an original LLaVA-OneVision is made of (LlavaQwenForCausalLM is a Qwen2ForCausalLM)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(seed)
    lm = Qwen2ForCausalLM(Qwen2Config(vocab_size=49152, hidden_size=HIDDEN, intermediate_size=128,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=2048, tie_word_embeddings=False)).eval()
    tower = SiglipVisionModel(SiglipVisionConfig(hidden_size=VISION, intermediate_size=64, num_hidden_layers=2,
                                                 num_attention_heads=2, image_size=IMAGE, patch_size=PATCH,
                                                 vision_use_head=False)).eval()
    projector = torch.nn.Sequential(torch.nn.Linear(VISION, HIDDEN), torch.nn.GELU(),
                                    torch.nn.Linear(HIDDEN, HIDDEN)).eval()
    newline = torch.randn(HIDDEN) / HIDDEN ** 0.5
    return lm, tower, projector, newline


def _write_original(folder, parts, tokenizer, shards=2, fmt="safetensors"):
    """An original checkpoint folder: config.json with mm_* keys, weights in the original key layout."""
    lm, tower, projector, newline = parts
    state = {k: v for k, v in lm.state_dict().items()}                          # model.*, lm_head.weight
    # LLaVA-NeXT's own SigLipVisionModel copy keeps SigLIP's vision_model.* names (transformers 5 drops the prefix)
    state.update({"model.vision_tower.vision_tower." + (k if k.startswith("vision_model.") else "vision_model." + k): v
                  for k, v in tower.state_dict().items()})
    state.update({f"model.mm_projector.{k}": v for k, v in projector.state_dict().items()})
    state["model.image_newline"] = newline
    state = {k: v.contiguous().clone() for k, v in state.items()}
    folder.mkdir(parents=True)
    keys = sorted(state)
    chunks = [keys[i::shards] for i in range(shards)]
    if fmt == "safetensors":
        from safetensors.torch import save_file

        index = {}
        for i, chunk in enumerate(chunks):
            name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            save_file({k: state[k] for k in chunk}, str(folder / name), metadata={"format": "pt"})
            index.update({k: name for k in chunk})
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": index}))
    else:
        for i, chunk in enumerate(chunks):
            torch.save({k: state[k] for k in chunk}, folder / f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin")
    config = {k: v for k, v in lm.config.to_dict().items() if k not in ("architectures", "transformers_version")}
    config.update({"architectures": ["LlavaQwenForCausalLM"], "model_type": "llava_qwen",
                   "mm_vision_tower": "google/siglip-so400m-patch14-384", "mm_projector_type": "mlp2x_gelu",
                   "mm_hidden_size": VISION, "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch",
                   "mm_patch_merge_type": "spatial_unpad", "image_aspect_ratio": "anyres_max_9",
                   "image_grid_pinpoints": "(1x1),...,(2x2)", "mm_newline_position": "one_token",
                   "use_mm_proj": True, "tokenizer_model_max_length": 2048})
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer.save_pretrained(folder)
    return folder


def _official_pixels(image):
    return siglip_preprocess_port(image, (IMAGE, IMAGE))


def _reference_logits(parts, tokenizer, image, query):
    """The official forward from the original modules: features of the base view + image_newline spliced into
    the embeddings of the preprocess_qwen ids at IMAGE_TOKEN_INDEX, then the Qwen2 LM."""
    lm, tower, projector, newline = parts
    with torch.inference_mode():
        feats = projector(tower(_official_pixels(image), output_hidden_states=True).hidden_states[-1])[0]
        feats = torch.cat([feats, newline[None]])
        ids = preprocess_qwen_port(user_content(CONV, query), tokenizer)
        at = ids.index(IMAGE_TOKEN_INDEX)
        emb = lm.get_input_embeddings()(torch.tensor([t if t >= 0 else 0 for t in ids]))
        emb = torch.cat([emb[:at], feats, emb[at + 1:]])
        return lm(inputs_embeds=emb[None]).logits[0, -1]


@pytest.fixture(scope="module")
def image():
    from PIL import Image

    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8))


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_converted_model_reproduces_the_original_forward(tmp_path, image, fmt):
    tok = tiny_tokenizer()        # SmolLM2's tokenizer (ChatML), with <image>/<video> beyond the LM's 49152 rows
    parts = _original_parts()
    src = _write_original(tmp_path / "original", parts, tok, fmt=fmt)
    dst = tmp_path / "hf"
    assert kit_main(["convert", str(src), str(dst), "--vision-heads", "2"]) == 0
    info = json.loads((dst / "kit_conversion.json").read_text())
    assert info["vocab_grown_from"] == 49152 and info["vocab_size"] == len(tok)
    assert info["image_grid_pinpoints"] == [[32, 32], [32, 64], [64, 32], [64, 64]]

    scorer = VLMRichScorer(str(dst), capabilities=["ocr", "spatial"], style=True, progress=False)
    assert type(scorer.model).__name__ == "LlavaOnevisionForConditionalGeneration"
    sample = scorer.prepare("s0", CONV, image)
    # the kit's base view is the official preprocessing (with the converted processor's size, mean and std)
    assert torch.equal(scorer.base_view_pixels([image]), _official_pixels(image))
    cached = scorer.next_token_logits([sample], ["ocr", "spatial", "style"])[0]
    for q, name in enumerate(["ocr", "spatial", "style"]):
        ref = _reference_logits(parts, tok, image, queries()[name])
        assert sample.ids[name] == preprocess_qwen_port(user_content(CONV, queries()[name]), tok)
        assert float((cached[q, :49152] - ref).abs().max()) < 1e-4, name
    # the two added rows are the mean embedding (deterministic)
    emb = scorer.model.get_input_embeddings().weight
    assert torch.allclose(emb[49152], parts[0].get_input_embeddings().weight.mean(0), atol=1e-6)


def test_unsupported_checkpoints_are_refused(tmp_path, capsys):
    tok = tiny_tokenizer()
    src = _write_original(tmp_path / "original", _original_parts(), tok, shards=1)
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "mm_vision_tower": "openai/clip-vit-large-patch14"}))
    assert kit_main(["convert", str(src), str(tmp_path / "out")]) == 1    # refused: one line, exit code 1
    err = capsys.readouterr().err
    assert "only SigLIP" in err and err.startswith("kit convert: error: ") and len(err.strip().splitlines()) == 1
    (src / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConversionError, match="--vision-heads"):   # width 32: not SigLIP-so400m's head size
        from kit.mmssr.convert import convert
        convert(src, tmp_path / "out")
    assert grid_pinpoints([[384, 768]], 384) == [[384, 768]]
    assert len(grid_pinpoints("(1x1),...,(6x6)", 384)) == 36
