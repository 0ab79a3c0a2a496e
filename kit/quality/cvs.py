"""CVS, the Conditional Verdict Shift (arXiv 2603.09715): does the question make the answer more valid?

The paper (no official code found) scores a sample (I, Q, A) with a frozen VLM judge twice, with and without the
question, the image present both times, and keeps samples where adding Q raises the answer's validity ("visual
necessity") and filters out those where it lowers it ("semantic conflict"); it reports gains over the full pool
at 10-15% of Vision-Flan. Verified from the paper's text: training-free, a frozen judge, P(Yes | I, Q, A) against
P(Yes | I, A). **Not public, so chosen here** (``docs/methods.md``, "CVS"): the judge, its prompt, the
normalisation, the exact score, multi-turn handling and ties.

``kit.score(pool, "cvs")`` writes ``cvs_full``, ``cvs_no_question``, ``cvs_shift`` = full - no_question, and
``status``; two modes (``mode=``):

``"likelihood"`` (default)  the answer's mean log-likelihood per token under the frozen VLM, with the question
                            (the sample as it is) and without it (every human turn reduced to its ``<image>``
                            placeholder, so the image stays): shift = log p(A | I, Q) - log p(A | I), per token;
                            the answer tokens, template and truncation are the answer-loss scorer's. Our choice
                            for the kit's small models, which were never taught to judge.
``"judge"``                 the paper's form with our prompt: the human turn ``<image>\\nQuestion: {Q}\\nAnswer: {A}\\n
                            Is the answer correct? Answer Yes or No.`` (without ``Question: {Q}\\n`` for the
                            second verdict) and p = P(Yes) / (P(Yes) + P(No)) from the likelihoods of the answers
                            "Yes" and "No" (:func:`kit.finetune.evaluate.rank_answers`); a multi-turn sample's
                            verdicts are averaged over its question-answer pairs.

The judge is ``model`` (default: the ``tiny`` preset's aligned base). A tiny judge is near chance at saying Yes to
a right answer; ``judge_check`` (:func:`judge_check`) measures it (P(Yes) on the true answers against the same
questions with answers shuffled among samples) before a judge-mode score is trusted. The selector is
:func:`kit.baselines.cvs.select_cvs`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from kit.conversation import IMAGE_TOKEN
from kit.scoreinfo import ScoreInfo

MODES = ("likelihood", "judge")
COLUMNS = ["cvs_shift", "cvs_full", "cvs_no_question"]
JUDGE = "{question}Answer: {answer}\nIs the answer correct? Answer Yes or No."


def without_questions(conversations) -> list[dict]:
    """The conversation with every human turn reduced to its image placeholder (empty when it has none)."""
    out = []
    for turn in conversations:
        if turn["from"] == "human":
            out.append({"from": "human", "value": IMAGE_TOKEN if IMAGE_TOKEN in turn["value"] else ""})
        else:
            out.append(dict(turn))
    return out


def qa_pairs(conversations) -> list[tuple[str, str]]:
    """(question, answer) of every human turn followed by an answer, the image placeholder removed."""
    from kit.conversation import strip_image_token

    pairs = []
    for human, gpt in zip(conversations[:-1], conversations[1:]):
        if human["from"] == "human" and gpt["from"] == "gpt":
            pairs.append((strip_image_token(human["value"]).strip(), gpt["value"].strip()))
    return pairs


def judge_prompt(question: str | None, answer: str) -> str:
    """The judge's text (after the image): with the question, or without it (``question=None``)."""
    return JUDGE.format(question="" if question is None else f"Question: {question}\n", answer=answer)


def judge_yes(model, processor, texts, image_paths, batch_size: int = 16) -> np.ndarray:
    """P(Yes) / (P(Yes) + P(No)) for each (judge text, image), from the likelihoods of the answers Yes and No."""
    from kit.finetune.evaluate import rank_answers

    if not len(texts):
        return np.zeros(0)
    questions = pd.DataFrame({"question": list(texts), "image_path": list(image_paths),
                              "candidates": [("Yes", "No")] * len(texts)})
    ranks = rank_answers(model, processor, questions, batch_size=batch_size)
    ll = np.array([s for s in ranks["scores"]], dtype=np.float64)
    return 1.0 / (1.0 + np.exp(ll[:, 1] - ll[:, 0]))


