"""Build pools: the committed sample pool (build), a larger easy-vqa pool with chosen defect rates (easyvqa), the
distilled rich scorer's training pool apart from data_samples/ (distill), and a testbed pool under one of the
named conditions (testbed: balanced-clean, skewed-clean, skewed-noisy or redundant; see kit.pools.testbed).

examples:
  kit pools build data_samples/
  kit pools easyvqa runs/easyvqa_pool --n 2000
  kit pools distill runs/distill_pool
  kit pools testbed skewed-noisy runs/testbed_pool --n 2000 --seed 0

Also ``python -m kit.pools ...``.
"""
from __future__ import annotations

import time
from collections import Counter

from kit.commands.common import UsageError


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="pools_command", required=True)
    b = sub.add_parser("build", help="rebuild the committed sample pool (data_samples/)")
    b.add_argument("out_dir", nargs="?", default="data_samples")
    b.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("easyvqa", help="build a larger easy-vqa pool with chosen defect rates")
    e.add_argument("out_dir")
    e.add_argument("--n", type=int, default=1000, help="total number of samples (defects included)")
    e.add_argument("--mismatch", type=float, default=0.05)
    e.add_argument("--wrong-answer", type=float, default=0.05)
    e.add_argument("--truncated", type=float, default=0.02)
    e.add_argument("--duplicate", type=float, default=0.02)
    e.add_argument("--split", choices=["train", "test"], default="train",
                   help="easy-vqa split to draw images from ('test' is kit.finetune's held-out evaluation)")
    e.add_argument("--include-reserved", action="store_true",
                   help="also draw from the train images kept apart for the LiT head, the alignment and the dev slice")
    e.add_argument("--exclude-pool", default=None, metavar="POOL_JSON",
                   help="leave out the easy-vqa images this pool uses, e.g. data_samples/pool.json")
    e.add_argument("--seed", type=int, default=0)
    d = sub.add_parser("distill", help="build the pool the shipped distilled rich scorer is trained on "
                                       "(no sample of data_samples/; see kit.pools.distill)")
    d.add_argument("out_dir")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--exclude-pool", default=None, metavar="POOL_JSON",
                   help="the pool to stay apart from (default: data_samples/, whose footprint ships with the kit)")
    t = sub.add_parser("testbed", help="build a testbed pool under one of the named conditions")
    t.add_argument("condition", help="balanced-clean, skewed-clean, skewed-noisy or redundant")
    t.add_argument("out_dir")
    t.add_argument("--n", type=int, default=2000, help="total number of samples (defects included)")
    t.add_argument("--seed", type=int, default=0)


def _summary(samples, out_dir, seconds) -> str:
    defects = Counter(s.defect for s in samples)
    sources = Counter(s.source for s in samples)
    return (f"wrote {len(samples)} samples to {out_dir} in {seconds:.1f} s\n"
            f"  sources: {dict(sorted(sources.items()))}\n"
            f"  defects: {dict(sorted(defects.items()))}")


def run(args) -> int:
    from kit.pools.build import build_easyvqa_pool, build_sample_pool

    t0 = time.perf_counter()
    if args.pools_command == "build":
        samples = build_sample_pool(args.out_dir, seed=args.seed)
    elif args.pools_command == "testbed":
        from kit.pools.testbed import CONDITIONS, build_condition

        if args.condition not in CONDITIONS:
            raise UsageError(f"unknown condition {args.condition!r}; use one of {', '.join(CONDITIONS)}")
        samples = build_condition(args.condition, args.out_dir, n=args.n, seed=args.seed)
        families = Counter(s.meta["family"] for s in samples)
        print(f"  families: {dict(families.most_common())}")
    elif args.pools_command == "distill":
        from kit.pools.distill import build_distill_pool

        from kit.pools.footprint import SAMPLE_POOL

        samples = build_distill_pool(args.out_dir, seed=args.seed, exclude_pool=args.exclude_pool or SAMPLE_POOL)
    else:
        rates = {"mismatch": args.mismatch, "wrong_answer": args.wrong_answer,
                 "truncated": args.truncated, "duplicate": args.duplicate}
        samples = build_easyvqa_pool(args.out_dir, n=args.n, rates=rates, seed=args.seed, split=args.split,
                                     exclude_pool=args.exclude_pool, reserved=args.include_reserved)
    print(_summary(samples, args.out_dir, time.perf_counter() - t0))
    return 0
