"""Image-text scoring throughput: end to end vs the bare model forward (goal: ratio >= 0.8).

End to end = ``ImageTextScorer.score(pool)``: decoding, preprocessing and tokenising in DataLoader
workers, overlapped with the forward, plus the pool-level finishing step. Bare forward = the same
backend's ``encode_images`` + ``encode_texts`` on batches that were decoded, preprocessed and
tokenised beforehand (same batch size). Model load time is reported separately.

    python benchmarks/bench_image_text.py                         # stand-in on data_samples/, CPU
    python benchmarks/bench_image_text.py --device cuda --batch-size 128
    python benchmarks/bench_image_text.py --backend open_clip --model-name ViT-B-32 --pretrained openai
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bare_forward(backend, pool, texts, batch_size: int) -> tuple[float, int]:
    """Seconds for encode_images + encode_texts over pre-decoded, pre-tokenised batches."""
    from kit.data import decode_image

    preprocess, tokenize = backend.worker_fns()
    import torch

    paths = pool.table["image_path"].tolist()
    batches = []
    for start in range(0, len(paths), batch_size):
        imgs = torch.stack([preprocess(decode_image(p)) for p in paths[start:start + batch_size]])
        batches.append((imgs, tokenize(texts[start:start + batch_size]).tokens))
    backend.encode_images(batches[0][0][:2])  # warm-up
    t0 = time.perf_counter()
    for imgs, toks in batches:
        backend.encode_images(imgs)
        backend.encode_texts(toks)
    if str(getattr(backend, "device", "cpu")).startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, len(paths)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", default="data_samples/pool.json")
    ap.add_argument("--n", type=int, default=None, help="score only the first N samples")
    ap.add_argument("--backend", default="standin", choices=["standin", "open_clip"])
    ap.add_argument("--model-name", default="ViT-B-32")
    ap.add_argument("--pretrained", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--num-workers", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2, help="take the best of this many runs of each")
    args = ap.parse_args(argv)

    import torch

    import kit
    from kit.quality.image_text.scorer import ImageTextScorer, sample_texts

    pool = kit.load_pool(args.pool)
    if args.n:
        pool = pool.subset(pool.ids[:args.n])
    texts = sample_texts(pool)
    options = {"model_name": args.model_name, "pretrained": args.pretrained} if args.backend == "open_clip" else {}
    t0 = time.perf_counter()
    scorer = ImageTextScorer(backend=args.backend, device=args.device, batch_size=args.batch_size,
                             num_workers=args.num_workers, progress=False, **options)
    load_s = time.perf_counter() - t0

    scorer.score(pool.subset(pool.ids[:min(len(pool), 8)]))  # warm-up (first-call allocations)
    end_to_end = []
    bare = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        scorer.score(pool)
        end_to_end.append(time.perf_counter() - t0)
        bare.append(bare_forward(scorer.backend, pool, texts, args.batch_size)[0])
    n = len(pool)
    e2e_rate = n / min(end_to_end)
    bare_rate = n / min(bare)
    print(f"image-text scoring benchmark: backend={args.backend} ({scorer.label})")
    print(f"  device={args.device} torch threads={torch.get_num_threads()} cpu cores={os.cpu_count()} "
          f"batch={args.batch_size} samples={n} workers={args.num_workers if args.num_workers is not None else 'auto'}")
    print(f"  model load:             {load_s:8.2f} s (separate, not in the rates)")
    print(f"  end to end:             {e2e_rate:8.1f} samples/s  (best of {args.repeats}: {min(end_to_end):.2f} s)")
    print(f"  bare forward (decoded): {bare_rate:8.1f} samples/s  (best of {args.repeats}: {min(bare):.2f} s)")
    ratio = e2e_rate / bare_rate
    print(f"  ratio end-to-end / bare: {ratio:.2f}  (goal >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
