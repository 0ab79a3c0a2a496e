"""Prove a subset by training on it: a small vision-language model, fine-tuning and held-out evaluation.

    import kit, kit.finetune as ft

    pool = kit.load_pool("pool/pool.json")
    ids = kit.select(scores, "mmssr", budget=0.3)
    run = ft.finetune(pool, ids, preset="tiny", out="runs/mmssr30", seed=0)   # resumable run folder
    result = ft.evaluate(run.model, run.processor)                           # easy-vqa test, 13 answers ranked
    result.summary["accuracy"], result.summary["accuracy_colour"]

    base = ft.align("tiny")                           # stage 1 (cached): paper B's model before tuning
    kit.score(pool, "loss", model=base)               # answer loss with the image, from the model being tuned

One code path for every model: presets ``"tiny"`` (CPU default), ``"small"`` (SmolLM2-135M + LoRA) or any
Hugging Face image-text-to-text model name / folder (:mod:`kit.finetune.presets`). Modules: ``presets``
(configs as data), ``data`` (answer-token examples and batches), ``train`` (the loop, run folders, resume),
``align`` (stage 1 and the cached base models), ``evaluate`` (easy-vqa test, ranking + generation). Command
line: ``kit finetune align|train|eval`` (also ``python -m kit.finetune``).
"""
from __future__ import annotations

import json
from pathlib import Path

from kit.finetune.align import align, aligned_path, base_info, base_model, caption_records, quick_base
from kit.finetune.evaluate import ANSWERS, Evaluation, dev_eval_set, easyvqa_eval_set, evaluate
from kit.finetune.presets import PRESETS, AlignConfig, Preset, TrainConfig, resolve_preset
from kit.finetune.train import TrainResult, load_model, part_of

__all__ = ["finetune", "align", "base_model", "evaluate", "easyvqa_eval_set", "dev_eval_set", "Evaluation",
           "PRESETS", "Preset", "TrainConfig", "AlignConfig", "resolve_preset", "TrainResult", "load_model",
           "caption_records", "subset_manifest", "aligned_path", "quick_base", "base_info", "ANSWERS", "part_of"]


def subset_manifest(pool, ids, stages=None, method=None, params=None, seed=None) -> dict:
    """What a run trained on: ids in order, the curriculum stages, the method and the pool's provenance."""
    from kit.provenance import jsonable, provenance

    sel = ids
    info = sel.info() if hasattr(sel, "info") else {}
    return {"method": method or info.get("method"), "params": jsonable(params if params is not None
                                                                       else info.get("params", {})),
            "seed": seed if seed is not None else info.get("seed"), "n_samples": len(list(ids)),
            "ids": [str(i) for i in ids],
            "stages": [[str(i) for i in s] for s in stages] if stages is not None else None,
            "selection": jsonable(info) if info else None, **provenance(pool)}


def _launched_base(p):
    """The preset's base model; under ``accelerate launch`` it must exist already (one process builds it, not
    every process at once)."""
    from kit.finetune.engine import launched_processes

    if launched_processes() > 1 and p.spec is not None:
        from kit.finetune.align import BASE_INFO

        where = aligned_path(p)
        if not (where / BASE_INFO).is_file():
            raise RuntimeError(f"the {p.name} preset's aligned base is not built yet ({where}); build it in one "
                               f"process first: kit finetune align --preset {p.name}")
    return base_model(p)


def finetune(pool, ids=None, *, preset="tiny", out, seed: int = 0, stages=None, base=None, method=None,
             params=None, encoder=None, save_model: bool = True, progress: bool = True,
             stop_after: int | None = None, callback=None, **train_changes) -> TrainResult:
    """Fine-tune the preset's aligned base model on ``ids`` of ``pool`` (default: the whole pool).

    ``stages``: a curriculum, a list of id lists trained in order (``ids`` is then their concatenation);
    ``base``: a starting model folder other than the preset's (e.g. from :func:`align`); ``train_changes``
    override the preset's :class:`TrainConfig` fields (``lr=``, ``epochs=``, ``max_steps=`` ...). ``out`` is
    the run folder (resumed when interrupted, returned as is when done). Samples that cannot be trained on
    (no answer token, image error) are left out and counted in ``run.json``/``result.extra["rejected"]``.
    """
    import torch

    from kit.finetune.data import ExampleEncoder
    from kit.finetune.train import is_done, read_done, train_examples, use_attention

    p = resolve_preset(preset, **train_changes)
    if stages is not None:
        stages = [list(s) for s in stages]
        ids = [i for s in stages for i in s]
    ids = list(pool.table.index) if ids is None else list(ids)
    if len(set(ids)) != len(ids):
        raise ValueError("ids hold duplicates; train on a list of distinct sample ids")
    base = Path(base) if base is not None else _launched_base(p)
    out = Path(out)
    from kit.finetune.train import settings_hash

    request = settings_hash({"preset": p.to_dict(), "base": str(base), "ids": [str(i) for i in ids], "seed": seed,
                             "stages": [len(s) for s in stages] if stages is not None else None})
    settings = {"preset": p.name, "base": str(base), "n_ids": len(ids), "request": request}
    manifest = subset_manifest(pool, ids, stages, method, params, seed)
    if (out / "run.json").is_file() and json.loads((out / "run.json").read_text()).get("request") != request:
        raise FileExistsError(f"{out} holds a run with other settings; use another folder or delete it")
    if is_done(out) and (out / "run.json").is_file():
        from kit.finetune.train import TrainResult as _R
        import pandas as pd

        hist = pd.read_csv(out / "history.csv") if (out / "history.csv").is_file() else pd.DataFrame()
        info = read_done(out)
        model = processor = None
        if info.get("model_saved"):
            model, processor = load_model(out / "model", device=p.train.device if p.train.device != "auto" else "cpu")
            use_attention(model, p.train.attention)
        return _R(out, hist, info, model=model, processor=processor)
    model, processor = load_model(base, device="cpu")
    if encoder is None:
        encoder = ExampleEncoder(processor, vision=getattr(model.config, "vision_config", None) is not None,
                                 train_end_token=p.train.train_end_token, max_length=p.train.max_length)
    else:  # a shared encoder (e.g. one per pool in an ablation) must hold the same processor's tokens
        processor = encoder.processor
    examples, rejected = encoder.encode_pool(pool, ids, progress=progress)
    index = {e.sid: k for k, e in enumerate(examples)}
    stage_idx = [[index[i] for i in s if i in index] for s in stages] if stages is not None else None
    settings["n_rejected"] = len(rejected)
    with torch.random.fork_rng(devices=[]):
        result = train_examples(model, encoder, examples, p.train, out, seed=seed, stages=stage_idx,
                                settings=settings, manifest=manifest, save_model=save_model, progress=progress,
                                stop_after=stop_after, callback=callback,
                                desc=f"fine-tuning ({p.name}, {len(examples)} samples)")
    result.processor = processor
    result.extra["rejected"] = rejected
    return result
