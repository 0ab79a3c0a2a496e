"""The easy-vqa ablation's tables as markdown, printed from its committed tidy table (``results/easyvqa/``).

``kit docs`` writes them into docs/results.md ("Fine-tuning and ablations"); ``make ablation-easyvqa`` reruns the
grid and copies its finished runs' table there (``kit.experiments.load_results(out)``, one row per run).

    table = pd.read_csv("results/easyvqa/ablation.csv")
    print(summary_markdown(table))       # mean ± sd over seeds per (budget, method), with the verdict
    print(order_markdown(table))         # the curriculum in stage order against the same samples shuffled
"""
from __future__ import annotations

import pandas as pd

from kit.experiments.ablation import DEFAULT_METHODS, against_random, curriculum_vs_shuffled, summary_table

TYPES = ("colour", "shape", "yes/no")


def _budget(b) -> str:
    return "full" if str(b) == "full" else f"{float(b):.0%}"


def summary_markdown(table: pd.DataFrame) -> str:
    """One row per (method, budget) of :func:`summary_table` (seeds, samples trained on, accuracy mean ± sd, per
    question type, /FULL, >Rand, the share of planted defects in the subset), with the accuracy's range over seeds
    and the verdict against random at that budget (a difference counts only beyond the pooled sd of the two
    groups: :func:`against_random`)."""
    table = table.assign(budget=table["budget"].astype(str))
    summary = summary_table(table, list(DEFAULT_METHODS))
    accuracy = table.groupby(["budget", "method"])["accuracy"]
    low, high = accuracy.min(), accuracy.max()
    verdicts = against_random(table)["verdict"]
    lines = ["| method | budget | seeds | n | accuracy mean ± sd | min–max | colour / shape / yes-no | /FULL | >Rand "
             "| defect share | verdict |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (budget, method), row in summary.iterrows():
        sd = f" ± {row['accuracy_sd']:.3f}" if row["seeds"] > 1 else ""
        types = " / ".join(f"{row[f'accuracy_{t}']:.3f}" for t in TYPES)
        rand = "" if method in ("random", "full") else f"{row['>Rand']:.2f}"
        verdict = verdicts.get((budget, method), "") if budget != "full" else ""
        lines.append(f"| {method} | {_budget(budget)} | {row['seeds']:.0f} | {row['n']:.0f} | "
                     f"{row['accuracy']:.3f}{sd} | {low[budget, method]:.3f}–{high[budget, method]:.3f} | {types} | {row['/FULL']:.1f} | "
                     f"{rand} | {row['defect_share']:.3f} | {verdict} |")
    return "\n".join(lines) + "\n"


def order_markdown(table: pd.DataFrame) -> str:
    """The curriculum in stage order minus the same samples shuffled, per budget (mean ± sd over seeds)."""
    table = table.assign(budget=table["budget"].astype(str))
    if not {"curriculum", "curriculum_shuffled"} <= set(table["method"]):
        return "(the grid has no curriculum and shuffled-control runs)\n"
    order = curriculum_vs_shuffled(table).reset_index()
    lines = ["| budget | seeds | in order − shuffled, mean ± sd |", "|---|---|---|"]
    for _, row in order.iterrows():
        lines.append(f"| {_budget(row['budget'])} | {int(row['seeds'])} | {row['mean_diff']:+.3f} ± "
                     f"{row['sd_diff']:.3f} |")
    return "\n".join(lines) + "\n"
