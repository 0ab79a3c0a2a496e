"""One testbed condition's whole ablation: build the pool, score it as the protocol says, run the grid, export.

    table = kit.experiments.testbed.run_condition("skewed-noisy", "runs/testbed/skewed-noisy")
    kit.experiments.testbed.export(table, "results/testbed/skewed-noisy.csv")

Command line: ``kit testbed CONDITION --out DIR [--results results/testbed]`` (or ``python -m kit.experiments testbed``).

Steps (the protocol is fixed in ``docs/methods.md``, "The testbed"):

1. the pool of the condition (:func:`kit.pools.testbed.build_condition`, ``n`` samples, ``pool_seed``), built once
   into ``out/pool/``;
2. mmSSR's rich scores by mmSSR's own protocol: the teacher (the pool's per-template reference ratings) rates a
   seeded ``teacher_share`` of the pool, a distilled head learns from that sample only
   (:func:`kit.mmssr.distilled.sample.distil_on_sample`) and rates the whole pool; its agreement with the
   teacher on the rest of the pool is written to ``out/rich_teacher.json``;
3. the grid (:func:`kit.experiments.ablate`): every method at every budget and seed, fine-tuned from the
   ``preset``'s aligned base and evaluated on the testbed's held-out questions (``per_family`` per family,
   balanced over families; :func:`kit.pools.testbed.heldout_questions`);
4. :func:`export` writes the tidy table (one row per run) that the results and notebook 05 are drawn from.

:func:`gate` measures the learnability gate that comes before any grid: the preset fine-tuned on a whole
balanced clean pool, per-family accuracy on the families' ``dev`` side against each family's majority-answer rate
and its image-blind rate (``kit testbed-gate --out runs/testbed/gate``).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

METHODS = ("random", "mmssr", "dis", "dil", "diq", "curriculum", "curriculum_shuffled", "clip_top", "ppl_band",
           "deita", "coincide")
# The newer signals (docs/methods.md): a second grid on the same pools, random and full shared with the first
NEWER_METHODS = ("random", "influence", "cvs", "scalselect")
PRESET = "testbed"


def build_pool(condition: str, folder, n: int = 2000, seed: int = 0, progress: bool = True) -> Path:
    """The condition's pool in ``folder`` (built once; rebuilt when ``n`` or the seed differ)."""
    from kit.pools.testbed import build_condition

    folder = Path(folder)
    info = folder / "build_info.json"
    if info.is_file():
        built = json.loads(info.read_text())
        from kit.pools.testbed.heldout import VERSION

        if (built.get("condition", {}).get("name") == condition and built.get("n") == n and built.get("seed") == seed
                and built.get("testbed_version") == VERSION):
            return folder / "pool.json"
    build_condition(condition, folder, n=n, seed=seed, progress=progress)
    return folder / "pool.json"


def rich_head(pool, out, share: float = 0.1, seed: int = 0) -> dict:
    """The distilled rich head trained on the teacher's ratings of a seeded ``share`` of the pool (once)."""
    from kit.labels import labels_path_for, load_ratings
    from kit.mmssr.distilled.sample import distil_on_sample

    out = Path(out)
    record = out.with_suffix(".json")
    if out.is_file() and record.is_file():
        info = json.loads(record.read_text())
        if info.get("share") == share and info.get("seed") == seed:
            return info
    ratings = load_ratings(labels_path_for(pool.path))
    info = distil_on_sample(pool, ratings, out, share=share, seed=seed, by="family", progress=False)
    record.write_text(json.dumps(info, indent=1), encoding="utf-8")
    return info


def scorers_for(methods, preset: str, base, rich_weights) -> dict:
    """The ablation's score table: the defaults (:func:`kit.experiments.default_scorers`) with the rich scores
    from the head trained on the teacher's sample."""
    from kit.experiments.ablation import default_scorers
    from kit.experiments.newer import NEWER
    from kit.experiments.newer import scorers_for as newer_scorers

    if any(m in NEWER for m in methods):   # influence toward the families' dev-side targets, CVS, ScalSelect
        scorers = newer_scorers(methods, preset, base=base, targets="testbed")
    else:
        scorers = default_scorers(preset, methods, base=base)
    if "rich" in scorers:
        scorers["rich"] = {"weights": str(rich_weights)}
    return scorers


