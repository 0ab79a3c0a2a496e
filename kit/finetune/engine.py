"""The accelerate side of a training run: processes, device, mixed precision, gradient accumulation.

:func:`kit.finetune.train.train_examples` keeps the kit's recipe (batch order, optimiser, schedule, loss, resume,
the run folder); an ``accelerate.Accelerator`` built here from the run's :class:`TrainConfig` places the model,
runs the forward in mixed precision (``autocast``: ``"bfloat16"`` -> accelerate's ``bf16``, ``"float16"`` ->
``fp16`` with a gradient scaler), accumulates gradients and, when the command was started by ``accelerate
launch`` (or ``torchrun``), averages them over the data-parallel processes (DDP: NCCL on GPUs, gloo on CPUs).

**The recipe does not depend on the processes.** ``batch_size`` is the global batch: every process draws the
same batch order from the seed, takes its contiguous share of each batch (:func:`shard`), and splits that share
into ``grad_accum`` micro-batches. Each micro-batch's loss is weighted so that the averaged gradient is the
gradient of the whole batch's loss (:func:`loss_weight`), so one process, two processes or four
accumulation steps train the same model, to float rounding, with the same steps and learning rates.

One process on the CPU is accelerate's plain case (no wrapper, no communication): it trains the same weights as
the loop before accelerate (``tests/test_finetune_accelerate.py``).
"""
from __future__ import annotations

import os

import numpy as np

# TrainConfig.autocast -> accelerate's mixed_precision
PRECISION = {None: "no", "no": "no", "bfloat16": "bf16", "bf16": "bf16", "float16": "fp16", "fp16": "fp16"}


def launched_processes() -> int:
    """How many processes the launcher started (``WORLD_SIZE``; 1 without a launcher). Starts nothing."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    """Whether this process writes files and prints (rank 0, or the only process)."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def run_device(config) -> str:
    """The device a run asks for: ``config.device``, ``"auto"`` meaning CUDA when there is one."""
    if config.device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.device


def _drop_other_state(cpu: bool, mixed_precision: str) -> None:
    """accelerate keeps one state per process; a single-process run with another device or precision than an
    earlier run of this process (e.g. the test suite, a notebook) starts it afresh instead of failing."""
    from accelerate.state import AcceleratorState, GradientState, PartialState

    if not PartialState._shared_state:
        return
    state = AcceleratorState._shared_state
    other_device = (PartialState._shared_state.get("device") is not None
                    and (PartialState._shared_state["device"].type == "cpu") != cpu)
    other_precision = bool(state) and state.get("_mixed_precision") != mixed_precision
    if other_device or other_precision:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


def accelerator_for(config):
    """An ``accelerate.Accelerator`` for one run of ``config`` (see the module docstring)."""
    import torch
    from accelerate import Accelerator

    if config.autocast not in PRECISION:
        raise ValueError(f"autocast must be one of {sorted(k for k in PRECISION if k)} or None, not {config.autocast!r}")
    if int(config.grad_accum) < 1:
        raise ValueError(f"grad_accum must be at least 1, not {config.grad_accum}")
    device = run_device(config)
    cpu = device == "cpu"
    mixed = PRECISION[config.autocast]
    if launched_processes() == 1:
        _drop_other_state(cpu, mixed)
        if device.startswith("cuda:"):
            torch.cuda.set_device(int(device.split(":")[1]))
    # accelerate launch --gradient_accumulation_steps (an environment variable) wins over grad_accum; the loop
    # reads acc.gradient_accumulation_steps, so either way each batch is split into that many micro-batches
    acc = Accelerator(cpu=cpu, mixed_precision=mixed, gradient_accumulation_steps=int(config.grad_accum),
                      step_scheduler_with_optimizer=False)
    _check_engine(acc, config)
    return acc


def _check_engine(acc, config) -> None:
    """Refuse what the kit's loop cannot do with a sharding engine: it saves whole weights and optimiser state."""
    from accelerate.utils import DistributedType

    if acc.distributed_type == DistributedType.FSDP:
        raise NotImplementedError("FSDP shards the weights, and the kit's loop saves and restores whole ones; "
                                  "use DDP (accelerate launch --multi_gpu) or DeepSpeed ZeRO stage 1 or 2")
    if acc.distributed_type == DistributedType.DEEPSPEED:
        plugin = acc.state.deepspeed_plugin
        if plugin.zero_stage == 3:
            raise NotImplementedError("DeepSpeed ZeRO stage 3 shards the weights, and the kit's loop saves whole "
                                      "ones; use stage 1 or 2")
        ds = plugin.deepspeed_config
        if ds.get("train_micro_batch_size_per_gpu", "auto") == "auto":  # no dataloader to read it from
            ds["train_micro_batch_size_per_gpu"] = max(1, config.batch_size // (acc.num_processes
                                                                                * acc.gradient_accumulation_steps))


def plain_model(acc, wrapped):
    """The model inside accelerate's wrappers (DDP, DeepSpeed) with its own ``forward`` again.

    In mixed precision ``prepare`` wraps ``model.forward`` in autocast; accelerate's own unwrapping
    (``keep_fp32_wrapper=False``) unwraps every ``__wrapped__`` down to the undecorated function, which drops
    transformers' decorators of ``forward`` too, so the original bound method is put back here instead."""
    model = acc.unwrap_model(wrapped, keep_fp32_wrapper=True)
    original = model.__dict__.pop("_original_forward", None)
    if original is not None:
        if getattr(original, "__func__", None) is type(model).forward:
            model.__dict__.pop("forward", None)       # the class's forward, as before prepare
        else:
            model.forward = original
    return model


def shards_optimizer(acc) -> bool:
    """Whether the optimiser state is split over the processes (DeepSpeed): no mid-run checkpoint then."""
    from accelerate.utils import DistributedType

    return acc.distributed_type == DistributedType.DEEPSPEED


def shard(batch: list, processes: int, rank: int, accum: int) -> list[list]:
    """This process's micro-batches of one global batch: the batch cut into ``processes`` contiguous parts
    (the batch is sorted by length, so the parts pad alike), this process's part cut into ``accum``."""
    if len(batch) < processes * accum:
        raise ValueError(f"a batch of {len(batch)} samples cannot be split over {processes} processes x {accum} "
                         "accumulation steps; raise batch_size or lower grad_accum")
    mine = np.array_split(np.arange(len(batch)), processes)[rank]
    return [[batch[i] for i in part] for part in np.array_split(mine, accum)]


def loss_denominator(batch: list, reduction: str) -> int:
    """What the whole batch's loss divides by: its trained tokens (``"token"``) or its samples (``"sample"``)."""
    return sum(e.n_trained for e in batch) if reduction == "token" else len(batch)


def loss_weight(part: list, denominator: int, reduction: str, processes: int, accum: int) -> float:
    """The factor on a micro-batch's mean loss that makes the averaged gradient the whole batch's.

    The batch loss is ``sum / denominator``; a micro-batch's mean is ``its sum / its count``. DDP averages the
    processes' gradients and accelerate divides each micro-batch's loss by ``accum``, so the factor is
    ``count / denominator * processes * accum`` (exactly 1.0 for one process and one micro-batch)."""
    count = loss_denominator(part, reduction)
    return count / denominator * processes * accum


__all__ = ["accelerator_for", "plain_model", "shard", "loss_denominator", "loss_weight", "launched_processes", "is_main_process",
           "run_device", "shards_optimizer", "PRECISION"]
