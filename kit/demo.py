"""``make demo``: run every notebook in order with papermill and keep the executed copies.

    python -m kit.demo [--pool data_samples/pool.json] [--out runs/<timestamp>] [--quick] [--only 00 01]

Each notebook gets the parameters it declares among ``pool_path`` (only with ``--pool``: otherwise each
notebook reads its own default, ``data_samples/`` for 00-03 and 06, the 2,000-sample easy-vqa experiment pool
for 04; 05 draws the committed testbed results), ``run_dir`` (score tables and ``figures/`` go there; notebooks share it, so later ones reuse
earlier scores) and ``quick``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def notebook_paths(only=None) -> list[Path]:
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
    return paths


def run_notebook(path: Path, run_dir: Path, pool_path: Path | None, quick: bool, log_output: bool = False,
                 parameters: dict | None = None) -> Path:
    """Execute one notebook into ``run_dir`` with the parameters it declares; returns the output path.

    ``pool_path`` ``None`` leaves the notebook's own pool; ``parameters`` adds (or overrides) parameters; each
    notebook gets only those its parameters cell declares.
    """
    import papermill as pm

    offered = {"run_dir": str(Path(run_dir).resolve()), "quick": quick, **(parameters or {})}   # the notebook's cwd differs
    if pool_path is not None:
        offered["pool_path"] = str(pool_path)
    declared = pm.inspect_notebook(str(path))
    params = {k: v for k, v in offered.items() if k in declared}
    out = run_dir / path.name
    pm.execute_notebook(str(path), str(out), parameters=params, cwd=str(path.parent), kernel_name="python3",
                        progress_bar=False, log_output=log_output,
                        extra_arguments=["--log-level=ERROR"])  # keep the kernel's start-up chatter out of the log
    return out


def describe_pool(pool) -> str:
    return str(pool) if pool else "their own pools (data_samples/; 04: the easy-vqa experiment pool; 05: results/testbed/)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", default=None, help="one pool for every notebook (default: each notebook's own)")
    ap.add_argument("--out", default=None, help="default: runs/<timestamp>/")
    ap.add_argument("--quick", action="store_true", help="the notebooks' small parameter set")
    ap.add_argument("--only", nargs="*", help="notebook prefixes, e.g. 00 01")
    args = ap.parse_args(argv)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = (Path(args.out) if args.out else ROOT / "runs" / stamp).resolve()   # notebooks run in notebooks/
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = notebook_paths(args.only)
    print(f"kit demo: {len(paths)} notebooks on {describe_pool(args.pool)} -> {run_dir}", flush=True)
    results = []
    for k, path in enumerate(paths, 1):
        print(f"[{k}/{len(paths)}] {path.name} ...", end=" ", flush=True)
        started = time.time()
        t0 = time.perf_counter()
        try:
            run_notebook(path, run_dir, Path(args.pool).resolve() if args.pool else None, args.quick)
            status, detail = "ok", ""
        except Exception as exc:  # noqa: BLE001 - reported in the summary, the rest still runs
            status, detail = "FAILED", str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else repr(exc)
        secs = time.perf_counter() - t0
        n_fig = sum(1 for f in (run_dir / "figures").glob("*.png") if f.stat().st_mtime >= started - 1)
        print(f"{status} in {secs:.0f}s, {n_fig} figures", flush=True)
        if detail:
            print(f"      {detail}", flush=True)
        results.append((path.name, status, secs, n_fig))

    print("\nsummary")
    for name, status, secs, n_fig in results:
        print(f"  {name:<28} {status:<7} {secs:6.0f}s  {n_fig:3d} figures")
    failed = [r for r in results if r[1] != "ok"]
    print(f"executed notebooks and figures: {run_dir}")
    print(f"{len(results) - len(failed)} of {len(results)} notebooks ran" + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
