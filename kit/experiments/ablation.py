"""Methods x budgets x seeds: select, fine-tune, evaluate, and one tidy table (``kit.experiments.ablate``).

    table = kit.experiments.ablate(pool, methods=["random", "mmssr", "diq", "dis", "dil", "curriculum",
                                                  "curriculum_shuffled"], budgets=[0.1, 0.3], seeds=[0, 1, 2],
                                   preset="tiny", out="runs/ablation")

1. The pool is scored once (:func:`kit.score_table`, cached in ``out/scores/``): the image-text stand-in ``s``,
   the answer loss ``l`` from the preset's aligned base model (paper B's protocol: the model being tuned,
   before instruction tuning, image included) and the distilled rich scores with styles (mmSSR).
2. Each method selects at each budget and seed: any registered selector (``kit.select``), ``"curriculum"``
   (``kit.build_curriculum`` with the budget split over 3 stages, trained stage after stage),
   ``"curriculum_shuffled"`` (the same samples, shuffled together: the control), ``"full"`` (the whole pool,
   once per seed) and ``"random"``. A deterministic selector gives one subset for all seeds; the seed then
   varies the training order (and LoRA initialisation).
3. One model per (method, budget, seed) is fine-tuned from the same base (:func:`kit.finetune.finetune`) and
   evaluated on easy-vqa's test split (:func:`kit.finetune.evaluate`, answers ranked by likelihood).
4. Each finished run writes ``out/runs/<method>_<budget>_s<seed>/result.json`` last (its completion marker):
   an interrupted ablation resumes where it stopped, inside a run too (the run's own checkpoints). Two runs
   that would train on the same ids in the same order with the same seed (DIQ at 10% and 30% when its region
   is smaller than both budgets) are trained once; the second's row is a copy marked ``same_run_as``.

The table has one row per run: method, budget, seed, n (samples trained on), accuracy overall and per type,
per capability, ``/FULL`` and ``>Rand`` (:func:`add_relative_metrics`, as in ``docs/methods.md`` "Metrics",
with the three question types as the benchmarks), the subset's defect share (per planted kind too, when the
pool has ``labels.csv``), steps and train time. :func:`summary_table` averages over seeds (mean and sd).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kit.provenance import jsonable
from kit.scoreinfo import scorers_record

DEFAULT_METHODS = ("random", "mmssr", "diq", "dis", "dil", "curriculum", "curriculum_shuffled")
DEFAULT_BUDGETS = (0.1, 0.3)
DEFAULT_SEEDS = (0, 1, 2)
BENCHMARKS = ("colour", "shape", "yes/no")   # the question types play the papers' benchmarks in /FULL, >Rand
SPECIAL = ("full", "curriculum", "curriculum_shuffled")
RESULT = "result.json"


# What each method reads from the score table (a method not listed here gets every default scorer).
NEEDS = {"random": (), "full": (), "mmssr": ("rich", "style"), "dis": ("image_text",), "dil": ("loss",),
         "diq": ("image_text", "loss"), "cells": ("image_text", "loss"), "curriculum": ("image_text", "loss"),
         "curriculum_shuffled": ("image_text", "loss"), "clip_top": ("image_text",), "ppl_band": ("loss",),
         "deita": ("image_text", "rich"), "coincide": ("image_text",), "influence": ("influence",), "cvs": ("cvs",),
         "scalselect": ("scalselect",)}
# Selectors that read embeddings: the ablation keeps the image-text scorer's and hands them over.
EMBEDDING_METHODS = ("deita", "coincide")


def default_scorers(preset="tiny", methods=None, base=None) -> dict:
    """The score table an ablation selects from: image-text (stand-in), loss (the preset's aligned base, or
    ``base``), rich (the distilled capability scores) and style (the rule styler).

    With ``methods``, only the scorers those methods read (:data:`NEEDS`).
    """
    from kit.finetune.align import base_model

    wanted = {"image_text", "loss", "rich", "style"} if methods is None else \
        {n for m in methods for n in NEEDS.get(m, ("image_text", "loss", "rich", "style"))}
    out = {}
    if "image_text" in wanted:
        out["image_text"] = {}
    if "loss" in wanted:
        out["loss"] = {"model": str(base if base is not None else base_model(preset))}
    if "rich" in wanted:
        out["rich"] = {}
    if "style" in wanted:   # the interaction styles mmSSR's sampler bins by (the rule styler)
        out["style"] = {}
    return out


def with_embeddings(methods, method_options, scorers: dict, folder) -> dict:
    """``method_options`` with ``embeddings=`` for the selectors that read them (deita, coincide), pointing at
    the folder where the image-text scorer of ``scorers`` keeps its embeddings (``embeddings_dir``, set to
    ``folder`` when the scorer has none). Options the caller gave are kept."""
    options = {m: dict(o or {}) for m, o in (method_options or {}).items()}
    wanted = [m for m in methods if m in EMBEDDING_METHODS and "embeddings" not in options.get(m, {})]
    if not wanted:
        return options
    if "image_text" not in scorers:
        raise ValueError(f"{', '.join(wanted)} read the image-text scorer's embeddings, but the score table has no "
                         "image_text scorer; add it to scorers= or pass method_options={m: {'embeddings': ...}}")
    scorers["image_text"] = dict(scorers["image_text"] or {})
    folder = scorers["image_text"].setdefault("embeddings_dir", str(folder))
    for m in wanted:
        options.setdefault(m, {})["embeddings"] = str(folder)
    return options


def _budget_label(budget) -> str:
    return "full" if budget is None else (f"{budget:g}" if isinstance(budget, float) else str(int(budget)))


def run_name(method: str, budget, seed: int) -> str:
    return f"{method}_{_budget_label(budget)}_s{seed}"


def selection_for(scores: pd.DataFrame, method: str, budget, seed: int, stages: int = 3, options=None):
    """``(ids, stages or None, info)`` of one method at one budget and seed."""
    import kit

    options = dict(options or {})
    if method == "full":
        return list(scores.index), None, {"method": "full"}
    if method in ("curriculum", "curriculum_shuffled"):
        plan = kit.build_curriculum(scores, stages=stages, budget=budget, seed=seed, **options)
        ids = [i for s in plan for i in s]
        info = {"method": method, "stages": [len(s) for s in plan], "notes": [n for s in plan for n in s.notes]}
        return ids, ([list(s) for s in plan] if method == "curriculum" else None), info
    sel = kit.select(scores, method, budget, seed=seed, **options)
    return list(sel), None, {"method": method, "resolved": jsonable(sel.resolved), "notes": list(sel.notes),
                             "shortfall": sel.shortfall.to_dict() if sel.shortfall else None}


def defect_shares(ids, labels: pd.DataFrame | None) -> dict:
    """What a subset holds by the pool's truth: its share of planted defects (and of each kind) and, for a
    testbed pool (a ``family`` column), its share of each family (``family_share_<name>``)."""
    if labels is None or "defect" not in labels.columns:
        return {}
    d = labels["defect"].reindex(list(ids))
    out = {"defect_share": float((d != "none").mean()) if len(d) else float("nan")}
    for kind in sorted(set(labels["defect"]) - {"none"}):
        out[f"share_{kind}"] = float((d == kind).mean()) if len(d) else float("nan")
    if "family" in labels.columns:
        fam = labels["family"].reindex(list(ids))
        for name in dict.fromkeys(labels["family"].dropna()):
            out[f"family_share_{name}"] = float((fam == name).mean()) if len(fam) else float("nan")
    return out


def grid_methods(methods, full: bool = True) -> list[str]:
    """The methods an ablation runs: each a registered selector or one of :data:`SPECIAL` (else a KeyError naming
    the unknown ones), with ``"full"`` (the whole pool) added at the end when ``full``."""
    import kit

    methods = list(methods)
    unknown = [m for m in methods if m not in SPECIAL and m not in kit.SELECTORS]
    if unknown:
        raise KeyError("; ".join(kit.SELECTORS.unknown(m) for m in unknown))
    if full and "full" not in methods:
        methods = methods + ["full"]
    return methods


def pool_labels(pool) -> pd.DataFrame | None:
    """The pool's truth table: ``labels.csv`` beside the pool file, or None (no file, or a pool built in memory)."""
    if getattr(pool, "path", None) is None:
        return None
    from kit.eval.labels import labels_path_for, load_labels

    lp = labels_path_for(pool.path)
    return load_labels(lp) if lp.is_file() else None


