"""Small vision-language models built offline: SmolLM2's tokenizer with image tokens, and LLaVA models.

No vision-language weights install offline, so the kit composes its own Hugging Face models from parts
that do: SmolLM2-135M-Instruct's tokenizer (and embeddings or layers, :mod:`kit.models.smollm2`) plus a
SigLIP-style vision tower trained from scratch. Every model here is a stock ``transformers`` class
(``LlavaForConditionalGeneration`` with a ``LlavaProcessor``), so ``save_pretrained`` /
``AutoModelForImageTextToText.from_pretrained`` / ``AutoProcessor.from_pretrained`` handle it like any hub
checkpoint (``kit.score(pool, "loss", model=DIR)`` and the mmSSR VLM backend included).

- :func:`vlm_tokenizer`: SmolLM2's tokenizer with ``<image>`` and ``<video>`` added as special tokens and a
  Qwen ChatML chat template (with or without the default system turn); cached in memory and on disk.
- :class:`VLMSpec` and :func:`build_vlm`: a LLaVA model of a given size. The language model is either
  SmolLM2 itself or its first layers (``lm="smollm2"``), or a narrow Llama trained from scratch whose
  embeddings start as SmolLM2's projected onto their top principal components (``lm="pca"``).

Sizes and speeds of the presets that :mod:`kit.finetune` builds from these are in ``docs/methods.md``
("Fine-tuning and ablations").
"""
from __future__ import annotations

import copy
import functools
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from kit.cache import cache_root
from kit.models.smollm2 import gguf_location

IMAGE_TOKEN = "<image>"
VIDEO_TOKEN = "<video>"
CHATML_SYSTEM = "You are a helpful assistant."


def chatml_template(system: str | None = CHATML_SYSTEM) -> str:
    """Qwen ChatML as the LLaVA-OneVision checkpoints use it; ``system=None`` leaves out the default system turn.

    Content is either a string (kept verbatim, any ``<image>`` placeholder inside it included) or a list of
    ``{"type": "image"}`` / ``{"type": "text", "text": ...}`` parts (an image part becomes ``"<image>\\n"``).
    """
    default_system = ("{% if loop.first and message['role'] != 'system' %}"
                      "{{ '<|im_start|>system\\n" + system + "<|im_end|>\\n' }}"
                      "{% endif %}") if system else ""
    return ("{% for message in messages %}" + default_system +
            "{{ '<|im_start|>' + message['role'] + '\\n' }}"
            "{% if message['content'] is string %}{{ message['content'] }}"
            "{% else %}{% for part in message['content'] %}"
            "{% if part['type'] == 'image' %}{{ '<image>\\n' }}"
            "{% elif part['type'] == 'video' %}{{ '<video>\\n' }}"
            "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
            "{% endfor %}{% endif %}"
            "{{ '<|im_end|>\\n' }}"
            "{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


CHAT_TEMPLATE = chatml_template()


@functools.lru_cache(maxsize=1)
def _base_tokenizer():
    """SmolLM2's tokenizer with ``<image>``/``<video>`` added and the ChatML template; cached in memory and on disk."""
    from transformers import AutoTokenizer

    disk = cache_root() / "tiny_llava_tokenizer"
    if (disk / ".complete").exists():
        try:
            return AutoTokenizer.from_pretrained(disk)
        except Exception:  # a broken cache is rebuilt below
            shutil.rmtree(disk, ignore_errors=True)
    folder, gguf_file = gguf_location()
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    tok.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN, VIDEO_TOKEN]})
    tok.chat_template = CHAT_TEMPLATE
    try:  # write to a temporary folder, then rename, so a half-written cache is never read
        disk.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=disk.parent, prefix=".tok-"))
        tok.save_pretrained(tmp)
        (tmp / ".complete").touch()
        if not (disk / ".complete").exists():
            shutil.rmtree(disk, ignore_errors=True)
            os.replace(tmp, disk)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        pass  # an unwritable cache only costs time
    return tok


def vlm_tokenizer(system: str | None = CHATML_SYSTEM):
    """A private copy of SmolLM2's tokenizer with image tokens (callers may change its padding side freely).

    ``system`` chooses the chat template's default system turn (``None``: no system turn).
    """
    tok = copy.deepcopy(_base_tokenizer())
    tok.chat_template = chatml_template(system)
    return tok


# --------------------------------------------------------------------------- LLaVA models of a chosen size

