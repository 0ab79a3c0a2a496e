"""The training loop as it was before accelerate (commit 4325626, ``kit/finetune/train.py``), the steps only.

``kit.finetune.train.train_examples`` now runs on accelerate; this copy of the old per-step code (no run folder,
no checkpoints) is what it is checked against: one process on the CPU must train the same weights
(``tests/test_finetune_accelerate.py``), and ``benchmarks/bench_ablation.py --loops`` times both side by side.
"""
from __future__ import annotations

import math
import time


def train_plain(model, encoder, examples, config, seed: int = 0, stages=None, steps: int | None = None):
    """Train ``model`` in place exactly as the pre-accelerate loop did; returns ``(model, losses, seconds)``.

    ``steps`` cuts the run short (the schedule is still the one of the whole run, as in the old loop)."""
    import torch

    from kit.finetune.data import batch_order, n_steps
    from kit.finetune.train import (_device, _supports_mask_logits, add_lora, batch_loss, part_of, set_trainable,
                                    use_attention)
    from kit.models.hf import resolve_dtype

    total = n_steps(len(examples), config.batch_size, config.epochs, config.min_steps, config.max_steps)
    device = _device(config)
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
            for name, p in model.named_parameters():
                if "lora_" in name or part_of(name) in set(config.train) - {"lm"}:
                    p.requires_grad_(True)
        else:
            set_trainable(model, config.train)
        model.to(device=device, dtype=dtype).train()
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        decay = [p for n, p in params if p.dim() >= 2]
        no_decay = [p for n, p in params if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
        warm = max(1, int(round(config.warmup * total)))

        def lr_at(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            t = (step - warm) / max(1, total - warm)
            return config.final_lr_ratio + (1 - config.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
        batches = batch_order([e.length for e in examples], config.batch_size, total, seed, stages, config.group)
        mask_logits = _supports_mask_logits(model)
        losses, seconds = [], 0.0
        for step in range(total if steps is None else min(steps, total)):
            t0 = time.perf_counter()
            inputs, labels = encoder.collate([examples[i] for i in batches[step]])
            inputs = {k: (v.to(device, dtype) if torch.is_floating_point(v) else v.to(device))
                      for k, v in inputs.items() if isinstance(v, torch.Tensor)}
            with torch.autocast(device_type=device.split(":")[0], dtype=autocast_dtype or torch.bfloat16,
                                enabled=autocast_dtype is not None):
                loss, _, mask_logits = batch_loss(model, inputs, labels.to(device), mask_logits, config.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_([p for _, p in params], config.grad_clip)
            opt.step()
            sched.step()
            seconds += time.perf_counter() - t0
            losses.append(float(loss.detach()))
        model.eval()
        return model, losses, seconds
    finally:
        torch.set_num_threads(threads_before)
