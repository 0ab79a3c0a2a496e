"""Held-out evaluation on easy-vqa's test split: rank the 13 possible answers by likelihood (and generate).

No pool built by :mod:`kit.pools` and no model the kit trains touches easy-vqa's test split (the pools and
the alignment draw from the train split; the LiT head of the image-text stand-in trains on the train split's
reserved slice), so every selection is judged on images and questions it never saw.

The evaluation set (:func:`easyvqa_eval_set`) is a seeded sample of the test questions, ``per_type`` of each
type (colour, shape, yes/no; the split itself is 74% yes/no), each asked as in a chat (first letter
capitalised: "What color is the shape?") with the image before the question. The answer is one of easy-vqa's
13 answers, written as the pools write one-word answers ("Red", "Circle", "Yes").

Scoring (:func:`rank_answers`, exact): the log-likelihood of each of the 13 answers' tokens after the prompt,
``sum_t log p(answer_t | prompt, answer_<t)``; the prediction is the most likely answer. The prompt is run once
(its key/value cache kept) and only the answers' later tokens run again, one row per question and answer
(SmolLM2's tokenizer spells every answer in one or two tokens), so the whole ranking costs about one prompt
forward per question. Greedy generation (:func:`generate_answers`) checks that the model also *says* the answer:
its first word, compared case-insensitively.

Accuracy (:func:`summarise`): overall (the balanced set's mean), per type, and per capability: for each of the
kit's capabilities, the questions whose easy-vqa template (``kit.pools.easyvqa.TEMPLATES``: word_color,
yn_shape_negated, ...) rates it above 0. The majority-answer rate of the set (and per type) is reported beside.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ANSWERS = ("red", "green", "blue", "yellow", "teal", "brown", "gray", "black",
           "circle", "rectangle", "triangle", "yes", "no")
TYPES = ("colour", "shape", "yes/no")
COLOURS = ANSWERS[:8]
SHAPES = ANSWERS[8:11]


def answer_text(answer: str) -> str:
    """How the pools write a one-word answer: first letter capitalised."""
    return answer[:1].upper() + answer[1:]


def question_type(answer: str) -> str:
    return "yes/no" if answer in ("yes", "no") else ("shape" if answer in SHAPES else "colour")


def question_template(question: str, answer: str) -> str:
    """The kit.pools easy-vqa template a test question corresponds to (for per-capability accuracy)."""
    kind = question_type(answer)
    if kind == "colour":
        return "word_color"
    if kind == "shape":
        return "word_shape"
    q = question.lower()
    negated = bool(re.search(r"\bnot\b|^is no\b", q))
    about_colour = any(re.search(rf"\b{c}\b", q) for c in COLOURS)
    return ("yn_color" if about_colour else "yn_shape") + ("_negated" if negated else "")


def easyvqa_eval_set(per_type: int | None = 600, seed: int = 0, split: str = "test") -> pd.DataFrame:
    """The held-out questions: one row each (``question``, ``answer``, ``type``, ``template``, image).

    ``per_type=None`` keeps every question of the split (natural mix). Rows are ordered by type, then by a
    seeded draw; the index is ``"<split>_<question number>"``.
    """
    from kit.pools.easyvqa import image_paths, split_questions

    qs, ans, ids = split_questions(split)
    paths = image_paths(split)
    table = pd.DataFrame({"question_raw": qs, "answer": ans, "image_id": [int(i) for i in ids]})
    table.index = [f"{split}_{k:05d}" for k in range(len(table))]
    table["type"] = table["answer"].map(question_type)
    if per_type is not None:
        rng = np.random.default_rng(seed)
        parts = []
        for kind in TYPES:
            rows = table[table["type"] == kind]
            take = rng.permutation(len(rows))[:min(per_type, len(rows))]
            parts.append(rows.iloc[np.sort(take)])
        table = pd.concat(parts)
    table["question"] = table["question_raw"].map(lambda q: q[:1].upper() + q[1:])
    table["template"] = [question_template(q, a) for q, a in zip(table["question"], table["answer"])]
    table["image_path"] = table["image_id"].map(lambda i: str(paths[i]))
    table.index.name = "qid"
    table.attrs["split"] = split
    table.attrs["per_type"] = per_type
    table.attrs["seed"] = seed
    return table[["question", "answer", "type", "template", "image_id", "image_path", "question_raw"]]


def dev_eval_set(per_type: int | None = 300, seed: int = 0) -> pd.DataFrame:
    """Questions about the train split's ``dev`` slice (for choosing a recipe; never reported as a result)."""
    from kit.pools.easyvqa import train_slice

    table = easyvqa_eval_set(None, seed, split="train")
    table = table[table["image_id"].isin(set(train_slice("dev")))]
    if per_type is not None:
        rng = np.random.default_rng(seed)
        table = pd.concat([rows.iloc[np.sort(rng.permutation(len(rows))[:per_type])]
                           for _, rows in table.groupby("type", sort=False)])
    table.attrs["split"] = "train (dev slice)"
    return table


