"""The learning-rate schedules as they were hand-written before issue 22 (``kit/finetune/train.py`` ``_optimizer``
and ``kit/influence/warmup.py`` ``warm_up``, commit 32d98d3): the multiplier of the peak learning rate at each
step. ``tests/test_lr_schedule.py`` checks that :mod:`kit.finetune.schedule` gives the same learning rates."""
from __future__ import annotations

import math


def train_warmup_steps(warmup: float, steps: int) -> int:
    return max(1, int(round(warmup * steps)))


def train_lr_at(step: int, warm: int, steps: int, final_lr_ratio: float) -> float:
    """The fine-tuning loop's: linear warm-up, then cosine to ``final_lr_ratio``."""
    if step < warm:
        return (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return final_lr_ratio + (1 - final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def influence_warmup_steps(steps: int, ratio: float = 0.03) -> int:
    return max(1, int(math.ceil(ratio * steps)))


def influence_lr_at(step: int, warm: int, steps: int) -> float:
    """The influence warm-up's (LESS's): linear warm-up, then linear decay to 0."""
    return (step + 1) / warm if step < warm else max(0.0, (steps - step) / max(1, steps - warm))
