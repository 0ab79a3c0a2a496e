"""One testbed condition's grid: its pool, mmSSR's rich head on the teacher's sample, the ablation; one run again."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from kit.experiments.testbed.tables import budget_value


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
    from kit.eval.labels import labels_path_for, load_ratings
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


def reproduce_run(results: pd.DataFrame, condition: str, method: str, budget: float, seed: int, out,
                  workers: int = 1, threads: int = 1) -> dict:
    """Train one run of a committed grid again (same pool, base, seed and recipe) and compare it with its committed
    row: ``{"committed", "again", "diff", "seeds_sd", "within"}`` on ``accuracy_macro``, where ``within`` says the
    difference is no larger than the sd of the method's committed seeds at that budget."""
    again = run_condition(condition, out, methods=[method], budgets=[budget], seeds=[seed], workers=workers,
                          threads=threads, full=False, progress=False)
    at = results[(results["condition"] == condition) & (results["method"] == method)
                 & (results["budget"].map(budget_value) == budget)]
    committed = float(at.loc[at["seed"] == seed, "accuracy_macro"].iloc[0])
    new = float(again["accuracy_macro"].iloc[0])
    sd = float(at["accuracy_macro"].std(ddof=1))
    return {"committed": committed, "again": new, "diff": new - committed, "seeds_sd": sd,
            "within": abs(new - committed) <= sd}