def judge_check(model, processor, pool, n: int = 64, seed: int = 0) -> dict:
    """How well the judge tells right answers from wrong ones: mean P(Yes) with each sample's own answer and with
    an answer shuffled in from another sample (seeded), and the share of pairs where the own answer is judged
    more valid. Near 0.5 means the judge is near chance."""
    rng = np.random.default_rng(seed)
    table = pool.table.iloc[np.sort(rng.permutation(len(pool.table))[:n])]
    pairs = [(qa_pairs(c) or [("", "")])[0] for c in table["conversations"]]
    shuffled = [pairs[k][1] for k in rng.permutation(len(pairs))]
    paths = list(table["image_path"])
    own = judge_yes(model, processor, [judge_prompt(q, a) for q, a in pairs], paths)
    other = judge_yes(model, processor, [judge_prompt(q, a) for (q, _), a in zip(pairs, shuffled)], paths)
    return {"n": len(pairs), "p_yes_own": float(own.mean()), "p_yes_shuffled": float(other.mean()),
            "own_higher": float((own > other).mean())}


class CVSScorer:
    """``kit.score(pool, "cvs")``: see the module docstring. ``model``: a preset name (its aligned base) or a VLM
    folder; ``threads``: torch threads (1: the same numbers in every process)."""

    def __init__(self, model="tiny", mode: str = "likelihood", batch_size: int = 8, max_length: int | None = None,
                 device: str = "cpu", threads: int | None = 1, progress: bool = True):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, not {mode!r}")
        self.model, self.mode = model, mode
        self.options = {"batch_size": batch_size, "max_length": max_length, "device": device}
        self.threads, self.progress = threads, progress
        self._loaded = None

    @property
    def label(self) -> str:
        how = "answer log-likelihood" if self.mode == "likelihood" else "judge P(Yes)"
        return f"CVS, question shift of the {how} ({self.model})"

    short_label = "CVS shift"

    def score(self, pool) -> tuple[pd.DataFrame, ScoreInfo]:
        from kit.influence.scorer import torch_threads

        with torch_threads(self.threads):
            full, no_q, status = (self._likelihood(pool) if self.mode == "likelihood" else self._judge(pool))
        table = pd.DataFrame({"cvs_shift": full - no_q, "cvs_full": full, "cvs_no_question": no_q},
                             index=pool.table.index)
        table["status"] = status
        table.index.name = "id"
        return table, ScoreInfo(columns=COLUMNS, label=self.label, short_label=self.short_label)

    def _likelihood(self, pool):
        from kit.quality.image_gain import PoolView, answer_loglik, resolve_model
        from kit.quality.loss import LossScorer

        if self._loaded is None:
            self._loaded = LossScorer(model=resolve_model(self.model), vision=True, progress=False, **self.options)
        full, status = answer_loglik(self._loaded, pool)
        table = pool.table.copy()
        table["conversations"] = [without_questions(c) for c in table["conversations"]]
        no_q, status_q = answer_loglik(self._loaded, PoolView(pool, table=table))
        status = [s if s != "ok" else r for s, r in zip(status, status_q.reindex(pool.table.index))]
        return full.to_numpy(), no_q.reindex(pool.table.index).to_numpy(), status

    def _judge(self, pool):
        from kit.data import image_problem
        from kit.finetune.train import load_model
        from kit.quality.image_gain import resolve_model

        if self._loaded is None:
            self._loaded = load_model(resolve_model(self.model), device=self.options["device"])
        model, processor = self._loaded
        ids = list(pool.table.index)
        status = {sid: "ok" for sid in ids}
        counts = pool.table["n_images"] if "n_images" in pool.table else pd.Series(1, index=pool.table.index)
        for sid, n_images in counts.items():
            if image_problem(n_images):
                status[sid] = f"image_error: {image_problem(n_images)}"
        for sid, image, error in pool.iter_images([s for s in ids if status[s] == "ok"]):
            if image is None:
                status[sid] = f"image_error: {error}"
        rows = [(sid, q, a) for sid in ids if status[sid] == "ok"
                for q, a in qa_pairs(pool.table.at[sid, "conversations"])]
        paths = [pool.table.at[sid, "image_path"] for sid, _, _ in rows]
        bs = self.options["batch_size"]
        p_full = judge_yes(model, processor, [judge_prompt(q, a) for _, q, a in rows], paths, bs)
        p_noq = judge_yes(model, processor, [judge_prompt(None, a) for _, q, a in rows], paths, bs)
        owner = pd.Index([sid for sid, _, _ in rows])
        full = pd.Series(p_full, index=owner).groupby(level=0).mean().reindex(ids)
        no_q = pd.Series(p_noq, index=owner).groupby(level=0).mean().reindex(ids)
        for sid in ids:
            if status[sid] == "ok" and not np.isfinite(full[sid]):
                status[sid] = "no_answer_tokens"
        return full.to_numpy(), no_q.to_numpy(), [status[s] for s in ids]
