"""The testbed's tidy tables: export a grid, the teacher's agreement and the subsets' composition; read them
back; the verdicts against random across conditions."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


# The tidy table's columns, in order (the per-family, per-style and per-capability accuracies, the families'
# shares in the subset and the defects' shares follow, as the run wrote them).
FIRST_COLUMNS = ("condition", "method", "budget", "seed", "n", "n_selected", "accuracy", "accuracy_macro",
                 "blind_macro", "majority_macro", "chance", "/FULL", ">Rand", "defect_share", "steps",
                 "train_seconds", "eval_seconds", "same_run_as")


def export_teacher(info: dict, condition: str, path) -> Path:
    """Write the rich head's agreement with the teacher on the pool it did not see (:func:`rich_head`'s record) as
    a tidy CSV: one row per group (``all`` and each family) with ``n``, the mean Spearman over capabilities, the
    style F1s and each capability's Spearman."""
    rows = []
    for group, a in info["agreement"].items():
        rows.append({"condition": condition, "group": group, "n_teacher": info["n_teacher"], "n": a["n"],
                     "mean_spearman": a["mean_spearman"], "style_f1_micro": a.get("style_f1_micro"),
                     "style_f1_macro": a.get("style_f1_macro"),
                     **{f"spearman_{k}": v for k, v in (a.get("spearman") or {}).items()}})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).round(4).to_csv(path, index=False)
    return path


def subset_composition(out) -> pd.DataFrame:
    """What every finished run of a condition's grid in ``out`` trained on, by the pool's truth: one row per run
    (``method``, ``budget``, ``seed``, ``n``) with its share of each template kind (``kind_share_word``, ...: the
    interaction styles the families' templates ask in) and of each family. Read from the runs' manifests and the
    pool's ``labels.csv``."""
    from kit.pools.testbed.conditions import template_kind

    out = Path(out)
    labels = pd.read_csv(out / "pool" / "labels.csv", index_col=0)
    labels.index = labels.index.astype(str)
    kinds = labels["template"].str.split("/").str[1].map(template_kind)
    rows = []
    for result in sorted((out / "ablation" / "runs").glob("*/result.json")):
        info = json.loads(result.read_text())
        manifest = result.parent / "train" / "manifest.json"
        source = info.get("same_run_as")
        if not manifest.is_file() and source:
            manifest = out / "ablation" / "runs" / source / "train" / "manifest.json"
        if not manifest.is_file():
            continue
        ids = [str(i) for i in json.loads(manifest.read_text())["ids"]]
        row = {"method": info["method"], "budget": str(info["budget"]), "seed": info["seed"], "n": len(ids)}
        row.update({f"kind_share_{k}": v for k, v in kinds.reindex(ids).value_counts(normalize=True).items()})
        row.update({f"family_share_{k}": v for k, v in
                    labels["family"].reindex(ids).value_counts(normalize=True).items()})
        rows.append(row)
    table = pd.DataFrame(rows).fillna(0.0)
    order = [c for c in table.columns if not c.startswith(("kind_share_", "family_share_"))]
    shares = sorted(c for c in table.columns if c.startswith("kind_share_"))
    families = sorted(c for c in table.columns if c.startswith("family_share_"))
    return table[order + shares + families]


def export(table: pd.DataFrame, path) -> Path:
    """Write the tidy table as CSV (the committed results): first :data:`FIRST_COLUMNS`, then per-family,
    per-style, per-capability accuracies, family shares and defect shares; floats rounded to 4 places."""
    first = [c for c in FIRST_COLUMNS if c in table.columns]
    groups = ("accuracy_", "blind_", "majority_", "family_share_", "share_")
    rest = [c for g in groups for c in table.columns if c.startswith(g) and c not in first]
    rest = list(dict.fromkeys(rest))
    out = table[first + rest].copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round(4)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    return path


CONDITION_ORDER = ("balanced-clean", "skewed-clean", "skewed-noisy", "redundant")


def load_results(folder) -> pd.DataFrame:
    """Every condition's tidy table in ``folder`` (``<condition>.csv``, as :func:`export` wrote them; the gate's
    ``gate.csv`` is not one), concatenated in :data:`CONDITION_ORDER`. Empty when none is there yet."""
    folder = Path(folder)
    tables = [pd.read_csv(p) for p in sorted(folder.glob("*.csv")) if p.stem != "gate"]
    if not tables:
        return pd.DataFrame()
    table = pd.concat(tables, ignore_index=True)
    order = {c: k for k, c in enumerate(CONDITION_ORDER)}
    table["budget"] = table["budget"].astype(str)
    return table.sort_values("condition", key=lambda s: s.map(order).fillna(len(order)), kind="stable")


def kept_families(gate) -> list[str]:
    """The families that pass the gate (a :func:`gate` table, or the path of its ``gate.csv``)."""
    table = pd.read_csv(gate, index_col="family") if not isinstance(gate, pd.DataFrame) else gate
    return [f for f, ok in table["passes"].items() if bool(ok)]


def add_kept_macro(table: pd.DataFrame, kept) -> pd.DataFrame:
    """``accuracy_kept``: the macro mean over the ``kept`` families only (the gate's), beside ``accuracy_macro``."""
    cols = [f"accuracy_{f}" for f in kept]
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise KeyError(f"the table has no column {missing[0]!r}: is it a testbed table?")
    out = table.copy()
    out["accuracy_kept"] = out[cols].mean(axis=1)
    return out


def which_method_when(table: pd.DataFrame, metric: str = "accuracy_macro") -> pd.DataFrame:
    """Per (condition, budget, method): the mean over seeds of ``metric``, random's, the difference, the seeds'
    pooled sd, the difference in units of it (``z``), the verdict (a win only beyond the spread) and ``of_full``
    (the share of the full pool's mean): :func:`kit.experiments.against_random` condition by condition."""
    from kit.experiments.ablation import against_random

    frames = []
    for condition, at in table.groupby("condition", sort=False):
        verdicts = against_random(at.assign(budget=at["budget"].map(budget_value)), metric).reset_index()
        verdicts.insert(0, "condition", condition)
        frames.append(verdicts)
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    out["z"] = out["diff"] / out["pooled_sd"]
    return out


def budget_value(b):
    try:
        return float(b)
    except (TypeError, ValueError):
        return b
