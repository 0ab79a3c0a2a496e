"""The presets side by side: align each (cached), fine-tune each on the same subset, evaluate each on the same
held-out questions, and print times and accuracies.

    python benchmarks/bench_presets.py                          # small vs tiny, docs/results.md's run (about 35 min)
    python benchmarks/bench_presets.py --presets tiny --n 200   # a quick look

Defaults (docs/results.md's run, "Fine-tuning and ablations"): the clean 2,000-sample easy-vqa pool (built first if
``--pool`` does not exist, as ``python -m kit.pools easyvqa runs/easyvqa_clean --n 2000 --mismatch 0
--wrong-answer 0 --truncated 0 --duplicate 0 --exclude-pool data_samples/pool.json --seed 0``), a random subset
of ``--n`` 600 samples (30%, ``pool.table.sample(n, random_state=seed)``), 200 test questions per type, one torch thread. Alignment
is timed only when the base is not in the kit's cache yet (``$KIT_CACHE/finetune/``); the ``small`` preset's
alignment first builds the ``tiny`` base, whose vision tower it borrows.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLEAN = dict(n=2000, rates={"mismatch": 0, "wrong_answer": 0, "truncated": 0, "duplicate": 0}, seed=0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", default=str(ROOT / "runs" / "easyvqa_clean" / "pool.json"))
    ap.add_argument("--presets", nargs="+", default=["small", "tiny"])
    ap.add_argument("--n", type=int, default=600, help="samples in the random subset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-type", type=int, default=200)
    ap.add_argument("--generate", type=int, default=10, help="greedy generations per type (a check of the ranking)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "runs" / "presets"))
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    import kit
    import kit.finetune as ft

    pool_path = Path(args.pool)
    if not pool_path.is_file():
        from kit.pools import build_easyvqa_pool

        print(f"building the clean pool in {pool_path.parent} ...", flush=True)
        build_easyvqa_pool(pool_path.parent, exclude_pool=ROOT / "data_samples" / "pool.json", progress=False,
                           **CLEAN)
    pool = kit.load_pool(pool_path)
    ids = list(pool.table.sample(n=args.n, random_state=args.seed).index)
    questions = ft.easyvqa_eval_set(per_type=args.per_type)
    print(f"pool {pool_path} ({len(pool.table)} samples), random subset of {len(ids)} (seed {args.seed}), "
          f"{len(questions)} test questions, torch threads {torch.get_num_threads()}", flush=True)
    rows = []
    for name in args.presets:
        cached = (ft.aligned_path(name) / "kit_base.json").is_file()
        t = time.perf_counter()
        base = ft.base_model(name)
        align_s = None if cached else time.perf_counter() - t
        info = ft.base_info(base)
        run = ft.finetune(pool, ids, preset=name, out=Path(args.out) / f"{name}_n{len(ids)}_s{args.seed}",
                          seed=args.seed, threads=args.threads)
        t = time.perf_counter()
        result = ft.evaluate(run.model, run.processor, questions=questions, generate=args.generate, progress=True)
        s = result.summary
        rows.append({"preset": name, "align_s": None if align_s is None else round(align_s),
                     "caption_loss": info.get("caption_loss"), "shuffled_images": info.get("caption_loss_shuffled_images"),
                     "steps": run.info["steps"], "train_s": round(run.info["train_seconds"], 1),
                     "samples_per_s": run.info.get("samples_per_s"), "eval_s": round(time.perf_counter() - t, 1),
                     "accuracy": s["accuracy"], "colour": s["accuracy_colour"], "shape": s["accuracy_shape"],
                     "yes/no": s["accuracy_yes/no"], "majority": s["majority"],
                     "generation_agrees": s.get("generated_agrees")})
        print(json.dumps(rows[-1]), flush=True)
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(pd.DataFrame(rows).set_index("preset").round(3).to_string())
    print("align_s: None = the base was already in the kit's cache (not timed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
