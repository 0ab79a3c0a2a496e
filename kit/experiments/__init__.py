"""Ablations: methods x budgets x seeds, each subset proven by fine-tuning a small model on it.

    table = kit.experiments.ablate(pool, ["random", "mmssr", "diq", "dis", "dil", "curriculum",
                                          "curriculum_shuffled"], budgets=[0.1, 0.3], seeds=[0, 1, 2],
                                   preset="tiny", out="runs/ablation")
    kit.experiments.summary_table(table)        # mean over seeds: accuracy (sd), per type, /FULL, >Rand

Command line: ``kit ablate POOL_JSON --out DIR [--methods ...] [--budgets ...]`` (or ``python -m kit.experiments ablate``).
"""
from kit.experiments.ablation import (BENCHMARKS, DEFAULT_BUDGETS, DEFAULT_METHODS, DEFAULT_SEEDS, ablate,
                                      add_relative_metrics, against_random, curriculum_vs_shuffled, default_scorers,
                                      load_results, summary_table)

__all__ = ["ablate", "summary_table", "against_random", "curriculum_vs_shuffled", "add_relative_metrics", "load_results", "default_scorers", "DEFAULT_METHODS",
           "DEFAULT_BUDGETS", "DEFAULT_SEEDS", "BENCHMARKS"]
