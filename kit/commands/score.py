"""Score every accepted sample with a registered scorer into a folder of parquet shards and a manifest. Run the
same command again to resume an interrupted run: finished shards are kept. The pool is read as a stream.

examples:
  kit score data_samples/pool.json loss --out scores/loss
  kit score pool.jsonl image_text --out scores/it --option text=questions
  kit score pool.jsonl loss --out scores/loss --ray --address auto --option device=cuda
then: kit.load_scores('scores/loss')
"""
from __future__ import annotations

import os

from kit.commands.common import CliError, add_loader, loader_options, parse_options


def add_arguments(p) -> None:
    p.add_argument("pool", help="the pool file (.json, .jsonl or .parquet)")
    p.add_argument("scorer", help="a registered scorer: image_text, loss, rich, style, ...")
    p.add_argument("--out", required=True, metavar="DIR", help="the score folder (created, or resumed)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="a scorer option (value read as JSON when it parses); repeat for several")
    p.add_argument("--options", metavar="JSON", help="scorer options as a JSON object (or @file.json)")
    p.add_argument("--shard-size", type=int, default=None, help="samples per shard (default 1024; fixed per folder)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a folder that holds other scores (another scorer, options or pool)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("Ray Data")
    g.add_argument("--ray", action="store_true", help="score on Ray Data actors (a local instance unless --address)")
    g.add_argument("--address", default=None, help="a running Ray cluster (auto, ray://head:10001, ...)")
    g.add_argument("--num-actors", type=int, default=None, help="actor pool size (default: one per GPU or CPU)")
    g.add_argument("--cpus-per-actor", type=float, default=1, help="CPUs each actor reserves (default 1)")
    g.add_argument("--gpus-per-actor", type=float, default=None, help="default: 1 when the cluster has GPUs")
    g.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray instance")
    add_loader(p)


def run(args) -> int:
    from kit.registry import SCORERS

    if args.scorer not in SCORERS:
        raise CliError(SCORERS.unknown(args.scorer))
    pool_real, out_real = os.path.realpath(args.pool), os.path.realpath(args.out)
    if pool_real == out_real or pool_real.startswith(out_real.rstrip(os.sep) + os.sep):
        raise CliError(f"--out {args.out} is or holds the pool file {args.pool}, an input: a score folder's files are "
                       "replaced as it is scored; score into another folder")
    options = parse_options(args.option, args.options)
    common = {"shard_size": args.shard_size, "on_mismatch": "overwrite" if args.overwrite else "error",
              "progress": not args.no_progress, "loader": loader_options(args)}
    if args.ray:
        from kit.distributed import score_ray

        result = score_ray(args.pool, args.scorer, args.out, address=args.address, num_actors=args.num_actors,
                           cpus_per_actor=args.cpus_per_actor, gpus_per_actor=args.gpus_per_actor,
                           num_cpus=args.num_cpus, **common, **options)
    else:
        from kit.scoring import score_shards

        result = score_shards(args.pool, args.scorer, args.out, **common, **options)
    print(result)
    from kit.shards import read_manifest

    pool_info = read_manifest(args.out).get("pool", {})
    if pool_info.get("n_rejected"):
        reasons = ", ".join(f"{k} {v}" for k, v in pool_info.get("rejected_by_reason", {}).items())
        print(f"{pool_info['n_input']} records read, {pool_info['n_rejected']} rejected by the loader ({reasons}); "
              f"see them with: kit validate {args.pool}")
    print(f'read it with kit.load_scores("{args.out}")')
    return 0
