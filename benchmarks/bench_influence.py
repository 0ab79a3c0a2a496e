"""Benchmark of the influence scorer's gradient features against a training step of the same model.

The issue's goal: the gradient features cost about one forward + backward (+ projection) per sample. On the same
examples of the ``tiny`` preset's aligned base, with the preset's trained parts, one torch thread, interleaved
repeats (the best of ``--repeats`` per measurement, so a busy machine inflates all of them alike), it prints the
time per sample of:

- ``train step (preset)``: one training step as the preset trains (batch 16, bfloat16 autocast, AdamW);
- ``train step (float32)``: the same step in float32 (the features are computed in float32, as LESS advises);
- ``forward + backward (float32)``: the step without the optimiser;
- ``features, sparse projection``: the scorer's per-sample gradients (one batched backward, the per-sample weight
  gradients of every trained linear layer) projected to ``--dim`` dimensions by the sparse projection (default);
- ``features, no projection``: the same without projecting (what the projection adds);
- ``features, one sample at a time``: batch-1 forward + backward (the official codes' way) + sparse projection;
- ``features, dense projection``: the LESS/TRAK dense Rademacher projection to ``--dim`` (on ``--dense-n`` samples:
  it is slow, which is why the sparse one is the default);
- ``scorer encode``: ``InfluenceScorer.encode`` end to end (encoding the samples, their images, the features and
  the cosines to the targets), the model already warmed.

    python benchmarks/bench_influence.py                          # 64 easy-vqa samples of data_samples/
    python benchmarks/bench_influence.py --pool runs/easyvqa_pool/pool.json --n 128
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


class _NoProjection:
    """Stands in for a projector: computes nothing (the features' cost without the projection)."""

    def __init__(self, dim):
        self.dim = dim

    def project(self, name, block, out):
        pass

    def info(self):
        return {}


def _per_sample(fn, batches, n) -> float:
    t = time.perf_counter()
    for b in batches:
        fn(b)
    return (time.perf_counter() - t) / n * 1000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", default=str(ROOT / "data_samples" / "pool.json"))
    parser.add_argument("--n", type=int, default=64, help="samples (easy-vqa ones first)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dim", type=int, default=8192)
    parser.add_argument("--dense-n", type=int, default=4, help="samples for the (slow) dense projection")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    import kit
    import kit.finetune as ft
    from kit.finetune.data import ExampleEncoder
    from kit.finetune.train import batch_loss, use_attention
    from kit.influence.gradients import GradientFeatures, sample_loss
    from kit.influence.projection import Projector
    from kit.influence.scorer import InfluenceScorer
    from kit.influence.warmup import prepare_trainable

    torch.set_num_threads(args.threads)
    preset = ft.resolve_preset("tiny")
    base = ft.base_model(preset)
    pool = kit.load_pool(args.pool)
    ids = sorted(pool.table.index, key=lambda i: (not str(i).startswith("ev_"), list(pool.table.index).index(i)))[:args.n]
    model, processor = ft.load_model(base)
    use_attention(model, preset.train.attention)
    model = prepare_trainable(model, preset.train, lora=False, seed=0)
    enc = ExampleEncoder(processor, max_length=preset.train.max_length)
    examples, _ = enc.encode_pool(pool, ids)
    n = len(examples)
    bs = args.batch_size
    batches = [enc.collate(examples[s:s + bs]) for s in range(0, n, bs)]
    singles = [enc.collate([e]) for e in examples]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-9)
    feats = GradientFeatures(model, Projector(args.dim, "sparse"))
    bare = GradientFeatures(model, _NoProjection(args.dim))
    dense = GradientFeatures(model, Projector(args.dim, "dense", cache_mb=0))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPU cores; the tiny "
          f"base ({base}); {n} samples, batch {bs}; {feats.n_params:,} trained weights in {len(feats.layers)} linear "
          f"layers (left out: {len(feats.uncovered)} norm weights); projection to {args.dim}")

    def step(batch, autocast):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss, _, _ = batch_loss(model, *batch, True, preset.train.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def fwd_bwd(batch):
        loss, _, _ = batch_loss(model, *batch, True, preset.train.loss)
        torch.autograd.grad(loss, params)

    names = [nm for layer in feats.layers for nm, _ in layer.params]
    named = dict(model.named_parameters())

    def one_at_a_time(single):
        loss, _ = sample_loss(model, *single)
        grads = torch.autograd.grad(loss, [named[nm] for nm in names])
        out = torch.zeros(1, args.dim)
        for nm, g in zip(names, grads):
            feats.projector.project(nm, g.reshape(1, -1), out)

    sub = pool.subset(ids)
    scorer = InfluenceScorer(model=str(base), per_task=8, progress=False, threads=args.threads)
    scorer.encode(sub.subset(ids[:bs]))                                # warm-up and targets: not timed
    runs = {
        "train step (preset: bf16 autocast + AdamW)": lambda: _per_sample(lambda b: step(b, True), batches, n),
        "train step (float32 + AdamW)": lambda: _per_sample(lambda b: step(b, False), batches, n),
        "forward + backward (float32)": lambda: _per_sample(fwd_bwd, batches, n),
        "features, sparse projection (the scorer's)": lambda: _per_sample(lambda b: feats(*b), batches, n),
        "features, no projection": lambda: _per_sample(lambda b: bare(*b), batches, n),
        "features, one sample at a time": lambda: _per_sample(one_at_a_time, singles, n),
        "scorer encode (end to end, warmed)": lambda: _per_sample(lambda _: scorer.encode(sub), [None], n),
        f"features, dense projection ({args.dense_n} samples)":
            lambda: _per_sample(lambda b: dense(*b), [enc.collate(examples[:args.dense_n])], args.dense_n),
    }
    best = {k: float("inf") for k in runs}
    for _ in range(args.repeats):
        for k, fn in runs.items():
            best[k] = min(best[k], fn())
    ref, ref32 = best["train step (preset: bf16 autocast + AdamW)"], best["train step (float32 + AdamW)"]
    print(f"\n{'':46s} {'ms/sample':>10s} {'x preset step':>14s} {'x float32 step':>15s}")
    for k, v in best.items():
        print(f"{k:46s} {v:10.2f} {v / ref:14.2f} {v / ref32:15.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
