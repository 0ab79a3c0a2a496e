"""The learning-rate schedules of the kit's training loops, built from transformers' schedules.

Every schedule is a linear warm-up over ``warm`` steps, then a decay over the remaining ``steps - warm``:
cosine to ``final_lr_ratio`` of the peak (:func:`kit.finetune.train.train_examples`) or linear to 0 (the
influence warm-up, :mod:`kit.influence.warmup`). Step ``s`` trains at this fraction of the peak learning rate::

    s < warm:   (s + 1) / warm                      (the warm-up reaches the peak on its last step)
    s >= warm:  decay(t), t = (s - warm) / max(1, steps - warm)
                cosine: final_lr_ratio + (1 - final_lr_ratio) * 0.5 * (1 + cos(pi * t))
                linear: (steps - s) / max(1, steps - warm)

so the peak is held for two steps (``s = warm - 1`` and ``s = warm``). transformers' own warm-up schedules
(``get_cosine_schedule_with_warmup`` and kin) start at 0 (``s / warm``) and put the peak at ``s = warm`` only;
no choice of ``num_warmup_steps`` gives the warm-up above without shifting the decay by one step. The kit's
runs, and the results committed from them, were trained with the schedule above, so it is assembled from two
transformers schedules with torch's ``SequentialLR``: ``get_constant_schedule_with_warmup`` with its step
counter one ahead (``last_epoch=0``) for the warm-up, and the decay schedule with no warm-up of its own from
step ``warm`` on. The learning rate of every step is bit-for-bit the formula's (``tests/test_lr_schedule.py``).
"""
from __future__ import annotations

DECAYS = ("cosine", "linear")


def warmup_then_decay(opt, warm: int, steps: int, decay: str = "cosine", final_lr_ratio: float = 0.0):
    """The scheduler of ``opt`` for a run of ``steps`` steps: ``warm`` (>= 1) warm-up steps, then ``decay``
    (``"cosine"`` to ``final_lr_ratio`` of the peak, or ``"linear"`` to 0); see the module docstring."""
    from torch.optim.lr_scheduler import SequentialLR
    from transformers import (get_constant_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup,
                              get_linear_schedule_with_warmup)

    if decay not in DECAYS:
        raise ValueError(f"decay must be one of {DECAYS}, not {decay!r}")
    if decay == "linear" and final_lr_ratio:
        raise ValueError(f"the linear decay ends at 0; final_lr_ratio={final_lr_ratio} needs decay='cosine'")
    if int(warm) < 1:
        raise ValueError(f"warm must be at least 1 step, not {warm}")
    warm = int(warm)
    for group in opt.param_groups:  # a scheduler started at last_epoch=0 reads the peak from initial_lr
        group.setdefault("initial_lr", group["lr"])
    warm_up = get_constant_schedule_with_warmup(opt, num_warmup_steps=warm, last_epoch=0)
    rest = max(0, int(steps) - warm)
    if decay == "cosine":
        after = get_cosine_with_min_lr_schedule_with_warmup(opt, num_warmup_steps=0, num_training_steps=rest,
                                                            min_lr_rate=float(final_lr_ratio))
    else:
        after = get_linear_schedule_with_warmup(opt, num_warmup_steps=0, num_training_steps=rest)
    return SequentialLR(opt, [warm_up, after], milestones=[warm])
