"""``kit.score(pool, "rich", backend=...)``: the 14 mmSSR capability scores and the styles.

Backends are registered in :data:`kit.registry.RICH_BACKENDS` (imported only when chosen):

- ``"distilled"`` (default, offline): :class:`kit.mmssr.distilled.scorer.DistilledRichScorer`, a small
  head on frozen offline features. ``weights=`` names a saved head (default: the shipped
  ``kit/weights/rich_distilled.pt``); other options are inference settings (``style_threshold``,
  ``integer``, ``cache_dir``, ...).
- ``"vlm"``: :class:`kit.mmssr.rich_vlm.VLMRichScorer`, a Hugging Face vision-language model with the
  official prompts (e.g. the released ``mengyaolyu/mmssr-7b-scorer``); options go to it.

Every backend writes the integer rating 0-5 in the capability columns (what the sampler reads by
default, like the official scores) and, where it knows the rating distribution, its expected value in
``<key>_expected`` (:func:`kit.capabilities.expected_column`). The declared columns (the score info's
``columns``, carried by :func:`kit.score_table`) are the capability columns, their expected-value columns, the
``extra_columns`` the backend lists in its info's ``details`` and ``styles``.
"""
from __future__ import annotations

from dataclasses import replace

from kit.registry import RICH_BACKENDS, BackendScorer
from kit.scoreinfo import declared_info


class RichScorer(BackendScorer):
    """The rich-scorer backend ``backend`` built with ``options``; ``score(pool)`` returns its table and
    :class:`~kit.scoreinfo.ScoreInfo`.

    Constructing it loads no model: each backend loads on its first ``score``. The info declares as the
    selection columns the capability columns (plus any ``extra_columns`` the backend lists in its info's
    ``details``, and ``styles`` when the backend was asked for styles).
    """

    backends = RICH_BACKENDS
    default = "distilled"

    def score(self, pool):
        from kit.capabilities import capability_keys, expected_column

        table, info = declared_info(self.impl.score(pool), self.backend)
        keys = [c for c in capability_keys() if c in table.columns]
        columns = keys + [expected_column(c) for c in keys if expected_column(c) in table.columns]
        extra = info.details.get("extra_columns", [])
        columns += [c for c in extra if c in table.columns and c not in columns]
        if getattr(self.impl, "style", False) and "styles" in table.columns:
            columns.append("styles")  # the VLM backend asked for styles too
        return table, replace(info, columns=columns)