def scorer_settings(scorers, preset, methods, base) -> dict:
    """``{scorer: options}`` for :func:`kit.score_table`: ``scorers`` as given (a dict, or names as
    ``kit.score_table`` takes them), or :func:`default_scorers` of ``preset`` and ``methods`` when None. A copy:
    the caller's dict stays as given."""
    if scorers is None:
        scorers = default_scorers(preset, methods, base=base)
    if isinstance(scorers, (str, list, tuple)):   # names only, as kit.score_table takes them
        scorers = [scorers] if isinstance(scorers, str) else list(scorers)
        scorers = dict(entry if isinstance(entry, (list, tuple)) else (entry, {}) for entry in scorers)
    return {name: dict(opts or {}) for name, opts in scorers.items()}


def ablate(pool, methods=DEFAULT_METHODS, budgets=DEFAULT_BUDGETS, seeds=DEFAULT_SEEDS, preset="tiny",
           out="runs/ablation", scorers=None, full: bool = True, eval_set=None, labels=None,
           method_options: dict | None = None, curriculum_stages: int = 3, keep_models: bool = False,
           generate: int = 0, workers: int = 1, base=None, progress: bool = True, **train_changes) -> pd.DataFrame:
    """Run the grid and return the tidy table (see the module docstring); resumes from ``out``.

    ``scorers``: what :func:`kit.score_table` scores (default :func:`default_scorers`); ``eval_set``: the
    held-out questions (default :func:`kit.finetune.easyvqa_eval_set`); ``labels``: the pool's truth table
    (default: ``labels.csv`` beside the pool, if any); ``method_options``: ``{method: {option: value}}``;
    ``keep_models`` keeps each run's fine-tuned model folder; ``generate`` greedy-generates answers for that many
    questions of each type per run (a check of the ranking); ``workers`` > 1 trains that many runs at once in
    separate processes (each run stays the same: it depends on its seed only; give ``threads=1`` so that the
    workers do not fight over the cores); ``base``: the aligned model every run starts from (default the preset's,
    :func:`kit.finetune.base_model`); ``train_changes`` override the preset's training config (e.g.
    ``epochs=``, ``threads=``).
    """
    import kit
    import kit.finetune as ft
    from kit.finetune.presets import resolve_preset

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    p = resolve_preset(preset, **train_changes)
    methods = grid_methods(methods, full)
    labels = pool_labels(pool) if labels is None else labels
    base = str(base) if base is not None else str(ft.base_model(p))
    scorers = scorer_settings(scorers, p, methods, base)
    method_options = with_embeddings(methods, method_options, scorers, out / "scores" / "embeddings")
    scores = kit.score_table(pool, scorers, out=out / "scores") if scorers else pool.table[["source"]].copy()
    questions = ft.easyvqa_eval_set() if eval_set is None else eval_set
    from kit.finetune.evaluate import benchmarks as eval_benchmarks

    bench = eval_benchmarks(questions)
    plan = [(m, None if m == "full" else b, s) for m in methods for b in (budgets if m != "full" else [None])
            for s in seeds]
    # runs are trained seed after seed (every method and budget of seed 0 first), so a stopped ablation already
    # holds whole grids of the first seeds; the table keeps the plan's order
    order = sorted(plan, key=lambda x: (seeds.index(x[2]) if x[2] in seeds else 0, plan.index(x)))
    (out / "ablation.json").write_text(json.dumps(jsonable({
        "methods": methods, "budgets": list(budgets), "seeds": list(seeds), "preset": p.to_dict(), "base": str(base),
        "pool": str(getattr(pool, "path", "")), "n_pool": len(pool.table), "eval": dict(questions.attrs),
        "n_eval": len(questions), "benchmarks": bench, "scorers": scorers_record(scores)}), indent=1))
    rows = {}
    settings = {"preset": p, "base": str(base), "keep_models": keep_models, "generate": generate,
                "progress": progress and workers <= 1}
    jobs, repeats = plan_jobs(order, rows, out, scores, labels, method_options, curriculum_stages, settings)
    run_jobs(jobs, repeats, rows, pool, questions, workers, total=len(plan), progress=progress)
    rows = [rows[x] for x in plan]
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "selection"} for r in rows])
    table = add_relative_metrics(table, bench)
    table.to_csv(out / "results.csv", index=False)
    table.attrs = {"out": str(out), "n_eval": len(questions), "benchmarks": bench}   # scorers: in ablation.json
    return table


