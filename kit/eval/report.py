"""Every figure docs/results.md reports about a pool with planted truth, in one command (``kit report``).

    kit report data_samples/            # all sections (minutes on 2 CPU cores)
    kit report data_samples/ --only image_text --json runs/figures.json

Sections (each prints the pool, whether the figure is in-sample, and what made it):

- ``image_text``: the offline image-text stand-in and each of its parts (columns ``image_text``,
  ``image_text_concept``, ``image_text_head``, ``image_text_neighbours`` of ``kit.score(pool, "image_text")``):
  ROC AUC of clean vs planted mismatch, all and within-source / cross-source apart, the share of
  mismatches scoring below their clean origin, and where planted duplicates land; then the same with the
  neighbour part never taking a neighbour that shares the sample's image file (``skip_identical_images``).
- ``loss``: in how many planted wrong-answer pairs the wrong answer costs more (``loss_sum``, ``loss_mean``).
- ``aligned_loss``: the same with paper B's protocol, the loss from the ``tiny`` preset's aligned base
  (``kit.finetune.base_model("tiny")``: aligned on captions of reserved easy-vqa images, before instruction
  tuning, image included; built on first use), overall and per question template.
- ``quality_space``: the default space (``loss_sum``, 1%/99% bounds, points outside in no cell): how many
  samples lie outside the bounds, and the planted defects per cell.
- ``image_gain``: the image gain (``kit.score(pool, "image_gain")``: the answer's log-likelihood per token from the
  aligned ``tiny`` base with the sample's own image minus with a gray reference, and with seeded noise as the
  reference) and its parts, beside the image-text stand-in: mismatch ROC AUC all / within-source / cross-source,
  each line saying whether it is in-sample (the stand-in is on ``data_samples/``, where its part weights were
  chosen; the image gain is nowhere: nothing in it was chosen on a pool).
- ``style``: the rule styler against the true styles (in-sample: its rules were written on this pool).
- ``rich``: the shipped distilled head against the reference ratings, overall and per source, and the
  template-held-out agreement recorded when it was trained.

Nothing here is tuned; every number is measured when the command runs.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kit.scoreinfo import scorer_label_of

SECTIONS = ("image_text", "loss", "aligned_loss", "quality_space", "image_gain", "style", "rich")
IMAGE_GAIN_COLUMNS = ("image_gain", "answer_ll_image", "answer_ll_reference")
IMAGE_TEXT_COLUMNS = ("image_text", "image_text_concept", "image_text_head", "image_text_neighbours")


def _heading(title: str, pool_path, in_sample: str, command: str) -> str:
    return f"\n== {title}\n   pool: {pool_path}; {in_sample}\n   made by: {command}"


def image_text_figures(pool, labels: pd.DataFrame, table: pd.DataFrame | None = None, **options) -> pd.DataFrame:
    """:func:`kit.eval.metrics.detection_table` of the image-text scorer and its parts on ``pool`` (``table``: its
    scores if already computed with these ``options``); the scores are kept in ``.attrs["scores"]``."""
    import kit
    from kit.eval.metrics import detection_table

    if table is None:
        table = kit.score(pool, "image_text", progress=False, **options)
    cols = [c for c in IMAGE_TEXT_COLUMNS if c in table.columns]
    out = detection_table(table, labels, cols)
    out.attrs["label"] = scorer_label_of(table)
    out.attrs["scores"] = table
    return out


def image_gain_figures(pool, labels: pd.DataFrame, standin: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mismatch detection (:func:`kit.eval.metrics.detection_table`) of the image gain with a gray and a seeded-noise
    reference (and its parts) beside the image-text stand-in (``standin``: its scores if already computed). One
    row per column, with ``scorer`` and ``in_sample`` (whether anything in that score was chosen on this pool)."""
    import kit
    from kit.eval.metrics import detection_table

    standin_in_sample = _is_sample_pool(getattr(pool, "path", None))
    if standin is None:
        standin = kit.score(pool, "image_text", progress=False)
    parts = [detection_table(standin, labels, ["image_text"]).assign(
        scorer="image-text stand-in (not CLIP)", in_sample=standin_in_sample)]
    tables = {}
    for reference in ("gray", "noise"):
        table = kit.score(pool, "image_gain", reference=reference, progress=False)
        tables[reference] = table
        cols = list(IMAGE_GAIN_COLUMNS) if reference == "gray" else ["image_gain"]
        rows = detection_table(table, labels, cols).assign(scorer=f"image gain, {reference} reference", in_sample=False)
        rows.index = [f"{c} ({reference})" if c != "answer_ll_image" else c for c in rows.index]
        parts.append(rows)
    out = pd.concat(parts)
    out.attrs["n_mismatch"] = parts[0].attrs.get("n_mismatch", {})
    out.attrs["scores"] = tables
    out.attrs["label"] = scorer_label_of(tables["gray"])
    return out


