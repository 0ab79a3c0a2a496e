"""Training the shipped distilled head, and the command line (``python -m kit.mmssr.distilled``).

The shipped ``kit/weights/rich_distilled.pt`` is trained on a pool built apart from ``data_samples/``
(:mod:`kit.pools.distill`) and reported on ``data_samples/`` as held out; its settings were chosen on the
training pool (``tune``), never on ``data_samples/``::

    python -m kit.pools distill runs/distill_pool
    python -m kit.mmssr.distilled tune runs/distill_pool --groups template --out runs/distill_tune.json
    python -m kit.mmssr.distilled train runs/distill_pool kit/weights/rich_distilled.pt \\
        --groups template --tuning runs/distill_tune.json --holdout data_samples
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path

from kit.labels import load_ratings
from kit.mmssr.distilled.cv import CVReport, cross_validate, held_out_agreement, template_held_out, tune
from kit.mmssr.distilled.model import DistilledHead
from kit.mmssr.distilled.net import TARGETS, HeadConfig

# The settings ``--tuning`` may fill in (a tuned value is used unless the flag is given).
TUNED = ("target", "hidden", "steps", "l2", "block_gains")
TRAIN_POOL_COMMAND = "python -m kit.pools distill runs/distill_pool"


def train_default(data_dir, out, seed: int = 0, folds: int = 5, ratings=None, progress: bool = True,
                  groups="auto", holdout=None, holdout_group: str = "template", command: str | None = None,
                  tuning: dict | None = None, **scorer_options) -> tuple[DistilledHead, CVReport]:
    """Train a head on ``{data_dir}/pool.json`` + ``labels.csv`` (or ``ratings``) and save it to ``out``.

    Runs a ``folds``-fold cross-validation on the training pool first (same settings and seed) and stores
    it in the file's metadata. ``groups="auto"`` keeps each defective copy or duplicate in the fold of the
    sample it was made from when the ratings have an ``origin`` column (``labels.csv`` does); ``"template"``
    keeps question templates apart; ``None`` for plain K-fold.

    ``holdout``: a pool folder (e.g. ``data_samples``) that is not trained on; its agreement with the head
    (overall and per source) and its agreement with every question template held out of training
    (:func:`~kit.mmssr.distilled.cv.template_held_out`, grouped by ``holdout_group``) go into the metadata
    (``holdout``). ``tuning``: the result of ``tune`` that chose the settings, recorded with them.
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
    extra: dict = {}
    if holdout is None:
        note = (f"Trained on the ratings in {ratings_path} for every sample of this same pool "
                f"({data_dir / 'pool.json'}): in-sample scores on that pool are optimistic. The "
                f"{folds}-fold cross-validated agreement in 'cv' is the honest estimate.")
    else:
        holdout = Path(holdout)
        h_pool = load_pool(holdout / "pool.json")
        h_ratings = load_ratings(holdout / "labels.csv")
        shared = _image_digests(h_pool) & _image_digests(pool)
        if shared:
            raise ValueError(f"the training pool and the held-out pool {holdout} share {len(shared)} images")
        agreement = held_out_agreement(scorer, h_pool, h_ratings, by="source")
        templates = template_held_out(pool, table, h_pool, h_ratings, folds=folds, seed=seed, group=holdout_group,
                                      **scorer_options)
        extra["holdout"] = {"pool": str(holdout / "pool.json"), "ratings": str(holdout / "labels.csv"),
                            "agreement": {k: v.to_dict() for k, v in agreement.items()},
                            "template_held_out": templates.to_dict()}
        note = (f"Trained on the ratings in {ratings_path} ({scorer.metadata['n_train']} samples of "
                f"{data_dir / 'pool.json'}), none of them from {holdout}: its agreement there ('holdout') is "
                f"held out. Question templates are shared with the training pool except where 'holdout' "
                f"says otherwise; 'holdout.template_held_out' holds every template out of training.")
    if tuning is not None:
        extra["tuning"] = tuning
    recorded = dict(trained_on=str(ratings_path), pool=str(data_dir / "pool.json"), note=note, cv=report.to_dict(),
                    command=command or f"python -m kit.mmssr.distilled train {data_dir} {out}",
                    **({"pool_command": _pool_command(data_dir)} if holdout is not None else {}), **extra)
    scorer.save(out, **recorded)
    scorer.metadata.update(recorded)
    return scorer, report


def _pool_command(data_dir: Path) -> str:
    """The command that built the training pool (its ``build_info.json``), else the default one."""
    info = data_dir / "build_info.json"
    if info.is_file():
        return str(json.loads(info.read_text(encoding="utf-8")).get("command") or TRAIN_POOL_COMMAND)
    return TRAIN_POOL_COMMAND


def _image_digests(pool) -> set[str]:
    import hashlib

    return {hashlib.sha1(Path(p).read_bytes()).hexdigest() for p in pool.table["image_path"].map(str) if Path(p).is_file()}


def parse_block_gains(value):
    """``--block-gains``: ``None`` or ``"auto"`` -> ``"auto"``, ``"none"`` -> ``None``, JSON -> a dict."""
    if value is None or value == "auto":
        return "auto"
    if value == "none":
        return None
    return json.loads(value) if isinstance(value, str) else value


def _load_tuning(path) -> dict:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if "best" not in data or "table" not in data:
        raise ValueError(f"{path} is not a file written by `python -m kit.mmssr.distilled tune --out`")
    return data


def main(argv=None) -> int:
    import argparse
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m kit.mmssr.distilled",
                                 description="Train, cross-validate or tune the distilled rich scorer.")
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
    args = ap.parse_args(argv)
    tuning = _load_tuning(args.tuning) if getattr(args, "tuning", None) else None
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
        command = "python -m kit.mmssr.distilled " + " ".join(shlex.quote(a) for a in argv)
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
        out = {"command": "python -m kit.mmssr.distilled " + " ".join(shlex.quote(a) for a in argv),
               "pool": str(data_dir / "pool.json"), "folds": args.folds, "seed": args.seed,
               "groups": groups, "best": resolved, "table": json.loads(ranking.to_json(orient="records"))}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
