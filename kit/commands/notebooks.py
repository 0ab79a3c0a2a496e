"""Execute notebooks/[0-9][0-9]_*.ipynb of a checkout (the working directory's, or --notebooks DIR) in order with
papermill into a run folder, and print each notebook's time and figures, then a summary with the total time (kit demo
and make demo are the same command). Each notebook gets the parameters its parameters cell declares among pool_path
(only with --pool: otherwise each notebook reads its own default, data_samples/ for 00-03 and 06, the 2,000-sample
easy-vqa experiment pool for 04; 05 draws the committed testbed tables), run_dir (score tables and figures/ go there;
notebooks share it, so later ones reuse earlier scores), quick and the -p parameters.

examples:
  kit notebooks --quick --only 00 01 -p grid=4
  kit demo                          # every notebook (python -m kit.demo)

A notebook that fails is reported and the rest still run; the exit code is then 1.
"""
from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from kit.commands.common import CliError, parse_options


def add_arguments(p) -> None:
    p.add_argument("--notebooks", default=None, metavar="DIR",
                   help="the notebooks folder (default: notebooks/ in the working directory, a checkout's root)")
    p.add_argument("--pool", default=None, help="pool_path of every notebook (default: each notebook's own)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run_dir (default: runs/<timestamp>/ in the working directory)")
    p.add_argument("--quick", action="store_true", help="the notebooks' small parameter set")
    p.add_argument("--only", nargs="*", help="notebook prefixes, e.g. 00 01")
    p.add_argument("-p", "--parameter", action="append", metavar="KEY=VALUE", help="a notebook parameter")
    p.add_argument("--parameters", metavar="JSON", help="notebook parameters as a JSON object")


def run(args) -> int:
    import kit.demo as demo

    try:
        paths = demo.notebook_paths(args.only, args.notebooks)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    if not paths:
        raise CliError(f"no notebooks match {args.only}")
    params = parse_options(args.parameter, args.parameters)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = (Path(args.out) if args.out else Path("runs") / stamp).resolve()   # absolute: notebooks run elsewhere
    run_dir.mkdir(parents=True, exist_ok=True)
    pool = Path(args.pool).resolve() if args.pool else None
    print(f"kit {getattr(args, 'command', 'notebooks')}: {len(paths)} notebooks on {demo.describe_pool(pool)} "
          f"-> {run_dir}", flush=True)
    results = []
    for k, path in enumerate(paths, 1):
        print(f"[{k}/{len(paths)}] {path.name} ...", end=" ", flush=True)
        started = time.time()
        t0 = time.perf_counter()
        try:
            demo.run_notebook(path, run_dir, pool, args.quick, parameters=params)
            status, detail = "ok", ""
        except Exception as exc:  # noqa: BLE001 - reported in the summary, the rest still run
            status, detail = "FAILED", str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else repr(exc)
        secs = time.perf_counter() - t0
        n_fig = sum(1 for f in (run_dir / "figures").glob("*.png") if f.stat().st_mtime >= started - 1)
        print(f"{status} in {secs:.0f}s, {n_fig} figures", flush=True)
        if detail:
            print(f"      {detail}", flush=True)
        results.append((path.name, status, secs, n_fig))

    print("\nsummary")
    for name, status, secs, n_fig in results:
        print(f"  {name:<28} {status:<7} {secs:6.0f}s  {n_fig:3d} figures")
    total = sum(r[2] for r in results)
    print(f"  {'total':<28} {'':<7} {total:6.0f}s  {sum(r[3] for r in results):3d} figures ({total / 60:.1f} min)")
    failed = [r[0] for r in results if r[1] != "ok"]
    print(f"executed notebooks and figures: {run_dir}")
    print(f"{len(results) - len(failed)} of {len(results)} notebooks ran" + (f"; {len(failed)} failed" if failed else ""))
    if failed:
        raise CliError(f"{len(failed)} of {len(results)} notebooks failed: {', '.join(failed)} (see above)")
    return 0
