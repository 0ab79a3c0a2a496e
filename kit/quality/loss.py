"""Answer loss / perplexity scorer: the negative log-likelihood of a sample's answer tokens.

The quality-driven curriculum (docs/methods.md): ``l`` is the model's loss on the ANSWER tokens
only, given the image (for a vision-language model) and the preceding text. Everything else is masked:
the system prompt, the human turns, the chat-template tokens around each turn and the image tokens.

    scores = kit.score(pool, "loss")                                  # SmolLM2-135M-Instruct, offline
    scores = kit.score(pool, "loss", model="path/or/hub-name")       # any HF causal LM or VLM

Columns of the table (indexed by sample id, one row per pool sample):

- ``loss_mean``: mean NLL per answer token (nats; perplexity = ``exp(loss_mean)``),
- ``loss_sum``: summed NLL over the answer tokens (the paper's reduction; it grows with answer length),
- ``n_answer_tokens``: how many answer tokens were scored, ``n_tokens``: the length of the scored sequence,
- ``truncated``: whether the sequence was cut at ``max_length`` (only the answer tokens that remain count),
- ``status``: ``"ok"``, or why the sample has NaN scores: ``no_answer_tokens`` (empty answers),
  ``truncated_away`` (no answer token left within ``max_length``), ``image_too_long`` (the image tokens alone
  pass ``max_length``), ``image_error: …`` (the image no longer decodes, or a vision-language model met a
  text-only or multi-image sample: it reads one image per sample), ``error: …`` (the conversation cannot
  be rendered, e.g. several ``<image>`` placeholders for the one image; if no sample at all can be rendered,
  the scorer raises instead).

How the answer tokens are found. The LLaVA turns become chat messages (human → user, gpt → assistant) and
are rendered with the tokenizer's (or processor's) chat template. For every assistant turn the template is
also rendered up to that turn with ``add_generation_prompt=True``; the answer's characters are located in the
full text right after that prefix, so the template's own tokens around the answer are never counted. The full
text is tokenised once with character offsets, and a token counts as an answer token when it covers at least
one answer character (an answer's surrounding white space is not part of it). The end-of-turn token after the answer (e.g. ``<|im_end|>``) is NOT counted: it is
template, and counting it would add a near-constant term that only dilutes ``loss_mean`` of short answers.

Text-only language models get the ``<image>`` placeholder removed. Vision-language models (any HF
image-text-to-text model: ``AutoProcessor`` + ``AutoModelForImageTextToText``) get the image; the processor
expands the image placeholder into image tokens, which are masked like the question.

Batching: samples are sorted by token count (longest first, so memory trouble shows at once), padded on the
right (causal attention never sees the padding, and position ids stay 0..n-1), and run under
``torch.inference_mode()``. Only the logits at answer positions are computed (HF ``logits_to_keep`` with a
boolean mask where the model supports it). Per-sample results equal one-at-a-time scoring to float rounding.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kit.conversation import IMAGE_TOKEN, common_prefix_length, strip_image_token
from kit.data import image_problem
from kit.models.hf import load_pretrained, resolve_dtype

COLUMNS = ["loss_mean", "loss_sum", "n_answer_tokens", "n_tokens", "truncated", "status"]

# Used when a text-only tokenizer has no chat template of its own (e.g. a base GPT-2).
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}: {{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant: {% endif %}"
)


# --------------------------------------------------------------------------- conversations -> chat text

def chat_messages(conversations, *, image: str | None = None, image_parts: bool = False) -> list[dict]:
    """LLaVA turns as chat messages (human → user, gpt → assistant).

    ``image=None`` removes every ``<image>`` placeholder (text-only model). Otherwise the sample's one image
    is put in the first user turn that mentions it (the first user turn if none does): as a
    ``{"type": "image"}`` part when ``image_parts`` (the HF multimodal message format), else as the string
    ``image`` (the processor's image token) kept in the text where the placeholder was.
    """
    messages = []
    n_placeholders = sum(t["value"].count(IMAGE_TOKEN) for t in conversations if t["from"] == "human")
    if image is not None and n_placeholders > 1:
        raise ValueError(f"{n_placeholders} {IMAGE_TOKEN} placeholders for one image")
    for k, turn in enumerate(conversations):
        value = turn["value"]
        if turn["from"] == "gpt":
            messages.append({"role": "assistant",
                             "content": [{"type": "text", "text": value}] if image_parts else value})
            continue
        has_image = image is not None and (IMAGE_TOKEN in value or (n_placeholders == 0 and k == 0))
        if image_parts:
            text = strip_image_token(value)
            parts = ([{"type": "image"}] if has_image else []) + [{"type": "text", "text": text}]
            messages.append({"role": "user", "content": parts})
        elif image is None:
            messages.append({"role": "user", "content": strip_image_token(value)})
        elif has_image and IMAGE_TOKEN not in value:
            messages.append({"role": "user", "content": f"{image}\n{value}"})
        else:
            messages.append({"role": "user", "content": value.replace(IMAGE_TOKEN, image)})
    return messages


def _message_text(message) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


def render_with_answer_spans(render, messages) -> tuple[str, list[tuple[int, int]]]:
    """Render ``messages`` and return ``(text, [(start, end) of each assistant answer in text])``.

    A span covers the answer without its surrounding white space (an all-blank answer gives an empty span).
    ``render(messages, add_generation_prompt)`` applies a chat template. The answer of assistant turn ``i`` is
    searched in the full text from where the rendering of ``messages[:i]`` with a generation prompt stops
    agreeing with it, so template text can never be mistaken for the answer. Raises ``ValueError`` when an
    answer cannot be found (a template that drops or rewrites message content).
    """
    full = render(messages, False)
    spans = []
    floor = 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        answer = _message_text(message)
        prefix = render(messages[:i], True)
        start = max(common_prefix_length(prefix, full), floor)
        core = answer.strip()
        if not core:  # an empty (or all white space) answer has no tokens
            spans.append((start, start))
            continue
        pos = full.find(answer, start)
        if pos >= 0:
            pos += len(answer) - len(answer.lstrip())
        else:  # a template that strips the content
            pos = full.find(core, start)
        if pos < 0:
            raise ValueError(f"the chat template does not reproduce assistant turn {i} verbatim")
        spans.append((pos, pos + len(core)))
        floor = pos + len(core)
    return full, spans


def answer_token_mask(offsets, spans) -> np.ndarray:
    """Boolean mask over tokens: True where a token covers at least one character of an answer span."""
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    mask = np.zeros(len(offsets), dtype=bool)
    nonempty = offsets[:, 1] > offsets[:, 0]
    for start, end in spans:
        if end > start:
            mask |= nonempty & (offsets[:, 0] < end) & (offsets[:, 1] > start)
    return mask


# --------------------------------------------------------------------------- encoded samples

@dataclass
class Encoded:
    """One sample ready for the model: token ids and the answer-token mask (before image expansion)."""

    sid: str
    text: str
    ids: list[int]
    answer: np.ndarray            # bool per token
    truncated: bool = False


def _empty_row(status: str, n_tokens=np.nan, truncated=False) -> dict:
    return {"loss_mean": np.nan, "loss_sum": np.nan, "n_answer_tokens": 0, "n_tokens": n_tokens,
            "truncated": truncated, "status": status}


class AnswerEncoder:
    """Renders LLaVA turns with a model's chat template and finds the answer tokens.

    Shared by :class:`LossScorer` and the fine-tuning code (:mod:`kit.finetune`), so that the tokens a model
    is scored on and the tokens it is trained on are found the same way. ``processor`` is a tokenizer (text
    models) or an image-text processor; with ``vision`` the sample's image goes into the first user turn that
    mentions it, as ``image_token``.
    """

    def __init__(self, processor, vision: bool, image_token: str | None = None):
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        if not getattr(self.tokenizer, "is_fast", False):
            raise TypeError(f"{type(self.tokenizer).__name__} is not a fast tokenizer: the answer tokens are "
                            "found through character offsets")
        self.vision = bool(vision)
        self.image_token = (image_token or getattr(processor, "image_token", IMAGE_TOKEN)) if vision else None
        self._parts_format = None

    def render(self, messages, add_generation_prompt):
        owner = self.processor if self.vision and getattr(self.processor, "chat_template", None) \
            else self.tokenizer
        template = None if getattr(owner, "chat_template", None) else FALLBACK_CHAT_TEMPLATE
        kwargs = {"chat_template": template} if template else {}
        return owner.apply_chat_template(messages, tokenize=False,
                                         add_generation_prompt=add_generation_prompt, **kwargs)

    def messages(self, conversations) -> list[dict]:
        """The chat messages of LLaVA turns in the format this template takes (found on the first call)."""
        if not self.vision:
            return chat_messages(conversations)
        parts = self._parts_format if self._parts_format is not None else True
        return chat_messages(conversations, image=self.image_token, image_parts=parts)

    def chat(self, conversations):
        """Rendered text and answer spans, trying the model's message format(s) until answers are found."""
        if not self.vision:
            return render_with_answer_spans(self.render, chat_messages(conversations))
        formats = [self._parts_format] if self._parts_format is not None else [True, False]
        errors = []
        for parts in formats:  # HF multimodal "parts" messages first, then plain strings
            try:
                messages = chat_messages(conversations, image=self.image_token, image_parts=parts)
                text, spans = render_with_answer_spans(self.render, messages)
                if text.count(self.image_token) != 1:
                    raise ValueError(f"the rendered chat holds {text.count(self.image_token)} image tokens")
            except Exception as exc:  # noqa: BLE001 - try the other message format
                errors.append(f"{'parts' if parts else 'string'} content: {exc}")
                continue
            self._parts_format = parts  # the format this template takes, for every later sample
            return text, spans
        raise ValueError("cannot render the conversation with the chat template (" + "; ".join(errors) + ")")

    def prompt(self, conversations) -> str:
        """The rendered chat up to and including the generation prompt of the next assistant turn.

        ``conversations`` ends with a human turn (e.g. one question); the text is what a model generates after.
        """
        if self.vision and self._parts_format is None:  # settle the message format on a full exchange first
            self.chat(list(conversations) + [{"from": "gpt", "value": "x"}])
        return self.render(self.messages(conversations), True)

    def encode(self, sid, conversations) -> Encoded:
        """Render and tokenise one sample (no image expansion); truncation happens later, per sample."""
        try:
            text, spans = self.chat(conversations)
        except ValueError as exc:
            raise ValueError(f"sample {sid!r}: {exc}") from None
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return Encoded(sid, text, list(enc["input_ids"]), answer_token_mask(enc["offset_mapping"], spans))


# --------------------------------------------------------------------------- the scorer

class LossScorer:
    """Answer-token NLL with a causal LM (default SmolLM2-135M-Instruct, offline) or a vision-language model.

    ``model``: ``"smollm2"`` (the offline default), any HF causal LM or image-text-to-text model name or
    local folder, or an already built ``torch.nn.Module`` (then give its ``processor`` or tokenizer too).
    ``vision``: ``None`` decides from the model (a config with a ``vision_config`` is a VLM); ``False`` scores
    a VLM's language model on the text alone (placeholder removed), ``True`` forces the image path.
    ``dtype``: ``None`` = float32 on the CPU, bfloat16 on a GPU that supports it.
    ``max_length``: tokens per sequence (default: the model's context length, at most 8192); longer
    sequences are cut on the right and only the answer tokens that remain are scored.
    """

    def __init__(self, model="smollm2", processor=None, device: str = "cpu", batch_size: int = 8,
                 max_length: int | None = None, dtype=None, vision: bool | None = None,
                 progress: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.model_name = model if isinstance(model, str) else type(model).__name__
        self.device = device
        self.batch_size = int(batch_size)
        self.progress = progress
        self._model_arg, self._processor_arg, self._vision_arg = model, processor, vision
        self._dtype_arg = dtype
        self._max_length_arg = max_length
        self.model = None

    @property
    def label(self) -> str:
        """The model and whether it sees the image (known once the model is loaded)."""
        name = "SmolLM2-135M-Instruct" if str(self.model_name).lower() == "smollm2" else str(self.model_name)
        if self.model is None:
            return name
        return f"{name} ({'image and text' if self.vision else 'text only: the image is not seen'})"

    short_label = label

    # ----------------------------------------------------------------- loading
    def load(self):
        """Load the model (once); returns ``self``."""
        if self.model is not None:
            return self
        dtype = self.dtype = resolve_dtype(self._dtype_arg, self.device)

        model, processor = self._model_arg, self._processor_arg
        if isinstance(model, str) and model.lower() == "smollm2":
            from kit.models.smollm2 import load_smollm2

            model, processor = load_smollm2(dtype=dtype)
        elif isinstance(model, str):
            model, processor = load_pretrained(model, dtype, self.device, vision=self._vision_arg)
        elif processor is None:
            raise ValueError("give the processor (or tokenizer) of a model passed as an object")
        self.vision = self._vision_arg if self._vision_arg is not None else _is_vision_model(model)
        self.model = model.to(device=self.device, dtype=dtype).eval()
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.max_length = int(self._max_length_arg or _context_length(model))
        self._mask_logits = _supports_mask_logits(model)
        self._image_token = getattr(processor, "image_token", IMAGE_TOKEN) if self.vision else None
        self._image_token_id = _image_token_id(model, self.tokenizer, self._image_token) if self.vision else None
        self._encoder = AnswerEncoder(processor, self.vision, self._image_token)
        return self

    # ----------------------------------------------------------------- chat rendering
    def _render(self, messages, add_generation_prompt):
        return self._encoder.render(messages, add_generation_prompt)

    def _chat(self, conversations):
        return self._encoder.chat(conversations)

    def encode(self, sid, conversations) -> Encoded:
        """Render and tokenise one sample (no image expansion); truncation happens later, per sample."""
        return self._encoder.encode(sid, conversations)

    # ----------------------------------------------------------------- scoring
    def score(self, pool) -> pd.DataFrame:
        """Score every sample of ``pool``; one row per sample, NaN with a status where it cannot be scored.

        The pool is taken in chunks of ``64 * batch_size`` samples (memory stays bounded on large pools);
        within a chunk samples are sorted by token count, longest first, and cut into batches.
        """
        from tqdm.auto import tqdm

        self.load()
        table = pool.table
        rows: dict[str, dict] = {}
        chunk = 64 * self.batch_size
        with tqdm(total=len(table), desc=f"loss ({self.model_name})", unit="sample",
                  disable=not self.progress) as bar:
            for first in range(0, len(table), chunk):
                part = table.iloc[first:first + chunk]
                encoded = []
                counts = part["n_images"] if "n_images" in part else [1] * len(part)
                for sid, conv, n_images in zip(part.index, part["conversations"], counts):
                    problem = image_problem(n_images) if self.vision else None
                    if problem:  # text-only or multi-image sample: a VLM here reads exactly one image
                        rows[sid] = _empty_row(f"image_error: {problem}")
                        continue
                    try:
                        e = self.encode(sid, conv)
                    except ValueError as exc:  # e.g. several <image> placeholders for one image
                        rows[sid] = _empty_row(f"error: {exc}")
                        continue
                    if e.answer.any():
                        encoded.append(e)
                    else:
                        rows[sid] = _empty_row("no_answer_tokens", n_tokens=len(e.ids))
                bar.update(len(part) - len(encoded))
                encoded.sort(key=lambda e: -len(e.ids))  # stable: ties keep pool order
                images = pool.iter_images([e.sid for e in encoded]) if self.vision else None
                for start in range(0, len(encoded), self.batch_size):
                    batch = encoded[start:start + self.batch_size]
                    if self.vision:
                        rows.update(self._score_vision_batch(batch, [next(images) for _ in batch]))
                    else:
                        rows.update(self._score_text_batch(batch))
                    bar.update(len(batch))
        errors = [r["status"] for r in rows.values() if r["status"].startswith("error: ")]
        if errors and len(errors) == len(table):
            raise ValueError(f"no sample could be scored; the first: {errors[0][len('error: '):]}")
        out = pd.DataFrame.from_dict(rows, orient="index", columns=COLUMNS).loc[list(table.index)]
        out["n_answer_tokens"] = out["n_answer_tokens"].astype("int64")
        out["n_tokens"] = out["n_tokens"].astype("Int64")
        out["truncated"] = out["truncated"].astype(bool)
        out.index.name = "id"
        return out

    def _score_text_batch(self, batch: list[Encoded]) -> dict:
        import torch

        rows, kept, masks = {}, [], []
        for e in batch:
            mask, truncated = e.answer[:self.max_length], len(e.ids) > self.max_length
            e.truncated = truncated
            if not mask[1:].any():  # the first token has no context to be predicted from
                rows[e.sid] = _empty_row("truncated_away", n_tokens=min(len(e.ids), self.max_length),
                                         truncated=truncated)
                continue
            kept.append(e)
            masks.append(mask)
        if not kept:
            return rows
        width = max(len(m) for m in masks)
        pad = self.tokenizer.pad_token_id
        pad = pad if pad is not None else (self.tokenizer.eos_token_id or 0)
        ids = torch.full((len(kept), width), pad, dtype=torch.long)
        attention = torch.zeros((len(kept), width), dtype=torch.long)
        labels = torch.zeros((len(kept), width), dtype=torch.bool)
        for b, (e, m) in enumerate(zip(kept, masks)):
            n = len(m)
            ids[b, :n] = torch.tensor(e.ids[:n])
            attention[b, :n] = 1
            labels[b, :n] = torch.from_numpy(m)
        inputs = {"input_ids": ids, "attention_mask": attention}
        return {**rows, **self._losses(kept, inputs, labels)}

    def _score_vision_batch(self, batch: list[Encoded], images) -> dict:
        import torch

        rows, kept, pil = {}, [], []
        for e, (sid, image, error) in zip(batch, images):
            assert sid == e.sid
            if image is None:
                rows[e.sid] = _empty_row(f"image_error: {error}")
            else:
                kept.append(e)
                pil.append(image)
        while kept:
            enc = self._process(kept, pil)
            ids, attention = enc["input_ids"], enc["attention_mask"]
            lengths = attention.sum(1)
            labels = torch.zeros_like(ids, dtype=torch.bool)
            for b, e in enumerate(kept):
                labels[b] = torch.from_numpy(expand_answer_mask(e, ids[b], attention[b], self._image_token_id))
            labels[:, self.max_length:] = False
            drop = {}
            for b, e in enumerate(kept):
                e.truncated = bool(lengths[b] > self.max_length)
                if (ids[b, self.max_length:] == self._image_token_id).any():
                    drop[b] = _empty_row("image_too_long", n_tokens=int(lengths[b]), truncated=True)
                elif not labels[b, 1:].any():
                    drop[b] = _empty_row("truncated_away", n_tokens=min(int(lengths[b]), self.max_length),
                                         truncated=True)
            if not drop:  # every sample fits: cut the batch at max_length and run it
                width = min(ids.shape[1], self.max_length)
                enc["input_ids"], enc["attention_mask"] = ids[:, :width], attention[:, :width]
                return {**rows, **self._losses(kept, enc, labels[:, :width])}
            # rare: some samples cannot be scored; process the others again without them
            rows.update({kept[b].sid: row for b, row in drop.items()})
            kept = [e for b, e in enumerate(kept) if b not in drop]
            pil = [p for b, p in enumerate(pil) if b not in drop]
        return rows

    def _process(self, kept, images):
        """The processor on a batch, padded on the right, without extra special tokens."""
        tok = self.tokenizer
        side = tok.padding_side
        tok.padding_side = "right"
        try:
            enc = self.processor(text=[e.text for e in kept], images=images, padding=True,
                                 add_special_tokens=False, return_tensors="pt")
        finally:
            tok.padding_side = side
        return dict(enc)

    def _losses(self, kept: list[Encoded], inputs: dict, labels) -> dict:
        """Forward one padded batch; ``labels[b, t]`` marks answer token t of row b."""
        import torch
        import torch.nn.functional as F

        keep = torch.zeros_like(labels)
        keep[:, :-1] = labels[:, 1:]              # logits at t predict token t + 1
        targets = inputs["input_ids"][labels & (torch.arange(labels.shape[1]) > 0)]
        rows = keep.nonzero()[:, 0]
        inputs = {k: (v.to(self.device, self.dtype) if torch.is_floating_point(v) else v.to(self.device))
                  for k, v in inputs.items() if isinstance(v, torch.Tensor)}
        with torch.inference_mode():
            logits = None
            if self._mask_logits:
                out = self.model(**inputs, logits_to_keep=keep.to(self.device), use_cache=False)
                if out.logits.dim() == 2 and out.logits.shape[0] == len(targets):
                    logits = out.logits
                else:  # the model ignored the mask: compute every logit from now on
                    self._mask_logits = False
            if logits is None:
                logits = self.model(**inputs, use_cache=False).logits[keep.to(self.device)]
            nll = F.cross_entropy(logits.float(), targets.to(self.device), reduction="none").cpu().double()
        sums = torch.zeros(len(kept), dtype=torch.float64).index_add_(0, rows, nll)
        counts = torch.bincount(rows, minlength=len(kept))
        lengths = inputs["attention_mask"].sum(1).cpu()
        out = {}
        for b, e in enumerate(kept):
            n = int(counts[b])
            out[e.sid] = {"loss_mean": float(sums[b]) / n, "loss_sum": float(sums[b]), "n_answer_tokens": n,
                          "n_tokens": int(lengths[b]), "truncated": e.truncated, "status": "ok"}
        return out


# --------------------------------------------------------------------------- helpers

def expand_answer_mask(e: Encoded, ids, attention, image_token_id) -> np.ndarray:
    """Map the answer mask of the unexpanded text onto the processor's ids (image tokens expanded).

    Both sequences must agree once image tokens are removed; the answer mask is False on image tokens
    and on padding.
    """
    ids = ids.numpy()
    real = attention.numpy().astype(bool)
    is_image = ids == image_token_id
    source = np.asarray(e.ids)
    source_text = source != image_token_id
    target = real & ~is_image
    if target.sum() != source_text.sum() or not np.array_equal(ids[target], source[source_text]):
        raise RuntimeError(f"sample {e.sid!r}: the processor's tokens do not match the tokenizer's "
                           "(outside the image tokens); cannot locate the answer tokens")
    mask = np.zeros(len(ids), dtype=bool)
    mask[target] = e.answer[source_text]
    return mask


def _is_vision_model(model) -> bool:
    config = getattr(model, "config", None)
    return getattr(config, "vision_config", None) is not None


def _context_length(model, cap: int = 8192) -> int:
    config = model.config
    config = getattr(config, "text_config", None) or config
    n = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 2048
    return int(min(n, cap))


def _image_token_id(model, tokenizer, image_token) -> int:
    config = model.config
    for name in ("image_token_id", "image_token_index"):
        value = getattr(config, name, None)
        if value is not None:
            return int(value)
    return int(tokenizer.convert_tokens_to_ids(image_token))


def _supports_mask_logits(model) -> bool:
    """Whether ``model.forward`` takes ``logits_to_keep`` and this transformers slices with a boolean mask."""
    try:
        from transformers.modeling_utils import slice_logits_to_keep  # noqa: F401  (bool masks, transformers 5)
    except ImportError:
        return False
    return "logits_to_keep" in inspect.signature(model.forward).parameters
