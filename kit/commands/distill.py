"""Train, cross-validate or tune the distilled rich scorer (kit.mmssr.distilled): a small head on frozen offline
features, trained on ratings (DATA_DIR/labels.csv or a teacher JSONL).

The shipped kit/weights/rich_distilled.pt is trained on a pool built apart from data_samples/ and reported on
data_samples/ as held out; its settings were chosen on the training pool (tune), never on data_samples/:

  kit pools distill runs/distill_pool
  kit distill tune runs/distill_pool --groups template --out runs/distill_tune.json
  kit distill train runs/distill_pool kit/weights/rich_distilled.pt \\
      --groups template --tuning runs/distill_tune.json --holdout data_samples

Also ``python -m kit.mmssr.distilled ...``.
"""
from __future__ import annotations

import json
from pathlib import Path


def add_arguments(ap) -> None:
    from kit.mmssr.distilled.net import TARGETS, HeadConfig

    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train on DATA_DIR/pool.json + labels.csv (or --ratings) and save")
    tr.add_argument("data_dir")
    tr.add_argument("out")
    tr.add_argument("--holdout", default=None, metavar="POOL_DIR",
                    help="a pool folder not trained on (e.g. data_samples): its held-out agreement goes into the metadata")
    tr.add_argument("--tuning", default=None, metavar="TUNE_JSON",
                    help="a file from `tune --out`: its best settings are used (unless a flag gives one) and recorded")
    cv = sub.add_parser("cv", help="print the cross-validated agreement with the ratings")
    cv.add_argument("data_dir")
    tu = sub.add_parser("tune", help="cross-validate each setting of the tuning grid and rank them")
    tu.add_argument("data_dir")
    tu.add_argument("--out", default=None, help="write the ranking and the best settings to this JSON file")
    for p in (tr, cv, tu):
        p.add_argument("--ratings", default=None, help="labels.csv or teacher JSONL (default DATA_DIR/labels.csv)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--folds", type=int, default=5)
        p.add_argument("--target", choices=TARGETS, default=None, help=f"default {HeadConfig.target}")
        p.add_argument("--hidden", type=int, default=None, help=f"default {HeadConfig.hidden}")
        p.add_argument("--steps", type=int, default=None, help=f"default {HeadConfig.steps}")
        p.add_argument("--l2", type=float, default=None, help=f"default {HeadConfig.l2}")
        p.add_argument("--blocks", default="image,questions,answers,stats")
        p.add_argument("--cache-dir", default=None, help="keep the computed features here for later runs")
        p.add_argument("--groups", default="auto", help='ratings column whose samples share a fold ("auto": '
                       '"origin" when present; "template": question templates apart; "none": plain K-fold)')
        p.add_argument("--block-gains", default=None,
                       help='"auto" (the extractor\'s defaults, the default), "none", or JSON such as \'{"image": 0.5}\'')


def run(args) -> int:
    from kit.eval.labels import load_ratings
    from kit.mmssr.distilled.cv import cross_validate, tune
    from kit.mmssr.distilled.net import HeadConfig
    from kit.mmssr.distilled.train import TUNED, load_tuning, parse_block_gains, train_default

    command = getattr(args, "command_line", None)
    tuning = load_tuning(args.tuning) if getattr(args, "tuning", None) else None
    given = {"target": args.target, "hidden": args.hidden, "steps": args.steps, "l2": args.l2,
             "block_gains": args.block_gains}
    settings = {k: v for k, v in given.items() if v is not None}
    if tuning is not None:
        settings = {**{k: v for k, v in tuning["best"].items() if k in TUNED}, **settings}
    gains = parse_block_gains(settings.pop("block_gains", None))
    groups = None if args.groups == "none" else args.groups
    options = {**settings, "block_gains": gains, "cache_dir": args.cache_dir,
               "feature_options": {"blocks": args.blocks.split(",")}}
    data_dir = Path(args.data_dir)
    ratings_path = args.ratings or data_dir / "labels.csv"
    if args.cmd == "train":
        scorer, report = train_default(args.data_dir, args.out, seed=args.seed, folds=args.folds,
                                       ratings=args.ratings, groups=groups, holdout=args.holdout, command=command,
                                       tuning=tuning, **options)
        print(report.summary())
        holdout = scorer.metadata.get("holdout")
        if holdout:
            print(f"held out ({holdout['pool']}): mean Spearman {holdout['agreement']['all']['mean_spearman']}, "
                  f"style F1 macro {holdout['agreement']['all']['style_f1_macro']}; with templates held out: "
                  f"{holdout['template_held_out']['mean_spearman']}")
        print(f"saved {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB), trained on {scorer.metadata['n_train']} samples")
        return 0
    from kit.data import load_pool

    pool = load_pool(data_dir / "pool.json")
    table = load_ratings(ratings_path)
    if groups == "auto":
        groups = "origin" if "origin" in table.columns else None
    if args.cmd == "cv":
        print(cross_validate(pool, table, folds=args.folds, seed=args.seed, groups=groups, **options).summary())
        return 0
    ranking = tune(pool, table, folds=args.folds, seed=args.seed, groups=groups, **options)
    print(ranking.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    best = {**{k: v for k, v in options.items() if k in TUNED}, **json.loads(ranking.iloc[0]["change"])}
    resolved = {k: best.get(k, getattr(HeadConfig, k)) for k in TUNED}
    gains = best.get("block_gains", "auto")
    resolved["block_gains"] = "none" if gains is None else (gains if isinstance(gains, str) else json.dumps(gains))
    print(f"best: {resolved}")
    if args.out:
        out = {"command": command, "pool": str(data_dir / "pool.json"), "folds": args.folds, "seed": args.seed,
               "groups": groups, "best": resolved, "table": json.loads(ranking.to_json(orient="records"))}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0