@dataclass(frozen=True)
class VLMSpec:
    """The shape of a LLaVA model built by :func:`build_vlm` (configs as data; ``asdict`` round-trips).

    Vision tower: SigLIP, ``image_size`` pixels cut into ``patch_size`` patches (one image token per patch),
    trained from scratch. Projector: LLaVA's two-layer GELU MLP. Language model: ``lm="pca"`` a Llama of
    width ``lm_hidden`` with ``lm_layers`` layers, random except the (tied) embeddings, which are SmolLM2's
    projected onto their top ``lm_hidden`` principal components; ``lm="smollm2"`` SmolLM2-135M-Instruct's own
    first ``lm_layers`` layers (30 = all of it; ``lm_hidden`` etc. are then SmolLM2's). ``vocab``: ``None``
    keeps SmolLM2's whole vocabulary; a number ``K`` cuts it to its ``K`` commonest tokens plus every token of
    the texts given to :func:`build_vlm` (:mod:`kit.models.vocab`), with the embeddings cut the same way.
    """

    image_size: int = 64
    patch_size: int = 16
    vision_hidden: int = 128
    vision_layers: int = 2
    vision_heads: int = 2
    lm: str = "pca"
    lm_hidden: int = 192
    lm_layers: int = 2
    lm_heads: int = 3
    lm_kv_heads: int = 1
    lm_intermediate: int = 512
    system_prompt: str | None = None
    vocab: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def num_image_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def to_dict(self) -> dict:
        return asdict(self)


def spec_tokenizer(spec: VLMSpec, texts: Iterable[str] = ()):
    """``(tokenizer, old_ids)``: SmolLM2's tokenizer for ``spec``; ``old_ids[i]`` is new token ``i``'s id in the
    whole tokenizer (``None`` when ``spec.vocab`` keeps the whole vocabulary). A cut vocabulary keeps every
    token of ``texts`` (see :func:`kit.models.vocab.trim_tokenizer`)."""
    tok = vlm_tokenizer(spec.system_prompt)
    if spec.vocab is None:
        return tok, None
    from kit.models.vocab import trim_tokenizer

    return trim_tokenizer(tok, int(spec.vocab), texts)


def build_processor(spec: VLMSpec, tokenizer=None):
    """A ``LlavaProcessor``: SigLIP image processing at ``spec.image_size`` and SmolLM2's tokenizer."""
    from transformers import LlavaProcessor, SiglipImageProcessor

    tok = tokenizer if tokenizer is not None else spec_tokenizer(spec)[0]
    image_processor = SiglipImageProcessor(size={"height": spec.image_size, "width": spec.image_size})
    return LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=spec.patch_size,
                          vision_feature_select_strategy="full", chat_template=tok.chat_template,
                          num_additional_image_tokens=0)


def _smollm2_text_config(n_layers: int, vocab_size: int):
    from transformers import LlamaConfig

    from kit.models.smollm2 import load_smollm2

    lm, _ = load_smollm2()
    cfg = LlamaConfig.from_dict(lm.config.to_dict())
    cfg.num_hidden_layers = int(n_layers)
    cfg.vocab_size = int(vocab_size)
    return cfg, lm


def pca_embeddings(weight, dim: int):
    """``weight`` (vocab x d) projected onto its top ``dim`` principal components (centred, not rescaled).

    The rows keep their own size (SmolLM2's rows average 3.2; 192 components keep 56% of the variance): tied to
    the output head, smaller rows would cap how confident the model can ever be.
    """
    import torch

    w = weight.detach().double()
    centred = w - w.mean(0, keepdim=True)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    return (centred @ v[:dim].T).float()


def _extended_embeddings(lm, vocab_size: int):
    """SmolLM2's input embeddings with rows for added tokens (their mean)."""
    import torch

    w = lm.get_input_embeddings().weight.detach()
    if vocab_size > w.shape[0]:
        w = torch.cat([w, w.mean(0, keepdim=True).expand(vocab_size - w.shape[0], -1)])
    return w[:vocab_size]


