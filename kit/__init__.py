"""kit: select multimodal (image + text) instruction-tuning data.

The face of the kit::

    pool = kit.load_pool("data_samples/pool.json")        # validate, never drop silently
    scores = kit.score(pool, "image_text")                 # DataFrame indexed by sample id
    ids = kit.select(scores, "random", budget=0.3, seed=0) # list of ids in selection order
    kit.export(pool, ids, "subset.json")                   # LLaVA JSON + manifest

Scorers and selectors live in registries (:mod:`kit.registry`) and load lazily, so importing
``kit`` does not import torch.
"""
from kit.curriculum import curriculum, export_curriculum
from kit.data import Pool, PoolFormatError, PoolValidationError, load_pool
from kit.export import export
from kit.registry import SCORERS, SELECTORS, register_scorer, register_selector
from kit.scoring import load_scores, save_scores, score, score_cached
from kit.selection import Selection, resolve_budget, select

__version__ = "0.1.0"

__all__ = ["Pool", "PoolFormatError", "PoolValidationError", "load_pool", "score", "select", "export",
           "Selection", "resolve_budget", "load_scores", "save_scores", "score_cached", "SCORERS", "SELECTORS",
           "register_scorer", "register_selector", "curriculum", "export_curriculum", "__version__"]
