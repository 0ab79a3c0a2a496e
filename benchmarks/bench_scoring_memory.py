"""Peak memory of streamed, sharded scoring as the pool grows (goal: 100k samples within 1.2x of 10k).

Builds JSONL pools of 10,000 and 100,000 samples (conversations drawn from data_samples/pool.json, ids
made unique, every record pointing at one of a few image files so that the images take no disk) and
scores each, in a fresh process, with the rule styler (``style``, a cheap per-sample scorer) through
``kit.scoring.score_shards(path, ...)``: the pool is read, validated (image headers included) and scored
in shards of 1024, so the process holds one shard at a time plus the ids seen so far. For contrast it
also measures the in-memory path (``kit.load_pool`` then ``kit.score``), whose peak grows with the pool.

Peak memory is the child process's maximum resident set size (``ru_maxrss``).

    python benchmarks/bench_scoring_memory.py                 # 10k and 100k
    python benchmarks/bench_scoring_memory.py --sizes 10000 50000 --scorer style
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import resource, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
if {streamed!r}:
    from kit.scoring import score_shards
    run = score_shards({pool!r}, {scorer!r}, {out!r}, progress=False)
    n = run.n_samples
else:
    import kit
    pool = kit.load_pool({pool!r})
    table = kit.score(pool, {scorer!r}, progress=False)
    n = len(table)
secs = time.perf_counter() - t0
print(n, secs, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def build_pool(path: Path, n: int) -> None:
    """``n`` JSONL records cycling through the sample pool's conversations and its first 8 images."""
    records = json.loads((ROOT / "data_samples" / "pool.json").read_text(encoding="utf-8"))
    images = sorted({r["image"] for r in records})[:8]
    with open(path, "w", encoding="utf-8") as f:
        for k in range(n):
            rec = records[k % len(records)]
            f.write(json.dumps({"id": f"s{k:07d}", "image": images[k % len(images)], "source": rec.get("source"),
                                "conversations": rec["conversations"]}) + "\n")
    link = path.parent / "images"
    if not link.exists():
        link.symlink_to(ROOT / "data_samples" / "images")


def measure(pool: Path, scorer: str, streamed: bool, out: Path) -> tuple[int, float, float]:
    code = CHILD.format(root=str(ROOT), pool=str(pool), scorer=scorer, out=str(out), streamed=streamed)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    n, secs, rss_kib = res.stdout.split()[-3:]
    return int(n), float(secs), int(rss_kib) / 1024


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--scorer", default="style")
    ap.add_argument("--no-in-memory", action="store_true", help="skip the in-memory comparison")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kit-mem-") as tmp:
        tmp = Path(tmp)
        for n in args.sizes:
            pool = tmp / f"pool_{n}.jsonl"
            t0 = time.perf_counter()
            build_pool(pool, n)
            print(f"built {n} samples in {time.perf_counter() - t0:.1f}s ({pool.stat().st_size / 1e6:.1f} MB)", flush=True)
            for streamed in (True, False):
                if not streamed and args.no_in_memory:
                    continue
                got, secs, peak = measure(pool, args.scorer, streamed, tmp / f"out_{n}_{streamed}")
                assert got == n, (got, n)
                rows.append((n, "streamed shards" if streamed else "in memory", secs, peak))
                print(f"  {rows[-1][1]:<16} {n:>8} samples  {secs:7.1f}s  peak {peak:7.1f} MiB", flush=True)
    print(f"\npeak memory, scorer {args.scorer!r} (measured on 2 shared CPU cores):")
    for mode in ("streamed shards", "in memory"):
        peaks = [(n, p) for n, m, _, p in rows if m == mode]
        if len(peaks) >= 2:
            (n0, p0), (n1, p1) = peaks[0], peaks[-1]
            print(f"  {mode:<16} {n1} vs {n0} samples: {p1:.1f} / {p0:.1f} MiB = {p1 / p0:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
