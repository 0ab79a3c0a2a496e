"""Convert an original LLaVA-OneVision checkpoint (LLaVA-NeXT code, e.g. the released mmSSR scorer and styler)
to the Hugging Face ``LlavaOnevisionForConditionalGeneration`` format::

    kit convert path/to/mmssr-7b-scorer path/to/mmssr-7b-scorer-hf      # or python -m kit.mmssr.convert
    kit.score(pool, "rich", backend="vlm", model="path/to/mmssr-7b-scorer-hf", device="cuda")

The source folder is what LLaVA-NeXT's training saves: ``config.json`` (a Qwen2 config plus the ``mm_*`` keys),
the weights as safetensors or ``pytorch_model*.bin`` files (sharded or not) and the tokenizer files. Its
key layout (``llava/model/llava_arch.py``, ``llava/model/multimodal_encoder/siglip_encoder.py``,
``llava/model/multimodal_projector/builder.py`` of the LLaVA-NeXT / mmSSR code) is mapped onto the model of the
installed transformers version:

=============================================================  ==================================================
original                                                       Hugging Face
=============================================================  ==================================================
``model.embed_tokens.*``, ``model.layers.*``, ``model.norm.*``   the language model (Qwen2)
``lm_head.weight`` (or the tied input embeddings)              ``lm_head.weight``
``model.vision_tower.vision_tower.vision_model.*``             the SigLIP vision tower
``model.mm_projector.0.*`` / ``model.mm_projector.2.*``        ``multi_modal_projector.linear_1`` / ``linear_2``
``model.image_newline``                                        ``image_newline``
=============================================================  ==================================================

The configuration: the text config from ``config.json``; the vision config read off the weights (width,
patch size, image size, depth, MLP width; LLaVA-NeXT already dropped SigLIP's last layer, so the features are
the last hidden state, ``vision_feature_layer=-1``), its number of attention heads from ``--vision-heads``
(default: width / 72, SigLIP-so400m's head size); ``image_grid_pinpoints`` (a list, or the ``"(1x1),...,(6x6)"``
form, in multiples of the vision input size), ``image_aspect_ratio`` as ``vision_aspect_ratio``. The tokenizer
gets ``<image>`` and ``<video>`` as special tokens; when their ids fall outside the embedding table, the table
grows by the mean input/output embedding (deterministic, unlike the random rows of the transformers script
``convert_llava_onevision_weights_to_hf.py``; those rows only ever stand for image features). The processor
uses the PIL image backend where transformers has one, as the official ``SigLipImageProcessor`` does.
Supported: SigLIP vision towers with the ``mlp2x_gelu`` projector and ``spatial_unpad`` patch merging
(LLaVA-OneVision, mmSSR); anything else is refused with the reason.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

IGNORED = (re.compile(r"\.inv_freq$"), re.compile(r"^model\.vision_resampler\."),
           re.compile(r"^model\.vision_tower\.vision_tower\.vision_model\.head\."))   # SigLIP's MAP head: unused
VISION_PREFIX = "model.vision_tower.vision_tower.vision_model."
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>\\n' }}{% elif part['type'] == 'video' %}{{ '<video>\\n' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


class ConversionError(ValueError):
    """The source folder is not an original LLaVA-OneVision checkpoint the converter supports."""


# ----------------------------------------------------------------------------- reading the source
def load_original_state_dict(src) -> dict:
    """All tensors of an original checkpoint folder (safetensors or ``.bin`` files, sharded or not)."""
    import torch

    src = Path(src)
    files = sorted(src.glob("*.safetensors"))
    out = {}
    if files:
        from safetensors.torch import load_file

        for f in files:
            out.update(load_file(str(f)))
    else:
        files = sorted(src.glob("pytorch_model*.bin")) or sorted(src.glob("*.bin"))
        for f in files:
            out.update(torch.load(f, map_location="cpu", weights_only=True))
    if not out:
        raise ConversionError(f"{src}: no *.safetensors or pytorch_model*.bin weights")
    return out


def grid_pinpoints(value, image_size: int) -> list[list[int]]:
    """``image_grid_pinpoints`` as a list of [height, width] (the ``"(1x1),...,(6x6)"`` form expanded)."""
    if isinstance(value, str) and "x" in value:
        found = [tuple(map(int, m)) for m in re.findall(r"\((\d+)x(\d+)\)", value)]
        if not found:
            raise ConversionError(f"cannot read image_grid_pinpoints {value!r}")
        (r0, c0), (r1, c1) = found[0], found[-1]
        return [[i * image_size, j * image_size] for i in range(r0, r1 + 1) for j in range(c0, c1 + 1)]
    if isinstance(value, str):
        value = json.loads(value)
    if not value:
        return [[image_size, image_size]]
    return [[int(h), int(w)] for h, w in value]


def vision_config_from_weights(state: dict, heads: int | None = None) -> dict:
    """The SigLIP vision config implied by the tower's tensors (and ``heads``)."""
    p = VISION_PREFIX
    try:
        patch = state[p + "embeddings.patch_embedding.weight"]
        positions = state[p + "embeddings.position_embedding.weight"]
        fc1 = state[p + "encoder.layers.0.mlp.fc1.weight"]
    except KeyError as exc:
        raise ConversionError(f"no SigLIP vision tower weights ({exc.args[0]} is missing)") from None
    hidden, channels, patch_size = int(patch.shape[0]), int(patch.shape[1]), int(patch.shape[2])
    side = math.isqrt(int(positions.shape[0]))
    if side * side != positions.shape[0]:
        raise ConversionError(f"the vision tower has {positions.shape[0]} positions, not a square grid")
    layers = 1 + max(int(m.group(1)) for k in state
                     if (m := re.match(re.escape(p) + r"encoder\.layers\.(\d+)\.", k)))
    if heads is None:
        if hidden % 72:
            raise ConversionError(f"cannot infer the vision tower's attention heads for width {hidden}; "
                                  "pass --vision-heads")
        heads = hidden // 72
    return {"hidden_size": hidden, "intermediate_size": int(fc1.shape[0]), "num_hidden_layers": layers,
            "num_attention_heads": int(heads), "num_channels": channels, "image_size": side * patch_size,
            "patch_size": patch_size, "layer_norm_eps": 1e-6, "hidden_act": "gelu_pytorch_tanh",
            "vision_use_head": False}


