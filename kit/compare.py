"""Several selections from one score table side by side: what each holds and how much they overlap.

    tables = compare_selections(scores, {"random 10%": a, "deita 10%": b, "coincide 10%": c}, labels=labels)
    tables["summary"]     # one row per selection (and the pool): asked, selected, shortfall, planted defects
    tables["sources"]     # counts per source: the pool and each selection
    tables["styles"]      # counts per style (a sample with k styles counts in k rows)
    tables["defects"]     # counts per planted defect kind, "none" = clean (only with labels)
    tables["jaccard"]     # |A & B| / |A | B| for every pair of selections
    tables["overlap"]     # |A & B| for every pair

:func:`select_each` runs several selectors at several budgets into such a dict, one line in a notebook::

    chosen = select_each(scores, ["random", "clip_top", "ppl_band", "deita", "coincide"], [0.05, 0.1],
                         options={"deita": {"embeddings": "emb/"}, "coincide": {"embeddings": "emb/"}})

A selection is a :class:`kit.Selection` or any list of sample ids of the table. ``labels`` is a pool's truth
table (:func:`kit.eval.labels.load_labels`: a ``defect`` column, ``"none"`` for a clean sample) or that column
as a Series; samples of the table it does not cover count as ``"unlabelled"``.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from kit.capabilities import STYLES, style_names

CLEAN = "none"
UNLABELLED = "unlabelled"


def _ids(name: str, selection, scores: pd.DataFrame) -> list:
    ids = list(selection)
    if len(set(ids)) != len(ids):
        raise ValueError(f"selection {name!r} names a sample twice")
    unknown = pd.Index(ids).difference(scores.index)
    if len(unknown):
        raise KeyError(f"selection {name!r} has {len(unknown)} ids not in the score table, e.g. {list(unknown[:3])}")
    return ids


def _counts(values: pd.Series, subsets: dict[str, list], order=None) -> pd.DataFrame:
    table = pd.DataFrame({"pool": values.value_counts()})
    for name, ids in subsets.items():
        table[name] = values.loc[ids].value_counts()
    table = table.fillna(0).astype(np.int64)
    if order is not None:
        first = [k for k in order if k in table.index]
        table = table.reindex(first + sorted(k for k in table.index if k not in first))
    return table


def _style_counts(scores: pd.DataFrame, subsets: dict[str, list]) -> pd.DataFrame:
    per_sample = scores["styles"].map(style_names)
    flat = per_sample.explode().dropna()
    table = pd.DataFrame({"pool": flat.value_counts()})
    for name, ids in subsets.items():
        table[name] = per_sample.loc[ids].explode().dropna().value_counts()
    table = table.fillna(0).astype(np.int64)
    order = [s for s in STYLES if s in table.index] + sorted(s for s in table.index if s not in STYLES)
    table = table.reindex(order)
    table.index.name = "style"
    return table


def _defects(labels, scores: pd.DataFrame) -> pd.Series:
    column = labels["defect"] if isinstance(labels, pd.DataFrame) else labels
    if not isinstance(column, pd.Series):
        raise TypeError("labels must be a truth table with a 'defect' column (kit.eval.labels.load_labels) or a Series")
    return column.reindex(scores.index).astype(object).where(lambda s: s.notna(), UNLABELLED).astype(str)


def jaccard(subsets: Mapping[str, list]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Jaccard matrix |A & B| / |A | B| (1 on the diagonal; 1 for two empty sets) and the overlap counts."""
    names = list(subsets)
    sets = [set(subsets[k]) for k in names]
    inter = np.array([[len(a & b) for b in sets] for a in sets], dtype=np.int64)
    sizes = np.array([len(a) for a in sets], dtype=np.int64)
    union = sizes[:, None] + sizes[None, :] - inter
    jac = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return pd.DataFrame(jac, index=names, columns=names), pd.DataFrame(inter, index=names, columns=names)


def compare_selections(scores: pd.DataFrame, selections: Mapping, labels=None) -> dict[str, pd.DataFrame]:
    """Counts per source, style and planted defect, planted defects let through and overlaps of several
    selections drawn from ``scores`` (see the module docstring). Tables without their column in ``scores``
    (``source``, ``styles``) are left out of the result."""
    if not isinstance(scores, pd.DataFrame):
        raise TypeError("scores must be a pandas DataFrame indexed by sample id")
    if not selections:
        raise ValueError("give at least one selection")
    subsets = {str(name): _ids(str(name), sel, scores) for name, sel in selections.items()}
    out: dict[str, pd.DataFrame] = {}

    rows = [{"selection": "pool", "method": None, "asked": None, "selected": len(scores), "shortfall": None}]
    for name, sel in selections.items():
        short = getattr(sel, "shortfall", None)
        rows.append({"selection": str(name), "method": getattr(sel, "method", None),
                     "asked": getattr(sel, "budget", None), "selected": len(subsets[str(name)]),
                     "shortfall": str(short) if short is not None else None})
    summary = pd.DataFrame(rows).set_index("selection")
    summary["asked"] = summary["asked"].astype("Int64")

    if labels is not None:
        defects = _defects(labels, scores)
        table = _counts(defects, subsets, order=[CLEAN])
        table.index.name = "defect"
        out["defects"] = table
        planted = ~table.index.isin([CLEAN, UNLABELLED])
        let_through = table[planted].sum(axis=0)
        summary["planted_defects"] = let_through.reindex(summary.index).astype(np.int64)
        summary["defect_share"] = summary["planted_defects"] / summary["selected"].where(summary["selected"] > 0)
        pool_planted = int(let_through["pool"])
        summary["share_of_planted"] = summary["planted_defects"] / pool_planted if pool_planted else np.nan
        if (defects == UNLABELLED).any():
            summary["unlabelled"] = table.loc[UNLABELLED].reindex(summary.index).astype(np.int64)
    out["summary"] = summary
    if "source" in scores.columns:
        sources = _counts(scores["source"].astype(object).where(scores["source"].notna(), "").astype(str), subsets)
        sources.index.name = "source"
        out["sources"] = sources.sort_index()
    if "styles" in scores.columns:
        out["styles"] = _style_counts(scores, subsets)
    out["jaccard"], out["overlap"] = jaccard(subsets)
    return {k: out[k] for k in ("summary", "sources", "styles", "defects", "jaccard", "overlap") if k in out}


