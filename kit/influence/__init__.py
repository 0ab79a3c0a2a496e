"""Gradient influence toward target tasks (LESS, ICONS): warm-up, per-sample gradient features, target sets.

The scorer is :class:`kit.influence.scorer.InfluenceScorer` (``kit.score(pool, "influence")``) and the selector
:func:`kit.baselines.influence.select_influence` (``kit.select(scores, "influence", budget)``). Parts:
:mod:`~kit.influence.projection` (seeded block projections), :mod:`~kit.influence.gradients` (per-sample
gradients of the trainable linear layers from one batched backward), :mod:`~kit.influence.warmup` (the brief
warm-up on a random slice of the pool, with its Adam moments) and :mod:`~kit.influence.targets` (the target
sets: easy-vqa question types or testbed families, dev side only). ``docs/methods.md`` ("Gradient influence")
gives the formulas, sources and every place the kit differs from the official code.
"""
