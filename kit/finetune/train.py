"""The training loop: one code path for the kit's small models and any Hugging Face image-text-to-text model.

A run trains on a list of :class:`kit.finetune.data.Example` (answer tokens marked) and writes a run folder::

    run.json        what was asked: preset, base model, training config, seed, number of samples and steps
    manifest.json   the subset: ids in training order (and the curriculum stages), method, pool provenance
    checkpoint.pt   the last resumable state (trainable weights, optimiser, scheduler, history); removed at the end
    history.csv     step, loss (mean over the step's trained tokens), learning rate, tokens, seconds
    model/          the trained model and its processor (save_pretrained; LoRA adapters merged), if kept
    done.json       the completion marker: written last, so a folder without it is an interrupted run

A second call with the same folder and the same run settings returns the finished run (``done.json``) or
resumes from ``checkpoint.pt`` (saved every ``checkpoint_every`` steps): the batch order is a function of the
seed alone and the state is restored exactly, so a resumed run ends with the same weights as an
uninterrupted one. Different settings in an existing folder are an error, never a silent overwrite.

The loss is the mean negative log-likelihood over the trained tokens of the batch (the answer tokens and
each answer's end-of-turn token); the model computes logits only at the positions that predict them
(``logits_to_keep`` with a boolean mask where the model takes one).
"""
from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kit.finetune.data import Example, ExampleEncoder, batch_order, n_steps
from kit.finetune.presets import PARTS, TrainConfig
from kit.provenance import jsonable

DONE = "done.json"
RUN = "run.json"
CHECKPOINT = "checkpoint.pt"


# --------------------------------------------------------------------------- parts of a model

def part_of(name: str) -> str:
    """Which part (``vision``, ``projector``, ``embeddings``, ``lm``) a parameter name belongs to."""
    if any(k in name for k in ("vision_tower", "vision_model", "visual.")):
        return "vision"
    if any(k in name for k in ("multi_modal_projector", "image_newline", "mm_projector")):
        return "projector"
    if any(k in name for k in ("embed_tokens", "lm_head", "wte.", "embed_out")):
        return "embeddings"
    return "lm"


def set_trainable(model, parts) -> list[str]:
    """Make exactly the parameters of ``parts`` trainable; returns their names (sorted by the model's order)."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown model parts {sorted(unknown)}; use some of {PARTS}")
    names = []
    for name, p in model.named_parameters():
        on = part_of(name) in parts
        p.requires_grad_(on)
        if on:
            names.append(name)
    return names


def add_lora(model, config: TrainConfig, seed: int):
    """Wrap ``model`` with peft LoRA adapters on the language model's ``lora_targets`` (seeded)."""
    import torch
    from peft import LoraConfig, get_peft_model

    targets = "|".join(config.lora_targets)
    has_vision = getattr(model.config, "vision_config", None) is not None
    pattern = (rf".*language_model.*\.({targets})$" if has_vision else rf".*\.({targets})$")
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules=pattern,
                      bias="none")
    torch.manual_seed(seed)
    return get_peft_model(model, lora)


def use_attention(model, attention: str | None):
    """Switch ``model`` (and its sub-models) to the attention implementation ``attention`` (``None``: leave it).

    The implementations compute the same attention; they differ in speed and in float rounding."""
    if attention:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        if getattr(base.config, "_attn_implementation", None) != attention:
            base.set_attn_implementation(attention)
    return model


def _supports_mask_logits(model) -> bool:
    from kit.quality.loss import _supports_mask_logits as supports

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return supports(base)


def _device(config: TrainConfig) -> str:
    if config.device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.device


# --------------------------------------------------------------------------- loss of one batch

def batch_loss(model, inputs: dict, labels, mask_logits: bool = True, reduction: str = "token"):
    """``(loss, n_tokens, mask_logits)``: mean NLL of the tokens marked in ``labels`` (bool, like input_ids).

    ``reduction="token"``: the mean over all marked tokens of the batch (long answers weigh more);
    ``"sample"``: each sample's mean over its own marked tokens, then the mean over samples (every sample
    weighs the same). Logits are computed only where they predict a marked token when the model takes a
    boolean ``logits_to_keep``; otherwise all logits are computed and the same positions picked (same loss).
    """
    import torch
    import torch.nn.functional as F

    keep = torch.zeros_like(labels)
    keep[:, :-1] = labels[:, 1:]
    targets = inputs["input_ids"][labels]
    logits = None
    if mask_logits:
        out = model(**inputs, logits_to_keep=keep.to(inputs["input_ids"].device), use_cache=False)
        if out.logits.dim() == 2 and out.logits.shape[0] == len(targets):
            logits = out.logits
        else:
            mask_logits = False
    if logits is None:
        logits = model(**inputs, use_cache=False).logits[keep.to(inputs["input_ids"].device)]
    nll = F.cross_entropy(logits.float(), targets.to(logits.device), reduction="none")
    if reduction == "token":
        loss = nll.mean()
    elif reduction == "sample":
        rows = labels.nonzero()[:, 0].to(nll.device)
        counts = torch.bincount(rows, minlength=labels.shape[0]).clamp(min=1).to(nll.dtype)
        per_row = torch.zeros(labels.shape[0], dtype=nll.dtype, device=nll.device).index_add_(0, rows, nll)
        has = torch.bincount(rows, minlength=labels.shape[0]) > 0
        loss = (per_row / counts)[has].mean()
    else:
        raise ValueError(f"reduction must be 'token' or 'sample', not {reduction!r}")
    return loss, int(len(targets)), mask_logits