def budget_name(method: str, budget) -> str:
    """``"deita 10%"`` for a fractional budget, ``"deita 500"`` for a count."""
    if isinstance(budget, float):
        whole = round(budget * 100, 6) == int(round(budget * 100))
        return f"{method} {budget:.0%}" if whole else f"{method} {budget:g}"
    return f"{method} {budget}"


def select_each(scores: pd.DataFrame, methods, budgets, seed: int = 0, options: Mapping | None = None) -> dict:
    """``{"<method> <budget>": Selection}`` for every method at every budget, from one score table.

    ``options`` maps a method to the keyword options it gets (e.g. ``{"ppl_band": {"band": "mid"}}``); a
    method may be given as ``(label, method, options)`` to run one selector twice under two labels (e.g.
    ``("PPL-low", "ppl_band", {"band": "low"})``).
    """
    from kit.selection import select

    if isinstance(methods, str):
        methods = [methods]
    if isinstance(budgets, (int, float)):
        budgets = [budgets]
    options = dict(options or {})
    out: dict = {}
    for entry in methods:
        if isinstance(entry, str):
            label, method, opts = entry, entry, options.get(entry, {})
        else:
            label, method, opts = entry
        for budget in budgets:
            out[budget_name(label, budget)] = select(scores, method, budget, seed=seed, **dict(opts or {}))
    return out


COVERAGE_STATS = ("share", "mean")


def capability_coverage(scores: pd.DataFrame, selections: Mapping, capabilities=None, at_least: float = 2.0,
                        stat: str = "share", pool: bool = True) -> pd.DataFrame:
    """How well each selection (and the pool) covers each capability: one row per selection, one column per
    capability.

    Coverage is, by default (``stat="share"``), the **share of a subset's samples whose rating for the
    capability is at least** ``at_least`` (default 2 on mmSSR's 0-5 scale: at least somewhat helpful for that
    capability, where 0 means the sample does not exercise it; 2 rather than 1 because the distilled offline
    scorer regresses uncertain samples to about 1); with ``stat="mean"`` it is the mean rating. Samples without a
    finite rating are left out of that capability's share or mean; a subset with no rated sample gives NaN.
    ``capabilities`` defaults to every registered capability present in ``scores``. The table's
    ``attrs["coverage"]`` records the definition and :func:`coverage_label` words it for an axis.
    """
    from kit.capabilities import capability_keys

    if stat not in COVERAGE_STATS:
        raise ValueError(f"stat must be one of {', '.join(map(repr, COVERAGE_STATS))}, not {stat!r}")
    caps = [c for c in capability_keys() if c in scores.columns] if capabilities is None else list(capabilities)
    missing = [c for c in caps if c not in scores.columns]
    if missing:
        raise KeyError(f"score table has no capability columns {missing}")
    if not caps:
        raise ValueError("no capability columns to cover (score the pool with the rich scorer first)")
    ratings = scores[caps].apply(pd.to_numeric, errors="coerce").astype(float)
    subsets = {"pool": list(scores.index)} if pool else {}
    subsets.update({str(name): _ids(str(name), sel, scores) for name, sel in selections.items()})
    rows = {}
    for name, ids in subsets.items():
        part = ratings.loc[ids]
        rated = part.notna()
        if stat == "share":
            rows[name] = (part >= at_least).sum() / rated.sum().where(rated.sum() > 0)
        else:
            rows[name] = part.mean()
    table = pd.DataFrame.from_dict(rows, orient="index", columns=caps)
    table.index.name = "selection"
    table.attrs["coverage"] = {"stat": stat, "at_least": float(at_least) if stat == "share" else None,
                               "n": {k: len(v) for k, v in subsets.items()}}
    return table


def coverage_label(coverage: pd.DataFrame) -> str:
    """The definition of a :func:`capability_coverage` table in words, for an axis or a caption."""
    info = coverage.attrs.get("coverage", {})
    if info.get("stat") == "mean":
        return "mean rating (0-5)"
    at_least = info.get("at_least", 2.0)
    return f"share of samples rated ≥ {at_least:g} (of 5)"