def loss_figures(pool, labels: pd.DataFrame, **options) -> pd.DataFrame:
    """Per loss column: planted wrong-answer pairs in which the wrong answer costs more than the right one."""
    import kit
    from kit.eval.metrics import defect_pairs

    table = kit.score(pool, "loss", progress=False, **options)
    rows, by_template = {}, {}
    for col in ("loss_sum", "loss_mean"):
        pairs = defect_pairs(table[col], labels, "wrong_answer").dropna()
        flags = pairs["defective"] > pairs["clean"]
        rows[col] = {"wrong_costs_more": int(flags.sum()), "pairs": len(pairs)}
        if "template" in labels.columns:
            by_template[col] = flags.groupby(labels["template"].reindex(pairs.index).to_numpy()).agg(["sum", "count"])
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.attrs["by_template"] = by_template
    out.attrs["label"] = scorer_label_of(table)
    out.attrs["scores"] = table
    return out


def _loss_lines(figures: pd.DataFrame, stream) -> None:
    """Print :func:`loss_figures`: each loss column's count of flagged pairs, then ``loss_sum`` per template."""
    for col, row in figures.iterrows():
        stream(f"   {col}: the planted wrong answer costs more than the right one in "
               f"{row['wrong_costs_more']} of {row['pairs']} pairs")
    _per_template(figures, stream)


def _per_template(figures: pd.DataFrame, stream, col: str = "loss_sum") -> None:
    per = figures.attrs.get("by_template", {}).get(col)
    if per is not None and len(per):
        stream(f"   {col}, per question template (flagged / pairs): "
               + ", ".join(f"{t} {int(r['sum'])}/{int(r['count'])}" for t, r in per.iterrows()))


def quality_space_figures(scores: pd.DataFrame, labels: pd.DataFrame, **space_options) -> tuple[dict, pd.DataFrame]:
    """The default quality space on ``scores`` (``image_text`` and ``loss_sum``): its info and defects per cell."""
    from kit.quality.space import QualitySpace

    space = QualitySpace.fit(scores, **space_options)
    return space.info(), space.crosstab(scores, labels["defect"].rename("defect"))


def style_figures(pool, labels: pd.DataFrame) -> pd.DataFrame:
    """The rule styler's per-style agreement with the true styles (``kit.mmssr.style_rules.style_agreement``)."""
    import kit
    from kit.mmssr.style_rules import style_agreement

    styles = kit.score(pool, "style", progress=False)
    return style_agreement(styles["styles"], labels["styles"])


def _is_sample_pool(pool_path) -> bool:
    """Whether ``pool_path`` is the committed sample pool (``data_samples/pool.json`` or a copy of it: the same
    bytes as the footprint the kit ships, :mod:`kit.pools.footprint`)."""
    import hashlib

    from kit.pools.footprint import sample_pool_footprint

    if not pool_path or not Path(pool_path).is_file():
        return False
    return hashlib.sha1(Path(pool_path).read_bytes()).hexdigest() == sample_pool_footprint().pool_sha1


def _same_pool(recorded: str, here: Path) -> bool:
    """Whether a pool path recorded in a head's metadata names the pool at ``here`` (resolved). A relative one
    was relative to where the training command ran (a checkout's root), which the kit does not know: it names
    every pool whose path ends with it."""
    if not recorded:
        return False
    p = Path(recorded)
    if p.is_absolute():
        return p.resolve() == here
    return here.parts[-len(p.parts):] == p.parts


def rich_figures(pool, weights=None) -> dict:
    """The distilled head (default: the shipped one) against ``pool``'s reference ratings, overall and per
    source, with what its metadata says about how it was trained and held out."""
    from kit.eval.labels import load_ratings
    from kit.mmssr.distilled import DistilledHead
    from kit.mmssr.distilled.cv import held_out_agreement

    head = DistilledHead.load(weights, progress=False)
    ratings = load_ratings(Path(pool.path).with_name("labels.csv"))
    meta = head.metadata
    holdout = meta.get("holdout") or {}
    here = Path(pool.path).resolve()
    held_out = bool(holdout) and _same_pool(holdout.get("pool", ""), here)
    trained_here = _same_pool(meta.get("pool", ""), here)
    return {"agreement": held_out_agreement(head, pool, ratings, by="source"),
            "held_out": held_out, "trained_here": trained_here, "metadata": meta}


