"""Target sets for gradient influence: a handful of dev questions per task, never the test side.

LESS and ICONS score the pool against a few validation examples of each target task (LESS: MMLU 5 per subtask,
BBH 3, TyDiQA 1; ``less/data_selection/matching.py:26``). The kit's targets (``targets=``):

``"easyvqa"``   easy-vqa's question types (``colour``, ``shape``, ``yes/no``): ``per_task`` questions of each about
                the train split's **dev** slice (:func:`kit.finetune.dev_eval_set`; images 2600-2799, which no
                pool, alignment or evaluation uses), the answer written as the pools write it ("Red", "Yes");
``"testbed"``   the testbed's task families: ``per_task`` questions of each from their **dev** side
                (:func:`kit.pools.testbed.heldout_questions` with ``side="dev"``);
a DataFrame     one row per target question: ``task``, ``question``, ``answer`` (the text to score) and
                ``image_path`` (as given; the caller vouches that none is a test question).

:func:`target_table` returns the rows with ``task``, ``question``, ``answer``, ``image_path`` and the set's
origin in ``attrs`` (named, sized and seeded); :func:`conversation` makes one row a LLaVA conversation.
"""
from __future__ import annotations

import re

import pandas as pd

NAMED = ("easyvqa", "testbed")
COLUMNS = ("task", "question", "answer", "image_path")


def target_table(targets="easyvqa", per_task: int = 8, seed: int = 0) -> pd.DataFrame:
    """The target questions (see the module docstring), ordered by task (first appearance), then as drawn."""
    if isinstance(targets, pd.DataFrame):
        missing = [c for c in COLUMNS if c not in targets.columns]
        if missing:
            raise ValueError(f"a target table needs the columns {list(COLUMNS)}; missing {missing}")
        table = targets[list(COLUMNS)].copy()
        origin = {"targets": "given", "n": len(table)}
    elif targets == "easyvqa":
        from kit.finetune.evaluate import answer_text, dev_eval_set

        dev = dev_eval_set(per_type=per_task, seed=seed)
        table = pd.DataFrame({"task": dev["type"], "question": dev["question"],
                              "answer": dev["answer"].map(answer_text), "image_path": dev["image_path"]},
                             index=dev.index)
        origin = {"targets": "easyvqa", "side": "train split, dev slice (kit.finetune.dev_eval_set)",
                  "per_task": int(per_task), "seed": int(seed)}
    elif targets == "testbed":
        from kit.pools.testbed import heldout_questions

        dev = heldout_questions(per_family=per_task, seed=seed, side="dev")
        table = pd.DataFrame({"task": dev["family"], "question": dev["question"], "answer": dev["answer"],
                              "image_path": dev["image_path"]}, index=dev.index)
        origin = {"targets": "testbed", "side": "dev (kit.pools.testbed.heldout_questions(side='dev'))",
                  "per_task": int(per_task), "seed": int(seed)}
    else:
        raise ValueError(f"targets must be one of {', '.join(map(repr, NAMED))} or a DataFrame with the columns "
                         f"{list(COLUMNS)}, not {targets!r}")
    if not len(table):
        raise ValueError("the target set is empty")
    tasks = list(dict.fromkeys(table["task"]))
    table = pd.concat([table[table["task"] == t] for t in tasks])
    table.attrs = {**origin, "tasks": {str(t): int((table["task"] == t).sum()) for t in tasks}}
    return table


def conversation(question: str, answer: str) -> list[dict]:
    """One target question as a LLaVA conversation: the image, then the question; the answer."""
    return [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": str(answer)}]


def column_name(task) -> str:
    """The score column of a task: ``influence_<task>`` with anything but letters, digits and ``_`` as ``_``
    (``yes/no`` -> ``influence_yes_no``)."""
    return "influence_" + re.sub(r"[^0-9A-Za-z_]+", "_", str(task)).strip("_")


def describe(table: pd.DataFrame) -> str:
    """A few words on the target set, for labels and reports: origin, side and size per task."""
    a = table.attrs
    sizes = ", ".join(f"{t} {n}" for t, n in a.get("tasks", {}).items())
    where = {"easyvqa": "easy-vqa dev slice", "testbed": "testbed dev side"}.get(a.get("targets"), "given")
    return f"{where}, {len(table)} questions ({sizes})"
