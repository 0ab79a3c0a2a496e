"""Image gain: how much the sample's own image helps a vision-language model predict its answer.

    image_gain(z) = (1/|A|) sum_{a in A} [ log p(a | I, Q, a_<) - log p(a | I_ref, Q, a_<) ]

the answer's mean log-likelihood per token with the sample's image I minus with a reference image I_ref, from a
frozen VLM (default: the ``tiny`` preset's aligned base, the model being tuned before instruction tuning, as in
paper B's protocol for the loss). Ours, not a paper's: it is the visual counterpart of CVS's question ablation
(Conditional Verdict Shift, arXiv 2603.09715, which keeps the image and removes the question; :mod:`kit.quality.cvs`),
and an image-text score the quality space (paper B, arXiv 2407.00102) can use offline in place of CLIP's *s*:
``kit.select(scores, "diq", budget, score_col="image_gain")`` (any space option ``score_col=``). An answer that
its image supports gains from it; one that contradicts its image (a planted mismatch) or ignores it does not.

Columns: ``image_gain``, ``answer_ll_image`` and ``answer_ll_reference`` (the two mean log-likelihoods per answer
token, nats), ``status`` (the answer-loss scorer's: ``ok`` or why a sample has NaN). The answer tokens, chat
template, truncation and image handling are the answer-loss scorer's (:class:`kit.quality.loss.LossScorer`,
image included), run twice: once on the pool's images, once on the references.

``reference``: ``"gray"`` (default; a uniform mid-gray image of the sample's size: an image that shows nothing)
or ``"noise"`` (uniform RGB noise of the sample's size, seeded by ``seed`` and the sample id alone, so a sample's
reference is the same in any shard or process). Both keep a sample's score independent of the rest of the pool
(a reference drawn from other samples of the pool would not).
"""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from kit.scoreinfo import ScoreInfo

REFERENCES = ("gray", "noise")
COLUMNS = ["image_gain", "answer_ll_image", "answer_ll_reference"]


def reference_image(image, kind: str, sid: str, seed: int = 0):
    """The reference image of a sample: ``"gray"`` or seeded ``"noise"`` of ``image``'s size."""
    from PIL import Image

    if kind == "gray":
        return Image.new("RGB", image.size, (128, 128, 128))
    if kind == "noise":
        rng = np.random.default_rng([int(seed), zlib.crc32(str(sid).encode())])
        return Image.fromarray(rng.integers(0, 256, (image.size[1], image.size[0], 3), dtype=np.uint8), "RGB")
    raise ValueError(f"reference must be one of {', '.join(map(repr, REFERENCES))}, not {kind!r}")


class PoolView:
    """A pool as the answer-loss scorer reads it (``table`` and ``iter_images``), with its images or its
    conversations replaced: ``image(sid, image)`` maps each decoded image, ``table`` replaces the table."""

    def __init__(self, pool, image=None, table: pd.DataFrame | None = None):
        self._pool, self._image = pool, image
        self.table = pool.table if table is None else table
        self.path, self.image_root = getattr(pool, "path", None), getattr(pool, "image_root", None)

    def __len__(self):
        return len(self.table)

    def iter_images(self, ids=None, **kwargs):
        for sid, image, error in self._pool.iter_images(ids, **kwargs):
            yield sid, (image if image is None or self._image is None else self._image(sid, image)), error


def resolve_model(model) -> str:
    """A preset name (``"tiny"``, ...) as its aligned base folder; anything else as given."""
    from kit.finetune.presets import PRESETS

    if isinstance(model, str) and model in PRESETS:
        from kit.finetune import base_model

        return str(base_model(model))
    return str(model)


def answer_loglik(loss_scorer, pool) -> tuple[pd.Series, pd.Series]:
    """``(mean answer log-likelihood per token, status)`` of every sample of ``pool`` (a Pool or a
    :class:`PoolView`) with the answer-loss scorer."""
    table = loss_scorer.score(pool)
    return -table["loss_mean"], table["status"]


class ImageGainScorer:
    """``kit.score(pool, "image_gain")``: see the module docstring. ``model``: a preset name (its aligned base)
    or a VLM folder / name; ``threads``: torch threads (1: the same numbers in every process)."""

    def __init__(self, model="tiny", reference: str = "gray", seed: int = 0, batch_size: int = 8,
                 max_length: int | None = None, device: str = "cpu", threads: int | None = 1, progress: bool = True):
        if reference not in REFERENCES:
            raise ValueError(f"reference must be one of {', '.join(map(repr, REFERENCES))}, not {reference!r}")
        self.model, self.reference, self.seed = model, reference, int(seed)
        self.options = {"batch_size": batch_size, "max_length": max_length, "device": device}
        self.threads, self.progress = threads, progress
        self._loss = None

    @property
    def label(self) -> str:
        return f"image gain ({self.model}; own image vs {self.reference} reference)"

    short_label = "image gain"

    def loss_scorer(self):
        from kit.quality.loss import LossScorer

        if self._loss is None:
            self._loss = LossScorer(model=resolve_model(self.model), vision=True, progress=False, **self.options)
        return self._loss

    def score(self, pool) -> tuple[pd.DataFrame, ScoreInfo]:
        from kit.influence.scorer import torch_threads

        with torch_threads(self.threads):
            scorer = self.loss_scorer()
            own, status = answer_loglik(scorer, pool)
            view = PoolView(pool, image=lambda sid, image: reference_image(image, self.reference, sid, self.seed))
            ref, ref_status = answer_loglik(scorer, view)
        table = pd.DataFrame({"image_gain": own - ref, "answer_ll_image": own, "answer_ll_reference": ref},
                             index=pool.table.index)
        table["status"] = [s if s != "ok" else r for s, r in zip(status, ref_status.reindex(table.index))]
        table.index.name = "id"
        return table, ScoreInfo(columns=COLUMNS, label=f"{self.label}: {scorer.label}", short_label=self.short_label)
