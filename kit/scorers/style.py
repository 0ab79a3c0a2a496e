"""``kit.score(pool, "style", backend=...)``: the interaction styles of each sample (column ``styles``).

Backends (imported only when chosen):

- ``"rules"`` (default): :class:`kit.scorers.style_rules.RuleStyler`, fast transparent rules on the
  conversation text.
- ``"distilled"``: the style head of the distilled rich scorer
  (:class:`kit.scorers.rich_distilled.DistilledStyler`; ``weights=`` a saved head, default the
  shipped one).
- ``"vlm"``: a vision-language model with the official style query
  (:class:`kit.scorers.rich_vlm.VLMStyler`, e.g. ``mengyaolyu/mmssr-7b-styler``).

Every backend returns a table indexed by id with a ``styles`` column (a list of style names) and,
where the backend gives one, a ``status`` column.
"""
from __future__ import annotations

BACKENDS = ("rules", "distilled", "vlm")


class Styler:
    """Dispatch to a styler backend; ``score(pool)`` returns at least the column ``styles``."""

    def __init__(self, backend: str = "rules", **options):
        if backend == "rules":
            from kit.scorers.style_rules import RuleStyler

            self.impl = RuleStyler(**options)
        elif backend == "distilled":
            from kit.scorers.rich_distilled import DistilledStyler

            self.impl = DistilledStyler(**options)
        elif backend == "vlm":
            from kit.scorers.rich_vlm import VLMStyler

            self.impl = VLMStyler(**options)
        else:
            raise ValueError(f"unknown styler backend {backend!r}; choose from {BACKENDS}")
        self.backend = backend

    def score(self, pool):
        table = self.impl.score(pool)
        if "styles" not in table.columns:
            raise RuntimeError(f"styler backend {self.backend!r} returned no 'styles' column")
        return table
