"""How large a score table the selectors handle on one machine: time and peak memory per selector and size.

Each (selector, rows) pair runs in a fresh process on a synthetic table (``image_text`` and ``loss_mean``
for the quality-space selectors, 14 integer capability ratings, styles and 8 sources for mmSSR), selecting
30%. Peak memory is the process's maximum resident set size, table included; the table alone is
printed too. The mmSSR sampler has its own, finer benchmark (``bench_mmssr_sampler.py``).

    python benchmarks/bench_selection_sizes.py                          # 100k, 1M and 2.6M rows
    python benchmarks/bench_selection_sizes.py --rows 1000000 --selectors diq mmssr
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import resource, sys, time, warnings
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
import numpy as np, pandas as pd
import kit
rows, method = {rows}, {method!r}
rng = np.random.default_rng(0)
if method == "mmssr":
    from bench_mmssr_sampler import synthetic_scores
    table = synthetic_scores(rows, "int")
else:
    table = pd.DataFrame({{"image_text": rng.normal(0.3, 0.1, rows), "loss_mean": rng.gamma(2.0, 1.0, rows),
                          "source": pd.Categorical(rng.integers(0, 8, rows).astype(str))}},
                         index=pd.Index([f"s{{i:08d}}" for i in range(rows)], name="id"))
table_mb = table.memory_usage(deep=True).sum() / 2**20
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    sel = kit.select(table, method, 0.3, seed=0, **({{"cells": "top_right"}} if method == "cells" else {{}}))
secs = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(len(sel), secs, table_mb, before, peak)
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 2_600_000])
    ap.add_argument("--selectors", nargs="+", default=["random", "dis", "dil", "diq", "cells", "mmssr"])
    args = ap.parse_args(argv)
    print(f"{'selector':<8} {'rows':>10} {'selected':>9} {'seconds':>8} {'table MiB':>10} {'peak MiB':>9}")
    for rows in args.rows:
        for method in args.selectors:
            code = CHILD.format(root=str(ROOT), bench=str(ROOT / "benchmarks"), rows=rows, method=method)
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if res.returncode:
                print(f"{method:<8} {rows:>10}  failed: {res.stderr.strip().splitlines()[-1]}")
                continue
            n, secs, table_mb, _, peak = (float(x) for x in res.stdout.split()[-5:])
            print(f"{method:<8} {rows:>10} {int(n):>9} {secs:>8.2f} {table_mb:>10.0f} {peak:>9.0f}", flush=True)
    print("(measured on 2 shared CPU cores; 30% of each table)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
