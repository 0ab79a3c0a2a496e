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

The steps run on ``accelerate`` (:mod:`kit.finetune.engine`): it places the model, runs mixed precision,
accumulates gradients (``grad_accum`` micro-batches per batch) and, under ``accelerate launch``, averages them
over data-parallel processes. The recipe stays the kit's: ``batch_size`` is the global batch, the batch order,
schedule and loss are the same whatever the number of processes, and only the main process writes the folder.
``done.json`` records how the run was spread (``processes``, ``distributed``, ``mixed_precision``, ``grad_accum``).
"""
from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kit.finetune.data import Example, ExampleEncoder, batch_order, n_steps
from kit.finetune.presets import PARTS, TrainConfig
from kit.finetune.schedule import warmup_then_decay
from kit.outputs import atomic_path, atomic_write_text
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
    from kit.finetune.engine import run_device

    return run_device(config)


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
    checkpoint (in the main process) and returns a dict of extra columns for the history (e.g. held-out
    accuracy), or None. Started by ``accelerate launch``, every process runs this with the same arguments and
    trains its share of each batch (:mod:`kit.finetune.engine`); the main process writes the folder.
    """
    import torch

    from kit.finetune.engine import accelerator_for, plain_model

    out = Path(out)
    steps = n_steps(len(examples), config.batch_size, config.epochs, config.min_steps, config.max_steps)
    acc = accelerator_for(config)
    key, finished = _open_run(out, config, seed, examples, steps, stages, settings, manifest, acc)
    if finished is not None:
        return finished
    threads_before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(int(config.threads))
    try:
        torch.manual_seed(seed)
        model = _trainable_model(model, config, seed)
        from kit.models.hf import resolve_dtype

        model.to(device=acc.device, dtype=resolve_dtype(config.dtype, str(acc.device))).train()
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not params:
            raise ValueError(f"nothing to train: parts {config.train} hold no parameters in this model")
        opt, sched = _optimizer(params, config, steps)
        history, start = _restore(out / CHECKPOINT, key, model, opt, sched, acc.device)
        mask_logits = _supports_mask_logits(model)
        wrapped, opt = acc.prepare(model, opt)
        # accelerate wraps the model's forward in autocast; the loop enters autocast itself (acc.autocast) around
        # forward and loss, as before, so a callback (held-out evaluation) and the returned model run plain
        model = plain_model(acc, wrapped)
        batches = batch_order([e.length for e in examples], config.batch_size, steps, seed, stages, config.group)
        loop = _Loop(acc, wrapped, model, opt, sched, params, encoder, config, key, out / CHECKPOINT, steps)
        stop = steps if stop_after is None else min(steps, start + int(stop_after))
        history, recent = loop.run(examples, batches, start, stop, history, mask_logits, callback, progress, desc)
        return _finish(loop, examples, history, recent, stop, out, save_model)
    finally:
        torch.set_num_threads(threads_before)


def _open_run(out: Path, config: TrainConfig, seed: int, examples, steps: int, stages, settings, manifest, acc):
    """``(key, None)`` for a run to train (``run.json`` and ``manifest.json`` written by the main process), or
    ``(key, TrainResult)`` when the folder holds this run finished; another run's folder is an error."""
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
            return key, TrainResult(out, history, read_done(out), finished=True)
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        if not run_path.is_file():
            atomic_write_text(run_path, json.dumps(jsonable({"key": key, **{k: v for k, v in run.items() if k != "ids"},
                                                         "n_ids": len(examples)}), indent=1))
        if manifest is not None:
            atomic_write_text(out / "manifest.json", json.dumps(jsonable(manifest), indent=1))
    acc.wait_for_everyone()
    return key, None


def _trainable_model(model, config: TrainConfig, seed: int):
    """``model`` with the config's attention and exactly its trainable parts (LoRA adapters wrapped in)."""
    use_attention(model, config.attention)
    return with_trainable_parts(model, config, config.lora, seed)