def build_vlm(spec: VLMSpec = VLMSpec(), seed: int = 0, texts: Iterable[str] = ()):
    """``(model, processor)``: a LLaVA model of shape ``spec``, float32, eval mode, seeded.

    Random everywhere except the language model's pretrained parts (see :class:`VLMSpec`). ``texts``: with a
    cut vocabulary (``spec.vocab``), texts that must tokenize exactly as with the whole one.
    """
    import torch
    from transformers import LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, SiglipVisionConfig

    tok, old_ids = spec_tokenizer(spec, texts)
    processor = build_processor(spec, tok)
    vocab = len(tok)
    if spec.lm == "smollm2":
        text, lm = _smollm2_text_config(spec.lm_layers, vocab)
    elif spec.lm == "pca":
        from kit.models.smollm2 import load_smollm2

        lm, _ = load_smollm2()
        head_dim = spec.lm_hidden // spec.lm_heads
        text = LlamaConfig(vocab_size=vocab, hidden_size=spec.lm_hidden, intermediate_size=spec.lm_intermediate,
                           num_hidden_layers=spec.lm_layers, num_attention_heads=spec.lm_heads,
                           num_key_value_heads=spec.lm_kv_heads, head_dim=head_dim, max_position_embeddings=2048,
                           rms_norm_eps=1e-5, rope_parameters={"rope_theta": 10000.0, "rope_type": "default"},
                           tie_word_embeddings=True)
    else:
        raise ValueError(f"unknown language model kind {spec.lm!r}; use 'pca' or 'smollm2'")
    text.bos_token_id, text.eos_token_id = tok.bos_token_id, tok.eos_token_id
    text.pad_token_id = tok.pad_token_id
    text.tie_word_embeddings = True
    vision = SiglipVisionConfig(hidden_size=spec.vision_hidden, intermediate_size=4 * spec.vision_hidden,
                                num_hidden_layers=spec.vision_layers, num_attention_heads=spec.vision_heads,
                                image_size=spec.image_size, patch_size=spec.patch_size)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN),
                         vision_feature_layer=-1, vision_feature_select_strategy="full",
                         projector_hidden_act="gelu", tie_word_embeddings=True)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config)
    finally:
        torch.random.set_rng_state(state)
    language = model.model.language_model
    with torch.no_grad():
        if old_ids is None:
            embeddings = _extended_embeddings(lm, vocab)
        else:  # SmolLM2's rows of the kept tokens (added ones: the mean row)
            embeddings = _extended_embeddings(lm, max(old_ids) + 1)[torch.as_tensor(old_ids)]
        if spec.lm == "smollm2":
            weights = {k: v for k, v in lm.model.state_dict().items()
                       if not k.startswith("layers.") or int(k.split(".")[1]) < spec.lm_layers}
            weights["embed_tokens.weight"] = embeddings
            language.load_state_dict(weights, strict=True)
        else:
            language.embed_tokens.weight.copy_(pca_embeddings(embeddings, spec.lm_hidden))
    model.tie_weights()
    scale_projector(model, spec, target=float(language.embed_tokens.weight.detach().norm(dim=1).mean()))
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.bos_token_id = tok.bos_token_id
    return model.float().eval(), processor


def scale_projector(model, spec: VLMSpec, target: float, pixel_values=None) -> float:
    """Scale the projector's last layer so that image tokens have the size of a text embedding (``target``).

    The vision tower's last hidden states are not normalised (LLaVA reads them before the post-layernorm), so a
    projector can give image tokens hundreds of times the norm of a text token; behind the language model's
    RMSNorm their gradients then shrink by as much and the model learns to ignore the image. Measured on
    ``pixel_values`` (real images; default a fixed noise image, seeded). Returns the factor applied.
    """
    import torch

    with torch.no_grad():
        if pixel_values is None:
            gen = torch.Generator().manual_seed(0)
            pixel_values = torch.rand(4, 3, spec.image_size, spec.image_size, generator=gen) * 2 - 1
        feats = model.model.vision_tower(pixel_values, output_hidden_states=True).hidden_states[-1]
        out = model.model.multi_modal_projector(feats)
        scale = target / float(out.norm(dim=-1).mean())
        last = model.model.multi_modal_projector.linear_2
        last.weight.mul_(scale)
        if last.bias is not None:
            last.bias.mul_(scale)
    return scale


def standardise_projector(model, pixel_values, target: float) -> dict:
    """Set the projector so that image tokens differ between images as much as text tokens differ between words.

    A vision tower trained from scratch gives last hidden states dominated by one direction shared by every
    image (measured on the tiny preset: feature norm about 680, spread across images about 7), so image tokens
    after the language model's RMSNorm are nearly the same for every image and the model learns to ignore them.
    This data-dependent initialisation, measured on ``pixel_values`` (real images): the first layer reads the
    features standardised per dimension and gives pre-activations of mean 0 and sd 1 per unit; the second layer
    is centred (mean image token 0) and scaled to a mean token norm of ``target`` (a text embedding's).
    Returns the scales applied. The model stays a stock LLaVA projector (only its weights change).
    """
    import torch

    proj = model.model.multi_modal_projector
    with torch.no_grad():
        feats = model.model.vision_tower(pixel_values, output_hidden_states=True).hidden_states[-1]
        f = feats.reshape(-1, feats.shape[-1]).float()
        mu, sd = f.mean(0), f.std(0).clamp(min=1e-6)
        l1, l2 = proj.linear_1, proj.linear_2
        w1 = l1.weight / sd                                   # reads (f - mu) / sd
        b1 = l1.bias - w1 @ mu
        h = f @ w1.T + b1
        hm, hs = h.mean(0), h.std(0).clamp(min=1e-6)
        l1.weight.copy_(w1 / hs[:, None])
        l1.bias.copy_((b1 - hm) / hs)
        g = proj.act(f @ l1.weight.T + l1.bias)
        o = g @ l2.weight.T + l2.bias
        l2.bias.sub_(o.mean(0))
        o = o - o.mean(0)
        scale = target / float(o.norm(dim=-1).mean())
        l2.weight.mul_(scale)
        l2.bias.mul_(scale)
    return {"feature_norm": round(float(f.norm(dim=-1).mean()), 2),
            "feature_spread": round(float((f - mu).norm(dim=-1).mean()), 2), "output_scale": round(scale, 5)}


def save_vlm(model, processor, path) -> Path:
    """``save_pretrained`` of model and processor into ``path`` (loadable with the Auto classes)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
