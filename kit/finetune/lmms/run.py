"""Running lmms-eval (its Python API) on a kit run folder or any Hugging Face model, and writing the result.

    kit finetune eval runs/mmssr30 --lmms-eval kit_easyvqa --limit 50           # the kit's model, offline
    kit finetune eval runs/mmssr30 --lmms-eval mme,pope,scienceqa_img           # lmms-eval's tasks (a GPU)
    kit finetune eval llava-hf/llava-onevision-qwen2-0.5b-ov-hf --lmms-eval mmbench_en_dev \
        --lmms-model llava_hf --out runs/ov05b/eval                             # lmms-eval's own model class

The kit's tasks (:mod:`kit.finetune.lmms.tasks`) are written into a task folder and added to lmms-eval's task
index; other names are lmms-eval's own tasks (their data come from the Hugging Face hub). ``--lmms-model kit``
(the default) runs the model as the kit does (:mod:`kit.finetune.lmms.model`); any other name is an lmms-eval
model class, given ``pretrained=MODEL`` and ``--model-args``. The result is lmms-eval's dictionary plus
``kit_protocol`` (the kit tasks' pins, the model class, batch size, limit and versions), written as
``lmms_eval-<tasks>.json`` with lmms-eval's table as ``.md`` beside the kit's own evaluation
(``<run>/eval/`` for a run folder).
"""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path

INSTALL_HINT = "lmms-eval is not installed: pip install -e '.[eval]' (the kit's optional 'eval' extra)"


def require_lmms_eval():
    """The ``lmms_eval`` module, or an ``ImportError`` that says how to install it."""
    try:
        import lmms_eval
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from None
    return lmms_eval


def model_folder(model) -> Path | None:
    """The model folder of a kit run folder (``model/``) or a model folder; ``None`` for a hub name."""
    path = Path(model)
    if (path / "model").is_dir() and not (path / "config.json").is_file():
        return path / "model"
    return path if path.is_dir() else None


def default_out(model) -> Path | None:
    """Where a model's evaluations go by default: ``<run>/eval`` for a kit run folder, else nowhere."""
    path = Path(model)
    return path / "eval" if (path / "run.json").is_file() or (path / "model").is_dir() else None


def result_name(tasks: list[str], limit) -> str:
    name = "+".join(re.sub(r"[^A-Za-z0-9_.-]", "_", t) for t in tasks)[:120]
    return f"lmms_eval-{name}" + (f"-limit{limit:g}" if limit is not None else "")


def run_lmms_eval(model, tasks, *, limit=None, out=None, lmms_model: str = "kit", model_args: str = "",
                  batch_size: int = 32, device: str = "auto", log_samples: bool = False, tasks_folder=None,
                  verbosity: str = "WARNING") -> tuple[dict, str]:
    """Evaluate ``model`` (a run folder, model folder or hub name) on lmms-eval ``tasks`` (names, or one
    comma-separated string); returns ``(results, table)`` and writes both under ``out`` when given."""
    lmms_eval = require_lmms_eval()
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager
    from lmms_eval.utils import make_table

    from kit.finetune.lmms.tasks import kit_tasks, protocol, write_tasks

    names = [t.strip() for t in (tasks.split(",") if isinstance(tasks, str) else tasks) if t.strip()]
    if not names:
        raise ValueError("no lmms-eval task named; e.g. --lmms-eval kit_easyvqa")
    ours = kit_tasks(names)
    folder = write_tasks(tasks_folder, ours) if ours else None
    manager = TaskManager(verbosity, include_path=str(folder) if folder else None,
                          include_defaults=len(ours) < len(names))
    unknown = [n for n in names if n not in manager.all_tasks]
    if unknown:
        raise ValueError(f"lmms-eval knows no task {unknown}; the kit's are kit_easyvqa, kit_easyvqa_gen, kit_testbed")
    weights = model_folder(model) or str(model)
    common = {"tasks": names, "limit": limit, "batch_size": batch_size, "task_manager": manager,
              "log_samples": log_samples, "verbosity": verbosity, "bootstrap_iters": 0}
    with loglikelihood_pairs_kept():
        if lmms_model == "kit":
            from kit.finetune.lmms.model import KitModel

            lm = KitModel(pretrained=str(weights), device=device, batch_size=batch_size)
            results = simple_evaluate(model=lm, **common)
        else:
            args = ",".join(a for a in (f"pretrained={weights}", model_args) if a)
            results = simple_evaluate(model=lmms_model, model_args=args,
                                      device=None if device == "auto" else device, **common)
    if results is None:  # a non-main process of a distributed run
        return {}, ""
    from kit.provenance import library_versions

    results["kit_protocol"] = {"model": str(model), "weights": str(weights), "lmms_model": lmms_model,
                               "model_args": model_args, "batch_size": batch_size, "limit": limit,
                               "tasks": {t: protocol(t) for t in ours}, "lmms_eval": lmms_eval_version(),
                               "versions": library_versions()}
    table = make_table(results)
    if out is not None:
        write_results(results, table, Path(out) / result_name(names, limit), log_samples)
    return results, table


@contextmanager
def loglikelihood_pairs_kept():
    """Work around lmms-eval 0.7's ``unwrap_generation_output``, which turns a loglikelihood answer
    ``(value, is_greedy)`` into its string, so that every ``multiple_choice`` task fails in ``process_results``
    ("too many values to unpack"): while lmms-eval runs, such a pair passes through unchanged. Nothing is
    patched where the installed release keeps the pair."""
    import lmms_eval.evaluator as evaluator

    unwrap = evaluator.unwrap_generation_output
    if unwrap((0.5, True))[0] == (0.5, True):
        yield
        return

    def keep_pairs(output):
        if isinstance(output, tuple) and len(output) == 2 and isinstance(output[0], float) and \
                isinstance(output[1], bool):
            return output, None
        return unwrap(output)

    evaluator.unwrap_generation_output = keep_pairs
    try:
        yield
    finally:
        evaluator.unwrap_generation_output = unwrap


def lmms_eval_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("lmms_eval")
    except metadata.PackageNotFoundError:
        return None


def write_results(results: dict, table: str, stem: Path, log_samples: bool) -> Path:
    """``<stem>.json`` (lmms-eval's results without the per-sample logs), ``<stem>.md`` (its table) and, with
    ``log_samples``, ``<stem>.samples.jsonl``; written atomically."""
    from kit.outputs import atomic_write_bytes

    stem.parent.mkdir(parents=True, exist_ok=True)
    samples = results.pop("samples", None)
    atomic_write_bytes(stem.with_suffix(".json"), json.dumps(results, indent=1, default=str).encode("utf-8"))
    atomic_write_bytes(stem.with_suffix(".md"), table.encode("utf-8"))
    if log_samples and samples:
        rows = [{"task": task, **row} for task, items in samples.items() for row in items]
        atomic_write_bytes(stem.with_name(stem.name + ".samples.jsonl"),
                           "".join(json.dumps(r, default=str) + "\n" for r in rows).encode("utf-8"))
    return stem.with_suffix(".json")


__all__ = ["run_lmms_eval", "require_lmms_eval", "default_out", "model_folder", "write_results", "INSTALL_HINT"]
