"""The image-text scoring loop shared by every backend.

A torch ``DataLoader`` decodes and preprocesses images and tokenises texts in worker processes, so
that this work overlaps with the model forward in the main process. A backend supplies:

- ``worker_fns()`` -> ``(preprocess, tokenize)``: light, picklable callables (no model inside):
  ``preprocess(PIL RGB image) -> tensor`` and ``tokenize(list[str]) -> TextTokens``;
- ``encode_images(batch_tensor)`` -> float array (N, ``image_dim``) and ``encode_texts(tokens)`` ->
  float array (N, ``text_dim``);
- optionally ``finalize(image, text, ok) -> (image_emb, text_emb)``, run once on the whole pool
  (for parts that need every sample, e.g. the stand-in's pool neighbours); without it the encoded
  arrays are the embeddings. :func:`encode` and :func:`finish` are the two steps apart, so that
  sharded scoring can encode shard by shard and finish once (``kit.scoring``). Either way the score is the row-wise dot product of the two
  embeddings, which the backend keeps L2-normalised (so it is a cosine).

An image that fails to decode (or to preprocess) gets NaN features and a status naming the error;
it is never dropped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np


@dataclass
class TextTokens:
    """What a backend's ``tokenize`` returns: model inputs plus what truncation did."""

    tokens: Any  # whatever the backend's encode_texts takes
    truncated: np.ndarray  # bool per text
    n_tokens: np.ndarray  # tokens before truncation (special tokens included)
    kept: list  # the text actually encoded (the kept prefix when truncated)


@dataclass
class Batch:
    index: np.ndarray  # positions in the pool order
    images: Any  # stacked tensor of the images that decoded (or None)
    ok: np.ndarray  # bool per item: image decoded
    errors: list  # error text per item (None when ok)
    text: TextTokens


class _Items:
    """Map-style dataset: position -> (position, preprocessed image or None, text, error).

    ``paths`` are a pool's checked image paths (``pool.table["image_path"]``): each must still open the file
    the loader checked (``decode_image(pinned=True)``), or the sample gets an error.
    """

    def __init__(self, paths: Sequence[str], texts: Sequence[str], preprocess: Callable):
        self.paths, self.texts, self.preprocess = list(paths), list(texts), preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from kit.data import decode_image

        try:
            x = self.preprocess(decode_image(self.paths[i], pinned=True))
            return i, x, self.texts[i], None
        except Exception as exc:  # noqa: BLE001 - reported per sample, never dropped
            return i, None, self.texts[i], f"{type(exc).__name__}: {exc}"


class _Collate:
    """Stack the images that decoded and tokenise the batch's texts (runs in the worker)."""

    def __init__(self, tokenize: Callable):
        self.tokenize = tokenize

    def __call__(self, items) -> Batch:
        import torch

        index = np.array([it[0] for it in items], dtype=np.int64)
        ok = np.array([it[1] is not None for it in items], dtype=bool)
        images = torch.stack([it[1] for it in items if it[1] is not None]) if ok.any() else None
        text = self.tokenize([it[2] for it in items])
        return Batch(index, images, ok, [it[3] for it in items], text)


def default_workers(n_items: int, batch_size: int) -> int:
    """Worker processes for decoding: none for a single batch, else up to 4 (one core left free)."""
    if n_items <= batch_size:
        return 0
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def batches(paths, texts, preprocess, tokenize, batch_size: int = 64, num_workers: int | None = None,
            pin_memory: bool = False):
    """Iterate :class:`Batch` objects in pool order, decoding ahead in ``num_workers`` processes."""
    from torch.utils.data import DataLoader

    items = _Items(paths, texts, preprocess)
    if num_workers is None:
        num_workers = default_workers(len(items), batch_size)
    extra = {"prefetch_factor": 4, "persistent_workers": False} if num_workers > 0 else {}
    return DataLoader(items, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=_Collate(tokenize), pin_memory=pin_memory, **extra)


@dataclass
class Encoded:
    """Per-sample outputs of :func:`run`, in pool order."""

    image: np.ndarray  # (N, d) float32, NaN rows where the image failed
    text: np.ndarray  # (N, d) float32
    score: np.ndarray  # (N,) float64, NaN where the image failed
    truncated: np.ndarray
    n_tokens: np.ndarray
    kept: list
    errors: list


def encode(backend, paths, texts, batch_size: int = 64, num_workers: int | None = None,
           progress: bool = True, desc: str = "image-text") -> Encoded:
    """Encode every (image, text) pair with ``backend``: the raw per-sample features (no ``finalize``, no score).

    A ``None`` path (a sample without a single image) gets NaN image features and an error, like an
    image that fails to decode.
    """
    n = len(paths)
    preprocess, tokenize = backend.worker_fns()
    image = np.full((n, int(backend.image_dim)), np.nan, dtype=np.float32)
    text = np.zeros((n, int(backend.text_dim)), dtype=np.float32)
    truncated = np.zeros(n, dtype=bool)
    n_tokens = np.zeros(n, dtype=np.int64)
    kept: list = [""] * n
    errors: list = [None] * n
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=desc, unit="sample")
    pin = str(getattr(backend, "device", "cpu")).startswith("cuda")
    for batch in batches(paths, texts, preprocess, tokenize, batch_size, num_workers, pin_memory=pin):
        idx = batch.index
        text[idx] = backend.encode_texts(batch.text.tokens)
        if batch.images is not None:
            image[idx[batch.ok]] = backend.encode_images(batch.images)
        truncated[idx] = batch.text.truncated
        n_tokens[idx] = batch.text.n_tokens
        for k, i in enumerate(idx):
            kept[i] = batch.text.kept[k]
            errors[i] = batch.errors[k]
        if bar is not None:
            bar.update(len(idx))
    if bar is not None:
        bar.close()
    return Encoded(image, text, None, truncated, n_tokens, kept, errors)


def finish(backend, enc: Encoded) -> Encoded:
    """The pool-wide step: ``backend.finalize`` (when it has one) on every sample at once, then the scores."""
    image, text = enc.image, enc.text
    ok = np.array([e is None for e in enc.errors], dtype=bool)
    if hasattr(backend, "finalize"):
        image, text = backend.finalize(image, text, ok)
    score = np.einsum("ij,ij->i", image.astype(np.float64), text.astype(np.float64))
    return Encoded(image, text, score, enc.truncated, enc.n_tokens, enc.kept, enc.errors)


def run(backend, paths, texts, batch_size: int = 64, num_workers: int | None = None,
        progress: bool = True, desc: str = "image-text") -> Encoded:
    """Encode every (image, text) pair with ``backend``; score = row-wise dot of the normalised features."""
    return finish(backend, encode(backend, paths, texts, batch_size, num_workers, progress, desc))