_ENCODERS: dict = {}   # one example encoder per (base model, pool) in a process
_POOLS: dict = {}


def _worker_job(job: dict, pool_path: str, questions: pd.DataFrame) -> dict:
    import kit

    if pool_path not in _POOLS:
        _POOLS[pool_path] = kit.load_pool(pool_path)
    return run_job(job, _POOLS[pool_path], questions)


def run_job(job: dict, pool, questions: pd.DataFrame) -> dict:
    """Fine-tune and evaluate one (method, budget, seed); writes and returns its ``result.json`` row."""
    import kit.finetune as ft
    from kit.finetune.data import ExampleEncoder

    p, base, folder = job["preset"], job["base"], Path(job["folder"])
    key = (base, str(getattr(pool, "path", id(pool))))
    if key not in _ENCODERS:
        _, processor = ft.load_model(base)
        _ENCODERS[key] = ExampleEncoder(processor, vision=True, train_end_token=p.train.train_end_token,
                                        max_length=p.train.max_length)
    t0 = time.perf_counter()
    run = ft.finetune(pool, job["ids"], preset=p, out=folder / "train", seed=job["seed"], stages=job["stages"],
                      base=base, method=job["method"], params={"budget": job["budget"]}, encoder=_ENCODERS[key],
                      save_model=job["keep_models"], progress=job["progress"])
    t1 = time.perf_counter()
    # evaluated where the run left its model (the run's device: a CUDA run is evaluated on the GPU)
    device = str(next(run.model.parameters()).device) if run.model is not None else "cpu"
    evaluation = ft.evaluate(run.model, run.processor, questions, generate=job["generate"], device=device)
    t2 = time.perf_counter()
    evaluation.table.to_parquet(folder / "predictions.parquet")
    budget = job["budget"]
    summary = dict(evaluation.summary)
    summary["n_eval"] = summary.pop("n", len(questions))
    row = {"method": job["method"], "budget": "full" if budget is None else budget, "seed": job["seed"],
           "n": int(run.info["n_examples"]), "n_selected": len(job["ids"]), **summary, **job["defects"],
           "steps": run.info["steps"], "train_seconds": run.info["train_seconds"], "eval_seconds": round(t2 - t1, 2),
           "final_loss": run.info["final_loss"], "selection": job["info"], "wall_seconds": round(t2 - t0, 2)}
    (folder / RESULT).write_text(json.dumps(jsonable(row), indent=1))
    return row


