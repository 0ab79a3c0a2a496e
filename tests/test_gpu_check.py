"""The GPU run-book (benchmarks/gpu_check.py): its dry run on the CPU sets every step up and prints the plan as
the results table, writes only the plan, and refuses to replace results; its runner reads the benchmarks'
figures, reports a failed step (or one that runs past its time) and goes on (fake benchmarks; nothing heavy runs
here)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
STEPS = ["bench_loss", "bench_rich_vlm", "bench_image_text", "pool", "align", "score", "finetune mmssr",
         "finetune random"]


def _run(*args, timeout=120):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module     # its dataclass looks its module up while the class is made
    path = list(sys.path)                 # the script puts the repository and benchmarks/ first
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("gpu_check", None)
        sys.modules.pop("bench_ablation", None)
        sys.path[:] = path


def test_dry_run_plans_every_step_without_a_gpu(tmp_path):
    pool = tmp_path / "absent" / "pool.json"
    done = _run("--dry-run", "--out", str(tmp_path / "out"), "--pool", str(pool))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    names = [r.split("|")[1].strip() for r in rows[1:1 + len(STEPS)]]
    assert names == STEPS                                            # every step, in the run-book's order
    for row in rows[1:1 + len(STEPS)]:
        assert row.rstrip().endswith("| dry run | dry run |")          # no figures: nothing ran
    assert "benchmarks/bench_loss.py --device cuda" in done.stdout
    assert "benchmarks/bench_image_text.py --device cuda" in done.stdout
    assert "preset='small', device='cuda'" in done.stdout and "150 steps of 8" in done.stdout
    assert "mmssr 30% (seed 0)" in done.stdout and "random 30% (seed 0)" in done.stdout
    assert "missing" in done.stdout and not pool.parent.exists()     # the pool is checked, not built
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.json", "gpu_check.md"]   # the plan only
    plan = json.loads((out / "gpu_check.json").read_text())
    assert plan["dry_run"] and [s["name"] for s in plan["steps"]] == STEPS
    assert plan["finetune"]["train"]["device"] == "cuda" and plan["finetune"]["subset_size"] == 600
    again = _run("--dry-run", "--out", str(out), "--pool", str(pool))
    assert again.returncode == 2 and "--overwrite" in again.stderr   # results are replaced only when asked


def test_out_may_not_be_the_pool_folder(tmp_path):
    done = _run("--dry-run", "--out", str(tmp_path), "--pool", str(tmp_path / "pool.json"), "--skip-benchmarks")
    assert done.returncode == 2 and "pool's folder" in done.stderr


def test_benchmark_commands_name_options_their_scripts_have(gpu_check):
    for cmd, _ in gpu_check.benchmark_commands("cuda").values():
        gpu_check.check_command(cmd)
    with pytest.raises(ValueError, match="no option --no-such-flag"):
        gpu_check.check_command([sys.executable, str(SCRIPT.parent / "bench_loss.py"), "--no-such-flag"])


def test_figures_are_read_from_what_the_benchmarks_print(gpu_check):
    loss = ("  bare model forward on the same token ids: batched 0.50 s, one at a time 2.00 s (4.00x): the ceiling "
            "for what batching can give on this device\n  batched is 3.10x faster (goal >= 3x); largest |loss_mean| "
            "difference 2.38e-07\n")
    assert gpu_check.loss_figure(loss) == ("batched 3.10x one at a time (goal >= 3x; bare forward 4.00x), "
                                           "max |diff| 2.38e-07")
    rich = "  speed-up: 12.3x (goal >= 10x)\n...\n  speed-up: 10.2x (goal >= 10x)\n"
    assert gpu_check.rich_vlm_figure(rich) == "logits / generate 12.3x (tiny), 10.2x (larger) (goal >= 10x)"
    image = ("  end to end:               812.4 samples/s  (best of 3: 0.46 s)\n"
             "  ratio end-to-end / bare: 0.91  (goal >= 0.80: met)\n")
    assert gpu_check.image_text_figure(image) == "812.4 samples/s end to end, 0.91 of the bare forward (goal >= 0.80)"
    with pytest.raises(ValueError):
        gpu_check.loss_figure("Traceback ...")


def test_a_failed_step_is_reported_and_the_others_run(gpu_check, tmp_path, monkeypatch):
    good = tmp_path / "good.py"
    good.write_text("print('  speed-up: 11.0x (goal >= 10x)')\n")
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nprint('boom')\nsys.exit(3)\n")
    silent = tmp_path / "silent.py"
    silent.write_text("import time\ntime.sleep(60)\n")
    monkeypatch.setattr(gpu_check, "benchmark_commands", lambda device: {
        "bench_rich_vlm": ([sys.executable, str(good)], gpu_check.rich_vlm_figure),
        "bench_loss": ([sys.executable, str(bad)], gpu_check.loss_figure),
        "bench_image_text": ([sys.executable, str(silent)], gpu_check.image_text_figure)})
    monkeypatch.setattr(gpu_check, "ROOT", tmp_path)      # the fake scripts' paths are shown relative to it
    out = tmp_path / "out"
    rc = gpu_check.main(["--device", "cpu", "--skip-finetune", "--out", str(out), "--step-timeout", "5"])
    assert rc == 1
    result = json.loads((out / "gpu_check.json").read_text())
    steps = {s["name"]: s for s in result["steps"]}
    assert steps["bench_rich_vlm"]["status"] == "done" and "11.0x" in steps["bench_rich_vlm"]["figure"]
    assert steps["bench_loss"]["status"] == "failed" and "exit status 3: boom" in steps["bench_loss"]["figure"]
    assert "boom" in (out / "logs" / "bench_loss.log").read_text()
    assert steps["bench_image_text"]["status"] == "failed" and "ran past 5 s" in steps["bench_image_text"]["figure"]
    assert "| bench_loss |" in (out / "gpu_check.md").read_text()
