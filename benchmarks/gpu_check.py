"""The GPU run-book: on a machine with a CUDA GPU, run the kit's GPU checks in order and print one table.

Steps, in order (each row of the table: step, what runs, seconds, key figure):
1. ``bench_loss``: the answer-loss scorer, batched vs one sample at a time, on the GPU
   (``benchmarks/bench_loss.py --device cuda``; docs/benchmarks.md's "not measured yet" row);
2. ``bench_rich_vlm``: the VLM rich scorer, logits vs generate mode (``benchmarks/bench_rich_vlm.py``, which
   runs on CUDA when there is one), the tiny and the larger random LLaVA-OneVision;
3. ``bench_image_text``: image-text scoring end to end vs the bare forward (``benchmarks/bench_image_text.py
   --device cuda --batch-size 128``);
4. ``pool``: the experiment pool (2,000 easy-vqa samples with planted defects, the ablation pool of docs/results.md),
   built at ``--pool`` when it is not there (``benchmarks/bench_ablation.py``'s settings);
5. ``align``: the ``small`` preset's aligned base (``kit.finetune.base_model``, aligned on the GPU; it takes
   its vision tower from the ``tiny`` base, built on the CPU first when the kit cache lacks it);
6. ``score``: the score table the two selections read (``kit.experiments.default_scorers``: rich and style);
7. ``finetune <method>``: ``kit.experiments.ablate(pool, ["mmssr", "random"], [0.3], [0], preset="small",
   device="cuda")``: the preset fine-tuned on a 30% subset selected by mmSSR and on a 30% random control of
   the same pool, one seed, each evaluated on easy-vqa's test split (``--per-type`` questions per type) on
   the GPU; a second table puts the two held-out accuracies side by side.

    python benchmarks/gpu_check.py --dry-run              # the plan: every step set up, nothing heavy, no GPU
    python benchmarks/gpu_check.py --out runs/gpu_check   # on a GPU machine: everything (tens of minutes)
    python benchmarks/gpu_check.py --skip-benchmarks      # only the fine-tuning comparison

Results go to ``--out`` (default ``runs/gpu_check-<time>``): ``gpu_check.json`` (every step, its command, its
seconds and figure, the comparison, the devices and versions), ``gpu_check.md`` (the two tables), ``logs/``
(each benchmark's output) and ``ablation/`` (the runs; a second call with ``--overwrite`` resumes them: finished
runs are read back with the figures of the run that made them). ``--dry-run`` writes only the plan, and only
when ``--out`` is given. Nothing is written over an input; existing results are replaced only with
``--overwrite``. Exit status: 0 when every step ran, 1 when one failed (the others still run, the table says
which), 2 on wrong usage.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

METHODS = ("mmssr", "random")     # the selection and its random control
DRY = "dry run"
RESULTS = ("gpu_check.json", "gpu_check.md")


@dataclass
class Step:
    """One row of the run-book: ``run()`` returns the key figure (and, optionally, its own seconds)."""

    name: str
    what: str
    run: object = field(repr=False, default=None)
    needs: tuple = ()
    seconds: float | None = None
    figure: str = ""
    status: str = "planned"
    log: str | None = None

    def row(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("run", "needs")}


# ----------------------------------------------------------------------------------------------- benchmarks

def _figure(pattern: str, text: str, every: bool = False):
    found = re.findall(pattern, text)
    return found if every else (found[-1] if found else None)


def loss_figure(text: str) -> str:
    speedup = _figure(r"batched is ([\d.]+)x faster", text)
    bare = _figure(r"\(([\d.]+)x\): the ceiling", text)
    diff = _figure(r"largest \|loss_mean\| difference (\S+)", text)
    if speedup is None:
        raise ValueError("bench_loss printed no speed-up")
    return f"batched {speedup}x one at a time (goal >= 3x; bare forward {bare}x), max |diff| {diff}"


def rich_vlm_figure(text: str) -> str:
    ups = _figure(r"speed-up: ([\d.]+)x", text, every=True)
    if not ups:
        raise ValueError("bench_rich_vlm printed no speed-up")
    labels = ["tiny", "larger"][:len(ups)]
    return "logits / generate " + ", ".join(f"{u}x ({k})" for u, k in zip(ups, labels)) + " (goal >= 10x)"


def image_text_figure(text: str) -> str:
    rate = _figure(r"end to end:\s+([\d.]+) samples/s", text)
    ratio = _figure(r"ratio end-to-end / bare: ([\d.]+)", text)
    if ratio is None:
        raise ValueError("bench_image_text printed no ratio")
    return f"{rate} samples/s end to end, {ratio} of the bare forward (goal >= 0.80)"


def benchmark_commands(device: str, python: str = sys.executable) -> dict[str, tuple[list[str], object]]:
    """Each GPU benchmark's command line (the same Python) and the function that reads its key figure."""
    b = HERE
    return {
        "bench_loss": ([python, str(b / "bench_loss.py"), "--device", device, "--n", "0", "--batch-size", "32",
                        "--skip-dequantise"], loss_figure),
        "bench_rich_vlm": ([python, str(b / "bench_rich_vlm.py"), "--n", "32", "--batch-size", "8", "--large"],
                           rich_vlm_figure),
        "bench_image_text": ([python, str(b / "bench_image_text.py"), "--device", device, "--batch-size", "128",
                              "--repeats", "3"], image_text_figure),
    }


