"""The training loops' learning-rate schedules (:mod:`kit.finetune.schedule`, built from transformers' schedules)
give, step for step and bit for bit, the learning rates of the hand-written schedules the committed runs used
(``tests/support/lr_schedules.py``)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from kit.finetune.presets import TrainConfig  # noqa: E402
from kit.finetune.schedule import warmup_then_decay  # noqa: E402
from kit.finetune.train import _optimizer  # noqa: E402
from kit.influence.warmup import WARMUP_RATIO  # noqa: E402
from tests.support import lr_schedules as old  # noqa: E402

STEPS = [1, 2, 3, 5, 7, 10, 19, 20, 21, 33, 60, 100, 173, 600, 1234]


def _params():
    return [("w", torch.nn.Parameter(torch.zeros(3, 2))), ("b", torch.nn.Parameter(torch.zeros(2)))]


def _lrs(opt, sched, steps: int) -> list[list[float]]:
    """The learning rate of every parameter group at each step, stepping as the training loop does."""
    seen = []
    for _ in range(steps):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return seen


@pytest.mark.parametrize("lr,warmup,final", [(1e-3, 0.05, 0.1), (3e-3, 0.05, 0.1), (2e-4, 0.05, 0.1),
                                              (1e-5, 0.03, 0.0), (7.3e-4, 0.2, 0.33), (1e-3, 0.0, 0.1),
                                              (1e-3, 1.0, 0.1)])
def test_fine_tuning_schedule_is_the_hand_written_one_at_every_step(lr, warmup, final):
    for steps in STEPS:
        config = TrainConfig(lr=lr, warmup=warmup, final_lr_ratio=final)
        opt, sched = _optimizer(_params(), config, steps)
        warm = old.train_warmup_steps(warmup, steps)
        expected = [[lr * old.train_lr_at(s, warm, steps, final)] * 2 for s in range(steps)]
        assert _lrs(opt, sched, steps) == expected, (lr, warmup, final, steps)


def test_influence_warm_up_schedule_is_the_hand_written_one_at_every_step():
    for steps in list(range(1, 80)) + [100, 173, 600, 1234]:
        for lr in (1e-3, 3e-3, 2e-4):
            opt = torch.optim.AdamW([p for _, p in _params()], lr=lr)
            warm = old.influence_warmup_steps(steps, WARMUP_RATIO)
            expected = [[lr * old.influence_lr_at(s, warm, steps)] for s in range(steps)]
            assert _lrs(opt, warmup_then_decay(opt, warm, steps, "linear"), steps) == expected, (steps, lr)


def test_the_peak_is_held_on_the_last_warm_up_step_and_the_first_decay_step():
    opt = torch.optim.AdamW([p for _, p in _params()], lr=1.0)
    lrs = [row[0] for row in _lrs(opt, warmup_then_decay(opt, 4, 20, "cosine", 0.1), 20)]
    assert lrs[:5] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert lrs[5] < 1.0 and all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    assert lrs[-1] > 0.1


def test_a_restored_schedule_continues_with_the_same_learning_rates():
    """The checkpoint stores the scheduler's state; a fresh scheduler loaded from it goes on where it stopped."""
    config = TrainConfig(lr=1e-3, warmup=0.1, final_lr_ratio=0.1)
    steps = 50
    opt, sched = _optimizer(_params(), config, steps)
    whole = _lrs(opt, sched, steps)
    opt, sched = _optimizer(_params(), config, steps)
    first = _lrs(opt, sched, 17)
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
    opt2, sched2 = _optimizer(_params(), config, steps)
    opt2.load_state_dict(state["optimizer"])
    sched2.load_state_dict(state["scheduler"])
    assert first + _lrs(opt2, sched2, steps - 17) == whole


def test_bad_settings_are_refused():
    opt = torch.optim.AdamW([p for _, p in _params()], lr=1e-3)
    with pytest.raises(ValueError, match="decay"):
        warmup_then_decay(opt, 2, 10, "step")
    with pytest.raises(ValueError, match="final_lr_ratio"):
        warmup_then_decay(opt, 2, 10, "linear", 0.1)
    with pytest.raises(ValueError, match="warm"):
        warmup_then_decay(opt, 0, 10)
