"""The ``open_clip`` backend of the image-text scorer: real CLIP-family models.

``model_name`` and ``pretrained`` are passed to ``open_clip.create_model_and_transforms`` exactly as
given, so a pretrained tag (``ViT-B-32`` + ``"openai"``, needs internet once), a local checkpoint
file (``pretrained="/path/to/ckpt.pt"``), an ``hf-hub:`` / ``local-dir:`` model name, or
``pretrained=None`` (random weights, for tests) all work. Texts are cut to the tokenizer's context
length (77 for CLIP); truncation is detected by tokenising each text in full and is reported.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from kit.quality.image_text.pipeline import TextTokens


def count_clip_tokens(tokenizer, texts) -> np.ndarray:
    """Tokens each text takes with special tokens, before any truncation."""
    from open_clip.tokenizer import HFTokenizer, SimpleTokenizer

    if isinstance(tokenizer, SimpleTokenizer) and getattr(tokenizer, "reduction_fn", None) is None:
        return np.array([len(tokenizer.encode(t)) + 2 for t in texts], dtype=np.int64)  # + <sot>, <eot>
    if isinstance(tokenizer, HFTokenizer):
        clean = [tokenizer.clean_fn(t) for t in texts]
        ids = tokenizer.tokenizer(clean, add_special_tokens=True, truncation=False)["input_ids"]
        return np.array([len(x) for x in ids], dtype=np.int64)
    # any other tokenizer: tokenise with a huge context and count the non-padding positions
    big = tokenizer(list(texts), context_length=4096)
    return (big != 0).sum(1).numpy().astype(np.int64)


def _kept_text(tokenizer, text: str, context_length: int) -> str:
    """The part of ``text`` that fits (decoded from the kept tokens; CLIP's BPE lower-cases)."""
    from open_clip.tokenizer import SimpleTokenizer

    if isinstance(tokenizer, SimpleTokenizer):
        return tokenizer.decode(tokenizer.encode(text)[:context_length - 2]).strip()
    return text  # other tokenizers: the full text, flagged as truncated


def tokenize_for_clip(tokenizer, context_length: int, texts) -> TextTokens:
    """Tokenise ``texts`` to ``context_length`` and report which were cut (worker-safe)."""
    texts = [str(t) for t in texts]
    tokens = tokenizer(texts, context_length=context_length)
    n_tokens = count_clip_tokens(tokenizer, texts)
    truncated = n_tokens > context_length
    kept = [_kept_text(tokenizer, t, context_length) if cut else t for t, cut in zip(texts, truncated)]
    return TextTokens(tokens, truncated, n_tokens, kept)


class OpenClipBackend:
    """Image and text towers of an open_clip model; features L2-normalised, score = cosine."""

    def __init__(self, model_name: str = "ViT-B-32", pretrained: str | None = "openai", device="cpu",
                 precision: str = "fp32", cache_dir: str | None = None, **create_kwargs):
        import open_clip
        import torch

        self.device = str(torch.device(device))
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=pretrained, device=self.device, precision=precision,
            cache_dir=cache_dir, **create_kwargs)
        self.model = model.eval().requires_grad_(False)
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(model_name, cache_dir=cache_dir)
        ctx = getattr(self.model, "context_length", None) or getattr(self.tokenizer, "context_length", None)
        self.context_length = int(ctx or 77)
        with torch.inference_mode():
            probe = self.model.encode_text(self.tokenizer(["a"], context_length=self.context_length).to(self.device))
        self.embed_dim = self.image_dim = self.text_dim = int(probe.shape[-1])
        self.dtype = next(self.model.parameters()).dtype
        self.name = f"open_clip {model_name} ({pretrained if pretrained else 'random init'})"
        self.label = self.name if pretrained else f"{self.name}, untrained: scores are meaningless"
        self.short_label = f"open_clip {model_name}" + ("" if pretrained else ", untrained")

    def worker_fns(self):
        return self.preprocess, partial(tokenize_for_clip, self.tokenizer, self.context_length)

    def encode_images(self, images) -> np.ndarray:
        import torch

        with torch.inference_mode():
            feats = self.model.encode_image(images.to(self.device, self.dtype, non_blocking=True))
            return torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy()

    def encode_texts(self, tokens) -> np.ndarray:
        import torch

        with torch.inference_mode():
            feats = self.model.encode_text(tokens.to(self.device, non_blocking=True))
            return torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy()