def check_command(cmd: list[str]) -> None:
    """The script exists and declares every ``--flag`` the command passes (so a renamed option fails the plan)."""
    script = Path(cmd[1])
    if not script.is_file():
        raise FileNotFoundError(f"benchmark script {script} is missing")
    source = script.read_text(encoding="utf-8")
    missing = [a for a in cmd[2:] if a.startswith("--") and f'"{a}"' not in source]
    if missing:
        raise ValueError(f"{script.name} has no option {', '.join(missing)}")


def run_command(cmd: list[str], log: Path, timeout: float) -> str:
    """Run ``cmd`` from the repository root, echoing and logging its output; its output, or an error (a command
    still running after ``timeout`` seconds is killed, silent or not)."""
    import threading

    log.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    with open(log, "w", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})

        def echo():
            for line in proc.stdout:
                fh.write(line)
                lines.append(line)
                print("   | " + line.rstrip(), flush=True)

        reader = threading.Thread(target=echo, daemon=True)
        reader.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            reader.join(5)
            raise TimeoutError(f"{Path(cmd[1]).name} ran past {timeout:.0f} s (log: {log})") from None
        reader.join()
    if rc != 0:
        tail = "".join(lines[-5:]).strip().splitlines()
        raise RuntimeError(f"exit status {rc}: {tail[-1] if tail else 'no output'} (log: {log})")
    return "".join(lines)


# ----------------------------------------------------------------------------------------------- fine-tuning

def pool_records(path: Path) -> int | None:
    """How many records the pool file holds (no validation, no image read), or None when it is not there."""
    if not path.is_file():
        return None
    if path.suffix == ".jsonl":
        return sum(1 for line in path.open(encoding="utf-8") if line.strip())
    return len(json.loads(path.read_text(encoding="utf-8")))


def plan_finetune(args) -> dict:
    """What the fine-tuning steps will do, resolved without loading a model or the pool's images."""
    from bench_ablation import POOL_SETTINGS

    from kit.finetune.align import aligned_path
    from kit.finetune.data import n_steps
    from kit.finetune.presets import resolve_preset

    changes = {"device": args.device}
    if args.max_steps:
        changes["max_steps"] = args.max_steps
    p = resolve_preset(args.preset, **changes)
    n_pool = pool_records(Path(args.pool))
    n = round(args.budget * (n_pool if n_pool is not None else POOL_SETTINGS["n"]))
    t = p.train
    info = {"preset": p.name, "train": t.to_dict(), "pool": str(args.pool), "pool_records": n_pool,
            "subset_size": n, "steps": n_steps(n, t.batch_size, t.epochs, t.min_steps, t.max_steps),
            "base": None, "base_built": None, "tower_from": None, "tower_built": None}
    if p.spec is not None:
        where = aligned_path(p)
        info.update(base=str(where), base_built=(where / "kit_base.json").is_file())
        if p.vision_from:
            tower = aligned_path(p.vision_from)
            info.update(tower_from=p.vision_from, tower_built=(tower / "kit_base.json").is_file())
    return info


