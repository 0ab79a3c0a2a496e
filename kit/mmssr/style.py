"""``kit.score(pool, "style", backend=...)``: the interaction styles of each sample (column ``styles``).

Backends are registered in :data:`kit.registry.STYLE_BACKENDS` (imported only when chosen):

- ``"rules"`` (default): :class:`kit.mmssr.style_rules.RuleStyler`, fast transparent rules on the
  conversation text.
- ``"distilled"``: the style head of the distilled rich scorer
  (:class:`kit.mmssr.distilled.scorer.DistilledStyler`; ``weights=`` a saved head, default the shipped one).
- ``"vlm"``: a vision-language model with the official style query
  (:class:`kit.mmssr.rich_vlm.VLMStyler`, e.g. ``mengyaolyu/mmssr-7b-styler``).

Every backend returns a table indexed by id with a ``styles`` column (a list of style names) and,
where the backend gives one, a ``status`` column.
"""
from __future__ import annotations

from dataclasses import replace

from kit.registry import STYLE_BACKENDS, BackendScorer
from kit.scoreinfo import declared_info


class Styler(BackendScorer):
    """The styler backend ``backend`` built with ``options``; ``score(pool)`` returns at least ``styles``."""

    backends = STYLE_BACKENDS
    default = "rules"

    def score(self, pool):
        table, info = declared_info(self.impl.score(pool), self.backend)
        if "styles" not in table.columns:
            raise RuntimeError(f"styler backend {self.backend!r} returned no 'styles' column")
        return table, replace(info, columns=("styles",))