def run_condition(condition: str, out, n: int = 2000, pool_seed: int = 0, methods=METHODS, budgets=(0.1, 0.3),
                  seeds=(0, 1, 2), preset: str = PRESET, per_family: int = 100, teacher_share: float = 0.1,
                  workers: int = 1, threads: int | None = None, progress: bool = True, base=None, full: bool = True,
                  **train_changes) -> pd.DataFrame:
    """Run one condition's grid into ``out`` (resumable) and return its tidy table (see the module docstring).

    ``base``: the aligned model every run starts from (default: the preset's, built once and cached); a quick
    base (``kit.finetune.align(preset, steps=20, ...)``) makes a smoke run, whose figures mean nothing, as do
    ``train_changes`` to the preset's training config (e.g. ``min_steps=20, epochs=1``)."""
    import kit
    import kit.finetune as ft
    from kit.experiments.ablation import ablate
    from kit.pools.testbed import heldout_questions

    out = Path(out)
    pool = kit.load_pool(build_pool(condition, out / "pool", n=n, seed=pool_seed, progress=progress))
    base = base if base is not None else ft.base_model(preset)
    scorers = scorers_for(methods, preset, base, out / "rich_head.pt")
    teacher = None
    if "rich" in scorers:   # only the methods that read the rich scores need the head (trained once)
        teacher = rich_head(pool, out / "rich_head.pt", share=teacher_share, seed=pool_seed)
        scorers["rich"] = {"weights": str(teacher["weights"])}
    changes = {**train_changes, **({"threads": threads} if threads is not None else {})}
    table = ablate(pool, methods, budgets, seeds, preset=preset, out=out / "ablation", base=base, full=full,
                   scorers=scorers,
                   eval_set=heldout_questions(per_family=per_family, side="test"), workers=workers,
                   progress=progress, **changes)
    table.insert(0, "condition", condition)
    if teacher is not None:
        table.attrs["teacher"] = teacher
    return table


GATE_MARGIN = 0.15  # a family is kept when its dev accuracy is at least its majority-answer rate + this


def gate(out, n: int = 2000, seed: int = 0, per_family: int = 150, preset: str = PRESET, margin: float = GATE_MARGIN,
         threads: int = 1, progress: bool = True) -> pd.DataFrame:
    """The learnability gate: one row per family of the preset's held-out accuracy on the ``dev`` side after
    fine-tuning on a whole ``balanced-clean`` pool of ``n``, beside the family's majority-answer rate, its image-blind
    rate (each template's most common answer; what a model that ignores the image can reach), the word-style
    accuracy, and ``passes`` (accuracy >= majority + ``margin``). Written to ``out/gate.csv`` and ``out/gate.json``
    (wall times, the settings, the macro figures)."""
    import time

    import kit
    import kit.finetune as ft
    from kit.pools.testbed import heldout_questions

    out = Path(out)
    t0 = time.perf_counter()
    pool = kit.load_pool(build_pool("balanced-clean", out / "pool", n=n, seed=seed, progress=progress))
    base = ft.base_model(preset)
    t1 = time.perf_counter()
    run = ft.finetune(pool, list(pool.table.index), preset=preset, base=base, out=out / "run", seed=seed,
                      progress=progress, threads=threads)
    t2 = time.perf_counter()
    result = ft.evaluate(run.model, run.processor, heldout_questions(per_family=per_family, side="dev"))
    table = gate_table(result.table, result.summary, margin)
    table.to_csv(out / "gate.csv")
    record = {"n": n, "seed": seed, "per_family": per_family, "preset": preset, "margin": margin, "base": str(base),
              "seconds": {"pool_and_base": round(t1 - t0, 1), "train": round(t2 - t1, 1),
                          "evaluate": round(time.perf_counter() - t2, 1)},
              "summary": {k: v for k, v in result.summary.items() if not isinstance(v, (list, dict))}}
    (out / "gate.json").write_text(json.dumps(record, indent=1, default=float), encoding="utf-8")
    return table


def gate_table(predictions: pd.DataFrame, summary: dict, margin: float = GATE_MARGIN) -> pd.DataFrame:
    """Per family: accuracy, majority and blind rates, word-style accuracy, margin over majority, passes."""
    kind = predictions["template"].str.split("/").str[1].str.split("_").str[0]
    word = predictions[kind == "word"].groupby("family")["correct"].mean()
    families = sorted(predictions["family"].unique())
    table = pd.DataFrame({
        "accuracy": [summary[f"accuracy_{f}"] for f in families],
        "majority": [summary[f"majority_{f}"] for f in families],
        "blind": [summary[f"blind_{f}"] for f in families],
        "accuracy_word": [word.get(f, float("nan")) for f in families],
        "questions": predictions.groupby("family").size().reindex(families).to_numpy(),
    }, index=pd.Index(families, name="family"))
    table["over_majority"] = table["accuracy"] - table["majority"]
    table["passes"] = table["over_majority"] >= margin - 1e-9
    return table


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