def with_trainable_parts(model, config: TrainConfig, lora: bool, seed: int):
    """``model`` with exactly ``config.train``'s parts trainable, or with ``lora``: LoRA adapters wrapped in on the
    language model, which train with the config's other parts."""
    if lora:
        set_trainable(model, ())
        model = add_lora(model, config, seed)
        for name, p in model.named_parameters():  # adapters train; other parts in `train` too (not "lm")
            if "lora_" in name or part_of(name) in set(config.train) - {"lm"}:
                p.requires_grad_(True)
    else:
        set_trainable(model, config.train)
    return model


def _optimizer(params, config: TrainConfig, steps: int):
    """AdamW (no weight decay on vectors) and the schedule: linear warm-up, then cosine to ``final_lr_ratio``
    (:func:`kit.finetune.schedule.warmup_then_decay`)."""
    import torch

    decay = [p for n, p in params if p.dim() >= 2]
    no_decay = [p for n, p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    warm = max(1, int(round(config.warmup * steps)))
    return opt, warmup_then_decay(opt, warm, steps, "cosine", config.final_lr_ratio)


def _restore(ckpt: Path, key: str, model, opt, sched, device) -> tuple[list[dict], int]:
    """``(history, step)`` of the checkpoint, its weights, optimiser and schedule restored; ``([], 0)`` without one."""
    import torch

    if not ckpt.is_file():
        return [], 0
    state = torch.load(ckpt, map_location=device, weights_only=False)
    if state.get("key") != key:
        raise FileExistsError(f"{ckpt} belongs to another run")
    named = dict(model.named_parameters())
    with torch.no_grad():
        for n, t in state["params"].items():
            named[n].copy_(t)
    opt.load_state_dict(state["optimizer"])
    if "_schedulers" not in state["scheduler"]:
        raise FileExistsError(f"{ckpt} holds the learning-rate schedule of an older kit (one LambdaLR); the schedule "
                              "is the same, but this checkpoint cannot resume it: delete the folder to train again")
    sched.load_state_dict(state["scheduler"])
    return list(state["history"]), int(state["step"])


@dataclass
class _Loop:
    """The steps of one run: ``wrapped`` is the model as accelerate prepared it, ``model`` the model itself."""

    acc: object
    wrapped: object
    model: object
    opt: object
    sched: object
    params: list
    encoder: ExampleEncoder
    config: TrainConfig
    key: str
    ckpt: Path
    steps: int
    seconds: float = 0.0

    def run(self, examples, batches, start, stop, history, mask_logits, callback, progress, desc):
        """Steps ``start`` to ``stop``: history rows, checkpoints, the callback; ``(history, recent losses)``."""
        from tqdm.auto import tqdm

        self.seconds = history[-1]["seconds"] if history else 0.0
        main = self.acc.is_main_process
        bar = tqdm(total=self.steps, initial=start, desc=desc, unit="step", disable=not progress or not main)
        recent: list[float] = []
        for step in range(start, stop):
            t0 = time.perf_counter()
            lr = self.opt.param_groups[0]["lr"]
            value, n_tok, mask_logits = self.step([examples[i] for i in batches[step]], mask_logits)
            self.seconds += time.perf_counter() - t0
            recent.append(value)
            history.append({"step": step + 1, "loss": value, "lr": lr, "tokens": n_tok,
                            "seconds": round(self.seconds, 3)})
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(recent[-20:]):.3f}")
            if (step + 1) % self.config.checkpoint_every == 0 or step + 1 == stop:
                self.checkpoint(step + 1, history, callback)
        bar.close()
        return history, recent

    def step(self, batch: list[Example], mask_logits: bool) -> tuple[float, int, bool]:
        """One optimiser step on a global batch: this process's micro-batches, each loss weighted so the averaged
        gradient is the whole batch's (:func:`kit.finetune.engine.loss_weight`); returns the batch's loss."""
        import torch

        from kit.finetune.engine import loss_denominator, loss_weight, shard

        acc, config = self.acc, self.config
        processes, accum = acc.num_processes, acc.gradient_accumulation_steps
        denominator = loss_denominator(batch, config.loss)
        total = torch.zeros((), device=acc.device)
        device = str(acc.device)
        dtype = next(self.model.parameters()).dtype
        for part in shard(batch, processes, acc.process_index, accum):
            inputs, labels = self.encoder.collate(part)
            inputs = _to_device(inputs, device, dtype)
            with acc.accumulate(self.wrapped):
                with acc.autocast():
                    loss, _, mask_logits = batch_loss(self.wrapped, inputs, labels.to(device), mask_logits,
                                                      config.loss)
                weight = loss_weight(part, denominator, config.loss, processes, accum)
                acc.backward(loss * weight if weight != 1.0 else loss)
                if acc.sync_gradients and config.grad_clip:
                    acc.clip_grad_norm_([p for _, p in self.params], config.grad_clip)
                self.opt.step()
                self.opt.zero_grad(set_to_none=True)
            total += loss.detach().float() * (weight / (processes * accum))
        if not getattr(self.opt, "step_was_skipped", False):
            self.sched.step()
        if processes > 1:
            total = acc.reduce(total, reduction="sum")
        return float(total), sum(e.n_trained for e in batch), mask_logits

    def checkpoint(self, step: int, history: list[dict], callback) -> None:
        """The callback's columns (main process) and, before the last step, a resumable checkpoint."""
        from kit.finetune.engine import shards_optimizer

        if self.acc.is_main_process:
            if callback is not None:
                self.model.eval()
                extra = callback(step, self.model)
                self.model.train()
                if extra:
                    history[-1].update(extra)
            if step < self.steps and not shards_optimizer(self.acc):
                _save_checkpoint(self.ckpt, self.key, step, self.params, self.opt, self.sched, history)
        self.acc.wait_for_everyone()


