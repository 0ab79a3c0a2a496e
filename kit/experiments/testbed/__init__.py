"""One testbed condition's whole ablation: build the pool, score it as the protocol says, run the grid, export.

    table = kit.experiments.testbed.run_condition("skewed-noisy", "runs/testbed/skewed-noisy")
    kit.experiments.testbed.export(table, "results/testbed/skewed-noisy.csv")

Command line: ``kit testbed CONDITION --out DIR [--results results/testbed]`` (or ``python -m kit.experiments testbed``).

Steps (the protocol is fixed in ``docs/methods.md``, "The testbed"):

1. the pool of the condition (:func:`kit.pools.testbed.build_condition`, ``n`` samples, ``pool_seed``), built once
   into ``out/pool/``;
2. mmSSR's rich scores by mmSSR's own protocol: the teacher (the pool's per-template reference ratings) rates a
   seeded ``teacher_share`` of the pool, a distilled head learns from that sample only
   (:func:`kit.mmssr.distilled.sample.distil_on_sample`) and rates the whole pool; its agreement with the
   teacher on the rest of the pool is written to ``out/rich_teacher.json``;
3. the grid (:func:`kit.experiments.ablate`): every method at every budget and seed, fine-tuned from the
   ``preset``'s aligned base and evaluated on the testbed's held-out questions (``per_family`` per family,
   balanced over families; :func:`kit.pools.testbed.heldout_questions`);
4. :func:`export` writes the tidy table (one row per run) that the results and notebook 05 are drawn from.

:func:`gate` measures the learnability gate that comes before any grid: the preset fine-tuned on a whole
balanced clean pool, per-family accuracy on the families' ``dev`` side against each family's majority-answer rate
and its image-blind rate (``kit testbed-gate --out runs/testbed/gate``).
"""
from kit.experiments.testbed.gate import GATE_MARGIN, gate, gate_table
from kit.experiments.testbed.report import BEGIN, END, results_markdown, write_results
from kit.experiments.testbed.run import (METHODS, NEWER_METHODS, PRESET, build_pool, reproduce_run, rich_head,
                                         run_condition, scorers_for)
from kit.experiments.testbed.tables import (CONDITION_ORDER, FIRST_COLUMNS, add_kept_macro, budget_value, export,
                                            export_teacher, kept_families, load_results, subset_composition,
                                            which_method_when)

__all__ = ["BEGIN", "CONDITION_ORDER", "END", "FIRST_COLUMNS", "GATE_MARGIN", "METHODS", "NEWER_METHODS", "PRESET",
           "add_kept_macro", "budget_value", "build_pool", "export", "export_teacher", "gate", "gate_table",
           "kept_families", "load_results", "reproduce_run", "results_markdown", "rich_head", "run_condition",
           "scorers_for", "subset_composition", "which_method_when", "write_results"]