# ---- reading the committed results -------------------------------------------------------------------------------

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


def reproduce_run(results: pd.DataFrame, condition: str, method: str, budget: float, seed: int, out,
                  workers: int = 1, threads: int = 1) -> dict:
    """Train one run of a committed grid again (same pool, base, seed and recipe) and compare it with its committed
    row: ``{"committed", "again", "diff", "seeds_sd", "within"}`` on ``accuracy_macro``, where ``within`` says the
    difference is no larger than the sd of the method's committed seeds at that budget."""
    again = run_condition(condition, out, methods=[method], budgets=[budget], seeds=[seed], workers=workers,
                          threads=threads, full=False, progress=False)
    at = results[(results["condition"] == condition) & (results["method"] == method)
                 & (results["budget"].map(_budget_value) == budget)]
    committed = float(at.loc[at["seed"] == seed, "accuracy_macro"].iloc[0])
    new = float(again["accuracy_macro"].iloc[0])
    sd = float(at["accuracy_macro"].std(ddof=1))
    return {"committed": committed, "again": new, "diff": new - committed, "seeds_sd": sd,
            "within": abs(new - committed) <= sd}


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
        verdicts = against_random(at.assign(budget=at["budget"].map(_budget_value)), metric).reset_index()
        verdicts.insert(0, "condition", condition)
        frames.append(verdicts)
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    out["z"] = out["diff"] / out["pooled_sd"]
    return out


def _budget_value(b):
    try:
        return float(b)
    except (TypeError, ValueError):
        return b


# ---- the results document -----------------------------------------------------------------------------------------

BEGIN, END = "<!-- testbed-results:begin (generated by kit.experiments.testbed.write_results; do not edit) -->", \
    "<!-- testbed-results:end -->"


