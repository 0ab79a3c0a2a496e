"""The easy-vqa ablation's tables as markdown, printed from its committed tidy table (``results/easyvqa/``).

``kit docs`` writes them into docs/results.md ("Fine-tuning and ablations"); ``make ablation-easyvqa`` reruns the
grid and copies its finished runs' table there (``kit.experiments.load_results(out)``, one row per run).

    table = pd.read_csv("results/easyvqa/ablation.csv")
    print(summary_markdown(table))       # mean ± sd over seeds per (budget, method), with the verdict
    print(order_markdown(table))         # the curriculum in stage order against the same samples shuffled
"""
from __future__ import annotations

import pandas as pd

from kit.experiments.ablation import DEFAULT_METHODS, against_random, curriculum_vs_shuffled

TYPES = ("colour", "shape", "yes/no")


def _budget(b) -> str:
    return "full" if str(b) == "full" else f"{float(b):.0%}"


def _order(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(budget, method) in the grid's order: budgets ascending, full last; methods in the grid's default order."""
    methods = list(dict.fromkeys([m for m in DEFAULT_METHODS if m in set(table["method"])] + list(table["method"])))
    budgets = sorted({str(b) for b in table["budget"] if str(b) != "full"}, key=float)
    keys = {(str(b), str(m)) for b, m in zip(table["budget"], table["method"])}
    return [(b, m) for b in budgets + ["full"] for m in methods if (b, m) in keys]


def summary_markdown(table: pd.DataFrame) -> str:
    """One row per (method, budget): seeds, samples trained on, accuracy mean ± sd and range, per question type,
    /FULL, >Rand, the share of planted defects in the subset, and the verdict against random at that budget
    (a difference counts only beyond the pooled sd of the two groups: :func:`against_random`)."""
    table = table.assign(budget=table["budget"].astype(str))
    verdicts = against_random(table)["verdict"]
    lines = ["| method | budget | seeds | n | accuracy mean ± sd | min–max | colour / shape / yes-no | /FULL | >Rand "
             "| defect share | verdict |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for budget, method in _order(table):
        runs = table[(table["budget"] == budget) & (table["method"] == method)]
        acc = runs["accuracy"]
        sd = f" ± {acc.std(ddof=1):.3f}" if len(acc) > 1 else ""
        types = " / ".join(f"{runs[f'accuracy_{t}'].mean():.3f}" for t in TYPES)
        rand = "" if method in ("random", "full") else f"{runs['>Rand'].mean():.2f}"
        verdict = verdicts.get((budget, method), "") if budget != "full" else ""
        lines.append(f"| {method} | {_budget(budget)} | {len(runs)} | {runs['n'].mean():.0f} | {acc.mean():.3f}{sd} | "
                     f"{acc.min():.3f}–{acc.max():.3f} | {types} | {runs['/FULL'].mean():.1f} | {rand} | "
                     f"{runs['defect_share'].mean():.3f} | {verdict} |")
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
