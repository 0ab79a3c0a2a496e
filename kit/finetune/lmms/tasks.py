"""The kit's held-out questions as local lmms-eval tasks, and the protocol that pins their numbers.

=====================  =================  =========================================================================
task                   output type        questions, answers, metric
=====================  =================  =========================================================================
``kit_easyvqa``        multiple_choice    easy-vqa's **test** split, 600 per question type (colour, shape, yes/no;
                                          seed 0): the 1,800 questions of ``kit.finetune.easyvqa_eval_set()``,
                                          interleaved by type (so ``--limit 50`` holds 17/17/16); the choices are
                                          easy-vqa's 13 answers written as the pools write them ("Red", "Circle",
                                          "Yes"); ``acc``: the lowest summed negative log-likelihood is right
``kit_easyvqa_gen``    generate_until     the same questions; greedy, at most 6 new tokens, stop at a newline;
                                          ``exact_match``: the first word of the generation is the answer (case
                                          ignored), as ``kit.finetune.evaluate.says``
``kit_testbed``        multiple_choice    the testbed's held-out questions (``kit.pools.testbed.heldout_questions``:
                                          60 per family, seed 0, the ``test`` side), each with its own closed
                                          candidates; ``acc`` as above
=====================  =================  =========================================================================

The prompt is the question alone (first letter capitalised, no pre- or post-prompt), the image before it, in
the model's chat template; the answer follows the assistant turn's start directly (``target_delimiter: ""``).
lmms-eval ranks the choices of a ``multiple_choice`` task by the **lowest** value its model returns (its models
return a loss): the kit's model (:mod:`kit.finetune.lmms.model`) returns the summed negative log-likelihood of
the answer's tokens, so the prediction is the kit's own (``kit.finetune.evaluate.rank_answers``: the most likely
answer, no length normalisation); lmms-eval's ``llava_hf`` returns the mean per token, which ranks otherwise.
These pins, the batch size and the lmms-eval version are written into every result (``kit_protocol``);
``docs/scale.md`` ("Evaluation with lmms-eval") has them for citing.

:func:`write_tasks` writes a task folder (YAML, questions as JSONL with absolute image paths): give it to
lmms-eval as ``--include_path`` or ``TaskManager(include_path=...)``. The document functions below are what the
YAML names (``!function kit.finetune.lmms.tasks.doc_to_visual``); none of this module imports lmms-eval.
"""
from __future__ import annotations

import json
from pathlib import Path

EASYVQA = {"split": "test", "per_type": 600, "seed": 0}
TESTBED = {"side": "test", "per_family": 60, "seed": 0}
GENERATION = {"max_new_tokens": 6, "until": ["\n"], "do_sample": False, "temperature": 0}
TASKS = ("kit_easyvqa", "kit_easyvqa_gen", "kit_testbed")
FUNCTIONS = "kit.finetune.lmms.tasks"
VERSION = 1.0


def protocol(task: str) -> dict:
    """The settings that fix a kit task's numbers (recorded in its YAML and in every result)."""
    if task not in TASKS:
        raise ValueError(f"unknown kit task {task!r}; the kit's tasks are {list(TASKS)}")
    base = {"prompt": "the question alone (first letter capitalised), the image before it, the model's chat "
                      "template; no pre- or post-prompt", "target_delimiter": ""}
    if task == "kit_testbed":
        return {**base, "questions": {"set": "kit.pools.testbed.heldout_questions", **TESTBED},
                "metric": "acc: lowest summed negative log-likelihood over the question's own candidates"}
    questions = {"set": "kit.finetune.easyvqa_eval_set", **EASYVQA, "order": "interleaved by type"}
    if task == "kit_easyvqa":
        return {**base, "questions": questions,
                "metric": "acc: lowest summed negative log-likelihood over the 13 answers"}
    return {**base, "questions": questions, "generation": GENERATION,
            "metric": "exact_match: the generation's first word is the answer, case ignored"}


# --------------------------------------------------------------------------- the documents

def easyvqa_docs() -> list[dict]:
    """``kit_easyvqa``'s documents: the kit's evaluation set, interleaved by question type."""
    from kit.finetune.evaluate import ANSWERS, TYPES, answer_text, easyvqa_eval_set

    table = easyvqa_eval_set(per_type=EASYVQA["per_type"], seed=EASYVQA["seed"], split=EASYVQA["split"])
    parts = [table[table["type"] == kind] for kind in TYPES]
    order = [part.index[k] for k in range(max(len(p) for p in parts)) for part in parts if k < len(part)]
    choices = [answer_text(a) for a in ANSWERS]
    return [{"qid": qid, "question": row["question"], "answer": answer_text(row["answer"]), "choices": choices,
             "target": ANSWERS.index(row["answer"]), "type": row["type"], "template": row["template"],
             "image_path": row["image_path"]} for qid, row in table.loc[order].iterrows()]


