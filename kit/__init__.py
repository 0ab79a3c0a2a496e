"""kit: select multimodal (image + text) instruction-tuning data.

The face of the kit::

    pool = kit.load_pool("data_samples/pool.json")              # validate, never drop silently
    scores = kit.score_table(pool, ["image_text", "loss", "rich", "style"], out="scores/")
    ids = kit.select(scores, "mmssr", budget=0.3)                # a Selection: ids in selection order
    kit.export_subset(pool, ids, "subset.json")                  # LLaVA JSON + manifest

Scorers, their backends and selectors live in registries (:mod:`kit.registry`) and load lazily, so
importing ``kit`` does not import torch. Each method lives in its own folder: :mod:`kit.mmssr` and
:mod:`kit.quality` (``docs/methods.md`` describes both).
"""
from kit.collapse import ScoreCollapseWarning
from kit.compare import compare_selections
from kit.data import Pool, PoolFormatError, PoolValidationError, load_pool
from kit.export import export_subset
from kit.quality.curriculum import build_curriculum, export_curriculum
from kit.registry import SCORERS, SELECTORS, register_scorer, register_selector
from kit.scoreinfo import ScoreInfo, ScoreTableInfo, score_info
from kit.scoring import load_scores, save_scores, score, score_cached, score_table
from kit.selection import Selection, Shortfall, resolve_budget, select

__version__ = "0.1.0"

__all__ = ["Pool", "PoolFormatError", "PoolValidationError", "load_pool", "score", "score_cached", "score_table",
           "select", "export_subset", "Selection", "Shortfall", "resolve_budget", "load_scores", "save_scores",
           "SCORERS", "SELECTORS", "register_scorer", "register_selector", "build_curriculum", "export_curriculum",
           "ScoreCollapseWarning", "compare_selections", "score_info", "ScoreInfo", "ScoreTableInfo", "__version__"]
