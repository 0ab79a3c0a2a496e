"""``kit.score(pool, "rich", backend=...)``: the 14 mmSSR capability scores and the styles.

Backends (imported only when chosen):

- ``"distilled"`` (default, offline): :class:`kit.scorers.rich_distilled.DistilledRichScorer`, a
  small head on frozen offline features. ``weights=`` names a saved head (default: the shipped
  ``kit/weights/rich_distilled.pt``, trained on ``data_samples``); other options are inference
  settings of :meth:`DistilledRichScorer.load` (``style_threshold``, ``integer``, ``cache_dir``, ...).
- ``"vlm"``: :class:`kit.scorers.rich_vlm.VLMRichScorer`, a Hugging Face vision-language model with
  the official prompts (e.g. the released ``mengyaolyu/mmssr-7b-scorer``); options go to it.
"""
from __future__ import annotations

BACKENDS = ("distilled", "vlm")


class RichScorer:
    """Dispatch to a rich-scorer backend; ``score(pool)`` returns its table (capabilities, styles, status)."""

    def __init__(self, backend: str = "distilled", **options):
        if backend == "distilled":
            from kit.scorers.rich_distilled import DistilledRichScorer

            self.impl = DistilledRichScorer.load(options.pop("weights", None), **options)
        elif backend == "vlm":
            from kit.scorers.rich_vlm import VLMRichScorer

            self.impl = VLMRichScorer(**options)
        else:
            raise ValueError(f"unknown rich-scorer backend {backend!r}; choose from {BACKENDS}")
        self.backend = backend

    def score(self, pool):
        return self.impl.score(pool)