def testbed_docs() -> list[dict]:
    """``kit_testbed``'s documents: the testbed's held-out questions with their candidates."""
    from kit.pools.testbed import heldout_questions

    table = heldout_questions(per_family=TESTBED["per_family"], seed=TESTBED["seed"], side=TESTBED["side"])
    return [{"qid": qid, "question": row["question"], "answer": row["answer"], "choices": list(row["candidates"]),
             "target": list(row["candidates"]).index(row["answer"]), "family": row["family"],
             "template": row["template"], "style": row["style"], "image_path": row["image_path"]}
            for qid, row in table.iterrows()]


def doc_to_visual(doc) -> list:
    """The question's image (RGB)."""
    from kit.images import decode_image

    return [decode_image(doc["image_path"])]


def doc_to_text(doc, lmms_eval_specific_kwargs=None) -> str:
    """The question alone (the protocol's prompt; the model's chat template is applied by the model)."""
    return doc["question"]


def doc_to_choice(doc) -> list[str]:
    return list(doc["choices"])


def doc_to_target(doc) -> int:
    """The index of the right answer among the choices."""
    return int(doc["target"])


def doc_to_answer(doc) -> str:
    return doc["answer"]


def process_generation(doc, results) -> dict:
    """``exact_match`` of one greedy generation (``kit.finetune.evaluate.says``)."""
    from kit.finetune.evaluate import says

    return {"exact_match": float(says(results[0], doc["answer"]))}


# --------------------------------------------------------------------------- the task folder

def _yaml(task: str, data_file: Path) -> str:
    """The task's YAML (written by hand: JSON strings are YAML scalars, ``!function`` needs lmms-eval's loader)."""
    f = f"!function {FUNCTIONS}"
    lines = [f"task: {task}", "dataset_path: json",
             f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str(data_file))}", "test_split: test",
             f"doc_to_visual: {f}.doc_to_visual", f"doc_to_text: {f}.doc_to_text"]
    if task == "kit_easyvqa_gen":
        lines += ["output_type: generate_until", f"doc_to_target: {f}.doc_to_answer",
                  "generation_kwargs:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in GENERATION.items()).rstrip(),
                  f"process_results: {f}.process_generation",
                  "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true"]
    else:
        lines += ["output_type: multiple_choice", f"doc_to_choice: {f}.doc_to_choice",
                  f"doc_to_target: {f}.doc_to_target", 'target_delimiter: ""',
                  "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true"]
    lines.append(f"metadata:\n  version: {VERSION}\n  kit_protocol: {json.dumps(protocol(task))}")
    return "\n".join(lines) + "\n"


def default_folder() -> Path:
    from kit.cache import cache_root

    return cache_root() / "lmms_tasks"


def write_tasks(folder=None, tasks=TASKS) -> Path:
    """Write ``tasks`` (YAML and questions) into ``folder`` (default ``$KIT_CACHE/lmms_tasks``); returns it.

    The questions are rebuilt each time (a few seconds for easy-vqa; the testbed's images are cached by
    :func:`kit.pools.testbed.heldout_questions`), and every file is written atomically."""
    from kit.outputs import atomic_write_bytes

    folder = Path(folder) if folder is not None else default_folder()
    folder.mkdir(parents=True, exist_ok=True)
    docs = {}
    for task in tasks:
        protocol(task)  # an unknown name is refused before anything is written
    for task in tasks:
        source = "kit_testbed" if task == "kit_testbed" else "kit_easyvqa"
        if source not in docs:
            docs[source] = testbed_docs() if source == "kit_testbed" else easyvqa_docs()
            text = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs[source])
            atomic_write_bytes(folder / f"{source}.jsonl", text.encode("utf-8"))
        atomic_write_bytes(folder / f"{task}.yaml", _yaml(task, (folder / f"{source}.jsonl").resolve()).encode())
    return folder


def kit_tasks(names) -> list[str]:
    """The kit's tasks among lmms-eval task names (comma-separated or a list)."""
    names = names.split(",") if isinstance(names, str) else list(names)
    return [n.strip() for n in names if n.strip() in TASKS]


__all__ = ["TASKS", "protocol", "write_tasks", "kit_tasks", "easyvqa_docs", "testbed_docs", "default_folder"]
