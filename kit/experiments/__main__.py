"""Command line: ``python -m kit.experiments ablate POOL_JSON --out DIR`` and ``... testbed CONDITION --out DIR``.

    python -m kit.experiments ablate pool/pool.json --out runs/ablation \
        --methods random mmssr diq dis dil curriculum curriculum_shuffled --budgets 0.1 0.3 --seeds 0 1 2
    python -m kit.experiments testbed skewed-noisy --out runs/testbed/skewed-noisy --workers 2 --threads 1 \
        --results results/testbed
    python -m kit.experiments testbed-gate --out runs/testbed/gate

An interrupted ablation resumes where it stopped when run again with the same arguments.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time


def _budget(text: str):
    value = float(text)
    return int(value) if value >= 1 and value.is_integer() else value


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kit.experiments", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("ablate", help="select, fine-tune and evaluate methods x budgets x seeds")
    a.add_argument("pool")
    a.add_argument("--out", required=True)
    a.add_argument("--methods", nargs="+", default=None)
    a.add_argument("--budgets", nargs="+", type=_budget, default=None)
    a.add_argument("--seeds", nargs="+", type=int, default=None)
    a.add_argument("--preset", default="tiny")
    a.add_argument("--base", default=None, help="aligned model folder every run starts from (default: the preset's)")
    a.add_argument("--no-full", action="store_true", help="do not train on the full pool")
    a.add_argument("--per-type", type=int, default=200, help="held-out questions of each type (200: the README's run)")
    a.add_argument("--generate", type=int, default=0, help="greedy generations per type and run (a check)")
    a.add_argument("--keep-models", action="store_true")
    a.add_argument("--epochs", type=float, default=None)
    a.add_argument("--threads", type=int, default=None, help="torch threads per run (1 with --workers 2)")
    a.add_argument("--workers", type=int, default=1, help="runs trained at once, in separate processes")
    t = sub.add_parser("testbed", help="one testbed condition: build its pool, score it, run the grid, export")
    t.add_argument("condition", help="balanced-clean, skewed-clean, skewed-noisy or redundant")
    t.add_argument("--out", required=True)
    t.add_argument("--n", type=int, default=2000, help="pool size")
    t.add_argument("--pool-seed", type=int, default=0)
    t.add_argument("--methods", nargs="+", default=None)
    t.add_argument("--budgets", nargs="+", type=_budget, default=None)
    t.add_argument("--seeds", nargs="+", type=int, default=None)
    t.add_argument("--per-family", type=int, default=100, help="held-out questions per family")
    t.add_argument("--threads", type=int, default=None, help="torch threads per run (1 with --workers 2)")
    t.add_argument("--workers", type=int, default=1, help="runs trained at once, in separate processes")
    t.add_argument("--results", default=None, help="folder for the tidy table (CONDITION.csv)")
    t.add_argument("--newer", action="store_true",
                   help="the newer signals' grid (random, influence, cvs, scalselect) in the same folder; its table "
                        "goes to RESULTS/newer/CONDITION.csv")
    g = sub.add_parser("testbed-gate", help="the testbed's learnability gate: per-family dev accuracy vs majority")
    g.add_argument("--out", required=True)
    g.add_argument("--n", type=int, default=2000, help="size of the balanced clean pool trained on")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--per-family", type=int, default=150, help="dev questions per family")
    args = ap.parse_args(argv)
    if args.cmd == "testbed-gate":
        from kit.experiments.testbed import gate

        table = gate(args.out, n=args.n, seed=args.seed, per_family=args.per_family)
        print(table.round(3).to_string())
        print(f"{int(table['passes'].sum())} of {len(table)} families pass; written to {args.out}/gate.csv")
        return 0
    if args.cmd == "testbed":
        return _testbed(args)

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
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary_table(table, args.methods).round(3).to_string())
    print(f"{len(table)} runs in {args.out} ({time.perf_counter() - t0:.0f} s this call)")
    return 0


def _testbed(args) -> int:
    import pandas as pd

    from kit.experiments import DEFAULT_BUDGETS, DEFAULT_SEEDS, summary_table
    from kit.experiments.testbed import METHODS, NEWER_METHODS, export, run_condition

    default = NEWER_METHODS if args.newer else METHODS
    if args.newer and args.results:
        args.results = f"{args.results}/newer"
    t0 = time.perf_counter()
    table = run_condition(args.condition, args.out, n=args.n, pool_seed=args.pool_seed, methods=args.methods or default,
                          budgets=args.budgets or DEFAULT_BUDGETS, seeds=args.seeds or DEFAULT_SEEDS,
                          per_family=args.per_family, workers=args.workers, threads=args.threads)
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(summary_table(table, list(args.methods or default)).round(3).to_string())
    if args.results:
        print(f"tidy table: {export(table, f'{args.results}/{args.condition}.csv')}")
        if not args.newer and "teacher" in table.attrs:
            from kit.experiments.testbed import export_teacher

            print(f"teacher agreement: {export_teacher(table.attrs['teacher'], args.condition, f'{args.results}/teacher/{args.condition}.csv')}")
        if not args.newer:
            from kit.experiments.testbed import subset_composition

            path = Path(args.results) / "composition" / f"{args.condition}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            subset_composition(args.out).round(4).to_csv(path, index=False)
            print(f"subset composition: {path}")
    print(f"{len(table)} runs in {args.out} ({time.perf_counter() - t0:.0f} s this call)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