def copy_result(job: dict, row: dict, trained: dict) -> dict:
    """The row of ``job``, which would train exactly what ``trained`` trained (same seed, ids and order): its
    result and predictions copied, marked ``same_run_as``, with no time of its own (``train_seconds``,
    ``eval_seconds`` and ``wall_seconds`` 0, so that sums over the table count what ran); written like any run's."""
    import shutil

    folder, source = Path(job["folder"]), Path(trained["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    if (source / "predictions.parquet").is_file():
        shutil.copyfile(source / "predictions.parquet", folder / "predictions.parquet")
    budget = job["budget"]
    out = {**row, "method": job["method"], "budget": "full" if budget is None else budget, "seed": job["seed"],
           "n_selected": len(job["ids"]), **job["defects"], "selection": job["info"],
           "same_run_as": run_name(trained["method"], trained["budget"], trained["seed"]), "train_seconds": 0.0,
           "eval_seconds": 0.0, "wall_seconds": 0.0}
    (folder / RESULT).write_text(json.dumps(jsonable(out), indent=1))
    return out


def plan_jobs(order, rows: dict, out: Path, scores: pd.DataFrame, labels, method_options, curriculum_stages: int,
              settings: dict) -> tuple[list[dict], dict]:
    """``(jobs, repeats)``: the runs of ``order`` (``(method, budget, seed)`` tuples) still to train, each a job
    for :func:`run_job` (its selection, defect shares, folder and the common ``settings``).

    A finished run (its ``result.json``) puts its row into ``rows`` instead. A run that would train exactly what
    an earlier job trains (the same seed, ids in the same order and stage sizes) is not a job of its own: it is
    listed in ``repeats`` under that job's key and gets a copy of its result (:func:`copy_result`).
    """
    jobs = []
    repeats: dict = {}   # a job's key -> the jobs that would train exactly the same model (copied, not retrained)
    first_of: dict = {}  # what a run trains on (seed, ids in order, stage sizes) -> the job that trains it
    for method, budget, seed in order:
        folder = out / "runs" / run_name(method, budget, seed)
        if (folder / RESULT).is_file():
            rows[(method, budget, seed)] = read_result(folder)
            continue
        ids, stages, info = selection_for(scores, method, budget, seed, curriculum_stages,
                                          (method_options or {}).get(method))
        job = {"method": method, "budget": budget, "seed": seed, "ids": ids, "stages": stages, "info": info,
               "defects": defect_shares(ids, labels), "folder": str(folder), **settings}
        # e.g. DIQ at 10% and 30% when its region holds fewer samples than either budget: the same ids, order
        # and seed give the same run, so it is trained once
        what = (seed, tuple(str(i) for i in ids), None if stages is None else tuple(len(st) for st in stages))
        if what in first_of:
            repeats.setdefault(first_of[what], []).append(job)
            continue
        first_of[what] = (method, budget, seed)
        jobs.append(job)
    return jobs, repeats


def run_jobs(jobs: list[dict], repeats: dict, rows: dict, pool, questions: pd.DataFrame, workers: int = 1,
             total: int | None = None, progress: bool = True) -> None:
    """Train and evaluate ``jobs`` (:func:`run_job`) here, or ``workers`` at once in separate processes; each
    finished row goes into ``rows`` with the copies for its ``repeats``. ``total``: the grid's number of runs
    (the progress bar starts at the runs already done)."""
    from tqdm.auto import tqdm

    total = len(jobs) + sum(map(len, repeats.values())) if total is None else total
    bar = tqdm(total=total, initial=total - len(jobs) - sum(map(len, repeats.values())), desc="ablation",
               unit="run", disable=not progress)

    def finished(job, row):
        key = (job["method"], job["budget"], job["seed"])
        rows[key] = row
        bar.update(1)
        for other in repeats.pop(key, []):
            rows[(other["method"], other["budget"], other["seed"])] = copy_result(other, row, job)
            bar.update(1)

    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            finished(job, run_job(job, pool, questions))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if getattr(pool, "path", None) is None:
            raise ValueError("workers > 1 needs a pool loaded from a file (each worker loads it)")
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            futures = {ex.submit(_worker_job, job, str(pool.path), questions): job for job in jobs}
            for fut in as_completed(futures):
                finished(futures[fut], fut.result())
    bar.close()


def benchmarks_of(table: pd.DataFrame) -> list[str]:
    """The parts of the evaluation that play the papers' benchmarks: ``table.attrs["benchmarks"]`` when set,
    easy-vqa's question types when the table has their accuracies, else the testbed families it has."""
    if table.attrs.get("benchmarks"):
        return list(table.attrs["benchmarks"])
    if all(f"accuracy_{b}" in table.columns for b in BENCHMARKS):
        return list(BENCHMARKS)
    from kit.pools.testbed import family_names

    return [f for f in family_names() if f"accuracy_{f}" in table.columns]


def add_relative_metrics(table: pd.DataFrame, benchmarks=None) -> pd.DataFrame:
    """``/FULL`` and ``>Rand`` per run, with the question types (easy-vqa) or the families (the testbed) as the
    benchmarks (``docs/methods.md``; ``benchmarks`` overrides :func:`benchmarks_of`).

    ``/FULL`` = mean over types of (run accuracy / full-pool accuracy, averaged over seeds) x 100;
    ``>Rand`` = on how many of the types the run beats random at the same budget and seed (random's mean over
    seeds where that seed is missing). Rows of ``full`` average 100 over seeds (each seed has its own
    ratio); rows of ``full`` and ``random`` get NaN for ``>Rand``.
    """
    bench = benchmarks_of(table) if benchmarks is None else list(benchmarks)
    attrs = dict(table.attrs)
    table = table.copy()
    table.attrs = attrs
    cols = [f"accuracy_{b}" for b in bench if f"accuracy_{b}" in table.columns]
    full = table[table["method"] == "full"]
    if len(full) and cols:
        ref = full[cols].mean()
        table["/FULL"] = (table[cols] / ref.values).mean(axis=1) * 100
    else:
        table["/FULL"] = np.nan
    beats = []
    for _, row in table.iterrows():
        if row["method"] in ("random", "full"):
            beats.append(np.nan)
            continue
        rand = table[(table["method"] == "random") & (table["budget"] == row["budget"])]
        if not len(rand) or not cols:
            beats.append(np.nan)
            continue
        same = rand[rand["seed"] == row["seed"]]
        ref = (same if len(same) else rand)[cols].mean()
        beats.append(int((row[cols].astype(float).values > ref.values).sum()))
    table[">Rand"] = beats
    return table


def summary_table(table: pd.DataFrame, methods=None) -> pd.DataFrame:
    """Mean over seeds per (method, budget): accuracy (and its sd), per benchmark, /FULL, >Rand, defect share, time."""
    cols = ["accuracy"] + [f"accuracy_{b}" for b in benchmarks_of(table)] + ["/FULL", ">Rand", "defect_share", "n",
                                                                             "train_seconds"]
    cols = [c for c in cols if c in table.columns]
    g = table.groupby(["method", "budget"], sort=False)
    out = g[cols].mean()
    out.insert(1, "accuracy_sd", g["accuracy"].std(ddof=1))
    out.insert(0, "seeds", g.size())
    order = list(dict.fromkeys((methods or []) + list(table["method"])))
    out = out.reset_index()
    out["_m"] = out["method"].map({m: k for k, m in enumerate(order)})
    out["_b"] = out["budget"].map(lambda b: 2.0 if b == "full" else float(b))
    out = out.sort_values(["_b", "_m"]).drop(columns=["_m", "_b"]).set_index(["budget", "method"])
    return out


def read_result(folder) -> dict:
    """One finished run's row (``result.json``); ``n`` is the number of samples trained on, ``n_eval`` the number
    of held-out questions (rows written before ``n_eval`` existed held the question count in ``n``: read back
    from the run's ``done.json``)."""
    folder = Path(folder)
    row = json.loads((folder / RESULT).read_text())
    if "n_eval" not in row:
        row["n_eval"] = row["n"]
        done = folder / "train" / "done.json"
        row["n"] = json.loads(done.read_text())["n_examples"] if done.is_file() else row.get("n_selected")
    return row


def load_results(out) -> pd.DataFrame:
    """The tidy table of an ablation folder from its finished runs (``result.json`` of each)."""
    rows = [read_result(p.parent) for p in sorted(Path(out).glob(f"runs/*/{RESULT}"))]
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "selection"} for r in rows])
    info = Path(out) / "ablation.json"
    bench = json.loads(info.read_text()).get("benchmarks") if info.is_file() else None
    if bench:
        table.attrs["benchmarks"] = bench
    return add_relative_metrics(table, bench) if len(table) else table