def _finish(loop: _Loop, examples, history: list[dict], recent: list[float], stop: int, out: Path,
            save_model: bool) -> TrainResult:
    """The history, and at the end of the run the model (LoRA merged), ``done.json`` and no checkpoint."""
    acc, config, steps = loop.acc, loop.config, loop.steps
    model = loop.model
    model.eval()
    hist = pd.DataFrame(history)
    main = acc.is_main_process
    if main:
        hist.to_csv(out / "history.csv", index=False)
    if stop < steps:
        acc.wait_for_everyone()
        return TrainResult(out, hist, {"steps_done": stop, "steps": steps}, model=model, finished=False)
    if config.lora:
        model = model.merge_and_unload()
    if save_model and main:
        model_dir = out / "model"
        if model_dir.exists():
            shutil.rmtree(model_dir)
        model.save_pretrained(model_dir)
        loop.encoder.processor.save_pretrained(model_dir)
    seconds = loop.seconds
    info = {"steps": steps, "n_examples": len(examples), "final_loss": float(np.mean(recent[-20:])) if recent
            else (history[-1]["loss"] if history else float("nan")),
            "train_seconds": round(seconds, 2), "samples_per_s": round(steps * config.batch_size / seconds, 2)
            if seconds else None, "trained_tokens": int(hist["tokens"].sum()) if len(hist) else 0,
            "model_saved": bool(save_model), "key": loop.key, **_engine_info(acc)}
    if main:
        atomic_write_text(out / DONE, json.dumps(jsonable(info), indent=1))
        (out / CHECKPOINT).unlink(missing_ok=True)
    acc.wait_for_everyone()
    return TrainResult(out, hist, info, model=model, processor=loop.encoder.processor)


def _engine_info(acc) -> dict:
    """How the run was spread: processes, accelerate's distributed type, mixed precision, accumulation steps."""
    return {"processes": acc.num_processes, "distributed": str(acc.distributed_type).split(".")[-1],
            "mixed_precision": str(acc.mixed_precision), "grad_accum": acc.gradient_accumulation_steps}


def _save_checkpoint(path: Path, key: str, step: int, params, opt, sched, history) -> None:
    import torch

    state = {"key": key, "step": step, "params": {n: p.detach().cpu().clone() for n, p in params},
             "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "history": history}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


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