def finetune_steps(args, plan: dict, out: Path) -> tuple[list[Step], dict]:
    state: dict = {}
    label = f"{args.budget:.0%}"
    pool_path = Path(args.pool)

    def pool_step():
        from bench_ablation import experiment_pool

        existed = pool_path.is_file()
        state["pool"] = experiment_pool(pool_path)
        return f"{len(state['pool'].table)} samples accepted ({'found' if existed else 'built'})"

    def align_step():
        import kit.finetune as ft

        state["base"] = str(ft.base_model(args.preset, device=args.device))
        info = ft.base_info(state["base"])
        if not info:
            return f"{state['base']} (a Hugging Face model: no alignment)"
        return (f"caption loss {info.get('caption_loss', float('nan')):.3f} with the right images, "
                f"{info.get('caption_loss_shuffled_images', float('nan')):.3f} shuffled")

    def score_step():
        import kit
        from kit.experiments import default_scorers

        scorers = default_scorers(args.preset, list(METHODS), base=state["base"])
        table = kit.score_table(state["pool"], scorers, out=out / "ablation" / "scores")
        return f"{len(table)} samples, scorers {', '.join(scorers) or 'none'}"

    def ablate_once():
        if "table" not in state:
            import kit.finetune as ft
            from kit.experiments import ablate

            changes = {"max_steps": args.max_steps} if args.max_steps else {}
            state["table"] = ablate(state["pool"], list(METHODS), [args.budget], [args.seed], preset=args.preset,
                                    out=out / "ablation", full=False, base=state["base"],
                                    eval_set=ft.easyvqa_eval_set(per_type=args.per_type), device=args.device,
                                    **changes)
        return state["table"]

    def finetune_step(method):
        def run():
            table = ablate_once()
            row = table[table["method"] == method].iloc[0]
            state.setdefault("rows", {})[method] = row
            figure = (f"held-out accuracy {row['accuracy']:.3f} ({int(row['n'])} samples, {int(row['steps'])} "
                      f"steps; train {row['train_seconds']:.0f} s, evaluate {row['eval_seconds']:.0f} s)")
            return figure, float(row["wall_seconds"])
        return run

    base = plan["base"] or args.preset
    tower = (f"; its tower from the {plan['tower_from']} base ({'found' if plan['tower_built'] else 'to build on the CPU'})"
             if plan["tower_from"] else "")
    pool_state = (f"found, {plan['pool_records']} records" if plan["pool_records"] is not None
                  else "missing: to build with benchmarks/bench_ablation.py's settings")
    steps = [
        Step("pool", f"kit.load_pool({args.pool}) ({pool_state})", pool_step),
        Step("align", f"kit.finetune.base_model({args.preset!r}, device={args.device!r}) -> {base} "
                      f"({'found' if plan['base_built'] else 'to align'}{tower})", align_step, ("pool",)),
        Step("score", f"kit.score_table(pool, default_scorers({args.preset!r}, {list(METHODS)}))", score_step,
             ("pool", "align")),
    ]
    t = plan["train"]
    for method in METHODS:
        steps.append(Step(f"finetune {method}",
                          f"ablate(pool, {list(METHODS)}, [{args.budget}], [{args.seed}], preset={args.preset!r}, "
                          f"device={args.device!r}): {method} {label}, ~{plan['subset_size']} samples, "
                          f"{plan['steps']} steps of {t['batch_size']}, then {3 * args.per_type} test questions",
                          finetune_step(method), ("pool", "align", "score")))
    state["steps"] = steps
    return steps, state


# ----------------------------------------------------------------------------------------------- the tables

def markdown_tables(steps: list[Step], comparison: list[dict], dry: bool) -> str:
    lines = ["| step | what runs | seconds | key figure |", "|---|---|---|---|"]
    for s in steps:
        secs = DRY if dry else ("" if s.seconds is None else f"{s.seconds:.1f}")
        fig = DRY if dry else (s.figure if s.status == "done" else f"{s.status}: {s.figure}".rstrip(": "))
        lines.append(f"| {s.name} | {s.what.replace('|', '/')} | {secs} | {fig.replace('|', '/')} |")
    lines += ["", "| subset | samples | steps | held-out accuracy | colour / shape / yes-no | defect share |",
              "|---|---|---|---|---|---|"]
    for c in comparison:
        if dry:
            lines.append(f"| {c['subset']} | {DRY} | {DRY} | {DRY} | {DRY} | {DRY} |")
        else:
            def f(k):
                v = c.get(k)
                return "" if v is None or v != v else f"{v:.3f}"
            lines.append(f"| {c['subset']} | {c.get('n', '')} | {c.get('steps', '')} | {f('accuracy')} | "
                         f"{f('accuracy_colour')} / {f('accuracy_shape')} / {f('accuracy_yes/no')} | "
                         f"{f('defect_share')} |")
    return "\n".join(lines)