def _spread(a: pd.Series, b: pd.Series) -> float:
    """The pooled standard deviation of two groups of seeds (NaN with fewer than two seeds in either)."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(np.sqrt((a.std(ddof=1) ** 2 + b.std(ddof=1) ** 2) / 2))


def verdict(diff: float, spread: float) -> str:
    """``"beats"`` / ``"loses to"`` / ``"within the seeds' spread of"``: a difference is a win only beyond the spread."""
    if not np.isfinite(spread):
        return "one seed: no spread to judge"
    return "beats" if diff > spread else "loses to" if diff < -spread else "within the seeds' spread of"


def against_random(table: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Per (budget, method): mean and sd over seeds of ``metric``, random's at the same budget, the difference,
    the pooled sd of the two, and the verdict (:func:`verdict`); plus each budget's share of the full pool's mean."""
    rows = []
    full = table.loc[table["method"] == "full", metric]
    for budget in [b for b in dict.fromkeys(table["budget"]) if b != "full"]:
        at = table[table["budget"] == budget]
        rand = at.loc[at["method"] == "random", metric]
        for method in dict.fromkeys(at["method"]):
            acc = at.loc[at["method"] == method, metric]
            diff = float(acc.mean() - rand.mean()) if len(rand) else float("nan")
            spread = _spread(acc, rand)
            rows.append({"budget": budget, "method": method, "seeds": len(acc), "mean": float(acc.mean()),
                         "sd": float(acc.std(ddof=1)) if len(acc) > 1 else float("nan"),
                         "random": float(rand.mean()) if len(rand) else float("nan"), "diff": diff,
                         "pooled_sd": spread,
                         "verdict": "baseline" if method == "random" else f"{verdict(diff, spread)} random",
                         "of_full": float(acc.mean() / full.mean()) if len(full) else float("nan")})
    return pd.DataFrame(rows).set_index(["budget", "method"])


def curriculum_vs_shuffled(table: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Per budget: the curriculum (stages in order) against the same samples shuffled, seed by seed.

    Both train on identical samples for a seed (``kit.build_curriculum`` is seeded), so the per-seed difference
    isolates the order; ``mean_diff`` and ``sd_diff`` are over seeds.
    """
    rows = []
    for budget in [b for b in dict.fromkeys(table["budget"]) if b != "full"]:
        at = table[table["budget"] == budget]
        cur = at[at["method"] == "curriculum"].set_index("seed")[metric]
        shu = at[at["method"] == "curriculum_shuffled"].set_index("seed")[metric]
        both = cur.index.intersection(shu.index)
        if not len(both):
            continue
        d = cur[both] - shu[both]
        rows.append({"budget": budget, "seeds": len(both), "curriculum": float(cur[both].mean()),
                     "shuffled": float(shu[both].mean()), "mean_diff": float(d.mean()),
                     "sd_diff": float(d.std(ddof=1)) if len(d) > 1 else float("nan"),
                     "curriculum_wins": int((d > 0).sum())})
    return pd.DataFrame(rows).set_index("budget") if rows else pd.DataFrame()
