"""Speed and memory of the embedding baselines (``deita``, ``coincide``) on a synthetic pool.

Goal (issue 10): 100k samples with 384-d embeddings, a 10% budget, on two CPU cores, under 30 s each.

    python benchmarks/bench_baselines.py                       # 100k x 384, 10%, 3 repeats
    python benchmarks/bench_baselines.py --rows 20000 --repeats 1
    python benchmarks/bench_baselines.py --methods deita --thresholds 0.9 0.4   # and Deita's hard case

The embeddings are a mixture on the unit sphere: 2,000 centres, each sample a centre plus noise, and 10% of
the samples near-copies of another sample (cosine about 0.99), so Deita's filter has duplicates to drop and
k-means has structure to find. Two samples of one centre have a cosine of about 0.4, so Deita at threshold 0.4
filters most candidates and reads the whole pool: its hard case. The score is the mean of 14 integer 0-5
ratings (many ties). Each repeat runs in this process; the script prints every repeat's wall time and the
minimum (on a shared machine the minimum is the figure to quote), the CPU time of the process during the call
(all its threads), the peak memory numpy and Python allocated during the call (``tracemalloc``, on the last
repeat only, as it slows the call) and the process's peak resident memory (``resource.getrusage``).
"""
from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

from kit.capabilities import capability_keys
from kit.selection import SelectionShortfall


def max_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # Linux: KiB


def synthetic(rows: int, dim: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    emb = centres[rng.integers(0, len(centres), rows)] + 0.06 * rng.standard_normal((rows, dim)).astype(np.float32)
    copies = rng.random(rows) < 0.1
    emb[copies] = emb[rng.integers(0, rows, int(copies.sum()))] + 0.005 * rng.standard_normal(
        (int(copies.sum()), dim)).astype(np.float32)
    ids = pd.Index([f"s{i:07d}" for i in range(rows)], name="id")
    scores = pd.DataFrame({c: rng.integers(0, 6, rows).astype(np.float64) for c in capability_keys()}, index=ids)
    return scores, emb.astype(np.float32)


def run(method: str, scores: pd.DataFrame, emb: np.ndarray, budget: float, repeats: int, **options) -> None:
    import kit

    walls, cpus = [], []
    sel = None
    for r in range(repeats):
        last = r == repeats - 1
        if last:
            tracemalloc.start()
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SelectionShortfall)
            sel = kit.select(scores, method, budget, seed=0, embeddings=emb, **options)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if last:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    extra = ""
    if method == "coincide":
        extra = (f", {sel.resolved['n_clusters']} clusters (sizes {sel.report['cluster_sizes']['min']:.0f}-"
                 f"{sel.report['cluster_sizes']['max']:.0f}), {sel.resolved['kmeans_iterations']} k-means iterations"
                 f" on {sel.resolved['train_size']} rows")
    if method == "deita":
        extra = (f", threshold {sel.resolved['threshold']:g}: read {sel.report['n_read']} candidates, "
                 f"{sel.report['n_filtered']} filtered")
    print(f"{method:9s} selected {len(sel)} of {len(scores)}: wall min {min(walls):.2f} s "
          f"(all: {', '.join(f'{w:.2f}' for w in walls)}), cpu min {min(cpus):.2f} s, "
          f"peak allocated during the call {peak / 1024 ** 3:.2f} GB (tracemalloc), "
          f"process peak RSS {max_rss_gb():.2f} GB{extra}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--budget", type=float, default=0.1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--methods", nargs="+", default=["deita", "coincide"])
    ap.add_argument("--thresholds", nargs="+", type=float, default=[0.9],
                    help="deita thresholds to run (0.4 is a hard case: most candidates are filtered)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    scores, emb = synthetic(args.rows, args.dim)
    print(f"{args.rows} samples, {args.dim}-d embeddings, budget {args.budget:g}; built in "
          f"{time.perf_counter() - t0:.1f} s; {os.cpu_count()} CPU cores visible; process peak RSS "
          f"{max_rss_gb():.2f} GB")
    for method in args.methods:
        for opts in ([{"threshold": t} for t in args.thresholds] if method == "deita" else [{}]):
            run(method, scores, emb, args.budget, args.repeats, **opts)


if __name__ == "__main__":
    main()
