"""Baseline selectors the methods are compared with, one module each (registered in :mod:`kit.registry`).

``random`` (seeded uniform draw) · ``clip_top`` (highest image-text score, mmSSR's CLIP baseline) · ``ppl_band``
(low / mid / high answer-loss band, Marion et al. 2023) · ``deita`` (score-first diversity filter, Liu et al.
2023) · ``coincide`` (clusters spread by transferability and density, Lee et al. 2024). ``columns`` reads score
columns for them; ``embeddings`` aligns the embeddings ``deita`` and ``coincide`` need. ``docs/methods.md``
(Baselines) gives each one's formula, source and options.
"""
