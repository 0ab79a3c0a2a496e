"""A kit model as an lmms-eval model: ``lmms-eval --model kit --model_args pretrained=RUN_DIR`` or an instance.

Any folder :func:`kit.finetune.load_model` loads (a kit run folder, its ``model/``, an aligned base, a Hugging
Face image-text-to-text model) is run as the kit runs it: the question in the model's chat template with the
image token first (:class:`kit.finetune.evaluate._Prompts`), one image per question.

- ``loglikelihood`` (``multiple_choice`` tasks): the kit's exact ranking (the prompt runs once, each answer's
  later tokens on its cache; :func:`kit.finetune.evaluate._score_batch`). It returns the **summed negative**
  log-likelihood of the continuation, because lmms-eval picks the choice with the lowest value (its own models
  return a loss), and whether greedy decoding gives the continuation.
- ``generate_until``: greedy decoding (``do_sample``, ``temperature`` and ``num_beams`` are not used: a warning
  says so), cut at the first ``until`` string; ``max_new_tokens`` from the task (default 128).

Registered with lmms-eval through the ``lmms_eval.models`` entry point (:func:`manifest`), so lmms-eval's own
command line finds ``--model kit`` once the kit is installed with the ``eval`` extra.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict

from lmms_eval.api.model import lmms


class KitModel(lmms):
    """lmms-eval's model interface over a model the kit loads (see the module docstring)."""

    is_simple = True

    def __init__(self, pretrained: str, device: str = "auto", batch_size: int | str = 32, dtype: str | None = None,
                 **ignored) -> None:
        super().__init__()
        import torch

        from kit.finetune.evaluate import _cache_kwarg, _Prompts
        from kit.finetune.train import load_model

        if device in (None, "auto"):
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._device = str(device)
        self.model, self.processor = load_model(pretrained, device=self._device, dtype=dtype)
        self.vision = getattr(self.model.config, "vision_config", None) is not None
        self.prompts = _Prompts(self.processor, vision=self.vision)
        self.batch_size_per_gpu = int(batch_size)
        self.cache_kw = _cache_kwarg(self.model)
        tok = self.prompts.tokenizer
        self.pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        self.pretrained = str(pretrained)

    @property
    def device(self):
        return self._device

    # ----------------------------------------------------------------- inputs
    def _question(self, args, kind: str):
        """``(prompt text, images)`` of one request: the kit's chat prompt of the context, the doc's image."""
        context, doc_to_visual, doc_id, task, split = args
        doc = self.task_dict[task][split][doc_id]
        visuals = doc_to_visual(doc) if doc_to_visual is not None else []
        visuals = [v for item in visuals for v in (item if isinstance(item, list) else [item])]
        if self.vision and len(visuals) != 1:
            raise ValueError(f"task {task!r}, document {doc_id}: the kit's model takes one image per question, "
                             f"this {kind} request has {len(visuals)}")
        return self.prompts.prompt(context), (visuals[:1] if self.vision else None)

    # ----------------------------------------------------------------- lmms-eval's interface
    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        """Per request ``(summed negative log-likelihood of the continuation, greedy)``; a question's choices are
        scored together on one run of its prompt."""
        import torch

        from kit.finetune.evaluate import _encode_prompts, _score_batch

        groups: OrderedDict = OrderedDict()
        for n, req in enumerate(requests):
            if len(req.args) != 6:
                raise ValueError(f"the kit's model scores (context, continuation, visual, doc_id, task, split) "
                                 f"requests, not {len(req.args)}-part ones (acc_mutual_info is not supported)")
            context, continuation, doc_to_visual, doc_id, task, split = req.args
            groups.setdefault((task, split, doc_id, context, doc_to_visual), []).append((n, continuation))
        keys = list(groups)
        out: list = [None] * len(requests)
        dtype = next(self.model.parameters()).dtype
        with torch.inference_mode():
            for start in range(0, len(keys), self.batch_size_per_gpu):
                batch = keys[start:start + self.batch_size_per_gpu]
                texts, images, ids = [], [], []
                for task, split, doc_id, context, doc_to_visual in batch:
                    text, visual = self._question((context, doc_to_visual, doc_id, task, split), "loglikelihood")
                    texts.append(text)
                    images += visual or []
                    try:
                        ids.append(self.prompts.answer_ids(text, [c for _, c in groups[(task, split, doc_id,
                                                                                          context, doc_to_visual)]]))
                    except ValueError as exc:
                        raise ValueError(f"task {task!r}, document {doc_id}: {exc}") from None
                enc = _encode_prompts(self.prompts, self.processor, texts, images if self.vision else None,
                                      self._device, dtype)
                scores, greedy = _score_batch(self.model, enc, ids, self.pad, self.cache_kw, self._device)
                for key, sc, gr in zip(batch, scores, greedy):
                    for (n, _), s, g in zip(groups[key], sc, gr):
                        out[n] = (float(-s), bool(g))
        return out

    def generate_until(self, requests) -> list[str]:
        """Greedy generations, cut at the first ``until`` string; requests batched by their token limit."""
        from kit.finetune.evaluate import generate_texts

        out: list = [None] * len(requests)
        by_limit: OrderedDict = OrderedDict()
        for n, req in enumerate(requests):
            context, gen_kwargs, doc_to_visual, doc_id, task, split = req.args
            gen_kwargs = dict(gen_kwargs or {})
            if gen_kwargs.get("do_sample") or float(gen_kwargs.get("temperature") or 0) > 0 or \
                    int(gen_kwargs.get("num_beams") or 1) > 1:
                warnings.warn(f"task {task!r}: the kit's model decodes greedily; do_sample, temperature and "
                              "num_beams are not used", stacklevel=2)
            until = gen_kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            by_limit.setdefault(int(gen_kwargs.get("max_new_tokens") or 128), []).append(
                (n, until, self._question((context, doc_to_visual, doc_id, task, split), "generate_until")))
        for limit, items in by_limit.items():
            texts = [q[0] for _, _, q in items]
            images = [q[1][0] for _, _, q in items] if self.vision else None
            generated = generate_texts(self.model, self.prompts, texts, images, limit, self.batch_size_per_gpu,
                                       self._device)
            for (n, until, _), text in zip(items, generated):
                cuts = [text.find(u) for u in until if u and u in text]
                out[n] = text[:min(cuts)] if cuts else text
        return out

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("the kit's model answers single-round tasks only")


def manifest():
    """lmms-eval's registry entry for ``--model kit`` (the ``lmms_eval.models`` entry point)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id="kit", simple_class_path="kit.finetune.lmms.model.KitModel")


__all__ = ["KitModel", "manifest"]