def _fmt(v, digits=3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def report(pool_dir, sections=SECTIONS, json_path=None, stream=print, loss_model=None) -> dict:
    """Compute and print the figures of ``sections`` for the pool in ``pool_dir``; return them as JSON-able values
    (written to ``json_path`` too when given; :mod:`kit.eval.markdown` prints docs/results.md's tables from it).

    ``loss_model``: a model folder whose answer loss the ``aligned_loss`` section reports instead of the aligned
    ``tiny`` base (e.g. a fine-tuned run's ``model/``: not paper B's protocol, a comparison)."""
    run = _start(pool_dir, sections, stream, loss_model)
    out = {"command": _command(pool_dir, sections, loss_model), **_pool_figures(run)}
    for name in SECTIONS:
        if name in sections:
            out.update(_SECTION_STEPS[name](run))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(out, indent=1, default=str) + "\n", encoding="utf-8")
    return out


@dataclass
class _Run:
    """What every section of one report reads: the pool, its truth, the command that made it, the printer, and the
    score tables one section computed and a later one reuses (``image_text``, ``loss``)."""

    pool: object
    labels: pd.DataFrame
    pool_path: Path
    command: str
    stream: Callable
    loss_model: object = None
    scores: dict = field(default_factory=dict)

    def heading(self, title: str, in_sample: str, made_by: str) -> None:
        self.stream(_heading(title, self.pool_path, in_sample, self.command + made_by))


def _start(pool_dir, sections, stream, loss_model) -> _Run:
    import kit
    from kit.eval.labels import load_labels

    pool_path = Path(pool_dir) / "pool.json"
    return _Run(kit.load_pool(pool_path), load_labels(Path(pool_dir) / "labels.csv"), pool_path,
                f"kit report {pool_dir}", stream, loss_model)


def _command(pool_dir, sections, loss_model) -> str:
    """The command line that makes a report of ``sections`` (recorded in its JSON)."""
    only = "" if tuple(sections) == SECTIONS else f" --only {','.join(s for s in SECTIONS if s in sections)}"
    return f"kit report {pool_dir}{only}" + (f" --loss-model {loss_model}" if loss_model else "")


def _pool_figures(run: _Run) -> dict:
    """The pool's size and planted defects (printed first, and the head of the JSON)."""
    labels = run.labels
    out: dict = {"pool": str(run.pool_path), "n_samples": len(run.pool.table),
                 "defects": labels["defect"].value_counts().to_dict()}
    kinds = labels.loc[labels["defect"] == "mismatch", "mismatch_kind"].value_counts().to_dict() \
        if "mismatch_kind" in labels.columns else {}
    out["mismatch_kinds"] = kinds
    run.stream(f"pool {run.pool_path}: {len(run.pool.table)} samples; planted defects "
               + ", ".join(f"{k} {v}" for k, v in sorted(out["defects"].items()) if k != "none")
               + (f"; mismatches: {', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}" if kinds else ""))
    return out


def _image_text_section(run: _Run) -> dict:
    out = {}
    for name, options in (("default", {}), ("skip_identical_images", {"skip_identical_images": True})):
        table = image_text_figures(run.pool, run.labels, **options)
        if name == "default":
            run.scores["image_text"] = table.attrs["scores"]
        title = ("image-text stand-in (offline default, not CLIP)" if name == "default" else
                 "image-text stand-in, neighbour part never using a neighbour with the same image file")
        run.heading(title, "no label of this pool is used; the neighbour part reads the pool's own image-text pairs "
                    "(pool-dependent)", " (kit.score(pool, 'image_text', skip_identical_images=True))" if options
                    else " (kit.score(pool, 'image_text'))")
        run.stream(f"   scorer: {table.attrs['label']}")
        n = table.attrs.get("n_mismatch", {})
        run.stream(f"   ROC AUC clean vs mismatch (all {n.get('all')}, within-source {n.get('within_source')}, "
                   f"cross-source {n.get('cross_source')}); share of mismatches below their clean origin; "
                   "duplicates: AUC clean vs duplicate (below 0.5 = duplicates score above clean) and their "
                   "median percentile among clean samples")
        run.stream(table.to_string(float_format=lambda v: f"{v:.3f}"))
        out[f"image_text_{name}"] = json.loads(table.to_json(orient="index"))
    return out


