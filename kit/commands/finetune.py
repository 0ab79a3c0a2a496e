"""Align a base model, fine-tune on a subset, evaluate on easy-vqa's test split (or lmms-eval tasks).

    kit finetune align [--preset tiny] [--out DIR] [--steps N] [--device cuda]
    kit finetune train POOL_JSON --out RUN_DIR [--subset SUBSET_JSON] [--preset tiny] [--seed 0]
        [--option KEY=VALUE ...]    (TrainConfig fields: lr, epochs, batch_size, grad_accum, autocast, device, ...)
    kit finetune eval MODEL [--per-type 600] [--generate 20] [--out DIR]
    kit finetune eval MODEL --lmms-eval TASKS [--limit N] [--lmms-model kit] [--model-args ARGS]
    kit finetune lmms-tasks [--out DIR]      (the kit's lmms-eval tasks, for lmms-eval --include_path)

Also ``python -m kit.finetune ...``. On several GPUs (or CPU processes) the same ``train`` command runs under
accelerate: ``accelerate launch --multi_gpu --num_processes 4 -m kit finetune train ... --option device=cuda``
(docs/scale.md, "Fine-tuning and evaluation beyond one machine").
"""
from __future__ import annotations

import json
from pathlib import Path


def add_arguments(ap) -> None:
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("align", help="stage 1 on captions of reserved easy-vqa images; prints the folder")
    a.add_argument("--preset", default="tiny")
    a.add_argument("--out", default=None)
    a.add_argument("--steps", type=int, default=None)
    a.add_argument("--device", default="cpu", help="where the alignment trains (default cpu; e.g. cuda)")
    a.add_argument("--exclude-pool", default=None, metavar="POOL_JSON",
                   help="a pool whose easy-vqa images stay out (default: data_samples/, its footprint shipped with the "
                        "kit; another pool is another cached base)")
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
    e = sub.add_parser("eval", help="held-out accuracy on easy-vqa's test split, or lmms-eval tasks (--lmms-eval)")
    e.add_argument("model", help="a run folder, a model folder or a Hugging Face model name")
    e.add_argument("--per-type", type=int, default=600)
    e.add_argument("--generate", type=int, default=0)
    e.add_argument("--out", default=None, help="folder for the results (default: RUN/eval for a run folder)")
    g = e.add_argument_group("lmms-eval (pip install -e '.[eval]'; docs/scale.md)")
    g.add_argument("--lmms-eval", metavar="TASKS", default=None,
                   help="comma-separated lmms-eval tasks: the kit's kit_easyvqa, kit_easyvqa_gen, kit_testbed or "
                        "lmms-eval's own (mme, pope, mmbench_en_dev, scienceqa_img, ...)")
    g.add_argument("--limit", type=float, default=None, help="documents per task (a test run; <1: a fraction)")
    g.add_argument("--lmms-model", default="kit",
                   help="lmms-eval model class: kit (default: the model as the kit runs it) or e.g. llava_hf")
    g.add_argument("--model-args", default="", help="extra model_args for an lmms-eval model class (k=v,k=v)")
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument("--device", default="auto")
    g.add_argument("--log-samples", action="store_true", help="also write every document's output (.samples.jsonl)")
    w = sub.add_parser("lmms-tasks", help="write the kit's lmms-eval tasks into a folder and print it")
    w.add_argument("--out", default=None, help="the task folder (default: $KIT_CACHE/lmms_tasks)")


def run(args) -> int:
    import kit
    import kit.finetune as ft

    if args.cmd == "align":
        from kit.pools.footprint import SAMPLE_POOL

        changes = {"steps": args.steps} if args.steps else {}
        print(ft.align(args.preset, out=args.out, device=args.device, exclude_pool=args.exclude_pool or SAMPLE_POOL,
                       **changes))
        return 0
    if args.cmd == "train":
        pool = kit.load_pool(args.pool)
        ids = None
        if args.subset:
            from kit.export import manifest_path

            ids = json.loads(manifest_path(args.subset).read_text())["ids"]
        from kit.commands.common import parse_options
        from kit.finetune.engine import is_main_process

        changes = parse_options(args.option, args.options)
        if args.epochs is not None:
            changes["epochs"] = args.epochs
        result = ft.finetune(pool, ids, preset=args.preset, out=args.out, seed=args.seed, progress=is_main_process(),
                             **changes)
        if is_main_process():
            print(json.dumps(result.info, indent=1))
        return 0
    if args.cmd == "lmms-tasks":
        from kit.finetune.lmms import write_tasks

        print(write_tasks(args.out))
        return 0
    return _eval(args)


def _eval(args) -> int:
    """The kit's own held-out evaluation, or lmms-eval's (``--lmms-eval``); results under ``--out`` or RUN/eval."""
    import kit.finetune as ft
    from kit.finetune.lmms.run import default_out

    out = Path(args.out) if args.out else default_out(args.model)
    if args.lmms_eval:
        from kit.finetune.lmms import run_lmms_eval

        limit = int(args.limit) if args.limit is not None and args.limit >= 1 else args.limit
        _, table = run_lmms_eval(args.model, args.lmms_eval, limit=limit, out=out, lmms_model=args.lmms_model,
                                 model_args=args.model_args, batch_size=args.batch_size, device=args.device,
                                 log_samples=args.log_samples)
        print(table)
    else:
        import torch

        device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        result = ft.evaluate(args.model, questions=ft.easyvqa_eval_set(per_type=args.per_type),
                             generate=args.generate, device=device, progress=True)
        print(json.dumps(result.summary, indent=1))
        if out is not None:
            from kit.outputs import atomic_write_bytes

            out.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(out / f"heldout_easyvqa-per_type{args.per_type}.json",
                               json.dumps(result.summary, indent=1).encode("utf-8"))
    if out is not None:
        print(f"results written to {out}")
    return 0
