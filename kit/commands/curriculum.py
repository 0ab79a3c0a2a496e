"""Stages drawn toward high image-text score and high loss (arXiv 2407.00102), written as one file per stage plus
curriculum.manifest.json.

example: kit curriculum scores/image_text scores/loss --pool data_samples/pool.json --stages 3 --budget 0.5 --out curriculum/
"""
from __future__ import annotations

from pathlib import Path

from kit.commands.common import (CliError, add_loader, add_overwrite, check_outputs, join_scores, load_pool,
                                 parse_budget, parse_options)


def add_arguments(p) -> None:
    from kit.export import FORMATS

    p.add_argument("scores", nargs="+", help="score tables holding image_text and a loss column")
    p.add_argument("--pool", required=True)
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--stages", type=int, default=3, help="number of stages (default 3)")
    p.add_argument("--sizes", type=parse_budget, default=None, help="samples per stage (count or fraction)")
    p.add_argument("--budget", type=parse_budget, default=None, help="samples in all, split over the stages")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--format", choices=sorted(FORMATS), default="llava", help="default llava")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="quality-space option (loss_col, bounds, ...); repeat for several")
    p.add_argument("--options", metavar="JSON")
    add_overwrite(p)
    add_loader(p)


def run(args) -> int:
    import kit
    from kit.quality.curriculum import MANIFEST_NAME

    inputs = [("the pool file", args.pool), *(("a score table", p) for p in args.scores)]
    check_outputs(args, [Path(args.out) / MANIFEST_NAME], inputs)
    pool = load_pool(args.pool, args)
    scores = join_scores(args.scores, pool)
    options = parse_options(args.option, args.options)
    if (args.sizes is None) == (args.budget is None):
        raise CliError("give --sizes (samples per stage) or --budget (in all, split over the stages)")
    stages = kit.build_curriculum(scores, stages=args.stages, sizes=args.sizes, budget=args.budget, seed=args.seed,
                                  **options)
    for k, stage in enumerate(stages):
        print(f"stage {k}: {len(stage)} samples" + (f" ({stage.shortfall})" if stage.shortfall else ""))
    path = kit.export_curriculum(pool, stages, args.out, format=args.format, overwrite=args.overwrite, inputs=inputs)
    print(f"curriculum written to {Path(args.out)} ({MANIFEST_NAME}: {path.name})")
    return 0
