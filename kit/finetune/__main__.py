"""Command line: align a base model, fine-tune on a subset, evaluate on easy-vqa's test split.

    python -m kit.finetune align [--preset tiny] [--out DIR] [--steps N]
    python -m kit.finetune train POOL_JSON --out RUN_DIR [--subset SUBSET_JSON] [--preset tiny] [--seed 0]
        [--option KEY=VALUE ...]    (TrainConfig fields: lr, epochs, batch_size, grad_accum, autocast, device, ...)
    python -m kit.finetune eval MODEL_DIR [--per-type 600] [--generate 20]

Also ``kit finetune ...``. On several GPUs (or CPU processes) the same ``train`` command runs under accelerate:
``accelerate launch --multi_gpu --num_processes 4 -m kit finetune train ...`` (``docs/finetune.md``).
"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kit.finetune", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("align", help="stage 1 on captions of reserved easy-vqa images; prints the folder")
    a.add_argument("--preset", default="tiny")
    a.add_argument("--out", default=None)
    a.add_argument("--steps", type=int, default=None)
    t = sub.add_parser("train", help="fine-tune on a pool or a subset of it")
    t.add_argument("pool")
    t.add_argument("--out", required=True)
    t.add_argument("--subset", default=None, help="a subset exported by kit.export_subset (ids read from its manifest)")
    t.add_argument("--preset", default="tiny")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=float, default=None)
    t.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="a training setting (a TrainConfig field, value read as JSON when it parses); repeat for several")
    t.add_argument("--options", metavar="JSON", help="training settings as a JSON object (or @file.json)")
    e = sub.add_parser("eval", help="held-out accuracy on easy-vqa's test split")
    e.add_argument("model")
    e.add_argument("--per-type", type=int, default=600)
    e.add_argument("--generate", type=int, default=0)
    args = ap.parse_args(argv)

    import kit
    import kit.finetune as ft

    if args.cmd == "align":
        changes = {"steps": args.steps} if args.steps else {}
        print(ft.align(args.preset, out=args.out, **changes))
        return 0
    if args.cmd == "train":
        pool = kit.load_pool(args.pool)
        ids = None
        if args.subset:
            from kit.export import manifest_path

            ids = json.loads(manifest_path(args.subset).read_text())["ids"]
        from kit.cli import parse_options
        from kit.finetune.engine import is_main_process

        changes = parse_options(args.option, args.options)
        if args.epochs is not None:
            changes["epochs"] = args.epochs
        run = ft.finetune(pool, ids, preset=args.preset, out=args.out, seed=args.seed, progress=is_main_process(),
                          **changes)
        if is_main_process():
            print(json.dumps(run.info, indent=1))
        return 0
    result = ft.evaluate(args.model, questions=ft.easyvqa_eval_set(per_type=args.per_type), generate=args.generate,
                         progress=True)
    print(json.dumps(result.summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