# --------------------------------------------------------------------------- the model side

class _Prompts:
    """Prompt texts, answer token ids and images of an evaluation set, for one processor."""

    def __init__(self, processor, vision: bool = True):
        from kit.quality.loss import AnswerEncoder

        self.processor = processor
        self.encoder = AnswerEncoder(processor, vision)
        self.tokenizer = self.encoder.tokenizer
        self.vision = vision

    def prompt(self, question: str) -> str:
        turn = f"<image>\n{question}" if self.vision else question
        return self.encoder.prompt([{"from": "human", "value": turn}])

    def answer_ids(self, prompt: str, answers=None) -> list[list[int]]:
        """Token ids of each answer (default: easy-vqa's 13) as it follows ``prompt`` (checked: the prompt's
        tokens are unchanged)."""
        tok = self.tokenizer
        base = tok(prompt, add_special_tokens=False)["input_ids"]
        out = []
        for text in (answer_text(a) for a in ANSWERS) if answers is None else answers:
            full = tok(prompt + text, add_special_tokens=False)["input_ids"]
            if full[:len(base)] != base or len(full) == len(base):
                raise ValueError(f"the answer {text!r} changes the prompt's tokens")
            out.append(full[len(base):])
        return out


def candidate_lists(questions: pd.DataFrame) -> tuple[list[tuple], list[tuple]]:
    """Per question: the answer texts to rank and the names they are reported under. A ``candidates`` column
    (the testbed's questions) gives both; without it (easy-vqa) every question ranks the 13 answers, written as
    the pools write them and named in lower case (:data:`ANSWERS`)."""
    if "candidates" in questions.columns:
        cands = [tuple(c) for c in questions["candidates"]]
        return cands, cands
    texts = tuple(answer_text(a) for a in ANSWERS)
    return [texts] * len(questions), [ANSWERS] * len(questions)


def _images(items):
    """Decoded RGB images of paths (an image already decoded, e.g. from lmms-eval, is converted to RGB only)."""
    from kit.data import decode_image

    return [decode_image(p) if isinstance(p, (str, Path)) else p.convert("RGB") for p in items]


def _forward(model, **kwargs):
    out = model(use_cache=True, **kwargs)
    cache = getattr(out, "cache", None)
    if cache is None:
        cache = getattr(out, "past_key_values", None)
    return out.logits, cache


def _cache_kwarg(model) -> str:
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _encode_prompts(prompts: _Prompts, processor, texts, paths, device, dtype) -> dict:
    """Left-padded model inputs of a batch of prompts (with their images)."""
    import torch

    tok = prompts.tokenizer
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        if prompts.vision:
            enc = processor(text=texts, images=_images(paths), padding=True, add_special_tokens=False,
                            return_tensors="pt")
        else:
            enc = tok(texts, padding=True, add_special_tokens=False, return_tensors="pt")
    finally:
        tok.padding_side = side
    return {k: (v.to(device, dtype) if torch.is_floating_point(v) else v.to(device))
            for k, v in dict(enc).items() if isinstance(v, torch.Tensor)}


