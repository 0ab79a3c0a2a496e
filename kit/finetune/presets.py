"""Fine-tuning presets as data: the model to start from, how it is aligned, and how it is trained.

=========  ==========================================================================================
preset     what it is
=========  ==========================================================================================
``tiny``   the CPU default for ablations: a LLaVA model (SigLIP tower 64 px / 16 px patches = 16 image
           tokens, 2 layers of width 128; a 2-layer Llama of width 192 whose tied embeddings are
           SmolLM2-135M's projected onto 192 principal components, over a vocabulary cut to SmolLM2's 4,096
           commonest tokens plus those of the kit's easy-vqa texts: 4,247), built once (on one thread, so
           that the build is the same on any machine) on the reserved easy-vqa
           train images: the tower learns their pixel truth (colour, shape, size, position) and is then
           frozen, the projector is initialised from the data (``standardise_projector``), and projector
           and language model are aligned on captions; fine-tuned: language model and projector at lr 3e-3,
           per-sample loss mean, 6 epochs and at least 600 steps (a 10% or 30% subset of a 2,000-sample
           pool trains for 600 steps, the whole pool for 750), matmuls in bfloat16 (autocast), eager attention
           (on one CPU thread a step takes 0.094 s instead of 0.114 s with PyTorch's SDPA kernel, whose backward
           is slow at these sequence lengths; ``benchmarks/bench_ablation.py`` part 1).
``small``  SmolLM2-135M-Instruct whole (30 layers) behind the tiny preset's aligned vision tower; alignment
           trains the projector only (paper B's protocol); fine-tuning trains LoRA adapters (peft) on
           every linear layer of the language model, plus the projector.
any name   a Hugging Face image-text-to-text model name or folder (e.g.
           ``llava-hf/llava-onevision-qwen2-0.5b-ov-hf`` on a GPU): no alignment unless asked for
           (projector only), full fine-tuning of language model and projector at 1e-5 (``lora=True`` in
           the config for LoRA).
=========  ==========================================================================================

Speeds and the reasons for these sizes are in ``docs/methods.md`` ("Fine-tuning and ablations").
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from kit.models.vlm import VLMSpec

# TrainConfig fields added after runs were keyed by the config: left out of to_dict at these values
OMITTED_AT = {"grad_accum": 1}

# What a training run may update: names of the model's parts (see kit.finetune.train.trainable_parameters).
PARTS = ("vision", "projector", "lm", "embeddings")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (configs as data: ``asdict`` round-trips, saved with every run).

    Steps: ``ceil(epochs * n / batch_size)``, at least ``min_steps``, at most ``max_steps``. Learning rate:
    linear warm-up over ``warmup`` of the steps, then cosine decay to ``final_lr_ratio * lr``. ``train``:
    the parts that learn (``"vision"``, ``"projector"``, ``"lm"``, ``"embeddings"``); ``lora`` replaces full
    training of ``"lm"`` by LoRA adapters of rank ``lora_r`` on ``lora_targets``. ``batch_size`` is the global
    batch: with ``grad_accum`` micro-batches and several processes (``accelerate launch``) each batch is split,
    not multiplied (:mod:`kit.finetune.engine`).
    """

    lr: float = 1e-3
    epochs: float = 3.0
    min_steps: int = 0
    max_steps: int | None = None
    batch_size: int = 16
    weight_decay: float = 0.0
    warmup: float = 0.05
    final_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    train: tuple = ("projector", "lm")
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_targets: tuple = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    train_end_token: bool = True
    loss: str = "token"        # "token": mean over the batch's trained tokens; "sample": mean of per-sample means
    max_length: int | None = 512
    group: int = 8
    checkpoint_every: int = 100
    device: str = "cpu"
    dtype: str | None = None
    autocast: str | None = None   # e.g. "bfloat16": matmuls in that precision, weights and optimiser in float32
    threads: int | None = None
    attention: str | None = None  # the attention implementation ("eager", "sdpa"); None keeps the model's own
    grad_accum: int = 1           # micro-batches per batch (same batch, same recipe; less memory per forward)

    def to_dict(self) -> dict:
        """The fields as JSON-able data; a field added later is left out at its default (``OMITTED_AT``), so
        the settings key of a run made before it existed stays the same."""
        d = asdict(self)
        d["train"] = list(self.train)
        d["lora_targets"] = list(self.lora_targets)
        for name, default in OMITTED_AT.items():
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        for k in ("train", "lora_targets"):
            if k in d and d[k] is not None:
                d[k] = tuple(d[k])
        return cls(**d)

    def with_(self, **changes) -> "TrainConfig":
        from dataclasses import fields

        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; TrainConfig has {[f.name for f in fields(self)]}")
        for k in ("train", "lora_targets"):
            if k in changes and changes[k] is not None:
                changes[k] = tuple(changes[k])
        return replace(self, **changes)


