"""The testbed's learnability gate: per-family dev accuracy against the majority-answer and image-blind rates."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from kit.experiments.testbed.run import PRESET, build_pool


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