def _text_loss(run: _Run) -> pd.DataFrame:
    """:func:`loss_figures` of the text-only loss, computed once per report (the quality space reads its scores)."""
    if "text_loss_figures" not in run.scores:
        loss = loss_figures(run.pool, run.labels)
        run.scores["text_loss_figures"], run.scores["loss"] = loss, loss.attrs["scores"]
    return run.scores["text_loss_figures"]


def _by_template_json(figures: pd.DataFrame) -> dict:
    """:func:`loss_figures`' flagged pairs per question template: ``{column: {template: {flagged, pairs}}}``."""
    return {col: {str(t): {"flagged": int(r["sum"]), "pairs": int(r["count"])} for t, r in per.iterrows()}
            for col, per in figures.attrs.get("by_template", {}).items()}


def _loss_section(run: _Run) -> dict:
    loss = _text_loss(run)
    run.heading("answer loss (text only, cannot see the image)", "no label used", " (kit.score(pool, 'loss'))")
    run.stream(f"   scorer: {loss.attrs['label']}")
    _loss_lines(loss, run.stream)
    return {"loss": json.loads(loss.to_json(orient="index")), "loss_by_template": _by_template_json(loss)}


def _aligned_loss_section(run: _Run) -> dict:
    from kit.finetune import base_info, base_model

    base = base_model("tiny") if run.loss_model is None else Path(run.loss_model)
    aligned = loss_figures(run.pool, run.labels, model=str(base))
    if run.loss_model is None:
        run.heading("answer loss from the aligned tiny model (paper B's protocol: the model being tuned, before "
                    "instruction tuning, image included)", "no label used; nothing tuned on this pool",
                    " (kit.score(pool, 'loss', model=kit.finetune.base_model('tiny')))")
    else:
        run.heading(f"answer loss from {base} (image included; not paper B's protocol unless that model is aligned "
                    "and not instruction-tuned)", "no label used", f" --loss-model {run.loss_model}")
    run.stream(f"   scorer: {aligned.attrs['label']}" + ("" if str(base) in aligned.attrs["label"] else f" ({base})"))
    _loss_lines(aligned, run.stream)
    info = base_info(base) if Path(base).is_dir() else {}
    return {"aligned_loss": json.loads(aligned.to_json(orient="index")),
            "aligned_loss_by_template": _by_template_json(aligned),
            "aligned_loss_model": {"model": "tiny" if run.loss_model is None else str(run.loss_model),
                                   "caption_loss": info.get("caption_loss"),
                                   "caption_loss_shuffled_images": info.get("caption_loss_shuffled_images")}}


def _quality_space_section(run: _Run) -> dict:
    import kit

    it = run.scores.get("image_text")
    if it is None:
        it = run.scores["image_text"] = kit.score(run.pool, "image_text", progress=False)
    table = it[["image_text"]].join(_text_loss(run).attrs["scores"][["loss_sum", "loss_mean"]])
    info, crosstab = quality_space_figures(table, run.labels)
    run.heading("quality space (defaults: loss_sum, bounds 1%/99%, 3x3 equal-width, outside='exclude')",
                "no label used to build it", " (QualitySpace.fit on image_text and loss_sum)")
    run.stream(f"   {info['n_outside']} of {info['n_points']} scored samples lie outside the bounds (in no cell, "
               "no region, no curriculum stage)")
    run.stream("   planted defects per cell:")
    run.stream(crosstab.to_string())
    return {"quality_space": {"space": info, "defects_per_cell": json.loads(crosstab.to_json(orient="index"))}}


def _image_gain_section(run: _Run) -> dict:
    gain = image_gain_figures(run.pool, run.labels, run.scores.get("image_text"))
    run.heading("image gain (own image vs a gray or seeded-noise reference; aligned tiny base) beside the image-text "
                "stand-in", "in_sample says, per row, whether anything in that score was chosen on this pool (the "
                "stand-in's part weights were chosen on data_samples/; the image gain was chosen on no pool); no "
                "label used", " (kit.score(pool, 'image_gain'), reference='gray' and 'noise'; "
                "kit.score(pool, 'image_text'))")
    run.stream(f"   scorer: {gain.attrs['label']}")
    n = gain.attrs.get("n_mismatch", {})
    run.stream(f"   ROC AUC clean vs mismatch (all {n.get('all')}, within-source {n.get('within_source')}, "
               f"cross-source {n.get('cross_source')}; n/a where the pool has none of a kind)")
    cols = ["scorer", "in_sample", "auc_all", "auc_within_source", "auc_cross_source", "below_origin_all"]
    run.stream(gain[cols].to_string(float_format=lambda v: f"{v:.3f}"))
    return {"image_gain": json.loads(gain[cols].to_json(orient="index"))}