def text_config_dict(original: dict) -> dict:
    """The Qwen2 fields of an original ``config.json``."""
    from transformers import Qwen2Config

    allowed = set(Qwen2Config().to_dict()) - {"architectures", "model_type", "transformers_version", "_name_or_path"}
    return {k: v for k, v in original.items() if k in allowed and not k.startswith("mm_")}


def _check_supported(original: dict) -> None:
    tower = str(original.get("mm_vision_tower", ""))
    if "siglip" not in tower.lower():
        raise ConversionError(f"only SigLIP vision towers are supported (LLaVA-OneVision, mmSSR), not {tower!r}")
    projector = original.get("mm_projector_type", "linear")
    if projector != "mlp2x_gelu":
        raise ConversionError(f"only the mlp2x_gelu projector is supported, not {projector!r}")
    merge = str(original.get("mm_patch_merge_type", "flat"))
    if "unpad" not in merge:
        raise ConversionError(f"only spatial_unpad patch merging (with image_newline) is supported, not {merge!r}")


# ----------------------------------------------------------------------------- mapping
def _prefixes(keys: set[str]) -> dict[str, str]:
    """Where the parts live in the installed transformers' LlavaOnevisionForConditionalGeneration."""
    def find(candidates, probe):
        for c in candidates:
            if c + probe in keys:
                return c
        raise ConversionError(f"cannot find {probe!r} in this transformers version's LLaVA-OneVision model")

    return {"lm": find(["model.language_model.", "language_model.model.", "language_model."], "embed_tokens.weight"),
            "head": find(["", "language_model."], "lm_head.weight"),
            "vision": find(["model.vision_tower.vision_model.", "vision_tower.vision_model.", "model.vision_tower.",
                            "vision_tower."], "embeddings.patch_embedding.weight"),
            "projector": find(["model.multi_modal_projector.", "multi_modal_projector."], "linear_1.weight"),
            "newline": find(["model.", ""], "image_newline")}


def map_state_dict(state: dict, target_keys: set[str]) -> tuple[dict, list[str]]:
    """Original tensors under the target model's key names, and the original keys left out on purpose."""
    where = _prefixes(target_keys)
    out, skipped = {}, []
    for key, value in state.items():
        if any(rx.search(key) for rx in IGNORED):
            skipped.append(key)
            continue
        if key.startswith(VISION_PREFIX):
            new = where["vision"] + key[len(VISION_PREFIX):]
        elif key.startswith("model.mm_projector."):
            m = re.match(r"model\.mm_projector\.(\d+)\.(weight|bias)$", key)
            if not m or m.group(1) not in ("0", "2"):
                raise ConversionError(f"unexpected projector tensor {key!r} (mlp2x_gelu has layers 0 and 2)")
            new = where["projector"] + {"0": "linear_1.", "2": "linear_2."}[m.group(1)] + m.group(2)
        elif key == "model.image_newline":
            new = where["newline"] + "image_newline"
        elif key == "lm_head.weight":
            new = where["head"] + "lm_head.weight"
        elif key.startswith("model."):
            new = where["lm"] + key[len("model."):]
        else:
            raise ConversionError(f"unexpected tensor {key!r} in the original checkpoint")
        out[new] = value
    head = where["head"] + "lm_head.weight"
    if head not in out and head in target_keys:
        out[head] = out[where["lm"] + "embed_tokens.weight"]   # tied: the head is the input embedding
    return out, skipped


