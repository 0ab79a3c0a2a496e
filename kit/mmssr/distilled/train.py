"""Training the shipped distilled head (the command line: ``kit distill``, :mod:`kit.commands.distill`; also
``python -m kit.mmssr.distilled``).

The shipped ``kit/weights/rich_distilled.pt`` is trained on a pool built apart from ``data_samples/``
(:mod:`kit.pools.distill`) and reported on ``data_samples/`` as held out; its settings were chosen on the
training pool (``tune``), never on ``data_samples/``::

    kit pools distill runs/distill_pool
    kit distill tune runs/distill_pool --groups template --out runs/distill_tune.json
    kit distill train runs/distill_pool kit/weights/rich_distilled.pt \\
        --groups template --tuning runs/distill_tune.json --holdout data_samples
"""
from __future__ import annotations

import json
from pathlib import Path

from kit.eval.labels import load_ratings
from kit.mmssr.distilled.cv import CVReport, cross_validate, held_out_agreement, template_held_out
from kit.mmssr.distilled.model import DistilledHead

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
                    command=command or f"kit distill train {data_dir} {out}",
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


def load_tuning(path) -> dict:
    """A file written by ``kit distill tune --out``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if "best" not in data or "table" not in data:
        raise ValueError(f"{path} is not a file written by `kit distill tune --out`")
    return data
