"""Benchmark of the answer-loss scorer (SmolLM2-135M-Instruct, offline).

Prints, in one run:
- the model load time: first load (de-quantise the GGUF and write the cache) and second load (from the cache),
  measured on a fresh temporary cache folder so the user's own cache is left alone;
- loss scoring of the same samples in batches versus one sample at a time (goal: batched at least 3x faster),
  as samples/s, with the largest per-sample difference between the two (it must stay below 1e-4);
- the bare model forward on the same token ids, batched versus one at a time: the most batching can give on
  this device (on a CPU a 135M model is already compute-bound at one sample of ~70 tokens, so the ratio stays
  small there; the 3x goal is a GPU goal, where one short sample leaves the device idle).

    python benchmarks/bench_loss.py                      # 64 samples of data_samples/pool.json, batch 16
    python benchmarks/bench_loss.py --n 0 --batch-size 8 # every sample
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", default=str(ROOT / "data_samples" / "pool.json"))
    parser.add_argument("--n", type=int, default=64, help="samples to score (0 = the whole pool)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 = torch's default; 1 avoids spinning threads on a busy machine)")
    parser.add_argument("--skip-dequantise", action="store_true",
                        help="do not time the first (de-quantising) load; use the normal cache")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    import kit
    from kit.models.smollm2 import load_smollm2
    from kit.quality.loss import LossScorer

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"{os.cpu_count()} CPU cores")

    # ------------------------------------------------------------------ load times
    if args.skip_dequantise:
        t = time.perf_counter()
        model, tokenizer = load_smollm2()
        print(f"model load from the cache:          {time.perf_counter() - t:6.2f} s")
    else:
        tmp = Path(tempfile.mkdtemp(prefix="bench-loss-cache-"))
        try:
            t = time.perf_counter()
            load_smollm2(cache_dir=tmp / "smollm2")
            first = time.perf_counter() - t
            t = time.perf_counter()
            model, tokenizer = load_smollm2(cache_dir=tmp / "smollm2")
            second = time.perf_counter() - t
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"model load, first (de-quantise GGUF + write cache): {first:6.2f} s")
        print(f"model load, second (from the cache):                {second:6.2f} s")

    # ------------------------------------------------------------------ scoring
    pool = kit.load_pool(args.pool)
    if args.n:
        rng = np.random.default_rng(0)
        ids = list(pool.table.index[np.sort(rng.choice(len(pool), min(args.n, len(pool)), replace=False))])
        pool = pool.subset(ids)
    scorer = LossScorer(model, processor=tokenizer, device=args.device, batch_size=args.batch_size,
                        progress=False).load()
    n_tokens = sum(len(scorer.encode(sid, conv).ids)
                   for sid, conv in zip(pool.table.index, pool.table["conversations"]))
    scorer.score(pool.subset(pool.ids[:2]))  # warm-up (first-call allocations)

    timings = {}
    tables = {}
    for name, bs in (("batched", args.batch_size), ("one at a time", 1)):
        scorer.batch_size = bs
        t = time.perf_counter()
        tables[name] = scorer.score(pool)
        timings[name] = time.perf_counter() - t
    n = len(pool)
    print(f"\n{n} samples, {n_tokens} tokens ({n_tokens / n:.0f} per sample), "
          f"{int(tables['batched']['n_answer_tokens'].sum())} answer tokens")
    for name, seconds in timings.items():
        label = f"{name} (batch {args.batch_size})" if name == "batched" else name
        print(f"  {label:22s} {seconds:7.2f} s  {n / seconds:7.2f} samples/s  {n_tokens / seconds:8.0f} tokens/s")
    speedup = timings["one at a time"] / timings["batched"]
    bare = _bare_forward_ratio(scorer, pool, args.batch_size)
    print(f"  bare model forward on the same token ids: batched {bare[0]:.2f} s, one at a time {bare[1]:.2f} s "
          f"({bare[1] / bare[0]:.2f}x): the ceiling for what batching can give on this device")
    diff = (tables["batched"]["loss_mean"] - tables["one at a time"]["loss_mean"]).abs().max()
    print(f"  batched is {speedup:.2f}x faster (goal >= 3x); largest |loss_mean| difference {diff:.2e}")



def _bare_forward_ratio(scorer, pool, batch_size):
    """Seconds of bare ``model(...)`` calls on the scorer's token ids: (batched, one at a time)."""
    import torch

    seqs = sorted((scorer.encode(sid, conv).ids for sid, conv in zip(pool.table.index, pool.table["conversations"])),
                  key=len, reverse=True)
    model, device = scorer.model, scorer.device
    with torch.inference_mode():
        t = time.perf_counter()
        for start in range(0, len(seqs), batch_size):
            part = seqs[start:start + batch_size]
            width = len(part[0])
            ids = torch.zeros((len(part), width), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for b, s in enumerate(part):
                ids[b, :len(s)] = torch.tensor(s)
                mask[b, :len(s)] = 1
            model(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=1)
        batched = time.perf_counter() - t
        t = time.perf_counter()
        for s in seqs:
            model(input_ids=torch.tensor([s], device=device), logits_to_keep=1)
        single = time.perf_counter() - t
    return batched, single


if __name__ == "__main__":
    main()
