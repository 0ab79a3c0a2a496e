"""Speed and memory of the mmSSR sampler on a synthetic LLaVA-OneVision-sized score table, called directly and
through ``kit.select``.

Goal (issue 11): 30% of a 2.6M-row, 14-capability table with integer ratings (8 sources, 1-3 styles per
sample) in under 3 s and 2 GB. Absolute times drift on a shared machine, so the script also times a reference
workload in the same run, fourteen stable ``np.argsort`` calls on one capability column (what sorting every
capability once costs), and prints the sampler's time as a multiple of it (goal: at most 2.5x).

Goal (issue 22, part 6): what users call is as fast as what is timed here. ``kit.select(scores, "mmssr", 0.3)``,
the call every notebook and the command line make, adds the selection contract's checks (budget, no duplicates,
only ids of the table) and the score table's provenance hash to the sampler; end to end it should take at most
1.5x the fourteen argsorts. The script times, on the same table and interleaved in each repeat, the argsorts,
``select_mmssr`` directly and ``kit.select`` end to end, and prints each as a multiple of the argsorts. Before
the repeats it times a first call of each on the table with an index object of its own (nothing cached yet:
pandas keeps an index's uniqueness flag and lookup table on the index, the kit a table's hash per table), then the
first read of that selection's ``scores_hash`` (the table's SHA-256, computed when first asked for) and
``kit.provenance.table_hash`` of the same table again.

    python benchmarks/bench_mmssr_sampler.py                        # 2.6M rows, integer ratings, + official loop
    python benchmarks/bench_mmssr_sampler.py --skip-official        # without the (slow) official loop
    python benchmarks/bench_mmssr_sampler.py --rows 100000 --scores float --check

Each figure is the minimum over ``--repeat`` runs, argsorts, sampler and ``kit.select`` interleaved. Memory: the
process's peak resident memory after the runs (``resource.getrusage``) and the peak of the allocations made by one
selection (``tracemalloc``; numpy reports its buffers to it). The official loop is timed once with a port
that keeps its pandas data flow and its own switches (``tests/support/official_mmssr.py`` with unstable sorts,
uncapped steps and set-ordered capabilities); its selection is compared with the kit's as sets. ``--check``
also runs the plain reference sampler (``tests/support/reference_mmssr.py``) and compares lists (only sensible
for small ``--rows``).
"""
from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: kit and tests.support

import kit
from kit.capabilities import STYLES, capability_keys
from kit.mmssr.sampler import select_mmssr
from kit.provenance import table_hash


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


def fresh_index(scores: pd.DataFrame) -> pd.DataFrame:
    """The same table (its columns shared, copy-on-write) with an index object of its own: nothing cached."""
    return scores.set_axis(pd.Index(scores.index.array, name=scores.index.name), axis=0)


