"""Rich capability scores and interaction styles from a vision-language model (mmSSR; see docs/methods.md).

Any Hugging Face LLaVA-style image-text-to-text model works (LLaVA-OneVision first): a released mmSSR
scorer/styler converted to the Hugging Face format (``python -m kit.mmssr.convert SRC DST``),
``llava-hf/llava-onevision-qwen2-0.5b-ov-hf``, or a local folder, loaded with ``AutoProcessor`` /
``AutoModelForImageTextToText``::

    scorer = VLMRichScorer("path/to/mmssr-7b-scorer-hf", device="cuda")       # logits mode
    table = scorer.score(pool)        # one row per sample: 14 integer ratings, their expected values, status
    styles = VLMStyler("path/to/mmssr-7b-styler-hf", device="cuda").score(pool)   # "styles" column

The input is the official one (docs/methods.md, "The scorer's input"):

- text: byte for byte the official prompt (:mod:`kit.mmssr.prompts`);
- token ids (``tokens="official"``, default): built like the official ``preprocess_qwen``, piece by piece,
  with the image placeholder followed by its own newline ids (:mod:`kit.mmssr.tokens`); ``tokens="text"``
  tokenises the chat string whole instead (what a Hugging Face processor does);
- image (``image_view="base"``, default): the official single view, the image resized to the vision
  tower's square input (``image_processor.preprocess(image)`` in the official script): its patch features,
  projected, and LLaVA-OneVision's ``image_newline`` after them; ``image_view="tiles"`` feeds the processor's
  anyres tiles instead (what the Hugging Face model does with the processor's output).

The image features are computed by the kit and spliced into the input embeddings at the placeholder, so the
model runs on ``inputs_embeds``. Two modes:

``generate``
    The official protocol: for each sample, one greedy generation per capability and one for the style
    query, batch size 1, the image encoded each time. A score that is not an integer 0-5 is NaN; styles are
    split on commas; every name is kept in ``styles`` (the official sampler bins any name) and the ones
    outside the 9 are also listed in ``styles_unknown``.

``logits`` (default)
    The image and conversation (the prefix shared by all queries of a sample) are encoded once. On top of its
    key/value cache, all capability queries of the sample run in one packed row: the stem they share ("On a
    scale of 0 to 5, ... Model for") once, then each query's tail, with a 4-D attention mask so that every
    tail sees only the prefix, the stem and itself (``packed=False`` instead expands the cache to one row per
    query). The score is read from the next-token distribution restricted to the six digit tokens (softmax
    renormalised over 0-5): ``<key>`` is the most likely digit (the integer rating, equal to the greedy
    answer of a digit-restricted generation), ``<key>_expected`` the expected score and ``digit_mass`` the
    share of the full next-token probability that fell on digits (averaged over capabilities; a model that
    was not trained to answer with a digit shows it here). The style answer is a greedy generation that
    continues from the same cached prefix. Several samples run together with ``batch_size`` (prefixes
    left-padded, queries right-padded; rotary positions are relative, so padding does not change results
    beyond float rounding).

Both modes give one row per pool sample: a sample whose image cannot be decoded or whose forward fails keeps
its row with NaN scores and a ``status`` saying why; ``status`` also names unparsed scores and unknown styles.

On the released checkpoints: ``mengyaolyu/mmssr-7b-scorer`` / ``-styler`` are in the original LLaVA-NeXT
format, not the Hugging Face one; convert them first with ``python -m kit.mmssr.convert``.
"""
from __future__ import annotations

import copy
import inspect
import math
import sys
import warnings
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from kit.capabilities import STYLES, capability_keys, expected_column, get_capability
from kit.conversation import common_prefix_length
from kit.models.hf import load_pretrained, resolve_dtype
from kit.mmssr.prompts import (IMAGE_MODES, SYSTEM_PROMPT, add_image_newline, capability_query, ensure_image_token,
                               parse_score, prompt_parts, style_query, user_content)
from kit.mmssr.tokens import (IMAGE_TOKEN_INDEX, TOKEN_MODES, official_input_ids_batch, split_shared_prefix,
                              text_input_ids)

DIGITS = "012345"
MODES = ("logits", "generate")
IMAGE_VIEWS = ("base", "tiles")
STYLE = "style"  # the name of the style query among a sample's queries


# ----------------------------------------------------------------------------- model loading and digits
def load_vlm(model, processor=None, device: str = "cpu", dtype=None, trust_remote_code: bool = False):
    """``(model, processor)`` from a hub name / local folder (or pass loaded objects through), in eval mode."""
    if isinstance(model, (str, Path)):
        model, processor = load_pretrained(model, dtype, device, vision=True, processor=processor,
                                           trust_remote_code=trust_remote_code)
    elif processor is None:
        raise ValueError("a model object needs its processor: pass processor=...")
    elif dtype is not None:
        model = model.to(device=device, dtype=resolve_dtype(dtype, device))
    else:
        model = model.to(device)
    if not hasattr(processor, "tokenizer"):
        raise TypeError(f"{type(processor).__name__} has no tokenizer; an image-text-to-text processor is needed")
    model.eval()
    return model, processor


def digit_token_ids(tokenizer) -> list[list[int]]:
    """For each digit 0..5, the single tokens that spell it: the bare digit first, then any one-token variant
    with a leading space (``" 3"``, ``"▁3"``). Raises if a bare digit is not one token."""
    out = []
    for d in DIGITS:
        ids = tokenizer.encode(d, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"the tokenizer splits the digit {d!r} into {len(ids)} tokens {ids}; "
                             "logits mode needs one token per digit (use mode='generate')")
        variants = [ids[0]]
        spaced = tokenizer.encode(" " + d, add_special_tokens=False)
        if len(spaced) == 1 and spaced[0] not in variants:
            variants.append(spaced[0])
        out.append(variants)
    return out


