"""All samples rendered here (source ``rendered``): charts and tables, documents and signs,
geometry and function plots, two-panel comparisons and shape layouts."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kit.pools import charts, documents, panels, stem
from kit.pools.sample import Sample

SOURCE = "rendered"
FAMILIES = (charts, documents, stem, panels)


def samples(images_dir: Path, seed: int = 0) -> list[Sample]:
    """Render every family with its own seeded generator (so families do not shift each other)."""
    out: list[Sample] = []
    for k, family in enumerate(FAMILIES):
        out += family.samples(images_dir, np.random.default_rng([seed, k]))
    return out


def kind(sample: Sample) -> str:
    """What a rendered sample's image is: ``bar``, ``line``, ``pie``, ``table``, ``document``, ``sign``,
    ``geometry``, ``function``, ``compare`` or ``layout`` (from its key ``rendered/<kind>/<k>``)."""
    return sample.key.split("/")[1]