def _answer_token_ids(prompts: _Prompts, texts: list[str], cands: list[tuple]) -> list[list[list[int]]]:
    """Token ids of every question's candidates, tokenised once per distinct candidate set (after that set's
    first prompt) and checked on a second prompt: an answer's tokens must not depend on the question."""
    known: dict[tuple, list[list[int]]] = {}
    checked: set[tuple] = set()
    out = []
    for text, c in zip(texts, cands):
        if c not in known:
            known[c] = prompts.answer_ids(text, c)
        elif c not in checked:
            if prompts.answer_ids(text, c) != known[c]:
                raise ValueError("answer tokens depend on the question; rank them per question")
            checked.add(c)
        out.append(known[c])
    return out


def _score_batch(model, enc: dict, ids: list[list[list[int]]], pad: int, cache_kw: str,
                 device) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Log-likelihood of every candidate of every question of one batch, and whether greedy decoding would give
    it: the prompts run once (their cache kept), the first answer token is read from the prompt's last logits,
    and only the later tokens of longer answers run again, one row per (question, candidate)."""
    import torch

    logits, cache = _forward(model, **enc, logits_to_keep=1)
    logp = torch.log_softmax(logits[:, -1].float(), -1).cpu()
    top = logp.argmax(-1).numpy()
    scores = [logp[i, torch.tensor([c[0] for c in q])].double().numpy() for i, q in enumerate(ids)]
    greedy = [np.array([c[0] == top[i] for c in q]) for i, q in enumerate(ids)]
    longer = [(i, k) for i, q in enumerate(ids) for k, c in enumerate(q) if len(c) > 1]
    if not longer:
        return scores, greedy
    width = max(len(ids[i][k]) - 1 for i, k in longer)
    row = torch.tensor([i for i, _ in longer])
    suffix = torch.full((len(longer), width), pad, dtype=torch.long)
    smask = torch.zeros((len(longer), width), dtype=torch.long)
    targets = torch.full((len(longer), width), -1, dtype=torch.long)
    for j, (i, k) in enumerate(longer):
        c = ids[i][k]
        suffix[j, :len(c) - 1] = torch.tensor(c[:-1])
        smask[j, :len(c) - 1] = 1
        targets[j, :len(c) - 1] = torch.tensor(c[1:])
    cache.batch_select_indices(row.to(device))
    mask = torch.cat([enc["attention_mask"][row.to(device)], smask.to(device)], 1)
    more, _ = _forward(model, input_ids=suffix.to(device), attention_mask=mask, **{cache_kw: cache})
    lp = torch.log_softmax(more.float(), -1).cpu()
    picked = lp.gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    picked = (picked * (targets >= 0)).sum(1).double().numpy()
    follows = ((lp.argmax(-1) == targets) | (targets < 0)).all(1).numpy()
    for j, (i, k) in enumerate(longer):
        scores[i][k] += picked[j]
        greedy[i][k] = greedy[i][k] and follows[j]
    return scores, greedy


def rank_answers(model, processor, questions: pd.DataFrame, batch_size: int = 32, device: str = "cpu",
                 progress: bool = False) -> pd.DataFrame:
    """Log-likelihood of each candidate answer per question and the ``prediction`` (the most likely one).

    easy-vqa's questions (no ``candidates`` column) get one column per answer of :data:`ANSWERS` and the
    prediction as its lower-case name; questions with their own ``candidates`` (the testbed's) get a
    ``scores`` column (one log-likelihood per candidate, in order) and the prediction as the candidate's text.
    Exact: equal, to float rounding, to scoring every (prompt + answer) sequence on its own.
    """
    import torch
    from tqdm.auto import tqdm

    prompts = _Prompts(processor, vision=getattr(model.config, "vision_config", None) is not None)
    texts = [prompts.prompt(q) for q in questions["question"]]
    cands, names = candidate_lists(questions)
    ids = _answer_token_ids(prompts, texts, cands)
    tok = prompts.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    cache_kw = _cache_kwarg(model)
    dtype = next(model.parameters()).dtype
    paths = questions["image_path"] if prompts.vision else None
    scores: list[np.ndarray] = []
    model.eval()
    with torch.inference_mode():
        for start in tqdm(range(0, len(texts), batch_size), desc="ranking answers", unit="batch",
                          disable=not progress):
            rows = slice(start, start + batch_size)
            enc = _encode_prompts(prompts, processor, texts[rows], None if paths is None else paths.iloc[rows],
                                  device, dtype)
            scores += _score_batch(model, enc, ids[rows], pad, cache_kw, device)[0]
    prediction = [n[int(np.argmax(sc))] for n, sc in zip(names, scores)]
    if "candidates" in questions.columns:
        return pd.DataFrame({"scores": [list(map(float, sc)) for sc in scores], "prediction": prediction},
                            index=questions.index)
    out = pd.DataFrame(np.stack(scores) if scores else np.zeros((0, len(ANSWERS))), index=questions.index,
                       columns=list(ANSWERS))
    out["prediction"] = prediction
    return out


def generate_answers(model, processor, questions: pd.DataFrame, max_new_tokens: int = 6, batch_size: int = 32,
                     device: str = "cpu", progress: bool = False) -> pd.Series:
    """Greedy generations (decoded, stripped) for the questions' prompts."""
    prompts = _Prompts(processor, vision=getattr(model.config, "vision_config", None) is not None)
    texts = [prompts.prompt(q) for q in questions["question"]]
    images = list(questions["image_path"]) if prompts.vision else None
    out = generate_texts(model, prompts, texts, images, max_new_tokens, batch_size, device, progress)
    return pd.Series([t.strip() for t in out], index=questions.index, name="generated")


def generate_texts(model, prompts: _Prompts, texts: list[str], images: list | None, max_new_tokens: int,
                   batch_size: int = 32, device: str = "cpu", progress: bool = False) -> list[str]:
    """Greedy continuations (decoded, special tokens dropped) of prompt texts with their images (paths or
    decoded images; ``None`` for a text-only model)."""
    import torch
    from tqdm.auto import tqdm

    tok = prompts.tokenizer
    out = []
    dtype = next(model.parameters()).dtype
    with torch.inference_mode():
        for start in tqdm(range(0, len(texts), batch_size), desc="generating", unit="batch", disable=not progress):
            rows = slice(start, start + batch_size)
            enc = _encode_prompts(prompts, prompts.processor, texts[rows], None if images is None else images[rows],
                                  device, dtype)
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
            out += tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return out


def first_word(text: str) -> str:
    m = re.match(r"\s*([A-Za-z]+)", str(text))
    return m.group(1).lower() if m else ""


def says(generated: str, answer: str) -> bool:
    """Whether a generation gives ``answer``: its first word for easy-vqa's one-word answers (lower case), else
    its beginning, compared case-insensitively (``"Top left."`` gives ``"Top left"``)."""
    if " " not in answer and answer.isalpha():
        return first_word(generated) == answer.lower()
    return str(generated).strip().lower().startswith(answer.lower())


# --------------------------------------------------------------------------- accuracy

def template_ratings(template: str) -> dict:
    """The reference ratings of an evaluation question's template: a testbed template (``family/name``) or an
    easy-vqa one (``word_color``, ...)."""
    if "/" in template:
        from kit.pools import testbed

        family, name = template.split("/", 1)
        return testbed.family(family).templates()[name].ratings
    from kit.pools.easyvqa import TEMPLATES

    return TEMPLATES[template].ratings


def capability_questions(questions: pd.DataFrame) -> dict[str, np.ndarray]:
    """For each capability some question exercises: a boolean mask over the questions (template rating > 0)."""
    from kit.capabilities import capability_keys

    ratings = {t: template_ratings(t) for t in questions["template"].unique()}
    out = {}
    for cap in capability_keys():
        mask = questions["template"].map(lambda t: ratings[t].get(cap, 0) > 0).to_numpy()
        if mask.any():
            out[cap] = mask
    return out


def benchmark_column(questions: pd.DataFrame) -> str:
    """What the evaluation set's parts are (the papers' benchmarks in /FULL and >Rand): the testbed's families
    or easy-vqa's question types."""
    return "family" if "family" in questions.columns else "type"


def benchmarks(questions: pd.DataFrame) -> list[str]:
    col = benchmark_column(questions)
    return list(TYPES) if col == "type" else list(dict.fromkeys(questions[col]))


def blind_correct(questions: pd.DataFrame) -> np.ndarray:
    """Per question, whether an image-blind answer is right: the most common answer of its template in the set
    (the best a model can do that knows the question and the answers' shares but not the image; ties go to the
    answer first in the set). A stricter baseline than the majority answer of a whole family, whose questions
    mix answer sets (a yes/no question alone is right half the time)."""
    top = questions.groupby("template", sort=False)["answer"].agg(lambda a: a.value_counts().index[0])
    return (questions["answer"] == questions["template"].map(top)).to_numpy()


def summarise(questions: pd.DataFrame, predictions: pd.Series, generated: pd.Series | None = None) -> dict:
    """Accuracy overall, per benchmark (question type or family), per style and per capability; the macro mean
    over benchmarks; the majority-answer rates (overall and per benchmark), the image-blind rate per benchmark
    (:func:`blind_correct`) and the chance rate of the candidates; generation agreement."""
    correct = (predictions.reindex(questions.index) == questions["answer"]).to_numpy()
    blind = blind_correct(questions)
    out = {"n": int(len(questions)), "accuracy": float(correct.mean())}
    col = benchmark_column(questions)
    parts = []
    for part in benchmarks(questions):
        m = (questions[col] == part).to_numpy()
        if m.any():
            parts.append(part)
            out[f"accuracy_{part}"] = float(correct[m].mean())
            out[f"majority_{part}"] = float(questions.loc[m, "answer"].value_counts(normalize=True).iloc[0])
            out[f"blind_{part}"] = float(blind[m].mean())
    out["accuracy_macro"] = float(np.mean([out[f"accuracy_{p}"] for p in parts]))
    out["blind_macro"] = float(np.mean([out[f"blind_{p}"] for p in parts]))
    out["majority"] = float(questions["answer"].value_counts(normalize=True).iloc[0])
    out["majority_by_type" if col == "type" else "majority_macro"] = float(np.mean([out[f"majority_{p}"]
                                                                                    for p in parts]))
    if "candidates" in questions.columns:
        out["chance"] = float(np.mean([1 / len(c) for c in questions["candidates"]]))
    if "style" in questions.columns:
        for style in dict.fromkeys(questions["style"]):
            out[f"accuracy_style_{style}"] = float(correct[(questions["style"] == style).to_numpy()].mean())
    for cap, m in capability_questions(questions).items():
        out[f"accuracy_cap_{cap}"] = float(correct[m].mean())
    if generated is not None:
        g = generated.dropna()
        sub = questions.loc[g.index]
        out["generated_n"] = int(len(g))
        out["generated_accuracy"] = float(np.mean([says(t, a) for t, a in zip(g, sub["answer"])]))
        out["generated_agrees"] = float(np.mean([says(t, str(p)) for t, p in zip(g, predictions.reindex(g.index))]))
    return out


@dataclass
class Evaluation:
    """Per-question results (``table``) and the summary (``summary``) of one model on one evaluation set."""

    table: pd.DataFrame
    summary: dict


def evaluate(model, processor=None, questions: pd.DataFrame | None = None, generate: int = 0,
             batch_size: int = 32, device: str = "cpu", progress: bool = False) -> Evaluation:
    """Rank the answers for every question (and greedily generate for the first ``generate`` of each type or family).

    ``model`` is a loaded model (with ``processor``) or a folder (a model, or a run folder with ``model/``).
    """
    if processor is None:
        from kit.finetune.train import load_model

        model, processor = load_model(model, device=device)
    questions = easyvqa_eval_set() if questions is None else questions
    ranks = rank_answers(model, processor, questions, batch_size=batch_size, device=device, progress=progress)
    keep = [c for c in ("question", "answer", "type", "family", "style", "template", "image_path")
            if c in questions.columns]
    table = questions[keep].join(ranks)
    table["correct"] = table["prediction"] == table["answer"]
    generated = None
    if generate:
        pick = pd.concat([rows.iloc[:generate] for _, rows in questions.groupby(benchmark_column(questions),
                                                                                sort=False)])
        generated = generate_answers(model, processor, pick, batch_size=batch_size, device=device, progress=progress)
        table["generated"] = generated.reindex(table.index)
    return Evaluation(table, summarise(questions, ranks["prediction"], generated))
