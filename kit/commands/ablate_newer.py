"""The newer methods' ablation grid (influence, cvs, scalselect beside random) on one pool: each newer method's
scorer runs on the aligned base every run starts from (kit.experiments.newer.scorers_for), then the grid as
kit ablate.

example (easy-vqa):
  kit ablate-newer runs/easyvqa_pool/pool.json --out runs/ablation_newer \\
      --methods random influence cvs scalselect --budgets 0.1 0.3 --seeds 0 1 2 --threads 1

Also ``python -m kit.experiments.newer ...``.
"""
from __future__ import annotations

import time

from kit.commands.common import grid_budget


def add_arguments(ap) -> None:
    from kit.experiments.newer import NEWER

    ap.add_argument("pool")
    ap.add_argument("--out", required=True)
    ap.add_argument("--methods", nargs="+", default=["random", *NEWER])
    ap.add_argument("--budgets", nargs="+", type=grid_budget, default=[0.1, 0.3])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--targets", default="easyvqa", choices=("easyvqa", "testbed"))
    ap.add_argument("--per-task", type=int, default=8, help="influence target questions per task (dev side)")
    ap.add_argument("--per-type", type=int, default=200, help="held-out test questions of each type")
    ap.add_argument("--no-full", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--workers", type=int, default=1)


def run(args) -> int:
    import pandas as pd

    import kit
    import kit.finetune as ft
    from kit.experiments import ablate, against_random, summary_table
    from kit.experiments.newer import scorers_for

    pool = kit.load_pool(args.pool)
    base = ft.base_model(args.preset)
    changes = {"threads": args.threads} if args.threads else {}
    t0 = time.perf_counter()
    table = ablate(pool, args.methods, args.budgets, args.seeds, preset=args.preset, out=args.out,
                   scorers=scorers_for(args.methods, args.preset, base, args.targets, args.per_task),
                   full=not args.no_full, eval_set=ft.easyvqa_eval_set(per_type=args.per_type), workers=args.workers,
                   base=base, **changes)
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(summary_table(table, args.methods).round(3).to_string())
        print(against_random(table).round(3).to_string())
    print(f"{len(table)} runs in {args.out} ({time.perf_counter() - t0:.0f} s this call)")
    return 0
