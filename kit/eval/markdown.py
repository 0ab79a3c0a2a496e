"""docs/results.md's tables of the sample-pool figures, printed from ``kit report``'s JSON
(:func:`kit.eval.report.report`).

Each function takes the JSON of one report (or two: the sample pool's and the experiment pool's) and returns
markdown lines; :mod:`kit.eval.docs` places them between their markers in the document. Nothing here computes a
figure: every number is the report's, formatted.
"""
from __future__ import annotations

import re

IMAGE_TEXT_PARTS = {"image_text": "stand-in (`image_text`)", "image_text_concept": "concept bottleneck",
                    "image_text_head": "LiT head", "image_text_neighbours": "pool-neighbour map"}
SKIP_IDENTICAL = "`skip_identical_images=True`"


def _num(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def _of(share, n) -> str:
    """A share of ``n`` items as a count: ``10 of 11``."""
    return "n/a" if share is None or not n else f"{round(share * n)} of {n}"


def image_text_markdown(report: dict) -> list[str]:
    """The stand-in and its parts on mismatches (ROC AUC clean vs mismatch, all / within / across sources, and how
    many score below their clean origin) and duplicates; then the rows ``skip_identical_images`` changes."""
    kinds = report.get("mismatch_kinds", {})
    within, cross = kinds.get("within_source", 0), kinds.get("cross_source", 0)
    n = report.get("defects", {}).get("mismatch", within + cross)
    header = ["score", f"mismatch AUC: all ({n})", f"within-source ({within})", f"cross-source ({cross})",
              "mismatches below their clean origin (all; within, cross)", "duplicates: AUC clean vs duplicate",
              "duplicates' median percentile among clean"]
    rows = []
    default, skip = report["image_text_default"], report.get("image_text_skip_identical_images", {})
    for name, table in (("", default), (SKIP_IDENTICAL, skip)):
        for col, label in IMAGE_TEXT_PARTS.items():
            r = table.get(col)
            if r is None or (name and r == default.get(col)):   # the parts the option leaves alone: shown once
                continue
            rows.append([f"{label}, {name}" if name else label, _num(r["auc_all"]), _num(r["auc_within_source"]),
                         _num(r["auc_cross_source"]),
                         f"{_of(r['below_origin_all'], n)}; {_of(r['below_origin_within_source'], within)}, "
                         f"{_of(r['below_origin_cross_source'], cross)}",
                         _num(r["duplicate_auc"]), _num(r["duplicate_median_percentile"], 0)])
    return _table(header, rows)


def _flags(section: dict | None) -> str:
    if not section:
        return "n/a"
    return f"{section['loss_sum']['wrong_costs_more']} / {section['loss_mean']['wrong_costs_more']}"


def _pairs(report: dict) -> int | None:
    section = report.get("loss") or report.get("aligned_loss")
    return section["loss_sum"]["pairs"] if section else None


def _share(section: dict | None) -> str:
    if not section:
        return "n/a"
    r = section["loss_sum"]
    return f"{r['wrong_costs_more'] / r['pairs']:.0%}"


def _caption(report: dict) -> str:
    loss = (report.get("aligned_loss_model") or {}).get("caption_loss")
    return "" if loss is None else f" (caption loss {loss:.3f})"


def loss_markdown(sample: dict, experiment: dict) -> list[str]:
    """Wrong answers flagged (the planted wrong answer costs more than the right one, ``loss_sum`` / ``loss_mean``)
    by the text-only loss and the aligned ``tiny`` base, on the sample pool and the experiment pool."""
    header = ["loss model", f"`data_samples/` ({_pairs(sample)} pairs)", f"experiment pool ({_pairs(experiment)} pairs)",
              "experiment pool, share (`loss_sum`)"]
    rows = [["SmolLM2-135M-Instruct, text only", _flags(sample.get("loss")), _flags(experiment.get("loss")),
             _share(experiment.get("loss"))],
            [f"`tiny`, aligned{_caption(sample)}" if _caption(sample) == _caption(experiment) else
             f"`tiny`, aligned: `data_samples/`{_caption(sample)}, experiment pool{_caption(experiment)}",
             _flags(sample.get("aligned_loss")), _flags(experiment.get("aligned_loss")),
             _share(experiment.get("aligned_loss"))]]
    return _table(header, rows)


def _template_group(template: str) -> str | None:
    """The group a template's name starts with (``yn`` for ``easyvqa/yn_color``), or ``None``."""
    m = re.match(r"(?:.*/)?([a-z]+)_", template)
    return m.group(1) if m else None


def loss_templates_markdown(report: dict, column: str = "loss_sum") -> list[str]:
    """Per question template: planted wrong answers flagged by the text-only loss and the aligned ``tiny`` base,
    with a row for each group of templates that share a prefix (``yn_*``: every yes/no template)."""
    text = report.get("loss_by_template", {}).get(column, {})
    aligned = report.get("aligned_loss_by_template", {}).get(column, {})
    templates = sorted(set(text) | set(aligned))
    groups: dict[str, list[str]] = {}
    for t in templates:
        g = _template_group(t)
        if g:
            groups.setdefault(g, []).append(t)

    def cell(by: dict, names: list[str]) -> str:
        got = [by[t] for t in names if t in by]
        return f"{sum(r['flagged'] for r in got)}" if got else "n/a"

    def pairs(names: list[str]) -> int:
        return sum((text.get(t) or aligned.get(t))["pairs"] for t in names)

    rows = [[f"`{t}`", pairs([t]), cell(text, [t]), cell(aligned, [t])] for t in templates]
    rows += [[f"all `{g}_*`", pairs(names), cell(text, names), cell(aligned, names)]
             for g, names in sorted(groups.items()) if len(names) > 1]
    return _table(["template", "pairs", "text only", "`tiny`, aligned"], rows)


def quality_space_markdown(report: dict) -> list[str]:
    """How many scored samples lie outside the default space's bounds, and the planted defects per cell."""
    q = report["quality_space"]
    space, cells = q["space"], q["defects_per_cell"]
    columns = list(dict.fromkeys(c for row in cells.values() for c in row))
    lines = [f"{space['n_outside']} of the {space['n_points']} samples with both scores lie outside the bounds "
             f"(`{space['loss_col']}`, bounds at the {space['bounds'][0]:g} and {space['bounds'][1]:g} quantiles, a "
             f"{space['grid']}×{space['grid']} grid, binning `{space['binning']}`); the other "
             f"{report['n_samples'] - space['n_points']} of the pool's {report['n_samples']} samples have no score. "
             "Planted defects per cell (`top_*`: high image-text score, `*_right`: high loss; `outside`: beyond the "
             "bounds):", ""]
    return lines + _table(["defect", *columns], [[d, *(row.get(c, 0) for c in columns)] for d, row in cells.items()])


def image_gain_markdown(report: dict) -> list[str]:
    """Mismatch ROC AUC of the image gain (gray and noise references, and its parts) beside the stand-in."""
    n = report.get("defects", {}).get("mismatch")
    rows = [[f"{r['scorer']}: `{re.sub(r' [(](gray|noise)[)]$', '', name)}`", "yes" if r["in_sample"] else "no",
             _num(r["auc_all"]), _num(r["auc_within_source"]), _num(r["auc_cross_source"]),
             _of(r["below_origin_all"], n)] for name, r in report["image_gain"].items()]
    return _table(["score", "in-sample", f"mismatch AUC: all ({n})", "within-source", "cross-source",
                   "mismatches below their clean origin"], rows)


def style_markdown(report: dict) -> list[str]:
    s = report["style"]
    return _table(["macro F1 against the true styles", "exact style set"],
                  [[_num(s["macro_f1"]), f"{s['exact']:.1%}"]])


def rich_markdown(report: dict) -> list[str]:
    """The shipped distilled head against the reference ratings: per source, with the template-held-out agreement
    and the training pool's CV recorded when it was trained, then the Spearman of each capability."""
    rich = report["rich"]
    rows = [[f"`{group}`" if group != "all" else "all samples", r["n"], _num(r["mean_spearman"]),
             _num(r["style_f1_micro"]), _num(r["style_f1_macro"])] for group, r in rich["by"].items()]
    held = rich.get("template_held_out")
    if held:
        rows.append([f"all samples, every question template held out ({held['folds']} folds; recorded at training)",
                     "", _num(held["mean_spearman"]), _num(held["style_f1_micro"]), _num(held["style_f1_macro"])])
    cv = rich.get("training_cv")
    if cv and cv.get("mean_spearman") is not None:
        rows.append([f"the training pool, {cv['folds']}-fold CV grouped by {cv['groups']} (recorded at training)", "",
                     _num(cv["mean_spearman"]), "", ""])
    caps = rich["spearman"]
    return (_table(["samples", "n", "mean Spearman", "style F1 micro", "style F1 macro"], rows) + ["",
            "Spearman per capability (all samples):", ""]
            + _table(list(caps), [[_num(v, 2) for v in caps.values()]]))
