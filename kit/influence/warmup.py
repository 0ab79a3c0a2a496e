"""The influence scorer's warm-up: train the base briefly on a seeded random slice of the pool, keep its Adam moments.

LESS warms the model with LoRA on a random 5% of the pool for 4 epochs (``less/scripts/train/
base_training_args.sh:8-34``; README ``PERCENTAGE=0.05``) and computes gradient features on the warmed
checkpoints; ICONS does the same with one checkpoint. The kit's warm-up (:func:`warm_up`):

- the slice: ``fraction`` of the pool (at least one sample), drawn with ``numpy.random.default_rng(seed)``;
- what trains: the preset's parts (the ``tiny`` preset: language model and projector, fully) or, where the
  preset trains LoRA adapters (``small``, or ``lora=True``), LoRA adapters on the language model as LESS does;
- how: AdamW at the preset's learning rate, linear warm-up over 3% of the steps then linear decay to 0 (LESS's
  schedule), the preset's batch size and per-sample loss, ``epochs`` passes (4, LESS), float32, on one torch
  thread (the result is then the same in every process), dropout off;
- what is kept: the trained tensors and AdamW's ``exp_avg``/``exp_avg_sq`` **keyed by parameter name** (the
  official code reads them from a Hugging Face ``optimizer.pt`` keyed by integers, which breaks, LESS issues #4,
  #10, #44), in ``$KIT_CACHE/influence/warm-<key>.pt``, the key hashing the base model's files, the slice's
  samples and every setting, so each shard and each process of a scoring run finds the same warmed model.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from kit.outputs import atomic_path

WARMUP_RATIO = 0.03


@dataclass
class WarmState:
    """A warmed model's trained tensors and AdamW moments, by parameter name, and how it was made."""

    params: dict
    exp_avg: dict
    exp_avg_sq: dict
    lora: bool
    info: dict = field(default_factory=dict)

    def adam(self) -> dict:
        return {n: (self.exp_avg[n], self.exp_avg_sq[n]) for n in self.params}


def model_fingerprint(folder) -> str:
    """A hash of a model folder's files (contents up to 200 MB each, else size and name): the same for the same model."""
    folder = Path(folder)
    h = hashlib.sha1()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        h.update(str(path.relative_to(folder)).encode())
        size = path.stat().st_size
        h.update(str(size).encode())
        if size <= 200 * 2 ** 20:
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def warm_slice(ids, fraction: float, seed: int) -> list:
    """The warm-up's samples: ``max(1, round(fraction * len(ids)))`` ids drawn with ``seed``, in pool order."""
    import numpy as np

    ids = list(ids)
    if not 0 < float(fraction) <= 1:
        raise ValueError(f"warmup_fraction must be in (0, 1], not {fraction}")
    k = max(1, int(round(float(fraction) * len(ids))))
    take = np.sort(np.random.default_rng(seed).choice(len(ids), size=min(k, len(ids)), replace=False))
    return [ids[i] for i in take]


def prepare_trainable(model, config, lora: bool, seed: int):
    """``model`` with exactly the warm-up's parameters trainable (the preset's parts, or LoRA adapters on the
    language model plus the preset's other parts), in float32 and eval mode (dropout off)."""
    from kit.finetune.train import with_trainable_parts

    return with_trainable_parts(model, config, lora, seed).float().eval()


def warm_up(model, encoder, examples, config, seed: int = 0, epochs: float = 4.0, lora: bool = False,
            progress: bool = False):
    """Train ``model`` in place on ``examples`` (see the module docstring); returns ``(model, WarmState)``."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from kit.finetune.data import batch_order, n_steps
    from kit.finetune.schedule import warmup_then_decay
    from kit.finetune.train import _to_device, batch_loss, use_attention

    use_attention(model, config.attention)
    torch.manual_seed(seed)
    model = prepare_trainable(model, config, lora, seed)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for _, p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
                             {"params": [p for _, p in params if p.dim() < 2], "weight_decay": 0.0}], lr=config.lr)
    steps = n_steps(len(examples), config.batch_size, epochs)
    warm = max(1, int(math.ceil(WARMUP_RATIO * steps)))
    sched = warmup_then_decay(opt, warm, steps, "linear")
    batches = batch_order([e.length for e in examples], config.batch_size, steps, seed, None, config.group)
    losses, mask_logits = [], True
    for step in tqdm(range(steps), desc="influence warm-up", unit="step", disable=not progress):
        inputs, labels = encoder.collate([examples[i] for i in batches[step]])
        loss, _, mask_logits = batch_loss(model, _to_device(inputs, "cpu", torch.float32), labels, mask_logits,
                                          config.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_([p for _, p in params], config.grad_clip)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    state = {id(p): opt.state[p] for _, p in params}
    warm_state = WarmState(
        params={n: p.detach().clone() for n, p in params},
        exp_avg={n: state[id(p)]["exp_avg"].detach().clone() for n, p in params},
        exp_avg_sq={n: state[id(p)]["exp_avg_sq"].detach().clone() for n, p in params},
        lora=bool(lora),
        info={"steps": steps, "n_samples": len(examples), "epochs": float(epochs), "lr": config.lr,
              "batch_size": config.batch_size, "lora": bool(lora), "first_loss": losses[0] if losses else None,
              "last_loss": float(np.mean(losses[-5:])) if losses else None})
    return model, warm_state


def apply_state(model, state: WarmState, config, seed: int = 0):
    """The base ``model`` made into the warmed one: the same trainable parameters (LoRA added if the warm-up had
    it) set to the warmed tensors."""
    import torch

    from kit.finetune.train import use_attention

    use_attention(model, config.attention)
    model = prepare_trainable(model, config, state.lora, seed)
    named = dict(model.named_parameters())
    trainable = {n for n, p in named.items() if p.requires_grad}
    if trainable != set(state.params):
        raise ValueError(f"the warm-up state trains other parameters than this model would ({len(state.params)} "
                         f"saved, {len(trainable)} here); was it made from another base or preset?")
    with torch.no_grad():
        for n, t in state.params.items():
            named[n].copy_(t)
    return model


def cache_path(key: dict) -> Path:
    from kit.cache import cache_root

    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return cache_root() / "influence" / f"warm-{digest}.pt"


def save_state(state: WarmState, path: Path) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"params": state.params, "exp_avg": state.exp_avg, "exp_avg_sq": state.exp_avg_sq,
                    "lora": state.lora, "info": state.info}, tmp)
    return path


def load_state(path) -> WarmState:
    import torch

    d = torch.load(path, map_location="cpu", weights_only=False)
    return WarmState(d["params"], d["exp_avg"], d["exp_avg_sq"], bool(d["lora"]), d.get("info", {}))
