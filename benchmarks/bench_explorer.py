"""How long one live update of the selection explorer takes: re-select, then redraw its figure as PNG.

What a user waits for after moving the budget slider (plus the debounce, 0.25 s), on a synthetic score table:
14 integer 0-5 capability ratings, an image-text score, an answer loss (mean and sum), three sources and one style per
sample (no embeddings, so the embedding selectors are left out).

    python benchmarks/bench_explorer.py                       # 372 and 100k rows; mmssr, random, dis, diq
    python benchmarks/bench_explorer.py --rows 10000 --repeats 1 --methods mmssr

Each repeat prints the wall time of ``update()`` (the selector) and of ``figure()`` + PNG (the redraw; at most
20,000 points of a large pool are drawn); the minimum over repeats is the figure to quote on a shared machine.
"""
from __future__ import annotations

import argparse
import time
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from kit.capabilities import STYLES, capability_keys  # noqa: E402
from kit.widgets import SelectionExplorer  # noqa: E402
from kit.widgets.render import figure_png  # noqa: E402


def synthetic(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"s{i:07d}" for i in range(rows)], name="id")
    table = pd.DataFrame({"source": rng.choice(["a", "b", "c"], rows)}, index=ids)
    table["image_text"] = rng.normal(0.3, 0.05, rows)
    table["loss_mean"] = rng.gamma(3.0, 0.5, rows)
    table["loss_sum"] = table["loss_mean"] * rng.integers(20, 200, rows)   # mean x answer tokens (diq reads it)
    for key in capability_keys():
        table[key] = rng.integers(0, 6, rows).astype(np.float64)
    table["styles"] = [[STYLES[k]] for k in rng.integers(0, len(STYLES), rows)]
    return table


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[372, 100_000])
    ap.add_argument("--methods", nargs="+", default=["mmssr", "random", "dis", "diq"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    print(f"{'rows':>8} {'method':<8} {'select s (min)':>15} {'redraw s (min)':>15}")
    for rows in args.rows:
        scores = synthetic(rows)
        ex = SelectionExplorer(scores, static=True, budget=0.1)
        for method in args.methods:
            ex.set(method=method)
            selecting, drawing = [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                ex.update()
                t1 = time.perf_counter()
                figure_png(ex.figure())
                t2 = time.perf_counter()
                selecting.append(t1 - t0)
                drawing.append(t2 - t1)
            print(f"{rows:>8} {method:<8} {min(selecting):>15.3f} {min(drawing):>15.3f}   "
                  f"(repeats: {', '.join(f'{a:.2f}+{b:.2f}' for a, b in zip(selecting, drawing))})", flush=True)


if __name__ == "__main__":
    main()
