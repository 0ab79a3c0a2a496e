"""The distilled head as scoring backends: ``kit.score(pool, "rich")`` and ``kit.score(pool, "style", backend="distilled")``.

Both load a saved :class:`~kit.mmssr.distilled.model.DistilledHead` on first use (constructing a
backend loads nothing): ``weights=`` a file written by ``DistilledHead.save`` (default: the shipped
``kit/weights/rich_distilled.pt``); the other options are the inference settings a loaded head accepts
(``style_threshold``, ``at_least_one_style``, ``integer``, ``cache_dir``, ``progress``).

The capability columns hold the most probable integer rating 0-5 (``integer=False``: the expected value),
``<key>_expected`` the expected value (see :class:`~kit.mmssr.distilled.model.DistilledHead`).
"""
from __future__ import annotations

import pandas as pd

from kit.capabilities import expected_column
from kit.mmssr.distilled.model import LOAD_OPTIONS, DistilledHead
from kit.scoreinfo import ScoreInfo


class DistilledRichScorer:
    """The 14 capability scores and the styles from a saved distilled head (loaded on first use)."""

    def __init__(self, weights=None, **options):
        wrong = sorted(set(options) - set(LOAD_OPTIONS))
        if wrong:
            raise TypeError(f"a saved distilled head cannot change {wrong}; only {sorted(LOAD_OPTIONS)} can be set")
        self.weights, self.options = weights, options
        self._head: DistilledHead | None = None

    @property
    def head(self) -> DistilledHead:
        if self._head is None:
            self._head = DistilledHead.load(self.weights, **self.options)
        return self._head

    @property
    def label(self) -> str:
        return "distilled head on frozen EfficientNet-Lite0 + MiniLM features"

    def info(self, extra_columns: bool = True) -> ScoreInfo:
        """What the table declares: the label, the weights file and (for the rich scorer) the expected-value
        columns among the selection columns."""
        details = {"weights": str(self.head.metadata.get("loaded_from", ""))}
        if extra_columns:
            details["extra_columns"] = [expected_column(k) for k in self.head.capabilities]
        return ScoreInfo(label=self.label, details=details)

    def score(self, pool) -> tuple[pd.DataFrame, ScoreInfo]:
        return self.head.score(pool), self.info()


class DistilledStyler(DistilledRichScorer):
    """The style half of :class:`DistilledRichScorer`: columns ``styles`` and ``status``."""

    def score(self, pool) -> tuple[pd.DataFrame, ScoreInfo]:
        return self.head.score(pool)[["styles", "status"]], self.info(extra_columns=False)
