"""The offline ``standin`` backend of the image-text scorer (NOT CLIP; label it so wherever shown).

No CLIP weights install offline, so this backend builds an image-text similarity from two locked
offline encoders (EfficientNet-Lite0 and all-MiniLM-L6-v2, :mod:`kit.models.encoders`)
in three parts, each a cosine of L2-normalised embeddings:

- ``concept`` (concept bottleneck): image -> ImageNet-1k probabilities ``p``; ``L`` = MiniLM
  embeddings of ``"a photo of a {label}"`` for the 1000 labels; image embedding
  ``normalise(p @ L)``, text embedding ``MiniLM(text)``. Knows ImageNet objects only.
- ``head`` (LiT head, :mod:`kit.models.lit_head`): two linear projections of the locked features
  to 128-d, trained contrastively on easy-vqa train images of the ``reserved`` slice that the pools do
  not use (:data:`kit.pools.easyvqa.TRAIN_SLICES`).
  Knows easy-vqa colours and shapes only.
- ``neighbours`` (:mod:`kit.quality.image_text.neighbours`): the image embedded as the mean
  (centred) MiniLM embedding of the texts paired with its ``k`` nearest other images in the pool,
  against the sample's own (centred) text embedding. Fitted on the pool itself, leave-one-out,
  without labels; this is what catches an image paired with another kind of image's text.

The parts are combined by concatenating the embeddings, each scaled by ``sqrt(weight)`` (weights
normalised to sum 1), so the score (the dot product of the concatenations, which are unit
vectors) is exactly ``sum(weight * part cosine)`` and the saved embeddings reproduce it.
How well it finds planted mismatches is measured, not written here: ``kit report data_samples/``
prints the ROC AUC of clean vs planted ``mismatch`` for the combined score and each part, for
mismatches whose image came from the same source and from another source apart, the share scoring
below their clean origin, where planted duplicates land, and the same with ``skip_identical_images=True``.
The fixed parts alone are near chance there; the pool-neighbour part carries most of the signal, which
is why it has half the weight (a weight chosen on ``data_samples/``).
"""
from __future__ import annotations

import math
from functools import lru_cache, partial

import numpy as np

from kit.models import encoders as oe
from kit.quality.image_text.neighbours import centred, neighbour_text_embeddings
from kit.quality.image_text.pipeline import TextTokens

CONCEPT_PROMPT = "a photo of a {}"
DEFAULT_WEIGHTS = {"concept": 0.25, "head": 0.25, "neighbours": 0.5}
PART_NAMES = {"concept": "EfficientNet-Lite0 + MiniLM concept bottleneck",
              "head": "LiT head trained on easy-vqa {split}",
              "neighbours": "pool-neighbour text map (k={k})"}


@lru_cache(maxsize=4)
def concept_label_embeddings(device: str = "cpu", prompt: str = CONCEPT_PROMPT):
    """MiniLM embeddings (1000, 384) of the ImageNet label prompts, as a tensor on ``device``."""
    import torch

    texts = [prompt.format(label) for label in oe.imagenet_labels()]
    emb, _ = oe.encode_texts(oe.load_text_encoder(device), texts, batch_size=256)
    return torch.as_tensor(emb, device=device)


def minilm_tokens(tokenizer, max_length: int, texts) -> TextTokens:
    """Worker-safe MiniLM tokenisation in the pipeline's :class:`TextTokens` form."""
    batch = oe.tokenize_texts(tokenizer, texts, max_length)
    return TextTokens(batch, batch.truncated, batch.n_tokens, batch.kept)