def _style_section(run: _Run) -> dict:
    agreement = style_figures(run.pool, run.labels)
    run.heading("rule styler against the true styles", "IN-SAMPLE: the rules were written while looking at this pool",
                " (kit.score(pool, 'style'))")
    run.stream(f"   macro F1 {_fmt(agreement.loc['macro', 'f1'])}, exact style set "
               f"{_fmt(agreement.loc['exact', 'recall'])}")
    return {"style": {"macro_f1": float(agreement.loc["macro", "f1"]),
                      "exact": float(agreement.loc["exact", "recall"])}}


def _rich_section(run: _Run) -> dict:
    rich = rich_figures(run.pool)
    meta = rich["metadata"]
    status = ("HELD OUT: no sample of this pool was trained on (settings chosen on the training pool)"
              if rich["held_out"] else ("IN-SAMPLE: the head was trained on this pool" if rich["trained_here"]
                                        else "not recorded whether the head saw this pool"))
    run.heading("distilled rich scorer (shipped head) against the reference ratings", status,
                " (DistilledHead.load(); expected scores, Spearman per capability)")
    run.stream(f"   head trained on {meta.get('trained_on')} ({meta.get('n_train')} samples) by: "
               f"{meta.get('pool_command', '')}{' && ' if meta.get('pool_command') else ''}{meta.get('command')}")
    tuning = meta.get("tuning") or {}
    if tuning:
        run.stream(f"   settings chosen on the training pool by: {tuning.get('command')} (best: {tuning.get('best')})")
    rows = {k: {"n": len(r.predictions), "mean_spearman": r.mean_spearman, "style_f1_micro": r.style_f1_micro,
                "style_f1_macro": r.style_f1_macro} for k, r in rich["agreement"].items()}
    summary = pd.DataFrame.from_dict(rows, orient="index")
    run.stream(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    caps = rich["agreement"]["all"].capabilities["spearman"]
    run.stream("   Spearman per capability (all): " + ", ".join(f"{k} {_fmt(v, 2)}" for k, v in caps.items()))
    out = {"status": status, "by": json.loads(summary.to_json(orient="index")),
           "spearman": {k: (None if np.isnan(v) else float(v)) for k, v in caps.items()}}
    recorded = (meta.get("holdout") or {}).get("template_held_out")
    if recorded and rich["held_out"]:
        out.update(_rich_recorded(meta, recorded, run.stream))
    return {"rich": out}


def _rich_recorded(meta: dict, recorded: dict, stream) -> dict:
    """What the head's metadata recorded at training: the template-held-out agreement and the CV that chose it."""
    stream(f"   recorded at training ({meta.get('command')}): with every question template held out of "
           f"training ({recorded['folds']} folds), mean Spearman {_fmt(recorded['mean_spearman'])}, style F1 "
           f"micro {_fmt(recorded['style_f1_micro'])} / macro {_fmt(recorded['style_f1_macro'])}")
    cv = meta.get("cv", {})
    stream(f"   recorded at training: {cv.get('folds')}-fold CV on the training pool grouped by "
           f"{cv.get('options', {}).get('groups')}: mean Spearman {_fmt(cv.get('mean_spearman'))}")
    return {"template_held_out": {k: recorded[k] for k in ("folds", "mean_spearman", "style_f1_micro",
                                                            "style_f1_macro")},
            "training_cv": {"folds": cv.get("folds"), "groups": cv.get("options", {}).get("groups"),
                            "mean_spearman": cv.get("mean_spearman")}}


# Each section's step, in the order report() runs them (SECTIONS' order).
_SECTION_STEPS = {"image_text": _image_text_section, "loss": _loss_section, "aligned_loss": _aligned_loss_section,
                  "quality_space": _quality_space_section, "image_gain": _image_gain_section,
                  "style": _style_section, "rich": _rich_section}
