"""Training the shipped distilled head, and the command line (``python -m kit.mmssr.distilled``)."""
from __future__ import annotations

import json
from pathlib import Path

from kit.mmssr.distilled.cv import CVReport, cross_validate
from kit.mmssr.distilled.model import DistilledHead
from kit.mmssr.distilled.net import TARGETS, HeadConfig
from kit.labels import load_ratings


def train_default(data_dir, out, seed: int = 0, folds: int = 5, ratings=None, progress: bool = True,
                  groups="auto", **scorer_options) -> tuple[DistilledHead, CVReport]:
    """Train the offline default head on ``{data_dir}/pool.json`` + ``labels.csv`` and save it to ``out``.

    Runs a ``folds``-fold cross-validation first (same settings and seed) and stores its numbers in
    the file's metadata, together with a note that the head was trained on that very pool.
    ``groups="auto"`` keeps each defective copy or duplicate in the fold of the sample it was made
    from when the ratings have an ``origin`` column (``labels.csv`` does); ``None`` for plain K-fold.
    """
    from kit.data import load_pool

    data_dir = Path(data_dir)
    pool = load_pool(data_dir / "pool.json")
    ratings_path = Path(ratings) if ratings is not None else data_dir / "labels.csv"
    table = load_ratings(ratings_path)
    scorer_options = {"progress": progress, **scorer_options}
    if groups == "auto":
        groups = "origin" if "origin" in table.columns else None
    report = cross_validate(pool, table, folds=folds, seed=seed, groups=groups, **scorer_options)
    scorer = DistilledHead(seed=seed, **scorer_options).fit(pool, table)
    scorer.save(out, trained_on=str(ratings_path), pool=str(data_dir / "pool.json"),
                note=(f"Trained on the ratings in {ratings_path} for every sample of this same pool "
                      f"({data_dir / 'pool.json'}): in-sample scores on that pool are optimistic. The "
                      f"{folds}-fold cross-validated agreement in 'cv' is the honest estimate."),
                cv=report.to_dict(), command=f"python -m kit.mmssr.distilled train {data_dir} {out}")
    return scorer, report


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m kit.mmssr.distilled",
                                 description="Train or cross-validate the distilled rich scorer.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train on DATA_DIR/pool.json + labels.csv (or --ratings) and save")
    tr.add_argument("data_dir")
    tr.add_argument("out")
    cv = sub.add_parser("cv", help="print the cross-validated agreement with the teacher")
    cv.add_argument("data_dir")
    for p in (tr, cv):
        p.add_argument("--ratings", default=None, help="labels.csv or teacher JSONL (default DATA_DIR/labels.csv)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--folds", type=int, default=5)
        p.add_argument("--target", choices=TARGETS, default=HeadConfig.target)
        p.add_argument("--hidden", type=int, default=HeadConfig.hidden)
        p.add_argument("--steps", type=int, default=HeadConfig.steps)
        p.add_argument("--l2", type=float, default=HeadConfig.l2)
        p.add_argument("--blocks", default="image,questions,answers,stats")
        p.add_argument("--cache-dir", default=None, help="keep the computed features here for later runs")
        p.add_argument("--groups", default="auto", help='ratings column whose samples share a fold ("auto": '
                       '"origin" when present; "none": plain K-fold)')
        p.add_argument("--block-gains", default="auto",
                       help='"auto" (the extractor\'s defaults), "none", or JSON such as \'{"image": 0.5}\'')
    args = ap.parse_args(argv)
    gains = {"auto": "auto", "none": None}.get(args.block_gains)
    if gains is None and args.block_gains != "none":
        gains = json.loads(args.block_gains)
    groups = None if args.groups == "none" else args.groups
    options = {"target": args.target, "hidden": args.hidden, "steps": args.steps, "l2": args.l2,
               "block_gains": gains, "cache_dir": args.cache_dir, "feature_options": {"blocks": args.blocks.split(",")}}
    if args.cmd == "train":
        scorer, report = train_default(args.data_dir, args.out, seed=args.seed, folds=args.folds,
                                       ratings=args.ratings, groups=groups, **options)
        print(report.summary())
        print(f"saved {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB), trained on {scorer.metadata['n_train']} samples")
    else:
        from kit.data import load_pool

        data_dir = Path(args.data_dir)
        pool = load_pool(data_dir / "pool.json")
        table = load_ratings(args.ratings or data_dir / "labels.csv")
        if groups == "auto":
            groups = "origin" if "origin" in table.columns else None
        print(cross_validate(pool, table, folds=args.folds, seed=args.seed, groups=groups, **options).summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