class StandinBackend:
    """Concept bottleneck + LiT head + pool neighbours on EfficientNet-Lite0 and MiniLM.

    ``weights``: dict of part -> weight (missing parts 0); ``head``: ``"default"`` (the shipped
    ``kit/weights/lit_head_easyvqa.pt``), a path, or ``None`` to drop that part; ``neighbours``:
    ``k`` (0 drops that part; it is also dropped, and the weights renormalised, when the pool has
    fewer than 2 decodable images); ``skip_identical_images``: never take as a neighbour an image whose
    features equal the sample's (the same image file in two samples, e.g. an exact duplicate, or the
    sample a planted mismatch took its image from).
    """

    def __init__(self, device="cpu", weights: dict | None = None, head="default", neighbours: int = 10,
                 max_reference: int = 20000, prompt: str = CONCEPT_PROMPT, max_length: int | None = None,
                 skip_identical_images: bool = False):
        import torch

        self.device = str(torch.device(device))
        self.image_encoder = oe.load_image_encoder(self.device)
        self.text_encoder = oe.load_text_encoder(self.device, max_length)
        self.labels = concept_label_embeddings(self.device, prompt)
        weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        unknown = set(weights) - set(DEFAULT_WEIGHTS)
        if unknown or any(float(w) < 0 for w in weights.values()):
            raise ValueError(f"weights must map {sorted(DEFAULT_WEIGHTS)} to non-negative numbers, got {weights}")
        self.head = None
        if head is not None and head is not False and float(weights.get("head", 0)) > 0:
            from kit.models.lit_head import load_head

            self.head = load_head(None if head == "default" else head, self.device)
        if self.head is None:
            weights["head"] = 0.0
        self.k = int(neighbours or 0)
        if self.k <= 0:
            weights["neighbours"] = 0.0
        self.max_reference = int(max_reference)
        self.skip_identical_images = bool(skip_identical_images)
        self.requested = {p: float(weights.get(p, 0.0)) for p in DEFAULT_WEIGHTS}
        if sum(self.requested.values()) <= 0:
            raise ValueError("at least one part needs a positive weight")
        self.weights = self._normalised(self.requested)
        self.concept_dim = int(self.labels.shape[1])
        self.head_dim = self.head.dim if self.head is not None else 0
        self.pooled_dim = oe.IMAGE_FEATURE_DIM
        self.image_dim = self.concept_dim + self.head_dim + self.pooled_dim
        self.text_dim = self.concept_dim + self.head_dim
        self.slices: dict[str, slice] = {}
        self.name = "standin"

    @property
    def pool_dependent(self) -> bool:
        """The neighbour part reads the rest of the pool, so with it a sample's score depends on the pool."""
        return self.requested["neighbours"] > 0

    @staticmethod
    def _normalised(weights: dict) -> dict:
        total = sum(weights.values())
        return {p: w / total for p, w in weights.items()}

    @property
    def label(self) -> str:
        meta = getattr(self.head, "meta", {}) if self.head is not None else {}
        split = f"{meta.get('split', '?')} split" + (f" ({meta['slice']} slice)" if meta.get("slice") else "")
        parts = [f"{PART_NAMES[p].format(split=split, k=self.k)}"
                 f"{', identical images skipped' if p == 'neighbours' and self.skip_identical_images else ''} x{w:.2f}"
                 for p, w in self.weights.items() if w > 0]
        return f"standin ({' + '.join(parts)}), not CLIP"

    @property
    def short_label(self) -> str:
        return "stand-in, not CLIP"

    def worker_fns(self):
        return oe.preprocess_image, partial(minilm_tokens, self.text_encoder.tokenizer, self.text_encoder.max_length)

    def encode_images(self, images) -> np.ndarray:
        """Raw per-image parts: [concept (384) | head (128) | pooled EfficientNet features (1280)]."""
        import torch

        out = oe.image_forward(self.image_encoder, images, ("pooled", "probs"))
        with torch.inference_mode():
            parts = [torch.nn.functional.normalize(out["probs"] @ self.labels, dim=-1)]
            if self.head is not None:
                parts.append(self.head.embed_images(out["pooled"]))
            parts.append(out["pooled"])
            return torch.cat(parts, dim=1).float().cpu().numpy()

    def encode_texts(self, tokens) -> np.ndarray:
        """Raw per-text parts: [MiniLM (384) | head (128)]."""
        import torch

        emb = oe.text_forward(self.text_encoder, tokens)
        with torch.inference_mode():
            parts = [emb] + ([self.head.embed_texts(emb)] if self.head is not None else [])
            return torch.cat(parts, dim=1).float().cpu().numpy()

    def finalize(self, image: np.ndarray, text: np.ndarray, ok: np.ndarray):
        """Combine the parts into unit-norm embeddings whose dot product is the weighted cosine."""
        c, h = self.concept_dim, self.head_dim
        img_parts = {"concept": image[:, :c]}
        txt_parts = {"concept": text[:, :c]}
        if self.head is not None:
            img_parts["head"], txt_parts["head"] = image[:, c:c + h], text[:, c:c + h]
        weights = dict(self.requested)
        if weights["neighbours"] > 0:
            text_c = centred(text[:, :c])
            nb = neighbour_text_embeddings(image[:, c + h:], text_c, ok, k=self.k,
                                           max_reference=self.max_reference, device=self.device,
                                           skip_identical=self.skip_identical_images)
            if nb is None:
                weights["neighbours"] = 0.0
            else:
                img_parts["neighbours"], txt_parts["neighbours"] = nb, text_c
        self.weights = self._normalised(weights)
        img_out, txt_out, start = [], [], 0
        self.slices = {}
        for part, w in self.weights.items():
            if part not in img_parts or w <= 0:
                continue
            s = math.sqrt(w)
            img_out.append(s * img_parts[part])
            txt_out.append(s * txt_parts[part])
            width = img_parts[part].shape[1]
            self.slices[part] = slice(start, start + width)
            start += width
        return (np.concatenate(img_out, axis=1).astype(np.float32),
                np.concatenate(txt_out, axis=1).astype(np.float32))

    def components(self, image: np.ndarray, text: np.ndarray) -> dict[str, np.ndarray]:
        """Each part's own cosine (``image_text_<part>``), from the final embeddings."""
        out = {}
        for part, sl in self.slices.items():
            out[f"image_text_{part}"] = np.einsum("ij,ij->i", image[:, sl], text[:, sl]) / self.weights[part]
        return out