def _to_device(inputs: dict, device, dtype) -> dict:
    import torch

    return {k: (v.to(device, dtype) if torch.is_floating_point(v) else v.to(device)) for k, v in inputs.items()
            if isinstance(v, torch.Tensor)}


# --------------------------------------------------------------------------- run folders

def settings_hash(settings: dict) -> str:
    return hashlib.sha1(json.dumps(jsonable(settings), sort_keys=True).encode()).hexdigest()[:16]


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def is_done(out) -> bool:
    return (Path(out) / DONE).is_file()


def read_done(out) -> dict:
    return json.loads((Path(out) / DONE).read_text())


@dataclass
class TrainResult:
    """A finished (or stopped) run: its folder, the model in memory (if trained here), history and summary."""

    out: Path
    history: pd.DataFrame
    info: dict
    model: object = None
    processor: object = None
    finished: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def model_dir(self) -> Path:
        return self.out / "model"


def train_examples(model, encoder: ExampleEncoder, examples: list[Example], config: TrainConfig, out,
                   seed: int = 0, stages=None, settings: dict | None = None, manifest: dict | None = None,
                   save_model: bool = True, progress: bool = True, stop_after: int | None = None,
                   callback=None, desc: str = "training") -> TrainResult:
    """Train ``model`` on ``examples`` (in place) and write the run folder ``out`` (see the module docstring).

    ``stages``: lists of indices into ``examples`` trained one after another (a curriculum); ``settings``:
    what identifies the run besides the config (checked when the folder exists); ``stop_after``: stop, as if
    interrupted, after that many steps (a later call resumes); ``callback(step, model)`` runs after each
    checkpoint and returns a dict of extra columns for the history (e.g. held-out accuracy), or None.
    """
    import torch
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps = n_steps(len(examples), config.batch_size, config.epochs, config.min_steps, config.max_steps)
    run = {"config": config.to_dict(), "seed": int(seed), "n_examples": len(examples), "steps": steps,
           "stages": [len(s) for s in stages] if stages is not None else None,
           "ids": [e.sid for e in examples], **(settings or {})}
    key = settings_hash(run)
    run_path = out / RUN
    if run_path.is_file():
        old = json.loads(run_path.read_text())
        if old.get("key") != key:
            raise FileExistsError(f"{out} holds a run with other settings (key {old.get('key')} != {key}); "
                                  "use another folder or delete it")
        if is_done(out):
            history = pd.read_csv(out / "history.csv") if (out / "history.csv").is_file() else pd.DataFrame()
            return TrainResult(out, history, read_done(out), finished=True)
    else:
        _atomic_write(run_path, json.dumps(jsonable({"key": key, **{k: v for k, v in run.items() if k != "ids"},
                                                     "n_ids": len(examples)}), indent=1))
    if manifest is not None:
        _atomic_write(out / "manifest.json", json.dumps(jsonable(manifest), indent=1))

    device = _device(config)
    from kit.models.hf import resolve_dtype

    dtype = resolve_dtype(config.dtype, device)
    autocast_dtype = resolve_dtype(config.autocast, device) if config.autocast else None
    threads_before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(int(config.threads))
    try:
        torch.manual_seed(seed)
        use_attention(model, config.attention)
        if config.lora:
            set_trainable(model, ())
            model = add_lora(model, config, seed)
            for name, p in model.named_parameters():  # adapters train; other parts in `train` too (not "lm")
                if "lora_" in name or part_of(name) in set(config.train) - {"lm"}:
                    p.requires_grad_(True)
        else:
            set_trainable(model, config.train)
        model.to(device=device, dtype=dtype).train()
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not params:
            raise ValueError(f"nothing to train: parts {config.train} hold no parameters in this model")
        decay = [p for n, p in params if p.dim() >= 2]
        no_decay = [p for n, p in params if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
        warm = max(1, int(round(config.warmup * steps)))

        def lr_at(step: int) -> float:  # multiplier of config.lr
            if step < warm:
                return (step + 1) / warm
            t = (step - warm) / max(1, steps - warm)
            return config.final_lr_ratio + (1 - config.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
        batches = batch_order([e.length for e in examples], config.batch_size, steps, seed, stages, config.group)
        history: list[dict] = []
        start = 0
        ckpt = out / CHECKPOINT
        if ckpt.is_file():
            state = torch.load(ckpt, map_location=device, weights_only=False)
            if state.get("key") != key:
                raise FileExistsError(f"{ckpt} belongs to another run")
            named = dict(model.named_parameters())
            with torch.no_grad():
                for n, t in state["params"].items():
                    named[n].copy_(t)
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            history = list(state["history"])
            start = int(state["step"])
        mask_logits = _supports_mask_logits(model)
        seconds = history[-1]["seconds"] if history else 0.0
        stop = steps if stop_after is None else min(steps, start + int(stop_after))
        bar = tqdm(total=steps, initial=start, desc=desc, unit="step", disable=not progress)
        recent: list[float] = []
        for step in range(start, stop):
            t0 = time.perf_counter()
            batch = [examples[i] for i in batches[step]]
            inputs, labels = encoder.collate(batch)
            inputs = _to_device(inputs, device, dtype)
            with torch.autocast(device_type=device.split(":")[0], dtype=autocast_dtype or torch.bfloat16,
                                enabled=autocast_dtype is not None):
                loss, n_tok, mask_logits = batch_loss(model, inputs, labels.to(device), mask_logits, config.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_([p for _, p in params], config.grad_clip)
            lr = opt.param_groups[0]["lr"]
            opt.step()
            sched.step()
            seconds += time.perf_counter() - t0
            value = float(loss.detach())
            recent.append(value)
            history.append({"step": step + 1, "loss": value, "lr": lr, "tokens": n_tok, "seconds": round(seconds, 3)})
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(recent[-20:]):.3f}")
            last = step + 1 == stop
            if (step + 1) % config.checkpoint_every == 0 or last:
                if callback is not None:
                    model.eval()
                    extra = callback(step + 1, model)
                    model.train()
                    if extra:
                        history[-1].update(extra)
                if step + 1 < steps:
                    _save_checkpoint(ckpt, key, step + 1, params, opt, sched, history)
        bar.close()
        model.eval()
        hist = pd.DataFrame(history)
        hist.to_csv(out / "history.csv", index=False)
        if stop < steps:
            return TrainResult(out, hist, {"steps_done": stop, "steps": steps}, model=model, finished=False)
        if config.lora:
            model = model.merge_and_unload()
        if save_model:
            model_dir = out / "model"
            if model_dir.exists():
                shutil.rmtree(model_dir)
            model.save_pretrained(model_dir)
            encoder.processor.save_pretrained(model_dir)
        info = {"steps": steps, "n_examples": len(examples), "final_loss": float(np.mean(recent[-20:])) if recent
                else (history[-1]["loss"] if history else float("nan")),
                "train_seconds": round(seconds, 2), "samples_per_s": round(steps * config.batch_size / seconds, 2)
                if seconds else None, "trained_tokens": int(hist["tokens"].sum()) if len(hist) else 0,
                "model_saved": bool(save_model), "key": key}
        _atomic_write(out / DONE, json.dumps(jsonable(info), indent=1))
        ckpt.unlink(missing_ok=True)
        return TrainResult(out, hist, info, model=model, processor=encoder.processor)
    finally:
        torch.set_num_threads(threads_before)


def _save_checkpoint(path: Path, key: str, step: int, params, opt, sched, history) -> None:
    import torch

    state = {"key": key, "step": step, "params": {n: p.detach().cpu().clone() for n, p in params},
             "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "history": history}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_model(path, device: str = "cpu", dtype=None):
    """``(model, processor)`` of a base or fine-tuned model folder (any HF image-text-to-text model)."""
    from kit.models.hf import load_pretrained

    path = Path(path)
    if (path / "model").is_dir() and not (path / "config.json").is_file():
        path = path / "model"  # a run folder
    return load_pretrained(str(path), dtype=dtype, device=device)


def takes_mask_logits(model) -> bool:
    """Whether ``model.forward`` takes ``logits_to_keep`` (the loss then needs only the answer positions)."""
    return "logits_to_keep" in inspect.signature(model.forward).parameters
