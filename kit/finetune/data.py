"""Training examples: LLaVA samples rendered with the model's chat template, answer tokens marked, batched.

The answer tokens are found exactly as the loss scorer finds them (:class:`kit.quality.loss.AnswerEncoder`:
chat template rendered, each assistant answer located in the text, a token counts when it covers an answer
character), so a model is trained on the tokens it is later scored on. Training adds one token per answer:
the end-of-turn token right after it (``<|im_end|>`` in ChatML), so a fine-tuned model learns to stop and
greedy generation ends (``train_end_token=False`` leaves it out); an empty answer trains that token alone. System prompt, questions, template tokens
and image tokens are never trained on.

Each sample is run through the model's processor once (``input_ids`` with the image tokens expanded,
``pixel_values``, ...), cached in memory, and batches are collated from that cache: rows padded on the right,
per-image tensors concatenated (a processor whose outputs differ in shape between images, e.g. anyres tiles
without padding, is run again on the whole batch instead).

Batch order (:func:`batch_order`): for each stage (one stage unless a curriculum is given), the stage's
samples in a seeded random order, epoch after epoch; within every run of ``group * batch_size`` samples they
are sorted by length and cut into batches, which are then shuffled (less padding, same samples per step).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kit.quality.loss import AnswerEncoder, Encoded, answer_token_mask, expand_answer_mask


@dataclass
class Example:
    """One encoded sample: processor outputs for the sample alone and the trained-token mask over its ids."""

    sid: str
    inputs: dict           # processor outputs, batch dimension 1 (input_ids, attention_mask, pixel_values, ...)
    labels: np.ndarray     # bool per token of inputs["input_ids"][0]: the tokens the loss is computed on
    text: str
    image: object = None   # the decoded image (kept for a processor that must run on whole batches)

    @property
    def length(self) -> int:
        return int(self.inputs["input_ids"].shape[1])

    @property
    def n_trained(self) -> int:
        return int(self.labels.sum())


def end_token_ids(tokenizer) -> set[int]:
    """Token ids that end an assistant turn: ``<|im_end|>`` when the tokenizer has it, and its EOS token."""
    ids = set()
    for tok in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>"):
        tid = tokenizer.convert_tokens_to_ids(tok)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid is not None and tid >= 0:
            ids.add(int(tid))
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


def add_end_tokens(ids, mask: np.ndarray, end_ids: set[int]) -> np.ndarray:
    """``mask`` plus, after every run of answer tokens, the next token when it is an end-of-turn token."""
    ids = np.asarray(ids)
    out = mask.copy()
    ends = np.flatnonzero(mask[:-1] & ~mask[1:]) + 1  # first token after each answer run
    for k in ends:
        if int(ids[k]) in end_ids:
            out[k] = True
    return out


class ExampleEncoder:
    """Encodes pool samples (or any LLaVA turns) for one model's processor, cached by sample id.

    One encoder serves one pool (the cache is keyed by id): make a new one for another pool.
    """

    def __init__(self, processor, vision: bool = True, image_token_id: int | None = None,
                 train_end_token: bool = True, max_length: int | None = None):
        self.processor = processor
        self.vision = vision
        self.answers = AnswerEncoder(processor, vision)
        self.tokenizer = self.answers.tokenizer
        self.image_token_id = image_token_id if image_token_id is not None else (
            self.tokenizer.convert_tokens_to_ids(self.answers.image_token) if vision else None)
        self.end_ids = end_token_ids(self.tokenizer) if train_end_token else set()
        self.max_length = max_length
        self._cache: dict = {}

    def _process(self, texts, images):
        tok = self.tokenizer
        side = tok.padding_side
        tok.padding_side = "right"
        try:
            if self.vision:
                enc = self.processor(text=texts, images=images, padding=True, add_special_tokens=False,
                                     return_tensors="pt")
            else:
                enc = tok(texts, padding=True, add_special_tokens=False, return_tensors="pt")
        finally:
            tok.padding_side = side
        return dict(enc)

    def encode(self, sid, conversations, image=None) -> Example:
        """One sample; raises ``ValueError`` naming it when it cannot be rendered or has no answer token."""
        if sid in self._cache:
            return self._cache[sid]
        try:
            text, spans = self.answers.chat(conversations)
        except ValueError as exc:
            raise ValueError(f"sample {sid!r}: {exc}") from None
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = np.asarray(enc["offset_mapping"]).reshape(-1, 2)
        answer = answer_token_mask(offsets, spans)
        if self.end_ids:  # an empty answer still ends its turn: that end token is trained (as a LLaVA trainer does)
            for start, end in spans:
                if end == start:
                    after = np.flatnonzero(offsets[:, 0] >= start)
                    if len(after) and enc["input_ids"][after[0]] in self.end_ids:
                        answer[after[0]] = True
        if not answer.any():
            raise ValueError(f"sample {sid!r} has no answer token to train on")
        e = Encoded(str(sid), text, list(enc["input_ids"]), answer)
        inputs = self._process([e.text], [image] if self.vision else None)
        ids, attention = inputs["input_ids"][0], inputs["attention_mask"][0]
        if self.vision:
            mask = expand_answer_mask(e, ids, attention, self.image_token_id)
        else:
            if ids.tolist() != e.ids:
                raise RuntimeError(f"sample {sid!r}: the tokenizer's ids differ between calls")
            mask = e.answer.copy()
        mask = add_end_tokens(ids.numpy(), mask, self.end_ids)
        if self.max_length is not None and len(mask) > self.max_length:
            if self.vision and (ids[self.max_length:] == self.image_token_id).any():
                raise ValueError(f"sample {sid!r}: its image tokens pass max_length={self.max_length}")
            inputs = {k: (v[:, :self.max_length] if k in ("input_ids", "attention_mask") else v)
                      for k, v in inputs.items()}
            mask = mask[:self.max_length]
        mask[0] = False  # nothing predicts the first token
        if not mask.any():
            raise ValueError(f"sample {sid!r}: no answer token within max_length={self.max_length}")
        example = Example(str(sid), inputs, mask, e.text, image if self.vision else None)
        self._cache[sid] = example
        return example

    def encode_pool(self, pool, ids=None, progress: bool = False) -> tuple[list[Example], dict[str, str]]:
        """Examples of ``ids`` (default: the whole pool) in that order, and ``{id: reason}`` for the rejected."""
        from tqdm.auto import tqdm

        ids = list(pool.table.index if ids is None else ids)
        pool.check_ids(ids, "training ids", unique=False)
        todo = [i for i in dict.fromkeys(ids) if i not in self._cache]
        rejected: dict[str, str] = {}
        images = pool.iter_images(todo) if (self.vision and todo) else None
        conversations = pool.table["conversations"]
        for sid in tqdm(todo, desc="encoding", unit="sample", disable=not progress or not todo):
            image = None
            if images is not None:
                got, image, error = next(images)
                assert got == sid
                if image is None:
                    rejected[sid] = f"image_error: {error}"
                    continue
            try:
                self.encode(sid, conversations.loc[sid], image)
            except ValueError as exc:
                rejected[sid] = str(exc)
        return [self._cache[i] for i in ids if i in self._cache], rejected

    # ----------------------------------------------------------------- batches
    def collate(self, examples: list[Example]):
        """``(inputs, labels)`` of a batch: rows padded on the right; labels a bool tensor like input_ids."""
        import torch

        width = max(e.length for e in examples)
        pad = self.tokenizer.pad_token_id
        pad = pad if pad is not None else (self.tokenizer.eos_token_id or 0)
        ids = torch.full((len(examples), width), pad, dtype=torch.long)
        attention = torch.zeros((len(examples), width), dtype=torch.long)
        labels = torch.zeros((len(examples), width), dtype=torch.bool)
        for b, e in enumerate(examples):
            n = e.length
            ids[b, :n] = e.inputs["input_ids"][0]
            attention[b, :n] = e.inputs["attention_mask"][0]
            labels[b, :n] = torch.from_numpy(e.labels)
        inputs = {"input_ids": ids, "attention_mask": attention}
        extra = [k for k in examples[0].inputs if k not in ("input_ids", "attention_mask")]
        same = all(tuple(e.inputs[k].shape) == tuple(examples[0].inputs[k].shape) for k in extra for e in examples)
        if same:
            for k in extra:
                inputs[k] = torch.cat([e.inputs[k] for e in examples])
        else:  # shapes differ between images: let the processor batch them (same ids, checked)
            batch = self._process([e.text for e in examples], [e.image for e in examples])
            if batch["input_ids"].shape[1] < width:
                raise RuntimeError("the processor's batch is shorter than its single samples")
            for k in extra:
                inputs[k] = batch[k]
        return inputs, labels


def batch_order(lengths, batch_size: int, steps: int, seed: int, stages=None, group: int = 8) -> list[np.ndarray]:
    """``steps`` batches of indices into the examples (deterministic for ``seed``).

    ``stages`` (lists of indices) are trained one after the other, each getting a share of the steps
    proportional to its size; without stages, all examples form one stage. Inside a stage the examples come
    in seeded random orders, epoch after epoch (the last epoch cut short), grouped by length in runs of
    ``group * batch_size``.
    """
    lengths = np.asarray(lengths)
    n = len(lengths)
    if n == 0:
        raise ValueError("no examples to train on")
    stages = [np.arange(n)] if stages is None else [np.asarray(s, dtype=int) for s in stages if len(s)]
    rng = np.random.default_rng(seed)
    sizes = np.array([len(s) for s in stages], dtype=float)
    stage_steps = np.floor(steps * sizes / sizes.sum()).astype(int)
    stage_steps[-1] += steps - stage_steps.sum()
    batches: list[np.ndarray] = []
    run = max(group, 1) * batch_size
    for stage, k in zip(stages, stage_steps):
        share = int(k) * batch_size
        order = []
        while len(order) < share:
            order.extend(stage[rng.permutation(len(stage))].tolist())
        order = np.array(order[:share], dtype=int)
        stage_batches = []
        for start in range(0, len(order), run):
            chunk = order[start:start + run]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            stage_batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
        batches += [stage_batches[i] for i in rng.permutation(len(stage_batches))]
    return batches


def n_steps(n_examples: int, batch_size: int, epochs: float, min_steps: int = 0, max_steps: int | None = None) -> int:
    """``ceil(epochs * n / batch_size)``, at least ``min_steps``, at most ``max_steps``."""
    steps = max(int(math.ceil(epochs * n_examples / batch_size)), int(min_steps), 1)
    return min(steps, int(max_steps)) if max_steps else steps
