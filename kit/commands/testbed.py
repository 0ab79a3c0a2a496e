"""One testbed condition: build its pool, score it, run the grid of methods x budgets x seeds, export the table.

example:
  kit testbed skewed-noisy --out runs/testbed/skewed-noisy --workers 2 --threads 1 --results results/testbed
  kit testbed skewed-noisy --out runs/testbed/skewed-noisy --newer --results results/testbed

An interrupted grid resumes where it stopped when run again with the same arguments. Also
``python -m kit.experiments testbed ...``.
"""
from __future__ import annotations

import time

from kit.commands.common import grid_budget


def add_arguments(t) -> None:
    t.add_argument("condition", help="balanced-clean, skewed-clean, skewed-noisy or redundant")
    t.add_argument("--out", required=True)
    t.add_argument("--n", type=int, default=2000, help="pool size")
    t.add_argument("--pool-seed", type=int, default=0)
    t.add_argument("--methods", nargs="+", default=None)
    t.add_argument("--budgets", nargs="+", type=grid_budget, default=None)
    t.add_argument("--seeds", nargs="+", type=int, default=None)
    t.add_argument("--per-family", type=int, default=100, help="held-out questions per family")
    t.add_argument("--threads", type=int, default=None, help="torch threads per run (1 with --workers 2)")
    t.add_argument("--workers", type=int, default=1, help="runs trained at once, in separate processes")
    t.add_argument("--results", default=None, help="folder for the tidy table (CONDITION.csv)")
    t.add_argument("--newer", action="store_true",
                   help="the newer signals' grid (random, influence, cvs, scalselect) in the same folder; its table "
                        "goes to RESULTS/newer/CONDITION.csv")


def run(args) -> int:
    import pandas as pd

    from kit.experiments import DEFAULT_BUDGETS, DEFAULT_SEEDS, summary_table
    from kit.experiments.testbed import METHODS, NEWER_METHODS, export, run_condition

    default = NEWER_METHODS if args.newer else METHODS
    results = f"{args.results}/newer" if args.newer and args.results else args.results
    t0 = time.perf_counter()
    table = run_condition(args.condition, args.out, n=args.n, pool_seed=args.pool_seed, methods=args.methods or default,
                          budgets=args.budgets or DEFAULT_BUDGETS, seeds=args.seeds or DEFAULT_SEEDS,
                          per_family=args.per_family, workers=args.workers, threads=args.threads)
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(summary_table(table, list(args.methods or default)).round(3).to_string())
    if results:
        print(f"tidy table: {export(table, f'{results}/{args.condition}.csv')}")
    if args.results and not args.newer:
        from pathlib import Path

        from kit.experiments.testbed import export_teacher, subset_composition

        if "teacher" in table.attrs:
            path = export_teacher(table.attrs["teacher"], args.condition, f"{args.results}/teacher/{args.condition}.csv")
            print(f"teacher agreement: {path}")
        path = Path(args.results) / "composition" / f"{args.condition}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        subset_composition(args.out).round(4).to_csv(path, index=False)
        print(f"subset composition: {path}")
    print(f"{len(table)} runs in {args.out} ({time.perf_counter() - t0:.0f} s this call)")
    return 0