def digits_only_processor(allowed_ids: Sequence[int]):
    """A ``LogitsProcessor`` that leaves only ``allowed_ids`` possible (for digit-restricted generation)."""
    import torch
    from transformers import LogitsProcessor

    class DigitsOnly(LogitsProcessor):
        def __call__(self, input_ids, scores):
            mask = torch.full_like(scores, float("-inf"))
            mask[:, list(allowed_ids)] = 0
            return scores + mask

    return DigitsOnly()


@dataclass
class _Sample:
    """One sample ready for the model: the prompt texts and the input ids of every query.

    ``prefix`` + ``suffixes[name]`` is the chat string of query ``name``; ``ids[name]`` its input ids, with
    :data:`~kit.mmssr.tokens.IMAGE_TOKEN_INDEX` where the image features go.
    """

    id: str
    image: Any
    prefix: str
    suffixes: dict[str, str]
    ids: dict[str, list[int]]


def _answer_names(text) -> list[str]:
    """A styler answer split on commas, stripped, de-duplicated in order (the official ``parse_sty``, except
    that an empty piece is dropped, where ``parse_sty`` makes it a ``"+source"`` bin)."""
    names: list[str] = []
    for piece in str(text or "").split(","):
        name = piece.strip()
        if name and name not in names:
            names.append(name)
    return names


# ----------------------------------------------------------------------------- the scorer's options
@dataclass
class LoadConfig:
    """Where and how the model is loaded: ``device``, ``dtype`` (default: the checkpoint's; see
    :func:`kit.models.hf.resolve_dtype`) and ``trust_remote_code`` (passed to ``from_pretrained``)."""

    device: str = "cpu"
    dtype: Any = None
    trust_remote_code: bool = False

    def __post_init__(self):
        self.device, self.trust_remote_code = str(self.device), bool(self.trust_remote_code)