def comparison_rows(args, state: dict) -> list[dict]:
    rows = []
    for method in METHODS:
        row = {"subset": f"{method} {args.budget:.0%} (seed {args.seed})"}
        got = state.get("rows", {}).get(method)
        if got is not None:
            keep = ("n", "steps", "accuracy", "accuracy_colour", "accuracy_shape", "accuracy_yes/no",
                    "defect_share", "train_seconds", "eval_seconds")
            row.update({k: (got[k].item() if hasattr(got[k], "item") else got[k]) for k in keep if k in got})
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="set every step up and print the plan; run nothing heavy")
    ap.add_argument("--out", default=None, help="results folder (default runs/gpu_check-<time>; with --dry-run: none)")
    ap.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    ap.add_argument("--device", default="cuda", help="the device the checks run on (default cuda)")
    ap.add_argument("--pool", default=str(ROOT / "runs" / "easyvqa_pool" / "pool.json"),
                    help="the experiment pool (built there when missing)")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--budget", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-type", type=int, default=200, help="held-out questions per type (docs/results.md's: 200)")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="cap the fine-tuning steps (a smoke run: the figures are then not the preset's)")
    ap.add_argument("--skip-benchmarks", action="store_true")
    ap.add_argument("--skip-finetune", action="store_true")
    ap.add_argument("--step-timeout", type=float, default=3600, help="seconds a benchmark may run (default 3600)")
    args = ap.parse_args(argv)
    if not 0 < args.budget <= 1:
        ap.error("--budget is a fraction of the pool, in (0, 1]")

    dry = args.dry_run
    out = Path(args.out) if args.out else (None if dry else ROOT / "runs" / f"gpu_check-{time.strftime('%Y%m%d-%H%M%S')}")
    if out is not None:
        pool_dir = Path(args.pool).resolve().parent
        if out.resolve() == pool_dir:
            ap.error(f"--out {out} is the pool's folder; give another folder (nothing is written over an input)")
        taken = [out / r for r in RESULTS if (out / r).exists()]
        if taken and not args.overwrite:
            print(f"{taken[0]} exists; pass --overwrite to replace it (and resume the runs in {out / 'ablation'})",
                  file=sys.stderr)
            return 2

    print(f"kit GPU run-book{' (dry run: nothing heavy runs)' if dry else ''}: device {args.device}, "
          f"python {sys.executable}")
    steps: list[Step] = []
    facts = {"device": args.device, "dry_run": dry, "python": sys.executable, "cpu_count": os.cpu_count()}
    if not args.skip_benchmarks:
        for name, (cmd, reader) in benchmark_commands(args.device).items():
            check_command(cmd)

            def run(cmd=cmd, reader=reader, name=name):
                return reader(run_command(cmd, out / "logs" / f"{name}.log", args.step_timeout))
            what = " ".join([Path(cmd[0]).name, str(Path(cmd[1]).relative_to(ROOT))] + cmd[2:])
            steps.append(Step(name, what, run, log=None if dry else str(out / "logs" / f"{name}.log")))
    state: dict = {}
    if not args.skip_finetune:
        plan = plan_finetune(args)
        facts["finetune"] = plan
        t = plan["train"]
        print(f"  preset {plan['preset']}: lr {t['lr']}, {t['epochs']} epochs (at least {t['min_steps']} steps), "
              f"batch {t['batch_size']}, {'LoRA r=' + str(t['lora_r']) if t['lora'] else 'full'}, "
              f"device {t['device']}, autocast {t['autocast']}")
        print(f"  pool {plan['pool']}: " + (f"{plan['pool_records']} records" if plan["pool_records"] is not None
                                             else "missing (built from easy-vqa when the run-book runs)"))
        print(f"  base {plan['base']}: {'built' if plan['base_built'] else 'to align'}")
        more, state = finetune_steps(args, plan, out if out is not None else Path("unused"))
        steps += more

    if not dry:
        import torch

        facts["torch"] = torch.__version__
        if args.device.startswith("cuda"):
            if not torch.cuda.is_available():
                print("no CUDA device here: run with --dry-run to see the plan, or --device cpu (slow)",
                      file=sys.stderr)
                return 1
            facts["gpu"] = torch.cuda.get_device_name(0)
        out.mkdir(parents=True, exist_ok=True)
        for s in steps:
            failed = [n for n in s.needs if next(x for x in steps if x.name == n).status != "done"]
            if failed:
                s.status, s.figure = "skipped", f"needs {', '.join(failed)}"
                continue
            print(f"\n== {s.name}: {s.what}", flush=True)
            t0 = time.perf_counter()
            try:
                got = s.run()
                s.figure, own = got if isinstance(got, tuple) else (got, None)
                s.seconds = round(own if own is not None else time.perf_counter() - t0, 1)
                s.status = "done"
            except Exception as exc:     # a step that fails is reported, and the others still run
                s.seconds = round(time.perf_counter() - t0, 1)
                s.status, s.figure = "failed", f"{type(exc).__name__}: {exc}"
            print(f"== {s.name}: {s.status}, {s.seconds} s: {s.figure}", flush=True)
    comparison = comparison_rows(args, state) if not args.skip_finetune else []
    table = markdown_tables(steps, comparison, dry)
    print("\n" + table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        result = {**facts, "steps": [s.row() for s in steps], "comparison": comparison,
                  "time": time.strftime("%Y-%m-%d %H:%M:%S")}
        (out / "gpu_check.json").write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
        (out / "gpu_check.md").write_text(table + "\n", encoding="utf-8")
        print(f"\nresults written to {out}")
    return 1 if any(s.status == "failed" for s in steps) else 0


if __name__ == "__main__":
    sys.exit(main())