def results_markdown(folder) -> str:
    """The testbed's results as markdown, computed from the committed tables in ``folder`` (the conditions' CSVs,
    ``gate.csv`` and ``newer/``): per condition and budget, every method's mean ± sd over seeds of the headline
    (the macro mean over the gate's kept families), its difference from random in units of the seeds' pooled sd,
    the verdict, /FULL, the macro over all families and the subset's defect share."""
    folder = Path(folder)
    gate = folder / "gate.csv"
    kept = kept_families(gate) if gate.is_file() else None
    lines = []
    for title, sub in (("The ablation", folder), ("The newer signals (second grid, same pools)", folder / "newer")):
        table = load_results(sub)
        if not len(table):
            continue
        metric = "accuracy_kept" if kept else "accuracy_macro"
        if kept:
            table = add_kept_macro(table, kept)
        verdicts = which_method_when(table, metric)
        lines += [f"#### {title}", ""]
        if kept:
            lines += [f"Headline: macro accuracy over the {len(kept)} families the gate kept ({', '.join(kept)}); "
                      "`all 9`: the macro over every family. `z`: the difference from random in units of the seeds' "
                      "pooled sd; a win or a loss only beyond 1.", ""]
        lines += _verdict_matrix(verdicts)
        for condition, at in table.groupby("condition", sort=False):
            full = at[at["method"] == "full"][metric]
            seeds = at["seed"].nunique()
            lines += [f"**{condition}** ({len(at)} runs, {seeds} seeds; full pool {full.mean():.3f} ± "
                      f"{full.std(ddof=1):.3f}; `{(sub.relative_to(folder) / f'{condition}.csv').as_posix()}`)", "",
                      "| budget | method | n | accuracy (kept) | all 9 | vs random | z | verdict | /FULL | defects |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            v = verdicts[verdicts["condition"] == condition]
            for r in v.itertuples():
                runs = at[(at["method"] == r.method) & (at["budget"].map(_budget_value) == r.budget)]
                verdict = {"beats random": "**beats**", "loses to random": "**loses**"}.get(
                    r.verdict, "" if r.method == "random" else "within spread")
                lines.append(f"| {r.budget:.0%} | {r.method} | {int(runs['n_selected'].mean())} | {r.mean:.3f} ± "
                             f"{r.sd:.3f} | {runs['accuracy_macro'].mean():.3f} | "
                             f"{'' if r.method == 'random' else f'{r.diff:+.3f}'} | "
                             f"{'' if r.method == 'random' else f'{r.z:+.1f}'} | {verdict} | {r.of_full:.0%} | "
                             f"{runs['defect_share'].mean():.3f} |")
            lines.append("")
    lines += _composition_markdown(folder / "composition")
    lines += _teacher_markdown(folder / "teacher")
    return "\n".join(lines).rstrip() + "\n"


def _verdict_matrix(verdicts: pd.DataFrame) -> list[str]:
    """Method x condition: the verdict at each budget (``10%, 30%``), bold where a method beats or loses to random."""
    words = {"beats random": "**beats**", "loses to random": "**loses**"}
    at = verdicts[verdicts["method"] != "random"]
    conditions = list(dict.fromkeys(at["condition"]))
    budgets = sorted(at["budget"].unique())
    lines = ["Each cell: the verdict against random at " + ", then ".join(f"{b:.0%}" for b in budgets) + ".", "",
             "| method | " + " | ".join(conditions) + " |", "|---|" + "---|" * len(conditions)]
    for method in dict.fromkeys(at["method"]):
        cells = []
        for c in conditions:
            rows = at[(at["method"] == method) & (at["condition"] == c)].set_index("budget")["verdict"]
            cells.append(", ".join(words.get(rows.get(b, ""), "within" if b in rows else "") for b in budgets))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines + [""]


def _composition_markdown(folder: Path, budget: str = "0.3") -> list[str]:
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not files:
        return []
    lines = ["#### What the 30% subsets hold: interaction styles", "",
             "Share of each template kind in the subsets (mean over seeds; `composition/<condition>.csv`). The "
             "held-out questions ask only `word`, `yn` (yes/no) and `mc` (multiple choice); `asked` is their sum.",
             ""]
    for path in files:
        table = pd.read_csv(path)
        table["budget"] = table["budget"].astype(str)
        kinds = [c for c in table.columns if c.startswith("kind_share_")]
        at = table[table["budget"].isin([budget, "full", "None"])]
        means = at.groupby("method", sort=False)[kinds].mean()
        means.columns = [c.removeprefix("kind_share_") for c in kinds]
        means["asked"] = means[[k for k in ("word", "yn", "mc") if k in means]].sum(axis=1)
        lines += [f"**{path.stem}**", "", "| method | " + " | ".join(means.columns) + " |",
                  "|---|" + "---|" * len(means.columns)]
        for m, row in means.iterrows():
            lines.append(f"| {m} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
        lines.append("")
    return lines


def _teacher_markdown(folder: Path) -> list[str]:
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not files:
        return []
    table = pd.concat([pd.read_csv(p) for p in files], ignore_index=True)
    groups = list(dict.fromkeys(table["group"]))
    wide = table.pivot(index="group", columns="condition", values="mean_spearman").reindex(groups)
    lines = ["#### mmSSR's rich scores: the head against the teacher", "",
             f"The head learns from the teacher's ratings of {int(table['n_teacher'].iloc[0])} samples (10%) and rates "
             "the pool; mean Spearman over capabilities against the teacher on the other 90% (`all`), and within "
             "each family (where most capabilities are constant, so the figure is lower); style F1 (micro) "
             "on `all`: " + ", ".join(f"{c} {v:.3f}" for c, v in
                                      table[table["group"] == "all"].set_index("condition")["style_f1_micro"].items())
             + ".", "", "| group | " + " | ".join(wide.columns) + " |", "|---|" + "---|" * len(wide.columns)]
    for g, row in wide.iterrows():
        lines.append(f"| {g} | " + " | ".join("" if pd.isna(v) else f"{v:.3f}" for v in row) + " |")
    return lines + [""]


def write_results(folder, document) -> bool:
    """Rewrite the generated block of ``document`` (between :data:`BEGIN` and :data:`END`) from ``folder``'s tables;
    returns whether the document changed. The text around the block is the authors'."""
    document = Path(document)
    text = document.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise ValueError(f"{document} has no generated block ({BEGIN!r} ... {END!r})")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = head + BEGIN + "\n\n" + results_markdown(folder) + "\n" + END + tail
    if new != text:
        document.write_text(new, encoding="utf-8")
    return new != text
