"""Read a LLaVA JSON / JSONL / parquet pool, check every record and print the summary and the rejected records.
Exit code 3 when some were rejected.

example: kit validate data_samples/pool.json --report rejected.csv
"""
from __future__ import annotations

from kit.commands.common import add_loader, add_overwrite, check_outputs, loader_options, write_table

EXIT_REJECTED = 3


def add_arguments(p) -> None:
    p.add_argument("pool", help="the pool file (.json, .jsonl or .parquet)")
    p.add_argument("--strict", action="store_true", help="stop at the first problem (exit code 1)")
    p.add_argument("--report", metavar="FILE", help="write every rejection (.csv, .jsonl or .parquet)")
    p.add_argument("--write", metavar="FILE", help="write the accepted records (.json, .jsonl or .parquet)")
    p.add_argument("--show", type=int, default=20, help="how many rejections to print (default 20)")
    p.add_argument("--quiet", action="store_true", help="print the summary line only")
    add_overwrite(p)
    add_loader(p)


def run(args) -> int:
    import kit
    from kit.export import format_of, write_records

    if args.write:
        format_of(args.write)  # a suffix the loader reads back, before the (long) load
    outputs, inputs = [args.report, args.write], [("the pool file", args.pool)]
    check_outputs(args, outputs, inputs)
    pool = kit.load_pool(args.pool, strict=args.strict, **loader_options(args))
    print(pool.summary())
    if len(pool.report) and not args.quiet:
        import pandas as pd

        with pd.option_context("display.max_rows", args.show, "display.max_colwidth", 120, "display.width", 200):
            print(pool.report.head(args.show).to_string(index=False))
        if len(pool.report) > args.show:
            print(f"... {len(pool.report) - args.show} more (write them all with --report FILE)")
    for note in pool.notes:
        print(f"note: {note}")
    check_outputs(args, outputs, inputs, pool)
    if args.report:
        write_table(pool.report, args.report)
        print(f"rejections written to {args.report}")
    if args.write:
        write_records(pool.records(), args.write)
        print(f"{len(pool)} accepted records written to {args.write}")
    return EXIT_REJECTED if len(pool.report) else 0