def kit_select(scores: pd.DataFrame, fraction: float, bin_order: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # a shortfall would warn; it is printed through the counts instead
        return kit.select(scores, "mmssr", fraction, bin_order=bin_order)


def fourteen_argsorts(column: np.ndarray) -> float:
    t0 = time.perf_counter()
    for _ in range(14):
        np.argsort(column, kind="stable")
    return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_600_000)
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--scores", choices=["int", "float"], default="int")
    parser.add_argument("--bin-order", choices=["official", "score"], default="official")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-official", action="store_true", help="do not time the official loop (slow)")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the traced-allocation run")
    parser.add_argument("--check", action="store_true", help="compare with the plain reference (small --rows)")
    args = parser.parse_args(argv)

    import os
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs visible, numpy {np.__version__}, "
          f"pandas {pd.__version__}")
    t0 = time.perf_counter()
    scores = synthetic_scores(args.rows, args.scores)
    n = int(args.fraction * len(scores))
    print(f"table: {len(scores):,} rows x 14 capabilities ({args.scores} scores), 8 sources, "
          f"built in {time.perf_counter() - t0:.1f} s; peak RSS so far {max_rss_gb():.2f} GB")

    column = scores[capability_keys()[0]].to_numpy()
    # first calls: each on the table with an index object of its own, so that nothing is cached yet (pandas keeps
    # an index's uniqueness and lookup table on the index object; the kit keeps a table's hash per table object)
    first_direct_s = time.perf_counter()
    select_mmssr(fresh_index(scores), n, bin_order=args.bin_order)
    first_direct_s = time.perf_counter() - first_direct_s
    table = fresh_index(scores)
    t0 = time.perf_counter()
    first = kit_select(table, args.fraction, args.bin_order)
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    digest = first.scores_hash
    hash_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = table_hash(table)
    again_s = time.perf_counter() - t0
    assert again == digest == table_hash(scores), "the selection's scores_hash is not the table's hash"
    del table, first

    runs, refs, ends, sel, end = [], [], [], None, None
    for _ in range(max(args.repeat, 1)):
        refs.append(fourteen_argsorts(column))
        t0 = time.perf_counter()
        sel = select_mmssr(scores, n, bin_order=args.bin_order)
        runs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        end = kit_select(scores, args.fraction, args.bin_order)
        ends.append(time.perf_counter() - t0)
    best, ref, best_end = min(runs), min(refs), min(ends)
    steps = sel.report["steps"]
    print(f"mmssr ({args.bin_order} bin order): selected {len(sel):,} of {n:,} ({args.fraction:.0%}), "
          f"{steps['round'].max()} rounds, {len(steps)} capability steps, orderings "
          f"{sorted(set(sel.report['capabilities']['ordering']))}")
    print(f"  reference, 14 stable np.argsort of a {len(column):,}-value float column: min {ref:.2f} s "
          f"(all: {', '.join(f'{r:.2f}' for r in refs)})")
    print(f"  select_mmssr directly: min {best:.2f} s over {len(runs)} runs (all: {', '.join(f'{r:.2f}' for r in runs)})")
    print(f"  kit.select(scores, 'mmssr', {args.fraction:g}) end to end: min {best_end:.2f} s "
          f"(all: {', '.join(f'{r:.2f}' for r in ends)})")
    print(f"  sampler / reference = {best / ref:.2f}x (min / min); per-run ratios "
          f"{', '.join(f'{a / b:.2f}' for a, b in zip(runs, refs))}")
    print(f"  kit.select / reference = {best_end / ref:.2f}x (min / min; goal <= 1.5x); per-run ratios "
          f"{', '.join(f'{a / b:.2f}' for a, b in zip(ends, refs))}")
    print(f"  kit.select / select_mmssr = {best_end / best:.2f}x (min / min)")
    print(f"  kit.select returns the same ids in the same order as select_mmssr: {list(end) == list(sel)}")
    print(f"  first call on a table (nothing cached): select_mmssr {first_direct_s:.2f} s "
          f"({first_direct_s / ref:.2f}x the reference), kit.select {first_s:.2f} s ({first_s / ref:.2f}x)")
    print(f"  scores_hash: first read {hash_s:.2f} s; table_hash of the same table after it {again_s:.3f} s")
    print(f"  process peak RSS {max_rss_gb():.2f} GB (table included)")
    if not args.no_tracemalloc:
        tracemalloc.start()
        select_mmssr(scores, n, bin_order=args.bin_order)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"  one selection: peak traced allocations {peak / 1024 ** 3:.2f} GB")
    print(sel.report["capabilities"][["candidates", "taken"]].T.to_string())
    print(sel.report["styles"][["pool_share", "selected_share"]].round(3).to_string())

    if not args.skip_official:
        from tests.support.official_mmssr import official_mmssr

        caps = list(sel.resolved["capabilities"])
        t0 = time.perf_counter()
        official = official_mmssr(scores, n, caps, 0, stable=False, cap_steps=False, keep_order=False)
        took = time.perf_counter() - t0
        same = len(set(official) & set(sel))
        print(f"official loop (port of llava/select/mmssr.py, its own sorts and capability order): {took:.1f} s, "
              f"{len(official):,} selected, {same / max(len(sel), 1):.1%} of the kit's selection shared; "
              f"{took / best:.0f}x the kit's time")
    if args.check:
        t0 = time.perf_counter()
        from tests.support.reference_mmssr import reference_mmssr

        same = list(sel) == reference_mmssr(scores, n, bin_order=args.bin_order)
        print(f"reference sampler agrees: {same} ({time.perf_counter() - t0:.1f} s)")
        if not same:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