def _grow(table, rows: int):
    """``table`` with extra rows equal to its mean row (deterministic)."""
    import torch

    if rows <= table.shape[0]:
        return table
    mean = table.float().mean(0, keepdim=True).to(table.dtype)
    return torch.cat([table, mean.expand(rows - table.shape[0], -1)], dim=0)


# ----------------------------------------------------------------------------- the conversion
def convert(src, dst, vision_heads: int | None = None, dtype: str | None = None) -> Path:
    """Convert the original checkpoint folder ``src`` into a Hugging Face folder ``dst``; returns ``dst``."""
    import torch
    from transformers import (AddedToken, AutoTokenizer, LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration,
                              LlavaOnevisionProcessor, Qwen2Config, SiglipVisionConfig)

    src, dst = Path(src), Path(dst)
    config_path = src / "config.json"
    if not config_path.is_file():
        raise ConversionError(f"{src}: no config.json")
    original = json.loads(config_path.read_text())
    _check_supported(original)
    state = load_original_state_dict(src)
    if "model.image_newline" not in state:
        raise ConversionError(f"{src}: no model.image_newline tensor although mm_patch_merge_type asks for one")

    tokenizer = AutoTokenizer.from_pretrained(src)
    missing = [t for t in ("<image>", "<video>") if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in missing], special_tokens=True)
    image_id, video_id = (int(tokenizer.convert_tokens_to_ids(t)) for t in ("<image>", "<video>"))

    text = text_config_dict(original)
    embed = state["model.embed_tokens.weight"]
    vocab = max(int(embed.shape[0]), len(tokenizer), image_id + 1, video_id + 1)
    if vocab > embed.shape[0]:
        state["model.embed_tokens.weight"] = _grow(embed, vocab)
        if "lm_head.weight" in state:
            state["lm_head.weight"] = _grow(state["lm_head.weight"], vocab)
    text["vocab_size"] = vocab
    vision = vision_config_from_weights(state, vision_heads)
    image_size = vision["image_size"]
    pinpoints = grid_pinpoints(original.get("image_grid_pinpoints"), image_size)
    config = LlavaOnevisionConfig(
        text_config=Qwen2Config(**text).to_dict(), vision_config=SiglipVisionConfig(**vision).to_dict(),
        image_token_id=image_id, video_token_id=video_id, image_grid_pinpoints=pinpoints,
        vision_feature_layer=-1, vision_feature_select_strategy="full",
        vision_aspect_ratio=str(original.get("image_aspect_ratio", "anyres_max_9")),
        use_image_newline_parameter=True, tie_word_embeddings=bool(original.get("tie_word_embeddings", False)))

    with torch.device("meta"):
        model = LlavaOnevisionForConditionalGeneration(config)
    target = set(model.state_dict())
    mapped, _ = map_state_dict(state, target)
    tied = config.tie_word_embeddings
    wanted = {k for k in target if not (tied and k.endswith("lm_head.weight"))}
    lacking = sorted(wanted - set(mapped))
    extra = sorted(set(mapped) - target)
    if lacking or extra:
        raise ConversionError(f"{src}: the weights do not fit the model: missing {lacking[:5]}"
                              f"{' ...' if len(lacking) > 5 else ''}, unexpected {extra[:5]}")
    if dtype is not None:
        mapped = {k: v.to(getattr(torch, dtype)) if v.is_floating_point() else v for k, v in mapped.items()}
    model.load_state_dict(mapped, strict=not tied, assign=True)
    if tied:
        model.tie_weights()
    model.eval()
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dst)
    processor = LlavaOnevisionProcessor(
        image_processor=_image_processor(image_size, pinpoints), tokenizer=tokenizer,
        video_processor=_video_processor(image_size), num_image_tokens=(image_size // vision["patch_size"]) ** 2,
        vision_feature_select_strategy="full", chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(dst)
    (dst / "kit_conversion.json").write_text(json.dumps({
        "source": str(src), "converter": "kit.mmssr.convert", "vision_heads": vision["num_attention_heads"],
        "vocab_grown_from": int(embed.shape[0]), "vocab_size": vocab,
        "image_grid_pinpoints": pinpoints, "vision_aspect_ratio": config.vision_aspect_ratio}, indent=1))
    return dst


def _image_processor(image_size: int, pinpoints):
    """LLaVA-OneVision's image processor, PIL backend where there is one (as the official SigLipImageProcessor)."""
    import transformers

    cls = getattr(transformers, "LlavaOnevisionImageProcessorPil", None) or transformers.LlavaOnevisionImageProcessor
    return cls(size={"height": image_size, "width": image_size}, image_grid_pinpoints=pinpoints,
               image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], do_pad=True)


def _video_processor(image_size: int):
    from transformers import LlavaOnevisionVideoProcessor

    return LlavaOnevisionVideoProcessor(size={"height": image_size, "width": image_size})


if __name__ == "__main__":  # python -m kit.mmssr.convert: an alias of kit convert (kit.commands.convert)
    from kit.cli import alias

    raise SystemExit(alias("convert"))