@dataclass
class InputConfig:
    """What the model sees (docs/methods.md, "The scorer's input").

    ``image``: where the ``<image>`` placeholder goes (``"inline"`` as the official inference, ``"front"`` as
    LLaVA-NeXT training); ``system``: the system prompt; ``ensure_image``: add ``<image>\\n`` to a conversation
    that names no image (else the image is not seen, as in the official script). ``tokens``: ``"official"``
    (input ids built like the official ``preprocess_qwen``: an extra newline after the image, each text chunk
    tokenised on its own) or ``"text"`` (the chat string tokenised whole); ``image_newline``: with
    ``tokens="text"`` only, a ``"\\n"`` after ``<image>`` in the text (the text equivalent of the official extra
    newline; a BPE tokenizer merges it with the next one, unlike the official ids). ``image_view``: ``"base"``
    (the official single view: the image resized to the vision tower's input, no tiles) or ``"tiles"`` (the
    processor's anyres tiles, packed by the model's ``get_image_features``).
    """

    image: str = "inline"
    system: str = SYSTEM_PROMPT
    ensure_image: bool = True
    tokens: str = "official"
    image_newline: bool = False
    image_view: str = "base"

    def __post_init__(self):
        for name, value, allowed in (("image", self.image, IMAGE_MODES), ("tokens", self.tokens, TOKEN_MODES),
                                     ("image_view", self.image_view, IMAGE_VIEWS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
        self.ensure_image, self.image_newline = bool(self.ensure_image), bool(self.image_newline)
        if self.image_newline and self.tokens != "text":
            raise ValueError("image_newline=True is the text equivalent of the official token ids: use it with "
                             "tokens='text' (tokens='official' already puts the newline ids after the image)")


@dataclass
class DecodeConfig:
    """Greedy answers: ``max_new_tokens`` for a score (generate mode), ``style_max_new_tokens`` for the style
    answer; ``restrict_digits`` (generate mode only) allows nothing but the six digit tokens and generates one
    token (the digit the model prefers; equals the logits-mode argmax)."""

    max_new_tokens: int = 8
    style_max_new_tokens: int = 48
    restrict_digits: bool = False

    def __post_init__(self):
        self.max_new_tokens, self.style_max_new_tokens = int(self.max_new_tokens), int(self.style_max_new_tokens)
        self.restrict_digits = bool(self.restrict_digits)


@dataclass
class BatchConfig:
    """How logits mode groups its work (generate mode runs one query at a time, as the official code).

    ``batch_size``: samples per forward; ``query_batch_size``: at most this many (sample, query) pairs share one
    forward (bounds memory); ``packed``: pack all queries of a sample into one row after its cached prefix, with
    a 4-D attention mask (``None``, default: yes, unless the model runs flash attention, which takes no custom
    masks), or expand the cache to one row per query (``False``; copies the prefix cache once per query).
    """

    batch_size: int = 1
    query_batch_size: int | None = None
    packed: bool | None = None

    def __post_init__(self):
        if int(self.batch_size) < 1 or (self.query_batch_size is not None and int(self.query_batch_size) < 1):
            raise ValueError("batch_size and query_batch_size must be at least 1")
        self.batch_size = int(self.batch_size)
        self.query_batch_size = None if self.query_batch_size is None else int(self.query_batch_size)


# The scorer's config objects by attribute; each of their fields is also a flat keyword option of VLMRichScorer.
CONFIGS = {"loading": LoadConfig, "inputs": InputConfig, "decoding": DecodeConfig, "batching": BatchConfig}


def _configs(given: dict, options: dict) -> dict:
    """Each config of :data:`CONFIGS`: the one given (or the defaults) with the flat ``options`` naming its fields."""
    owner = {f.name: attr for attr, cls in CONFIGS.items() for f in fields(cls)}
    unknown = sorted(set(options) - set(owner))
    if unknown:
        raise TypeError(f"VLMRichScorer got unknown options {unknown}; its options are mode, capabilities, style, "
                        f"progress and {sorted(owner)}")
    out = {}
    for attr, cls in CONFIGS.items():
        base = given.get(attr)
        if base is not None and not isinstance(base, cls):
            raise TypeError(f"{attr}= takes a {cls.__name__}, not {type(base).__name__}")
        mine = {k: v for k, v in options.items() if owner[k] == attr}
        out[attr] = replace(base or cls(), **mine) if mine else (base or cls())
    return out


# ----------------------------------------------------------------------------- the scorer
class VLMRichScorer:
    """Rich capability scores (and optionally styles) from an image-text-to-text model.

    Parameters
    ----------
    model, processor
        A hub name or local folder (loaded with ``AutoModelForImageTextToText``/``AutoProcessor``), or a loaded
        model with its processor.
    mode
        ``"logits"`` (default: cached prefix, expected score over the digits) or ``"generate"`` (the official
        greedy protocol).
    capabilities
        Capability keys to rate (default: all registered, in registry order); ``[]`` rates none.
    style
        Also ask the style query (adds ``styles``, ``styles_unknown`` and ``style_text`` columns).
    loading, inputs, decoding, batching
        The other options, in four groups: :class:`LoadConfig` (``device``, ``dtype``, ``trust_remote_code``),
        :class:`InputConfig` (``image``, ``system``, ``ensure_image``, ``tokens``, ``image_newline``,
        ``image_view``), :class:`DecodeConfig` (``max_new_tokens``, ``style_max_new_tokens``,
        ``restrict_digits``) and :class:`BatchConfig` (``batch_size``, ``query_batch_size``, ``packed``).
    **options
        Any field of those groups as a flat keyword (``device="cuda", batch_size=8``), as ``kit.score(pool,
        "rich", backend="vlm", ...)`` and ``kit score ... --option k=v`` pass them (and record them, one by
        one); a flat option overrides the same field of a config given beside it.
    """

    def __init__(self, model=None, processor=None, mode: str = "logits", capabilities=None, style: bool = False, *,
                 loading: LoadConfig | None = None, inputs: InputConfig | None = None,
                 decoding: DecodeConfig | None = None, batching: BatchConfig | None = None, progress: bool = True,
                 **options):
        if model is None:
            raise ValueError("VLMRichScorer needs model=: a hub name or folder of an image-text-to-text model "
                             "(e.g. an mmSSR scorer converted to the Hugging Face format, or "
                             "'llava-hf/llava-onevision-qwen2-0.5b-ov-hf'), or a loaded model with processor=")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        keys = capability_keys() if capabilities is None else list(capabilities)
        for key in keys:
            get_capability(key)  # unknown keys fail here, naming the registered ones
        if len(set(keys)) != len(keys):
            raise ValueError(f"capabilities has duplicates: {keys}")
        if not keys and not style:
            raise ValueError("nothing to ask: give capabilities or style=True")
        groups = _configs({"loading": loading, "inputs": inputs, "decoding": decoding, "batching": batching}, options)
        self.loading, self.inputs = groups["loading"], groups["inputs"]
        self.decoding, self.batching = groups["decoding"], groups["batching"]
        self.capabilities, self.style, self.mode, self.progress = keys, bool(style), mode, progress
        self._model_arg, self._processor_arg = model, processor
        self._model = self._processor = None

    # ------------------------------------------------------------------ lazy model
    def _load(self):
        if self._model is None:
            self._model, self._processor = load_vlm(self._model_arg, self._processor_arg, self.loading.device,
                                                    self.loading.dtype, self.loading.trust_remote_code)
            self._model_arg = self._processor_arg = None  # do not keep a second reference
            tok = self.tokenizer
            self._digits = digit_token_ids(tok)
            eos = self._model.generation_config.eos_token_id
            eos = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
            if tok.eos_token_id is not None:
                eos.append(tok.eos_token_id)
            self._eos = sorted(set(eos))
            self._pad = tok.pad_token_id if tok.pad_token_id is not None else (self._eos or [0])[0]
            params = inspect.signature(self._model.forward).parameters
            self._cache_kw = "cache" if "cache" in params else "past_key_values"
            module = sys.modules.get(type(self._model).__module__)
            self._keep_per_row = hasattr(module, "slice_logits_to_keep")  # 2-D logits_to_keep understood
        return self._model, self._processor

    @property
    def model(self):
        return self._load()[0]

    @property
    def processor(self):
        return self._load()[1]

    @property
    def tokenizer(self):
        return self._load()[1].tokenizer

    # ------------------------------------------------------------------ prompts
    def query_names(self) -> list[str]:
        return self.capabilities + ([STYLE] if self.style else [])

    def _query_text(self, name: str) -> str:
        return style_query() if name == STYLE else capability_query(get_capability(name).keyword)

    def prepare(self, sample_id, conversations, image) -> _Sample:
        """The prefix (system, user header, conversation) and the suffix of every query of one sample."""
        conv = ensure_image_token(conversations) if self.inputs.ensure_image else conversations
        prefix, suffixes = None, {}
        for name in self.query_names():
            try:
                pre, suf = prompt_parts(conv, self._query_text(name), image=self.inputs.image,
                                        system=self.inputs.system)
            except ValueError as exc:
                raise ValueError(f"sample {sample_id!r}: {exc}") from exc
            if prefix is not None and pre != prefix:
                raise ValueError(f"sample {sample_id!r}: the queries do not share one prompt prefix")
            prefix, suffixes[name] = pre, suf
        if self.inputs.image_newline:
            prefix = add_image_newline(prefix)
        names = list(suffixes)
        if self.inputs.tokens == "official":
            contents = [user_content(conv, self._query_text(name), image=self.inputs.image) for name in names]
            ids = dict(zip(names, official_input_ids_batch(self.tokenizer, contents, self.inputs.system)))
        else:
            ids = {name: text_input_ids(self.tokenizer, prefix + suffixes[name], self._image_token_id())
                   for name in names}
        for name in names:
            if ids[name].count(IMAGE_TOKEN_INDEX) > 1:
                raise ValueError(f"sample {sample_id!r}: the prompt has {ids[name].count(IMAGE_TOKEN_INDEX)} image "
                                 "placeholders but a sample has one image")
        return _Sample(sample_id, image, prefix, suffixes, ids)

    def full_prompt(self, sample: _Sample, name: str) -> str:
        """The complete text of one query (what generate mode and a plain forward see)."""
        return sample.prefix + sample.suffixes[name]

    # ------------------------------------------------------------------ model calls
    def _to_device(self, batch) -> dict:
        import torch

        dtype, device = next(self.model.parameters()).dtype, self.loading.device
        out = {}
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                value = value.to(device, dtype=dtype) if value.is_floating_point() else value.to(device)
            out[key] = value
        return out

    def _forward(self, **kwargs):
        cache = kwargs.pop("cache", None)
        if cache is not None:
            kwargs[self._cache_kw] = cache
        out = self.model(use_cache=True, **kwargs)
        cache = getattr(out, "cache", None)
        if cache is None:
            cache = getattr(out, "past_key_values", None)
        return out.logits, cache

    def _split_tokens(self, samples: list[_Sample]):
        """Per sample ``(prefix ids, {query: suffix ids})``: the ids all of its queries share, and the rest.

        ``prefix + suffix`` is exactly the query's full id list; the image placeholder must be in the prefix.
        """
        plans = []
        for s in samples:
            names = list(s.ids)
            prefix, rest = split_shared_prefix([s.ids[name] for name in names])
            if any(IMAGE_TOKEN_INDEX in ids for ids in rest):
                raise ValueError(f"sample {s.id!r}: the image placeholder is not inside the shared prompt prefix")
            plans.append((prefix, dict(zip(names, rest))))
        return plans

    # ------------------------------------------------------------------ images and embeddings
    def _image_token_id(self):
        cfg = self.model.config
        for name in ("image_token_id", "image_token_index"):
            if getattr(cfg, name, None) is not None:
                return int(getattr(cfg, name))
        tid = self.tokenizer.convert_tokens_to_ids("<image>")
        return None if tid is None or tid == self.tokenizer.unk_token_id else int(tid)

    def _vision_parts(self):
        """(vision tower, projector, image_newline or None) of a LLaVA-style model (transformers 4 and 5)."""
        holders = [self.model, getattr(self.model, "model", None)]
        found = {}
        for name in ("vision_tower", "multi_modal_projector", "image_newline"):
            for holder in holders:
                if holder is not None and getattr(holder, name, None) is not None:
                    found[name] = getattr(holder, name)
                    break
        if "vision_tower" not in found or "multi_modal_projector" not in found:
            raise TypeError(f"{type(self.model).__name__} has no LLaVA-style vision_tower / multi_modal_projector; "
                            "image_view='base' needs one (try image_view='tiles')")
        return found["vision_tower"], found["multi_modal_projector"], found.get("image_newline")

    def base_view_pixels(self, images):
        """The official single view (``SigLipImageProcessor.preprocess`` of the official code): RGB, resized to
        the image processor's ``size`` (bicubic, the aspect ratio not kept), rescaled and normalised with the
        processor's mean and std. Computed with PIL as the official code does, whatever backend the processor uses.
        """
        import torch
        from transformers.image_transforms import normalize, rescale, resize, to_channel_dimension_format
        from transformers.image_utils import ChannelDimension, PILImageResampling, to_numpy_array

        proc = self.processor.image_processor
        size = proc.size
        get = (lambda k: getattr(size, k, None)) if not isinstance(size, dict) else size.get
        if get("height") and get("width"):
            hw = (int(get("height")), int(get("width")))
        elif get("shortest_edge"):
            hw = (int(get("shortest_edge")),) * 2
        else:
            raise ValueError(f"cannot read a square input size from the image processor's size {size!r}")
        resample = PILImageResampling(int(getattr(proc, "resample", PILImageResampling.BICUBIC)))
        first = ChannelDimension.FIRST
        out = []
        for image in images:
            x = to_numpy_array(image.convert("RGB") if hasattr(image, "convert") else image)
            x = resize(x, size=hw, resample=resample, data_format=first)
            x = rescale(x, scale=float(getattr(proc, "rescale_factor", 1 / 255)), data_format=first)
            x = normalize(x, mean=proc.image_mean, std=proc.image_std, data_format=first)
            out.append(to_channel_dimension_format(x, channel_dim=first, input_channel_dim=first))
        return torch.tensor(np.stack(out))

    def image_features(self, images) -> list:
        """Per image, the feature rows the language model sees in place of the placeholder (``image_view``)."""
        import torch

        proc = getattr(self.processor, "image_processor", None)
        if proc is None:
            raise TypeError(f"{type(self.processor).__name__} has no image_processor")
        dtype, device = next(self.model.parameters()).dtype, self.loading.device
        cfg = self.model.config
        layer = getattr(cfg, "vision_feature_layer", -1)
        strategy = getattr(cfg, "vision_feature_select_strategy", "full")
        with torch.inference_mode():
            if self.inputs.image_view == "tiles":
                batch = proc(images=list(images), return_tensors="pt")
                out = self.model.get_image_features(pixel_values=batch["pixel_values"].to(device, dtype=dtype),
                                                    image_sizes=batch["image_sizes"].to(device),
                                                    vision_feature_layer=layer,
                                                    vision_feature_select_strategy=strategy)
                feats = getattr(out, "pooler_output", out)
                return [f.reshape(-1, f.shape[-1]) for f in feats]
            tower, projector, newline = self._vision_parts()
            pixels = self.base_view_pixels(images).to(device, dtype=dtype)
            hidden = tower(pixels, output_hidden_states=True).hidden_states
            chosen = hidden[layer] if isinstance(layer, int) else torch.cat([hidden[k] for k in layer], dim=-1)
            if strategy == "default":
                chosen = chosen[:, 1:]
            feats = projector(chosen)
            if newline is not None:
                feats = torch.cat([feats, newline.to(feats)[None, None].expand(len(feats), 1, -1)], dim=1)
            return list(feats)

    def embed(self, ids: list[int], features=None):
        """Input embeddings (len, hidden) of ``ids``, the image features spliced in at the placeholder."""
        import torch

        table = self.model.get_input_embeddings()
        device = table.weight.device
        plain = torch.tensor([self._pad if t == IMAGE_TOKEN_INDEX else t for t in ids], dtype=torch.long,
                             device=device)
        emb = table(plain)
        if IMAGE_TOKEN_INDEX not in ids:
            return emb
        if features is None:
            raise ValueError("the prompt has an image placeholder but no image features were given")
        at = ids.index(IMAGE_TOKEN_INDEX)
        return torch.cat([emb[:at], features.to(emb), emb[at + 1:]], dim=0)

    def _sample_features(self, samples: list[_Sample], plans) -> list:
        needs = [i for i, (prefix, _) in enumerate(plans) if IMAGE_TOKEN_INDEX in prefix]
        feats = [None] * len(samples)
        if needs:
            for i, f in zip(needs, self.image_features([samples[i].image for i in needs])):
                feats[i] = f
        return feats

    def _encode_prefixes(self, samples: list[_Sample]):
        """Encode image + prefix of each sample once; returns (cache, prefix mask, {query: suffix ids} per sample)."""
        import torch

        plans = self._split_tokens(samples)
        feats = self._sample_features(samples, plans)
        rows = [self.embed(prefix, f) for (prefix, _), f in zip(plans, feats)]
        width = max(len(r) for r in rows)
        pad = self.embed([self._pad])[0]
        embeds = pad.expand(len(rows), width, -1).clone()
        attention = torch.zeros((len(rows), width), dtype=torch.long, device=embeds.device)
        for r, row in enumerate(rows):
            embeds[r, width - len(row):] = row
            attention[r, width - len(row):] = 1
        _, cache = self._forward(inputs_embeds=embeds, attention_mask=attention, logits_to_keep=1)
        return cache, attention, [plan[1] for plan in plans]

    def _select(self, cache, n_rows: int, index, reuse: bool):
        """Cache rows ``index`` (repeats allowed): a copy, or with ``reuse`` the cache itself (then consumed)."""
        work = cache if reuse else copy.deepcopy(cache)
        if index.tolist() != list(range(n_rows)):
            work.batch_select_indices(index)
        return work

    def _run_rows(self, cache, prefix_mask, rows: list[tuple[int, list[int]]], reuse: bool = False):
        """Next-token logits after each (cache row, token ids), all continuing the cached prefixes.

        Token ids are right-padded; the logits are read at each row's last real token. The cache is copied
        before it is expanded unless ``reuse`` (then it is consumed). Returns (logits (rows, vocab), cache, mask).
        """
        import torch

        device = prefix_mask.device
        index = torch.tensor([r for r, _ in rows], device=device)
        lengths = [len(ids) for _, ids in rows]
        width = max(lengths)
        suffix = torch.full((len(rows), width), self._pad, dtype=torch.long)
        smask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (_, ids) in enumerate(rows):
            suffix[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
            smask[i, :len(ids)] = 1
        work = self._select(cache, prefix_mask.shape[0], index, reuse)
        mask = torch.cat([prefix_mask[index], smask.to(device)], dim=1)
        last = torch.tensor(lengths, device=device) - 1
        if self._keep_per_row:  # transformers 5: one position per row
            logits, work = self._forward(input_ids=suffix.to(device), attention_mask=mask, cache=work,
                                         logits_to_keep=last[:, None])
            picked = logits[:, 0]
        else:  # the union of the rows' last positions, then one per row
            keep = torch.unique(last)
            logits, work = self._forward(input_ids=suffix.to(device), attention_mask=mask, cache=work,
                                         logits_to_keep=keep)
            picked = logits[torch.arange(len(rows), device=logits.device), torch.searchsorted(keep, last)]
        return picked.float(), work, mask

    def next_token_logits(self, samples: list[_Sample], names: Sequence[str] | None = None):
        """Next-token logits (samples, queries, vocab) of ``names`` (default: the capabilities), prefix cached."""
        import torch

        names = list(self.capabilities if names is None else names)
        with torch.inference_mode():
            cache, pmask, suffixes = self._encode_prefixes(samples)
            return self._query_logits(cache, pmask, suffixes, names, reuse=True)

    def _query_logits(self, cache, pmask, suffixes, names, reuse: bool = False):
        """Logits (samples, queries, vocab) of the queries ``names``, continuing the cached prefixes."""
        if self._use_packed():
            return self._packed_query_logits(cache, pmask, suffixes, names)
        return self._expanded_query_logits(cache, pmask, suffixes, names, reuse=reuse)

    def _use_packed(self) -> bool:
        if self.batching.packed is not None:
            return bool(self.batching.packed)
        config = self.model.config
        attn = str(getattr(config, "_attn_implementation", "") or "")
        if attn.startswith(("flash", "paged")):  # these kernels take no custom 4-D mask
            return False
        text = getattr(config, "text_config", None) or config
        rope = getattr(text, "rope_scaling", None) or getattr(text, "rope_parameters", None) or {}
        # packing passes 1-D position ids; multimodal rotary positions (Qwen2-VL's mrope) need the expanded cache
        return not (isinstance(rope, dict) and "mrope_section" in rope)

    @staticmethod
    def _stem_length(lists) -> int:
        """Tokens all of a sample's queries share (each query keeps at least one token of its own)."""
        k = min(len(ids) for ids in lists) - 1
        for ids in lists[1:]:
            k = min(k, common_prefix_length(lists[0], ids))
        return max(k, 0)

    def _packed_query_logits(self, cache, pmask, suffixes, names):
        """All queries of a sample packed into one row after its cached prefix (no cache copies).

        Row layout: the shared query stem ("On a scale of 0 to 5, ... Model for"), then each query's tail
        (keyword, end of turn, assistant header). A 4-D attention mask lets every tail see the prefix, the stem
        and its own earlier tokens only, and each tail's positions restart after the stem, so each tail's last
        logits equal a forward of that query alone. The cache is cropped back to the prefix afterwards.
        Queries are packed ``query_batch_size // samples`` at a time when ``query_batch_size`` is set.
        """
        import torch

        device, width = pmask.device, pmask.shape[1]
        qbs = self.batching.query_batch_size
        per_chunk = len(names) if qbs is None else max(qbs // len(suffixes), 1)
        parts = []
        for c in range(0, len(names), per_chunk):
            chunk = names[c:c + per_chunk]
            rows, lasts = [], []
            for suf in suffixes:
                lists = [suf[name] for name in chunk]
                k = self._stem_length(lists)
                ids, seg, pos, last = list(lists[0][:k]), [-1] * k, list(range(k)), []
                for j, full in enumerate(lists):
                    tail = full[k:]
                    ids += tail
                    seg += [j] * len(tail)
                    pos += range(k, k + len(tail))
                    last.append(len(ids) - 1)
                rows.append((ids, seg, pos))
                lasts.append(last)
            total = max(len(r[0]) for r in rows)
            input_ids = torch.full((len(rows), total), self._pad, dtype=torch.long)
            segment = torch.full((len(rows), total), -2, dtype=torch.long)  # -2 padding, -1 stem, j tail j
            position = torch.zeros((len(rows), total), dtype=torch.long)
            for r, (ids, seg, pos) in enumerate(rows):
                input_ids[r, :len(ids)] = torch.tensor(ids)
                segment[r, :len(seg)] = torch.tensor(seg)
                position[r, :len(pos)] = torch.tensor(pos)
            # positions continue the prefix's: the model numbered its (left-padded) cache 0..width-1
            segment, position = segment.to(device), position.to(device) + width
            q_seg, k_seg = segment[:, :, None], segment[:, None, :]
            causal = torch.ones(total, total, dtype=torch.bool, device=device).tril()
            new_keys = causal & (k_seg != -2) & ((k_seg == q_seg) | (k_seg == -1))
            old_keys = pmask.bool()[:, None, :].expand(-1, total, -1)
            allowed = torch.cat([old_keys, new_keys], dim=2)[:, None]
            dtype = next(self.model.parameters()).dtype
            mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
            mask.masked_fill_(~allowed, torch.finfo(dtype).min)
            last = torch.tensor(lasts, device=device)
            if self._keep_per_row:
                logits, cache = self._forward(input_ids=input_ids.to(device), attention_mask=mask,
                                              position_ids=position, cache=cache, logits_to_keep=last)
            else:
                keep = torch.unique(last)
                logits, cache = self._forward(input_ids=input_ids.to(device), attention_mask=mask,
                                              position_ids=position, cache=cache, logits_to_keep=keep)
                logits = torch.gather(logits, 1, torch.searchsorted(keep, last)[..., None]
                                      .expand(-1, -1, logits.shape[-1]))
            extra = cache.get_seq_length() - width
            if extra > 0:
                cache.crop(-extra)  # a negative count removes that many tokens (transformers 4 and 5 alike)
            parts.append(logits.float())
        return torch.cat(parts, dim=1)

    def _expanded_query_logits(self, cache, pmask, suffixes, names, reuse: bool = False):
        """Logits (samples, queries, vocab) of the queries ``names``, one cache row per (sample, query).

        Two cache levels: the capability queries of a sample share a long stem ("On a scale of 0 to 5, ...
        Model for"), which is encoded once per sample on top of the prefix; only the short tails (keyword, end
        of turn, assistant header) run once per query, as one batch per ``query_batch_size`` rows. Samples are
        grouped by stem length so no padding sits between stem and tail. ``reuse`` lets the cache be consumed.
        """
        import torch

        stems = [self._stem_length([suf[name] for name in names]) for suf in suffixes]
        groups: dict[int, list[int]] = {}
        for r, k in enumerate(stems):
            groups.setdefault(k, []).append(r)
        out: dict[int, Any] = {}
        for g, (k, members) in enumerate(groups.items()):
            last_group = reuse and g == len(groups) - 1
            if k:
                idx = torch.tensor(members, device=pmask.device)
                work = self._select(cache, pmask.shape[0], idx, reuse=last_group)
                stem = torch.tensor([suffixes[r][names[0]][:k] for r in members], device=pmask.device)
                mask = torch.cat([pmask[idx], torch.ones_like(stem)], dim=1)
                _, work = self._forward(input_ids=stem, attention_mask=mask, cache=work, logits_to_keep=1)
                row_of, owned = {r: i for i, r in enumerate(members)}, True
            else:
                work, mask, row_of, owned = cache, pmask, {r: r for r in members}, last_group
            rows = [(row_of[r], suffixes[r][name][k:]) for r in members for name in names]
            step = self.batching.query_batch_size or len(rows)
            starts = list(range(0, len(rows), step))
            parts = [self._run_rows(work, mask, rows[i:i + step], reuse=owned and i == starts[-1])[0]
                     for i in starts]
            logits = torch.cat(parts).reshape(len(members), len(names), -1)
            out.update({r: logits[i] for i, r in enumerate(members)})
        return torch.stack([out[r] for r in range(len(suffixes))])

    def _greedy_style(self, cache, pmask, suffixes) -> list[str]:
        """Greedy style answers continuing the cached prefixes (consumes the cache)."""
        import torch

        by_length: dict[int, list[int]] = {}
        for r, suf in enumerate(suffixes):
            by_length.setdefault(len(suf[STYLE]), []).append(r)
        groups = list(by_length.values())
        texts = [""] * len(suffixes)
        eos = torch.tensor(self._eos or [-1], device=pmask.device)
        for g, members in enumerate(groups):
            last_group = g == len(groups) - 1
            logits, work, mask = self._run_rows(cache, pmask, [(r, suffixes[r][STYLE]) for r in members],
                                                reuse=last_group)
            out = []
            done = torch.zeros(len(members), dtype=torch.bool, device=pmask.device)
            for step in range(self.decoding.style_max_new_tokens):
                nxt = logits.argmax(-1).to(pmask.device)
                nxt = torch.where(done, torch.full_like(nxt, self._pad), nxt)
                out.append(nxt)
                done |= torch.isin(nxt, eos)
                if bool(done.all()) or step == self.decoding.style_max_new_tokens - 1:
                    break
                mask = torch.cat([mask, torch.ones((len(members), 1), dtype=mask.dtype, device=mask.device)], 1)
                lg, work = self._forward(input_ids=nxt[:, None], attention_mask=mask, cache=work, logits_to_keep=1)
                logits = lg[:, -1].float()
            tokens = torch.stack(out, 1).tolist() if out else [[] for _ in members]
            for r, toks in zip(members, tokens):
                texts[r] = self._decode(toks)
        return texts

    def _decode(self, token_ids) -> str:
        ids = []
        for t in token_ids:
            if t in self._eos:
                break
            ids.append(t)
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def full_embeddings(self, sample: _Sample, name: str):
        """Input embeddings (1, len, hidden) of the complete query ``name``: image features spliced in."""
        ids = sample.ids[name]
        feats = self.image_features([sample.image])[0] if IMAGE_TOKEN_INDEX in ids else None
        return self.embed(ids, feats)[None]

    def generate_text(self, sample: _Sample, name: str, restrict_digits: bool | None = None) -> str:
        """One official greedy generation: image + full prompt of query ``name``, batch size 1."""
        import torch
        from transformers import LogitsProcessorList

        restrict = self.decoding.restrict_digits if restrict_digits is None else restrict_digits
        restrict = restrict and name != STYLE
        extra = {}
        if restrict:
            extra["logits_processor"] = LogitsProcessorList([digits_only_processor([v[0] for v in self._digits])])
        decoding = self.decoding
        n_new = 1 if restrict else (decoding.style_max_new_tokens if name == STYLE else decoding.max_new_tokens)
        with torch.inference_mode():
            embeds = self.full_embeddings(sample, name)
            mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
            out = self.model.generate(inputs_embeds=embeds, attention_mask=mask, do_sample=False, num_beams=1,
                                      max_new_tokens=n_new, pad_token_id=self._pad, **extra)
        return self._decode(out[0].tolist())   # with inputs_embeds only the new tokens come back

    # ------------------------------------------------------------------ per-batch scoring
    def _digit_scores(self, logits):
        """(samples, caps, vocab) logits -> expected score, argmax digit (the rating), digit probability mass."""
        import torch

        logp = torch.log_softmax(logits.float(), dim=-1)
        per_digit = torch.stack([torch.logsumexp(logp[..., ids], dim=-1) for ids in self._digits], dim=-1)
        mass = per_digit.exp().sum(-1)
        probs = torch.softmax(per_digit, dim=-1)
        expected = (probs * torch.arange(6, dtype=probs.dtype, device=probs.device)).sum(-1)
        return expected.cpu().numpy(), per_digit.argmax(-1).cpu().numpy(), mass.cpu().numpy()

    def _score_logits(self, samples: list[_Sample]) -> list[dict]:
        import torch

        with torch.inference_mode():
            cache, pmask, suffixes = self._encode_prefixes(samples)
            rows = [{} for _ in samples]
            if self.capabilities:
                expected, argmax, mass = self._digit_scores(
                    self._query_logits(cache, pmask, suffixes, self.capabilities, reuse=not self.style))
                for r in range(len(samples)):
                    for c, key in enumerate(self.capabilities):
                        rows[r][key] = float(argmax[r, c])
                        rows[r][expected_column(key)] = float(expected[r, c])
                    rows[r]["digit_mass"] = float(mass[r].mean())
            if self.style:
                for r, text in enumerate(self._greedy_style(cache, pmask, suffixes)):
                    rows[r].update(self._style_fields(text))
        for row in rows:
            row["status"] = self._status(row)
        return rows

    def _score_generate(self, sample: _Sample) -> dict:
        row = {}
        for key in self.capabilities:
            row[key] = parse_score(self.generate_text(sample, key))
        if self.style:
            row.update(self._style_fields(self.generate_text(sample, STYLE)))
        row["status"] = self._status(row)
        return row

    @staticmethod
    def _style_fields(text: str) -> dict:
        names = _answer_names(text)   # every name is kept: the official sampler bins any text
        return {"styles": names, "styles_unknown": [n for n in names if n not in STYLES], "style_text": text}

    def _status(self, row: dict) -> str:
        notes = []
        unparsed = [k for k in self.capabilities if isinstance(row.get(k), float) and math.isnan(row[k])]
        if unparsed:
            notes.append("unparsed score: " + ",".join(unparsed))
        if row.get("styles_unknown"):
            names = ", ".join(repr(n[:40]) for n in row["styles_unknown"][:3])
            more = len(row["styles_unknown"]) - 3
            notes.append(f"unknown styles: {names}" + (f" (+{more})" if more > 0 else ""))
        return "; ".join(notes) or "ok"

    # ------------------------------------------------------------------ the pool
    def columns(self) -> list[str]:
        cols = list(self.capabilities)
        if self.mode == "logits" and self.capabilities:
            cols += [expected_column(k) for k in self.capabilities] + ["digit_mass"]
        if self.style:
            cols += ["styles", "styles_unknown", "style_text"]
        return cols + ["source", "status"]

    def score(self, pool) -> pd.DataFrame:
        """One row per pool sample (indexed by id); a sample that fails keeps its row with NaN and a status."""
        from tqdm.auto import tqdm

        self._load()
        table = pool.table
        results: dict[str, dict] = {}
        pending: list[_Sample] = []
        first_error = None
        warned: list[bool] = []
        bar = tqdm(total=len(table), desc=f"vlm {self.mode}", disable=not self.progress, unit="sample")

        def run(batch: list[_Sample]):
            nonlocal first_error
            try:
                if self.mode == "logits":
                    rows = self._score_logits(batch)
                else:
                    rows = [self._score_generate(s) for s in batch]
                results.update({s.id: row for s, row in zip(batch, rows)})
            except Exception as exc:  # noqa: BLE001 - retried per sample, then reported per sample
                if len(batch) > 1:
                    if not warned:
                        warnings.warn(f"a batch of {len(batch)} samples failed ({type(exc).__name__}: {exc}); "
                                      "scoring those samples one by one", stacklevel=3)
                        warned.append(True)
                    for s in batch:
                        run([s])
                    return
                first_error = first_error or exc
                results[batch[0].id] = {"status": f"error: {type(exc).__name__}: {exc}"}
            bar.update(len(batch))

        for sid, image, err in pool.iter_images(list(table.index)):
            if image is None:
                results[sid] = {"status": f"image_error: {err}"}
                bar.update(1)
                continue
            try:
                pending.append(self.prepare(sid, table.at[sid, "conversations"], image))
            except ValueError as exc:
                first_error = first_error or exc
                results[sid] = {"status": f"error: {exc}"}
                bar.update(1)
                continue
            if len(pending) >= (self.batching.batch_size if self.mode == "logits" else 1):
                run(pending)
                pending = []
        if pending:
            run(pending)
        bar.close()
        if first_error is not None and len(table) and all(r["status"].startswith(("error", "image_error"))
                                                          for r in results.values()):
            raise RuntimeError(f"no sample could be scored; first error: {first_error}") from first_error
        n_err = sum(r["status"].startswith("error") for r in results.values())
        if n_err:
            warnings.warn(f"{n_err} samples failed (see the status column), e.g. {first_error}", stacklevel=2)
        return self._table(table, results)

    def _table(self, table: pd.DataFrame, results: dict[str, dict]) -> pd.DataFrame:
        out = pd.DataFrame.from_dict(results, orient="index").reindex(table.index)
        for col in self.columns():
            if col not in out:
                out[col] = np.nan
        for key in self.capabilities:
            out[key] = out[key].astype(float)
            if self.mode == "logits":
                out[expected_column(key)] = out[expected_column(key)].astype(float)
        if self.style:
            for col in ("styles", "styles_unknown"):
                out[col] = out[col].map(lambda v: v if isinstance(v, list) else [])
        out["source"] = table["source"]
        out = out[self.columns()]
        out.index.name = "id"
        return out


class VLMStyler(VLMRichScorer):
    """Interaction styles only (the released ``mmssr-7b-styler``): a ``styles`` column of style names.

    Same options as :class:`VLMRichScorer`; in either mode the answer is a greedy generation (in logits mode
    it continues from the cached image + conversation prefix).
    """

    def __init__(self, model=None, processor=None, **options):
        options.pop("style", None)
        options.setdefault("capabilities", [])
        super().__init__(model, processor, style=True, **options)
