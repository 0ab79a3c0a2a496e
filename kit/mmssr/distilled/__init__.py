"""The distilled rich scorer and styler: a small head on frozen offline features, trained on ratings.

The mmSSR recipe (``docs/methods.md``, mmSSR) rates a small random subset with a teacher and fine-tunes a
7B scorer on those ratings. This package is the cheap version of the second step: frozen offline
encoders turn each sample into a feature vector (image: EfficientNet-Lite0 pooled features; text:
all-MiniLM-L6-v2 embeddings of the questions and of the answers; a few text statistics), and a small
head maps it to the 14 capability scores (0-5) and the 9 interaction styles (multi-label).

One job per module:

- :mod:`~kit.mmssr.distilled.features`: feature extractors (pluggable) and the per-sample feature cache;
- :mod:`~kit.mmssr.distilled.net`: the torch head and its training loop;
- :mod:`~kit.mmssr.distilled.model`: :class:`DistilledHead`, features + head, fit / score / save / load;
- :mod:`~kit.mmssr.distilled.scorer`: the scoring backends behind ``kit.score`` (load a saved head lazily);
- :mod:`~kit.mmssr.distilled.cv`: agreement with the ratings: cross-validated, on a held-out pool, with
  question templates held out, and the comparison of settings (``tune``);
- :mod:`~kit.mmssr.distilled.train`: training the shipped head (``kit distill``; ``python -m kit.mmssr.distilled``).

The shipped head is trained on a pool built apart from ``data_samples/`` (``python -m kit.pools distill``:
easy-vqa and rendered samples with the same per-template reference ratings, no photos) and reported on
``data_samples/`` as held out; its settings were chosen by ``tune`` on that training pool.
"""
from kit.mmssr.distilled.cv import CVReport, cross_validate, held_out_agreement, template_held_out, tune
from kit.mmssr.distilled.features import (STAT_NAMES, OfflineFeatures, clear_feature_cache, compute_features,
                                          get_feature_extractor, register_feature_extractor, text_stats)
from kit.mmssr.distilled.model import DEFAULT_WEIGHTS, DistilledHead
from kit.mmssr.distilled.net import HeadConfig
from kit.mmssr.distilled.scorer import DistilledRichScorer, DistilledStyler
from kit.mmssr.distilled.train import train_default

__all__ = ["DistilledHead", "DistilledRichScorer", "DistilledStyler", "HeadConfig", "cross_validate", "CVReport",
           "held_out_agreement", "template_held_out", "tune",
           "OfflineFeatures", "STAT_NAMES", "text_stats", "register_feature_extractor", "get_feature_extractor",
           "compute_features", "clear_feature_cache", "train_default", "DEFAULT_WEIGHTS"]
