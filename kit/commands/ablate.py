"""Select, fine-tune and evaluate methods x budgets x seeds on one pool, into one tidy table.

example:
  kit ablate pool/pool.json --out runs/ablation \\
      --methods random mmssr diq dis dil curriculum curriculum_shuffled --budgets 0.1 0.3 --seeds 0 1 2

An interrupted ablation resumes where it stopped when run again with the same arguments. Also
``python -m kit.experiments ablate ...``.
"""
from __future__ import annotations

import time

from kit.commands.common import grid_budget


def add_arguments(a) -> None:
    a.add_argument("pool")
    a.add_argument("--out", required=True)
    a.add_argument("--methods", nargs="+", default=None)
    a.add_argument("--budgets", nargs="+", type=grid_budget, default=None)
    a.add_argument("--seeds", nargs="+", type=int, default=None)
    a.add_argument("--preset", default="tiny")
    a.add_argument("--base", default=None, help="aligned model folder every run starts from (default: the preset's)")
    a.add_argument("--no-full", action="store_true", help="do not train on the full pool")
    a.add_argument("--per-type", type=int, default=200, help="held-out questions of each type (200: docs/results.md's run)")
    a.add_argument("--generate", type=int, default=0, help="greedy generations per type and run (a check)")
    a.add_argument("--keep-models", action="store_true")
    a.add_argument("--epochs", type=float, default=None)
    a.add_argument("--threads", type=int, default=None, help="torch threads per run (1 with --workers 2)")
    a.add_argument("--workers", type=int, default=1, help="runs trained at once, in separate processes")
    a.add_argument("--results", default=None,
                   help="also write the finished runs' tidy table here as CSV (results/easyvqa/ablation.csv: what "
                        "kit docs prints docs/results.md's easy-vqa tables from)")


def run(args) -> int:
    import pandas as pd

    import kit
    import kit.finetune as ft
    from kit.experiments import DEFAULT_BUDGETS, DEFAULT_METHODS, DEFAULT_SEEDS, ablate, summary_table

    pool = kit.load_pool(args.pool)
    changes = {k: v for k, v in {"epochs": args.epochs, "threads": args.threads}.items() if v is not None}
    t0 = time.perf_counter()
    table = ablate(pool, args.methods or DEFAULT_METHODS, args.budgets or DEFAULT_BUDGETS,
                   args.seeds or DEFAULT_SEEDS, preset=args.preset, out=args.out, full=not args.no_full,
                   eval_set=ft.easyvqa_eval_set(per_type=args.per_type), keep_models=args.keep_models,
                   generate=args.generate, base=args.base, workers=args.workers, **changes)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary_table(table, args.methods).round(3).to_string())
    print(f"{len(table)} runs in {args.out} ({time.perf_counter() - t0:.0f} s this call)")
    if args.results:
        from pathlib import Path

        from kit.outputs import atomic_write_text

        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.results, table.round(4).to_csv(index=False))
        print(f"the table of runs: {args.results}")
    return 0
