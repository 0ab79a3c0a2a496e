"""Speed and memory of the mmSSR sampler on a synthetic LLaVA-OneVision-sized score table.

Goal (issue 4): 30% of a 2.6M-row, 14-capability table with 8 sources in <= 20 s and <= 4 GB.

    python benchmarks/bench_mmssr_sampler.py                 # 2.6M rows, continuous scores
    python benchmarks/bench_mmssr_sampler.py --rows 100000 --scores int --check

Prints the table-building time, the selection time (wall clock, and CPU time of this process, which
is steadier on a shared machine), the process's peak resident memory before and
after the selection (``resource.getrusage``), and with ``--tracemalloc`` the peak memory allocated
during the selection alone (slower). ``--check`` also runs the plain reference sampler and compares
(only sensible for small ``--rows``).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc

import numpy as np
import pandas as pd

from kit.capabilities import STYLES, capability_keys
from kit.mmssr.sampler import _reference_mmssr, select_mmssr


def max_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # Linux: KiB


def synthetic_scores(rows: int, kind: str, seed: int = 0, nan_rate: float = 0.01) -> pd.DataFrame:
    """14 capability columns, 8 sources, 1-3 distinct styles per row (skewed like real data)."""
    rng = np.random.default_rng(seed)
    data = {}
    for c in capability_keys()[:14]:
        if kind == "int":
            v = rng.choice(6, size=rows, p=[0.05, 0.1, 0.2, 0.3, 0.25, 0.1]).astype(np.float64)
        else:  # expected value of a digit distribution: continuous, almost no ties
            v = np.clip(rng.normal(2.8, 1.1, rows), 0, 5)
        v[rng.random(rows) < nan_rate] = np.nan
        data[c] = v
    weights = np.array([0.18, 0.04, 0.12, 0.22, 0.1, 0.14, 0.05, 0.1, 0.05])
    first = rng.choice(len(STYLES), size=rows, p=weights / weights.sum())
    n_styles = rng.choice([1, 2, 3], size=rows, p=[0.55, 0.33, 0.12])
    second = (first + rng.integers(1, len(STYLES), rows)) % len(STYLES)
    third = (second + rng.integers(1, len(STYLES) - 1, rows)) % len(STYLES)
    third = np.where(third == first, (third + 1) % len(STYLES), third)
    combos: dict[tuple, list] = {}
    styles = []
    for a, b, c, k in zip(first.tolist(), second.tolist(), third.tolist(), n_styles.tolist()):
        key = (a, b, c)[:k]
        lst = combos.get(key)
        if lst is None:
            lst = combos[key] = [STYLES[i] for i in key]
        styles.append(lst)   # shared list objects, like a parsed table with repeated answers
    data["styles"] = styles
    data["source"] = pd.Categorical.from_codes(rng.integers(0, 8, rows), [f"source_{i}" for i in range(8)]) \
        .astype(str)
    return pd.DataFrame(data, index=pd.Index([f"s{i:08d}" for i in range(rows)], name="id"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_600_000)
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--scores", choices=["float", "int"], default="float")
    parser.add_argument("--tracemalloc", action="store_true", help="also measure the selection's own peak")
    parser.add_argument("--check", action="store_true", help="compare with the plain reference (small --rows)")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    scores = synthetic_scores(args.rows, args.scores)
    n = int(args.fraction * len(scores))
    print(f"table: {len(scores):,} rows x 14 capabilities ({args.scores} scores), 8 sources, "
          f"built in {time.perf_counter() - t0:.1f} s; peak RSS so far {max_rss_gb():.2f} GB")

    t0, c0 = time.perf_counter(), time.process_time()
    sel = select_mmssr(scores, n)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    steps = sel.report["steps"]
    print(f"mmssr: selected {len(sel):,} of {n:,} ({args.fraction:.0%}) in {elapsed:.2f} s wall, {cpu:.2f} s CPU "
          f"({steps['round'].max()} rounds, {len(steps)} capability steps); "
          f"process peak RSS {max_rss_gb():.2f} GB")
    print(sel.report["capabilities"][["candidates", "taken"]].T.to_string())
    print(sel.report["styles"][["pool_share", "selected_share"]].round(3).to_string())

    if args.tracemalloc:
        tracemalloc.start()
        select_mmssr(scores, n)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"selection alone: peak traced allocations {peak / 1024 ** 3:.2f} GB")
    if args.check:
        t0 = time.perf_counter()
        same = list(sel) == _reference_mmssr(scores, n)
        print(f"reference sampler agrees: {same} ({time.perf_counter() - t0:.1f} s)")
        if not same:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
