"""Samples per second of the VLM rich scorer: ``logits`` mode (cached prefix, batched queries) vs ``generate``.

Runs both modes in one process on the same randomly initialised LLaVA-OneVision (the tiny test model and,
with ``--large``, a bigger random language model) over a synthetic pool of small PNGs, and prints samples/s
and the speed-up (goal: logits at least 10x generate). Generate mode is the official protocol (one greedy
generation per capability, batch size 1) with ``max_new_tokens=2``: a trained scorer answers with one digit
and end-of-turn, so this is the cheapest generate can be; a random model never stops early.

    python benchmarks/bench_rich_vlm.py                 # tiny model, 14 capabilities
    python benchmarks/bench_rich_vlm.py --large --style # also a larger model, and the style query
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: kit and tests.support
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def make_pool(root: Path, n: int, seed: int = 0):
    """A pool of ``n`` samples with random PNGs (various sizes) and one- to three-turn conversations."""
    import numpy as np
    from PIL import Image

    import kit

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        h, w = rng.integers(32, 160, size=2)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        conv = [{"from": "human", "value": "<image>\nWhat is shown in the picture? Answer in one word."},
                {"from": "gpt", "value": "A chart."}]
        for _ in range(int(rng.integers(0, 3))):
            conv += [{"from": "human", "value": "Describe the main object and its colour in detail."},
                     {"from": "gpt", "value": "The main object is a large red square in the middle of the frame, "
                                              "next to a small blue circle."}]
        records.append({"id": f"b{i}", "image": f"{i}.png", "source": "bench", "conversations": conv})
    (root / "pool.json").write_text(json.dumps(records))
    return kit.load_pool(root / "pool.json")


def time_mode(model, processor, pool, **options) -> float:
    """Samples per second of one full ``score(pool)`` run."""
    from kit.mmssr.rich_vlm import VLMRichScorer

    scorer = VLMRichScorer(model, processor, progress=False, **options)
    start = time.perf_counter()
    table = scorer.score(pool)
    elapsed = time.perf_counter() - start
    assert len(table) == len(pool)
    return len(pool) / elapsed


def bench(label: str, model, processor, pool, style: bool, batch_size: int, device: str = "cpu"):
    from kit.capabilities import capability_keys

    from kit.mmssr.rich_vlm import VLMRichScorer

    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    first = pool.ids[0]
    probe = VLMRichScorer(model, processor, capabilities=["ocr"], device=device, progress=False)
    n_tokens = probe.image_features([pool.image(first)])[0].shape[0]   # the official base view (the default)
    time_mode(model, processor, pool.subset([first]), capabilities=["ocr"], device=device)  # warm-up
    common = dict(capabilities=capability_keys(), style=style, style_max_new_tokens=16, device=device)
    logits = time_mode(model, processor, pool, batch_size=batch_size, **common)
    generate = time_mode(model, processor, pool, mode="generate", max_new_tokens=2, **common)
    what = "14 capabilities" + (" + style (16 new tokens)" if style else "")
    print(f"{label} ({n_params:.1f}M params, {n_tokens} image tokens (base view) for a {pool.image(first).size} image), "
          f"{what}, the same {len(pool)} samples in both modes:")
    print(f"  {'logits (batch_size=' + str(batch_size) + ')':<40}{logits:8.2f} samples/s")
    print(f"  {'generate (official, batch 1, 2 tokens)':<40}{generate:8.2f} samples/s")
    print(f"  speed-up: {logits / generate:.1f}x (goal >= 10x)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="samples (the same ones in both modes)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--style", action="store_true", help="also ask the style query")
    parser.add_argument("--large", action="store_true",
                        help="also a larger random model (hidden 512, 4 layers, 64-pixel tiles, up to 4 anyres tiles)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: OpenMP with 2 threads stalls badly when the CPU is shared)")
    args = parser.parse_args(argv)

    import torch

    from tests.support.tiny_llava import build_tiny_llava

    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        pool = make_pool(Path(tmp), args.n)
        configs = [("tiny LLaVA-OneVision", {})]
        if args.large:
            configs.append(("larger random LLaVA-OneVision", {"hidden_size": 512, "num_hidden_layers": 4,
                                                              "image_size": 64, "max_tiles": 4}))
        for label, sizes in configs:
            model, processor = build_tiny_llava(seed=0, **sizes)
            bench(label, model, processor, pool, args.style, args.batch_size, device)


if __name__ == "__main__":
    main()
