"""The newer methods in an ablation: the score table they need, and a command that runs their grid.

:data:`kit.experiments.ablation.NEEDS` names the scorer each newer method reads (``influence``, ``cvs``,
``scalselect``), but :func:`kit.experiments.ablation.default_scorers` builds only the four default scorers, so an
ablation of these methods passes its score table explicitly: :func:`scorers_for` gives the defaults plus, for each
newer method asked for, its scorer on the aligned base every run starts from (the model being tuned, before
instruction tuning, as for the answer loss)::

    from kit.experiments import ablate
    from kit.experiments.newer import scorers_for

    methods = ["random", "influence", "cvs", "scalselect"]
    ablate(pool, methods, scorers=scorers_for(methods, "tiny", base=base, targets="easyvqa"), out=...)

``targets`` is the influence target set (``"easyvqa"``: easy-vqa's question types on the train split's dev slice;
``"testbed"``: the testbed's families on their dev side; :mod:`kit.influence.targets`), ``per_task`` questions of
each. Command line (easy-vqa)::

    python -m kit.experiments.newer runs/easyvqa_pool/pool.json --out runs/ablation_newer \\
        --methods random influence cvs scalselect --budgets 0.1 0.3 --seeds 0 1 2 --threads 1
"""
from __future__ import annotations

import argparse
import sys
import time

NEWER = ("influence", "cvs", "scalselect")


def scorers_for(methods, preset="tiny", base=None, targets: str = "easyvqa", per_task: int = 8) -> dict:
    """:func:`~kit.experiments.ablation.default_scorers` for ``methods`` plus the newer methods' scorers, each on
    ``base`` (default: the preset's aligned base)."""
    from kit.experiments.ablation import default_scorers
    from kit.finetune import base_model

    base = str(base if base is not None else base_model(preset))
    scorers = default_scorers(preset, [m for m in methods if m not in NEWER], base=base)
    if not [m for m in methods if m not in NEWER and m not in ("random", "full")]:
        scorers = {}                  # random and full read no score: score only what the newer methods need
    for m in methods:
        if m == "influence":
            scorers["influence"] = {"model": base, "targets": targets, "per_task": int(per_task)}
        elif m in ("cvs", "scalselect"):
            scorers[m] = {"model": base}
    return scorers


def main(argv=None) -> int:
    from kit.experiments.__main__ import _budget

    ap = argparse.ArgumentParser(prog="python -m kit.experiments.newer", description=__doc__.split("\n\n")[0])
    ap.add_argument("pool")
    ap.add_argument("--out", required=True)
    ap.add_argument("--methods", nargs="+", default=["random", *NEWER])
    ap.add_argument("--budgets", nargs="+", type=_budget, default=[0.1, 0.3])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--targets", default="easyvqa", choices=("easyvqa", "testbed"))
    ap.add_argument("--per-task", type=int, default=8, help="influence target questions per task (dev side)")
    ap.add_argument("--per-type", type=int, default=200, help="held-out test questions of each type")
    ap.add_argument("--no-full", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)

    import pandas as pd

    import kit
    import kit.finetune as ft
    from kit.experiments import ablate, against_random, summary_table

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


if __name__ == "__main__":
    sys.exit(main())
