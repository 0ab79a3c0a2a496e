"""Join one or more score tables (files or score folders) on the id and select BUDGET samples with a registered
selector.

examples:
  kit select mmssr scores/rich scores/style --budget 0.3 --pool data_samples/pool.json --out mmssr.json
  kit select diq scores/image_text scores/loss --budget 100 --option grid=3 --out diq.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from kit.commands.common import (CliError, add_loader, add_overwrite, check_outputs, join_scores, load_pool,
                                 parse_budget, parse_options)


def add_arguments(p) -> None:
    from kit.export import EXPORT_FORMATS

    p.add_argument("method", help="a registered selector: random, mmssr, dis, dil, diq, cells, ...")
    p.add_argument("scores", nargs="+", help="score tables: parquet files or score folders")
    p.add_argument("--budget", type=parse_budget, required=True, help="a count (1000) or a fraction (0.3, 30%%)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a selector option; repeat for several")
    p.add_argument("--options", metavar="JSON", help="selector options as a JSON object (or @file.json)")
    p.add_argument("--pool", help="the pool (adds 'source'; needed for --export)")
    p.add_argument("--out", metavar="FILE", help="write the selection (ids and how they were chosen) as JSON")
    p.add_argument("--export", metavar="FILE", help="also write the selected records (with a manifest)")
    p.add_argument("--format", choices=sorted(EXPORT_FORMATS), default=None,
                   help="format of --export (default: from its suffix; a disagreeing one is refused; llamafactory "
                        "and swift are the trainers' formats)")
    add_overwrite(p)
    add_loader(p)


def selection_json(sel, extra: dict | None = None) -> dict:
    from kit.export import selection_manifest

    return {"ids": [str(i) for i in sel], "n_selected": len(sel), **selection_manifest(sel), **(extra or {})}


def run(args) -> int:
    import warnings

    import kit
    from kit.registry import SELECTORS

    if args.method not in SELECTORS:
        raise CliError(SELECTORS.unknown(args.method))
    from kit.export import format_of, manifest_path

    if args.export:
        format_of(args.export, args.format)
    if args.export and not args.pool:
        raise CliError("--export needs --pool (the records to write)")
    outputs = [args.out, args.export, manifest_path(args.export) if args.export else None]
    inputs = [("the pool file", args.pool), *(("a score table", p) for p in args.scores)]
    check_outputs(args, outputs, inputs)
    pool = load_pool(args.pool, args) if args.pool else None
    scores = join_scores(args.scores, pool)
    options = parse_options(args.option, args.options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sel = kit.select(scores, args.method, args.budget, seed=args.seed, **options)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print(f"{args.method}: selected {len(sel)} of {len(scores)} samples (budget {sel.budget})")
    for note in sel.notes:
        print(f"  note: {note}")
    if pool is not None:
        check_outputs(args, outputs, inputs, pool)
    if args.out:
        from kit.outputs import atomic_write_bytes

        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, json.dumps(selection_json(sel, {"scores": [str(p) for p in args.scores]}),
                                           indent=1).encode("utf-8"))
        print(f"selection written to {out}")
    if args.export:
        path = kit.export_subset(pool, sel, args.export, format=args.format, inputs=inputs)
        print(f"subset written to {path} (+ manifest)")
    return 0
