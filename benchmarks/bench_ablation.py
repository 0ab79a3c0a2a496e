"""Benchmark of fine-tuning: training speed of the presets, and the wall time of the default ablation.

Prints, in one run:
1. training throughput (samples/s, best of ``--repeats``) on the same length-grouped batches of the experiment
   pool, measured one after the other in this process, each with the ratio to SmolLM2-135M full fine-tuning
   (the reference workload, so a busy machine moves the ratios less than the speeds):
   - SmolLM2-135M-Instruct behind the tiny vision tower, every language-model weight trained (reference),
   - the same with the language model frozen (gradients flow through it to the projector),
   - the ``small`` preset (LoRA r=16 on every linear layer of SmolLM2, plus the projector),
   - the ``tiny`` preset (2-layer, width-192 language model; logits only at the trained positions), in float32
     and with the preset's bfloat16 autocast, with PyTorch's SDPA attention and with the preset's eager attention;
   with ``--loops``, also the kit's own training loop, before and after it moved to accelerate (the ``tiny``
   preset, one torch thread, the same steps on the same batches, alternated run by run; the old loop is kept in
   ``tests/support/plain_loop.py``);
2. the default ablation (``kit.experiments.ablate``: random, mmSSR, DIQ, DIS, DIL, curriculum, shuffled
   curriculum at 10% and 30%, the full pool, three seeds) on the experiment pool, timed: scoring (once per pool),
   then the runs (train + evaluate), with the summary table.

    python benchmarks/bench_ablation.py                    # both parts, the default grid (long)
    python benchmarks/bench_ablation.py --quick            # fewer repeats; 1 seed, 10%, random and DIL only
    python benchmarks/bench_ablation.py --skip-speed --out runs/ablation --workers 2 --threads 1   # docs/results.md's run
    python benchmarks/bench_ablation.py --skip-speed --skip-ablation --loops   # docs/scale.md: old vs accelerate

The experiment pool is built first if ``--pool`` does not exist (``python -m kit.pools easyvqa`` with the
settings in ``docs/methods.md``). An existing ``--out`` folder is resumed (its finished runs are not timed again).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POOL_SETTINGS = dict(n=2000, rates={"mismatch": 0.1, "wrong_answer": 0.1, "truncated": 0.05, "duplicate": 0.05},
                     seed=0)


def experiment_pool(path: Path):
    import kit
    from kit.pools import build_easyvqa_pool

    if not path.is_file():
        print(f"building the experiment pool in {path.parent} ...", flush=True)
        build_easyvqa_pool(path.parent, exclude_pool=ROOT / "data_samples" / "pool.json", progress=False,
                           **POOL_SETTINGS)
    return kit.load_pool(path)


def speed(pool, repeats: int, n_batches: int, threads: int | None):
    import numpy as np
    import torch

    import kit.finetune as ft
    from kit.finetune.data import ExampleEncoder, batch_order
    from kit.finetune.presets import PRESETS
    from kit.finetune.train import add_lora, batch_loss, set_trainable, use_attention
    from kit.models.vlm import build_processor, build_vlm

    if threads:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    ids = [pool.table.index[i] for i in rng.permutation(len(pool.table))[:16 * n_batches]]
    tiny_base = ft.base_model("tiny")
    tiny, processor = ft.load_model(tiny_base)
    encoder = ExampleEncoder(processor)
    examples, _ = encoder.encode_pool(pool, ids)
    batches = batch_order([e.length for e in examples], 16, n_batches, seed=0)
    n = sum(len(b) for b in batches)
    tokens = sum(examples[i].length for b in batches for i in b) / n
    trained = sum(examples[i].n_trained for b in batches for i in b) / n
    print(f"\n1. training speed: {n_batches} batches of 16 from {pool.path} ({tokens:.0f} tokens and "
          f"{trained:.1f} trained tokens per sample), best of {repeats}, torch threads {torch.get_num_threads()}")

    # SmolLM2's whole vocabulary: its own processor and encoding of the same samples (the tiny preset's vocabulary
    # is cut, so its token ids, the image token's included, are not SmolLM2's)
    full_processor = build_processor(PRESETS["small"].spec)
    full_encoder = ExampleEncoder(full_processor)
    full_examples, _ = full_encoder.encode_pool(pool, ids)

    def smollm2_vlm():
        model, _ = build_vlm(PRESETS["small"].spec)
        model.model.vision_tower.load_state_dict(tiny.model.vision_tower.state_dict())
        return model

    def setups():
        m = smollm2_vlm()
        set_trainable(m, ("projector", "lm", "embeddings"))
        yield "SmolLM2-135M, full fine-tuning (reference)", m, None, full_encoder, full_examples
        m = smollm2_vlm()
        set_trainable(m, ("projector",))
        yield "SmolLM2-135M frozen, projector trained", m, None, full_encoder, full_examples
        m = smollm2_vlm()
        set_trainable(m, ())
        m = add_lora(m, PRESETS["small"].train, seed=0)
        for name, p in m.named_parameters():
            if "lora_" in name or "multi_modal_projector" in name:
                p.requires_grad_(True)
        yield "small preset (SmolLM2-135M + LoRA r=16)", m, None, full_encoder, full_examples
        tiny_train = PRESETS["tiny"].train
        for autocast, attention in ((None, "sdpa"), (tiny_train.autocast, "sdpa"),
                                    (tiny_train.autocast, tiny_train.attention)):
            m, _ = ft.load_model(tiny_base)
            use_attention(m, attention)
            set_trainable(m, tiny_train.train)
            yield ("tiny (2 layers, width 192), " + (f"{autocast}" if autocast else "float32") + f", {attention}"
                   + (" = the preset" if (autocast, attention) == (tiny_train.autocast, tiny_train.attention)
                      else "")), m, autocast, encoder, examples

    rows = []
    for name, model, autocast, enc, exs in setups():
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for b in batches:
                inputs, labels = enc.collate([exs[i] for i in b])
                with torch.autocast("cpu", dtype=getattr(torch, autocast or "bfloat16"), enabled=bool(autocast)):
                    loss, _, _ = batch_loss(model, inputs, labels)
                opt.zero_grad()
                loss.backward()
                opt.step()
            best = min(best, time.perf_counter() - t0)
        rows.append((name, sum(p.numel() for p in params), n / best))
        ref = rows[0][2]
        print(f"   {name:<52} trainable {rows[-1][1] / 1e6:6.1f}M  {n / best:6.1f} samples/s  "
              f"{n / best / ref:5.1f}x the reference", flush=True)
        del model, opt
    return rows


def loop_speed(pool, steps: int, repeats: int):
    """The tiny preset's training speed through the loop before accelerate and through ``train_examples`` now:
    one torch thread, ``steps`` steps of 16 on the same batches, each a fresh model, runs alternated; prints the
    best and the median samples/s of each (steps' time, as the loops measure it) and the ratio."""
    import statistics
    import tempfile

    import numpy as np

    import kit.finetune as ft
    from kit.finetune.data import ExampleEncoder
    from kit.finetune.presets import PRESETS
    from kit.finetune.train import train_examples
    from tests.support.plain_loop import train_plain

    config = PRESETS["tiny"].train.with_(threads=1, min_steps=steps, max_steps=steps, checkpoint_every=10 * steps)
    base = ft.base_model("tiny")
    processor = ft.load_model(base)[1]
    rng = np.random.default_rng(0)
    ids = [pool.table.index[i] for i in rng.permutation(len(pool.table))[:16 * steps]]
    encoder = ExampleEncoder(processor, train_end_token=config.train_end_token, max_length=config.max_length)
    examples, _ = encoder.encode_pool(pool, ids)
    print(f"\n1b. the kit's loop, tiny preset ({config.autocast} autocast, {config.attention} attention), one torch "
          f"thread, {steps} steps of 16 on the same batches, {repeats} runs each, alternated", flush=True)
    times: dict[str, list[float]] = {"before accelerate (plain loop)": [], "accelerate (train_examples)": []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeats):
            for name in times:
                model = ft.load_model(base)[0]
                if name.startswith("before"):
                    seconds = train_plain(model, encoder, examples, config, seed=0)[2]
                else:
                    run = train_examples(model, encoder, examples, config, Path(tmp) / f"run{k}", seed=0,
                                         save_model=False, progress=False)
                    seconds = run.info["train_seconds"]
                times[name].append(seconds)
    rows = {}
    for name, secs in times.items():
        rows[name] = (16 * steps / min(secs), 16 * steps / statistics.median(secs))
        print(f"   {name:<34} best {rows[name][0]:6.1f} samples/s  median {rows[name][1]:6.1f} samples/s  "
              f"({statistics.median(secs) / steps * 1000:.1f} ms a step)", flush=True)
    (old_best, old_median), (new_best, new_median) = rows.values()
    print(f"   accelerate / before: {new_best / old_best:.3f} (best), {new_median / old_median:.3f} (median)")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", default=str(ROOT / "runs" / "easyvqa_pool" / "pool.json"))
    ap.add_argument("--out", default=None, help="ablation folder (default: a new runs/bench_ablation_<time>)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-ablation", action="store_true")
    ap.add_argument("--loops", action="store_true", help="also time the kit's loop before and after accelerate")
    ap.add_argument("--loop-steps", type=int, default=100, help="steps per timed run of --loops (default 100)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch threads per run (1 with --workers 2)")
    ap.add_argument("--per-type", type=int, default=200, help="held-out questions of each type (docs/results.md's run: 200)")
    args = ap.parse_args(argv)

    import torch

    import kit.finetune as ft
    from kit.experiments import DEFAULT_BUDGETS, DEFAULT_METHODS, DEFAULT_SEEDS, ablate, summary_table

    pool = experiment_pool(Path(args.pool))
    print(f"kit fine-tuning benchmark: {len(pool.table)} samples, {os.cpu_count()} CPU cores, "
          f"torch {torch.__version__}, {'cuda' if torch.cuda.is_available() else 'cpu'}")
    t0 = time.perf_counter()
    base = ft.base_model("tiny")
    print(f"tiny base model: {base} ({time.perf_counter() - t0:.0f} s to find or build)")
    if not args.skip_speed:
        speed(pool, args.repeats or (1 if args.quick else 2), 2 if args.quick else 4, args.threads)
    if args.loops:
        loop_speed(pool, args.loop_steps, args.repeats or (2 if args.quick else 5))
    if args.skip_ablation:
        return 0
    methods = ["random", "dil"] if args.quick else list(DEFAULT_METHODS)
    budgets = [0.1] if args.quick else list(DEFAULT_BUDGETS)
    seeds = [0] if args.quick else list(DEFAULT_SEEDS)
    out = Path(args.out) if args.out else ROOT / "runs" / f"bench_ablation_{time.strftime('%Y%m%d-%H%M%S')}"
    eval_set = ft.easyvqa_eval_set(per_type=min(args.per_type, 100) if args.quick else args.per_type)
    changes = {"threads": args.threads} if args.threads else {}
    print(f"\n2. ablation: {methods} x {budgets} x seeds {seeds} (+ full), {len(eval_set)} held-out questions, "
          f"workers {args.workers} -> {out}", flush=True)
    import kit
    from kit.experiments import default_scorers

    t1 = time.perf_counter()
    kit.score_table(pool, default_scorers("tiny", methods + ["full"]), out=out / "scores")
    t2 = time.perf_counter()
    table = ablate(pool, methods, budgets, seeds, preset="tiny", out=out, eval_set=eval_set, workers=args.workers,
                   progress=False, **changes)
    t3 = time.perf_counter()
    import pandas as pd

    with pd.option_context("display.width", 220, "display.max_columns", 30):
        print(summary_table(table, methods).round(3).to_string())
    print(f"\nscoring the pool: {t2 - t1:.0f} s (cached in {out / 'scores'})")
    print(f"{len(table)} runs (train + evaluate): {t3 - t2:.0f} s wall; train {table['train_seconds'].sum():.0f} s, "
          f"evaluate {table['eval_seconds'].sum():.0f} s summed over runs")
    print(f"ablation total: {(t3 - t1) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