@dataclass(frozen=True)
class AlignConfig:
    """Stage 1 (alignment): captions of reserved images, language loss on the caption only.

    ``data=None`` aligns on easy-vqa train images of ``slice``; ``data="testbed"`` on the ``reserved`` side of
    every testbed family (:func:`kit.pools.testbed.alignment_records`), ``images_per_family`` of each. Fields left
    at None are not part of the settings that key a cached base (so adding one keeps older bases valid).
    """

    train: tuple = ("projector",)
    steps: int = 400
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    slice: str = "reserved"
    captions_per_image: int = 4
    warmup: float = 0.05
    threads: int | None = None
    limit_images: int | None = None    # only the first N images of the slice (quick runs, tests)
    vision_pretrain_steps: int = 0     # a tower trained from scratch: first classify the images' truth (see align)
    weight_decay: float = 0.0
    data: str | None = None            # None: easy-vqa captions (slice above); "testbed": the testbed's families
    images_per_family: int | None = None   # testbed data: captioned reserved images per family (default 150)
    vision_images_per_family: int | None = None  # testbed data: reserved images per family the tower pretrains on
    vision_pool: str | None = None     # pretraining heads read the tower's tokens: None = their mean, "tokens" = all

    def to_dict(self) -> dict:
        d = asdict(self)
        d["train"] = list(self.train)
        return d


@dataclass(frozen=True)
class Preset:
    """A named starting point: a model built from ``spec`` (or loaded from ``model``), aligned, then trained."""

    name: str
    spec: VLMSpec | None = None
    model: str | None = None
    vision_from: str | None = None     # copy the (aligned) vision tower of another preset
    align: AlignConfig | None = None
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return {"name": self.name, "spec": self.spec.to_dict() if self.spec else None, "model": self.model,
                "vision_from": self.vision_from, "align": self.align.to_dict() if self.align else None,
                "train": self.train.to_dict()}


TINY_SPEC = VLMSpec(image_size=64, patch_size=16, vision_hidden=128, vision_layers=2, vision_heads=2, lm="pca",
                    lm_hidden=192, lm_layers=2, lm_heads=3, lm_kv_heads=1, lm_intermediate=512, system_prompt=None,
                    vocab=4096)

PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny", spec=TINY_SPEC,
        align=AlignConfig(train=("projector", "lm"), steps=300, batch_size=32, lr=2e-3,
                          vision_pretrain_steps=200, threads=1),
        train=TrainConfig(lr=3e-3, epochs=6.0, min_steps=600, batch_size=16, train=("projector", "lm"), loss="sample",
                          autocast="bfloat16", attention="eager")),
    "small": Preset(
        name="small", spec=VLMSpec(image_size=64, patch_size=16, vision_hidden=128, vision_layers=2, vision_heads=2,
                                   lm="smollm2", lm_layers=30, system_prompt=None),
        vision_from="tiny",
        align=AlignConfig(train=("projector",), steps=150, batch_size=16, lr=1e-3),
        train=TrainConfig(lr=2e-4, epochs=2.0, min_steps=60, batch_size=8, train=("projector", "lm"), lora=True)),
}

# The testbed's model: the tiny architecture, its vocabulary cut around the testbed's texts, its tower pretrained
# and the model aligned on the reserved side of every testbed family (kit.pools.testbed); trained like tiny.
PRESETS["testbed"] = Preset(
    name="testbed", spec=TINY_SPEC,
    align=AlignConfig(train=("projector", "lm"), steps=600, batch_size=32, lr=2e-3, vision_pretrain_steps=1500,
                      threads=1, data="testbed", images_per_family=400, vision_images_per_family=1500),
    train=PRESETS["tiny"].train.with_(epochs=18.0))

HF_TRAIN = TrainConfig(lr=1e-5, epochs=1.0, batch_size=8, train=("projector", "lm"), warmup=0.03, final_lr_ratio=0.0,
                       max_length=2048, device="cuda", dtype="bfloat16")


def resolve_preset(preset, **train_changes) -> Preset:
    """A :class:`Preset` from a name (``"tiny"``, ``"small"``), a ``Preset``, or a HF model name / folder.

    ``train_changes`` override fields of the preset's :class:`TrainConfig` (e.g. ``lr=``, ``epochs=``).
    """
    if isinstance(preset, Preset):
        out = preset
    elif isinstance(preset, str) and preset in PRESETS:
        out = PRESETS[preset]
    elif isinstance(preset, (str, Path)):
        folder = Path(preset)
        if folder.is_dir() and (folder / "kit_base.json").is_file():  # an aligned base made by kit.finetune.align
            import json

            info = json.loads((folder / "kit_base.json").read_text())
            base = PRESETS.get(info.get("preset"), None)
            out = Preset(name=str(preset), model=str(folder), train=base.train if base else HF_TRAIN)
        else:
            out = Preset(name=str(preset), model=str(preset), align=AlignConfig(train=("projector",)),
                         train=HF_TRAIN)
    else:
        raise TypeError(f"preset must be a name, a folder or a Preset, not {type(preset).__name__}")
    if train_changes:
        out = replace(out, train=out.train.with_(**train_changes))
    return out
