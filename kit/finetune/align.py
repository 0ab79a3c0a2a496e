"""Stage 1 (alignment) on captions of easy-vqa images kept apart, and the cached base models of the presets.

LLaVA trains in two stages: alignment (image-caption pairs; the projector learns to map the vision tower's
features into the language model) and instruction tuning (what :func:`kit.finetune.finetune` does on a
subset). Paper B (arXiv 2407.00102) measures the answer loss ``l`` with the model *before* instruction
tuning, i.e. after stage 1. :func:`align` is that stage::

    base = kit.finetune.align("tiny")                      # cached folder, built on first use
    scores = kit.score(pool, "loss", model=base)           # paper B's l, image included

Data: for every image of a slice of easy-vqa's train split that no pool uses (``"reserved"`` by default,
:data:`kit.pools.easyvqa.TRAIN_SLICES`; images of ``exclude_pool`` are left out too), ``captions_per_image``
records of a brief-caption instruction (as in LLaVA's 558K alignment set) and a caption read from the
image's pixels ("A red circle.", "Red circle.", "The image shows a red circle.", "A small red circle in the
upper left part of the image."). No question of the pools' templates or of easy-vqa's own is among them,
so the aligned model has seen captions only.

What trains: the preset's ``AlignConfig.train``. The ``tiny`` preset has no pretrained vision tower or
language-model body (only SmolLM2's embeddings), so its alignment trains tower, projector and language
model (embeddings frozen); ``small`` and Hugging Face models train the projector only (paper B's protocol,
LLaVA's stage 1).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from kit.cache import cache_root
from kit.finetune.presets import AlignConfig, Preset, TrainConfig, resolve_preset
from kit.pools.footprint import SAMPLE_POOL, footprint
from kit.provenance import jsonable

BASE_INFO = "kit_base.json"
# exclude_pool=SAMPLE_POOL (the default): the committed sample pool's easy-vqa images are kept out of the alignment
# data too. Its footprint ships with the package (kit.pools.footprint), so the data and the cache key depend neither
# on where the kit is called from nor on whether data_samples/ is there.
INSTRUCTIONS = (
    "Describe the image concisely.",
    "Provide a brief description of the given image.",
    "Summarize the visual content of the image.",
    "Write a terse but informative summary of the picture.",
    "Share a concise interpretation of the image provided.",
)


def captions_for(truth, rng) -> list[str]:
    """Caption variants of one easy-vqa image's truth (colour, shape, size, where it is)."""
    c, s = truth.color, truth.shape
    where = re.sub(r"\s+", " ", truth.region).strip()
    where = "the centre" if where == "centre" else f"the {where}"
    return [f"A {c} {s}.", f"{c.capitalize()} {s}.", f"The image shows a {c} {s}.",
            f"A {truth.size_word} {c} {s} in {where} of the image."]


def caption_records(slice: str = "reserved", captions_per_image: int = 4, seed: int = 0,
                    exclude_pool=SAMPLE_POOL, limit: int | None = None) -> list[dict]:
    """LLaVA records (``id``, ``image`` path, ``conversations``) of captions of a train slice's images.

    Images that ``exclude_pool`` uses (:func:`kit.pools.footprint.footprint`: the sample pool by default, a
    ``pool.json``, or ``None``; matched by file name) are left out; ``limit`` keeps the first images only (for
    quick runs).
    """
    from kit.pools import easyvqa

    ids = easyvqa.train_slice(slice)
    excluded = footprint(exclude_pool)
    if excluded is not None:
        used = excluded.easyvqa_ids["train"]
        ids = [i for i in ids if i not in used]
    if limit is not None:
        ids = ids[:limit]
    rng = np.random.default_rng([seed, 7])
    paths = easyvqa.image_paths("train")
    records = []
    for image_id in ids:
        t = easyvqa.truth("train", image_id)
        variants = captions_for(t, rng)
        for k in range(captions_per_image):
            caption = variants[k % len(variants)] if captions_per_image <= len(variants) else \
                variants[int(rng.integers(len(variants)))]
            instruction = INSTRUCTIONS[int(rng.integers(len(INSTRUCTIONS)))]
            records.append({"id": f"align_{image_id:05d}_{k}", "image": str(paths[image_id]),
                            "conversations": [{"from": "human", "value": f"<image>\n{instruction}"},
                                              {"from": "gpt", "value": caption}]})
    return records


def easyvqa_texts() -> list[str]:
    """The texts the kit's easy-vqa data can hold, which a cut vocabulary (``VLMSpec.vocab``) must keep whole:
    easy-vqa's questions and answers (both splits), every template of :mod:`kit.pools.easyvqa` rendered for
    each colour and shape in several places and sizes, and the alignment captions (:func:`captions_for`)."""
    from kit.pools import easyvqa

    texts: list[str] = []
    for split in ("train", "test"):
        qs, answers, _ = easyvqa.split_questions(split)
        texts.extend(sorted(set(qs)))
        texts.extend(sorted(set(answers)))
    rng = np.random.default_rng(0)
    boxes = [(0.05, 0.05, 0.2, 0.2), (0.4, 0.4, 0.6, 0.6), (0.7, 0.65, 0.95, 0.9), (0.1, 0.5, 0.6, 0.95)]
    truths = [easyvqa.Shape("train", 0, s, c, box, round((box[2] - box[0]) * (box[3] - box[1]), 4))
              for c in easyvqa.COLORS for s in easyvqa.SHAPES for box in boxes]
    for k, t in enumerate(truths):
        texts.extend(captions_for(t, rng))
        for tpl in easyvqa.TEMPLATES.values():
            subject = (t, truths[(k * 7 + 3) % len(truths)]) if tpl.pair else t
            for _ in range(2):
                try:  # a template that does not apply to this subject says so with ValueError
                    texts.extend(tpl.render(subject, tpl.params(subject, rng)))
                except ValueError:
                    continue
    return texts


def vocabulary_texts(data: str | None) -> list[str]:
    """The texts a cut vocabulary keeps whole for a preset aligned on ``data`` (easy-vqa's or the testbed's)."""
    if data == "testbed":
        from kit.pools.testbed.heldout import texts

        return texts()
    return easyvqa_texts()


def alignment_data(config: AlignConfig, exclude_pool) -> tuple[list[dict], tuple | None]:
    """The alignment records of a config and, for a tower trained from scratch, its pretraining targets
    ``(paths, {head: class per path}, {head: number of classes})``."""
    if config.data == "testbed":
        from kit.pools.testbed.heldout import alignment_records

        records, targets, classes = alignment_records(per_family=config.images_per_family or 150,
                                                      captions_per_image=config.captions_per_image, seed=config.seed,
                                                      vision_per_family=config.vision_images_per_family)
        paths = list(targets)[:config.limit_images] if config.limit_images else list(targets)
        keep = set(paths)
        records = [r for r in records if r["image"] in keep]
        labels = {head: [targets[p].get(head, -100) for p in paths] for head in classes}
        return records, (paths, labels, classes)
    if config.data is not None:
        raise ValueError(f"unknown alignment data {config.data!r}; use None (easy-vqa) or 'testbed'")
    records = caption_records(config.slice, config.captions_per_image, config.seed, exclude_pool,
                              limit=config.limit_images)
    return records, easyvqa_vision_targets(records)


def easyvqa_vision_targets(records) -> tuple:
    """The easy-vqa alignment images' pixel truth as vision pretraining targets (colour, shape, size, third)."""
    from kit.pools import easyvqa

    paths = list(dict.fromkeys(r["image"] for r in records))
    ids = [int(Path(p).stem.split("_")[-1]) for p in paths]
    truths = [easyvqa.truth("train", i) for i in ids]
    labels = {k: [values.index(getattr(t, k)) for t in truths] for k, values in VISION_TARGETS.items()}
    return paths, labels, {k: len(v) for k, v in VISION_TARGETS.items()}


def records_pool(records, folder=None):
    """A :class:`kit.data.Pool` of LLaVA records whose images are absolute paths (written to a temp file)."""
    import kit

    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="kit-records-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "records.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    pool = kit.load_pool(path, check_images=False, allow_absolute_paths=True)
    if len(pool.table) != len(records):
        first = pool.report.iloc[0].to_dict() if len(pool.report) else {}
        raise ValueError(f"{len(records) - len(pool.table)} of {len(records)} alignment records rejected, e.g. {first}")
    return pool


# --------------------------------------------------------------------------- building and aligning

def initial_model(preset: Preset, seed: int = 0):
    """``(model, processor)`` before alignment: built from the preset's spec (and another preset's tower)."""
    from kit.models.hf import load_pretrained
    from kit.models.vlm import build_vlm

    if preset.spec is None:
        return load_pretrained(preset.model, device="cpu")
    texts = vocabulary_texts(preset.align.data if preset.align else None) if preset.spec.vocab is not None else ()
    model, processor = build_vlm(preset.spec, seed=seed, texts=texts)
    if preset.vision_from:
        donor, _ = load_pretrained(str(base_model(preset.vision_from)), device="cpu")
        model.model.vision_tower.load_state_dict(donor.model.vision_tower.state_dict())
        del donor
    return model, processor


def _plan(preset, out, config, exclude_pool, seed, changes):
    """The preset, the alignment config, the settings that identify the result, their key and the folder."""
    from kit.finetune.train import settings_hash

    preset = resolve_preset(preset)
    config = config or preset.align or AlignConfig()
    if changes:
        config = replace(config, **{k: (tuple(v) if k == "train" else v) for k, v in changes.items()})
    if seed is not None:
        config = replace(config, seed=seed)
    if config.data == "testbed":   # the testbed's sides keep its alignment images apart from every pool
        exclude_pool = None
    settings = {"preset": preset.name if preset.spec else None, "spec": preset.spec.to_dict() if preset.spec else None,
                "model": preset.model, "vision_from": preset.vision_from,
                "align": {k: v for k, v in config.to_dict().items() if k != "threads" and v is not None},
                "exclude_pool": _pool_tag(exclude_pool), "version": 5}
    if config.data == "testbed":   # the families' generators are part of the data: a new version, a new base
        from kit.pools.testbed.heldout import VERSION

        settings["testbed_version"] = VERSION
    key = settings_hash(settings)
    name = f"{preset.name if preset.spec else 'model'}-{key}"
    final = Path(out) if out is not None else cache_root() / "finetune" / name
    return preset, config, settings, key, final


def aligned_path(preset="tiny", out=None, config: AlignConfig | None = None, exclude_pool=SAMPLE_POOL,
                 seed: int | None = None, **changes) -> Path:
    """Where :func:`align` puts (or finds) the aligned model for these arguments; builds nothing."""
    return _plan(preset, out, config, exclude_pool, seed, changes)[4]


def align(preset="tiny", out=None, config: AlignConfig | None = None, exclude_pool=SAMPLE_POOL,
          seed: int | None = None, progress: bool = True, device: str = "cpu", **changes) -> Path:
    """Align a model (stage 1) on captions of reserved easy-vqa images; returns the aligned model's folder.

    ``preset``: ``"tiny"``, ``"small"``, a :class:`Preset`, or a Hugging Face model name / folder (its
    projector is trained). ``config`` (or keyword ``changes`` to the preset's :class:`AlignConfig`, e.g.
    ``steps=``) sets the data and the steps. Without ``out`` the folder is a cache entry under ``$KIT_CACHE``
    keyed by the preset and the settings, built once (atomically) and reused afterwards.
    """
    preset, config, settings, key, final = _plan(preset, out, config, exclude_pool, seed, changes)
    if (final / BASE_INFO).is_file():
        return final
    work = final.with_name(f".{final.name}.work")  # the run folder (resumable); the model is moved out at the end
    model, processor = initial_model(replace(preset, align=config), seed=config.seed)
    records, vision_targets = alignment_data(config, exclude_pool)
    pool = records_pool(records, work / "data")
    from kit.finetune.data import ExampleEncoder
    from kit.finetune.train import train_examples

    vision_info = {}
    if config.vision_pretrain_steps:
        vision_info = pretrain_vision(model, processor, *vision_targets, config.vision_pretrain_steps,
                                      seed=config.seed, threads=config.threads, pool=config.vision_pool or "mean")
        if preset.spec is not None:  # image tokens that differ between images as much as text tokens do
            from kit.data import decode_image
            from kit.models.vlm import standardise_projector

            emb = model.get_input_embeddings().weight.detach()
            sample = list(dict.fromkeys(r["image"] for r in records))[:256]
            pixels = processor.image_processor([decode_image(p) for p in sample], return_tensors="pt")["pixel_values"]
            vision_info["projector"] = standardise_projector(model, pixels, float(emb.norm(dim=1).mean()))

    train = TrainConfig(lr=config.lr, epochs=0.0, min_steps=config.steps, max_steps=config.steps,
                        batch_size=config.batch_size, warmup=config.warmup, train=tuple(config.train),
                        weight_decay=config.weight_decay,
                        checkpoint_every=max(50, config.steps // 4), device=device, max_length=None,
                        threads=config.threads)
    encoder = ExampleEncoder(processor, vision=True, train_end_token=True)
    examples, rejected = encoder.encode_pool(pool, progress=progress)
    t0 = time.perf_counter()
    result = train_examples(model, encoder, examples, train, work / "run", seed=config.seed,
                            settings={"align": settings}, save_model=True, progress=progress, desc="aligning")
    aligned = result.model if result.model is not None else load_pretrained_model(work / "run" / "model")
    gain = image_gain(aligned, encoder, examples)
    info = {**settings, "key": key, "n_records": len(records), "n_images": len({r["image"] for r in records}),
            "caption_loss": gain["loss"], "caption_loss_shuffled_images": gain["loss_shuffled"],
            "vision_pretraining": vision_info,
            "rejected": len(rejected), "final_loss": result.info.get("final_loss"),
            "train_seconds": result.info.get("train_seconds"), "seconds": round(time.perf_counter() - t0, 1),
            "data": ("captions of the testbed families' reserved images" if config.data == "testbed"
                     else "captions of easy-vqa train images, slice " + config.slice)}
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        for item in (work / "run" / "model").iterdir():
            shutil.move(str(item), tmp / item.name)
        shutil.copyfile(work / "run" / "history.csv", tmp / "align_history.csv")
        (tmp / BASE_INFO).write_text(json.dumps(jsonable(info), indent=1), encoding="utf-8")
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return final


VISION_TARGETS = {"color": ("red", "green", "blue", "yellow", "teal", "brown", "gray", "black"),
                  "shape": ("circle", "rectangle", "triangle"), "size_word": ("small", "medium-sized", "large"),
                  "third": ("left", "middle", "right")}


def pretrain_vision(model, processor, paths, labels: dict, classes: dict, steps: int, batch_size: int = 64,
                    lr: float = 2e-3, seed: int = 0, threads: int | None = None, pool: str = "mean") -> dict:
    """Train a vision tower from scratch to tell what the alignment images show.

    The kit cannot download a pretrained tower (CLIP, SigLIP), so the tiny presets' tower first learns the
    pixel truth of the alignment images: ``labels[head]`` gives a class per image of ``paths`` (-100 where the
    head does not apply: a testbed head belongs to one family), ``classes[head]`` the number of classes. One
    linear head per target on the mean of the tower's last hidden states (``pool="tokens"``: on all of them,
    concatenated, so that a head can read where things are, as the language model does), cross-entropy summed
    over the heads that apply to the batch; the heads are thrown away afterwards. easy-vqa's targets are colour, shape, size
    and position (:func:`easyvqa_vision_targets`); the testbed's are its families' attributes. Returns the
    accuracies on the training images at the end.
    """
    import torch

    from kit.data import decode_image

    targets = {k: torch.tensor(v) for k, v in labels.items()}
    pixels = processor.image_processor([decode_image(p) for p in paths], return_tensors="pt")["pixel_values"]
    tower = model.model.vision_tower
    hidden = model.config.vision_config.hidden_size
    if pool not in ("mean", "tokens"):
        raise ValueError(f"pool must be 'mean' or 'tokens', not {pool!r}")
    if pool == "tokens":
        with torch.no_grad():
            hidden *= tower(pixels[:1], output_hidden_states=True).hidden_states[-1].shape[1]

    def features(batch):
        states = tower(batch, output_hidden_states=True).hidden_states[-1]
        return states.mean(1) if pool == "mean" else states.flatten(1)

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        torch.manual_seed(seed)
        heads = torch.nn.ModuleDict({k: torch.nn.Linear(hidden, n) for k, n in classes.items()})
        params = list(tower.parameters()) + list(heads.parameters())
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
        rng = np.random.default_rng([seed, 11])
        tower.train()
        for _ in range(steps):
            idx = torch.as_tensor(rng.choice(len(paths), size=min(batch_size, len(paths)), replace=False))
            feats = features(pixels[idx])
            loss = sum(torch.nn.functional.cross_entropy(heads[k](feats), targets[k][idx]) for k in heads
                       if (targets[k][idx] >= 0).any())
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        tower.eval()
        with torch.no_grad():
            feats = torch.cat([features(pixels[i:i + 256]) for i in range(0, len(paths), 256)])
            acc = {}
            for k in heads:
                valid = targets[k] >= 0
                hit = heads[k](feats[valid]).argmax(1) == targets[k][valid]
                acc[k] = round(float(hit.float().mean()), 4)
    finally:
        torch.set_num_threads(before)
    return {"steps": steps, "batch_size": batch_size, "lr": lr, "n_images": len(paths), "pool": pool,
            "train_accuracy": acc, "final_loss": round(float(loss.detach()), 4)}


def load_pretrained_model(folder):
    from kit.models.hf import load_pretrained

    return load_pretrained(str(folder), device="cpu")[0]


def image_gain(model, encoder, examples, n: int = 64, seed: int = 0) -> dict:
    """Caption loss of ``n`` examples with their own images and with the images shuffled among them.

    A model that reads the image has a clearly lower loss with its own images; equal losses mean the image is
    ignored.
    """
    import torch

    from kit.finetune.train import batch_loss

    rng = np.random.default_rng(seed)
    pick = [examples[i] for i in rng.permutation(len(examples))[:n]]
    inputs, labels = encoder.collate(pick)
    device = next(model.parameters()).device   # where the run left the model (a GPU when aligned on one)
    inputs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    labels = labels.to(device)
    model.eval()
    with torch.inference_mode():
        own, _, _ = batch_loss(model, inputs, labels)
        images = dict(inputs)
        images["pixel_values"] = inputs["pixel_values"][torch.as_tensor(rng.permutation(len(pick)), device=device)]
        other, _, _ = batch_loss(model, images, labels)
    return {"loss": round(float(own), 4), "loss_shuffled": round(float(other), 4)}


def _pool_tag(exclude_pool):
    """The excluded pool's part of the cache key: the first 12 hex digits of its ``pool.json``'s SHA-1."""
    excluded = footprint(exclude_pool)
    return None if excluded is None else excluded.tag


def base_model(preset="tiny", **changes) -> Path:
    """The aligned starting model of a preset (a folder; built by :func:`align` on first use).

    A Hugging Face model name or folder is returned as it is (no alignment unless :func:`align` is called).
    """
    p = resolve_preset(preset)
    if p.spec is None:
        return Path(p.model) if Path(p.model).exists() else p.model
    return align(p, progress=True, **changes)


# A briefly aligned model for quick runs (notebooks' quick parameters, demos): seconds, not minutes; it
# learns little, so nothing measured with it is reported.
QUICK = {"steps": 20, "limit_images": 48, "vision_pretrain_steps": 20}


def quick_base(preset="tiny") -> Path:
    """The briefly aligned model of :data:`QUICK` (cached like :func:`base_model`)."""
    p = resolve_preset(preset)
    if p.spec is None:
        return base_model(p)
    changes = dict(QUICK)
    if not (p.align and p.align.vision_pretrain_steps):
        changes.pop("vision_pretrain_steps")
    return align(p, progress=False, **changes)


def base_info(folder) -> dict:
    """The alignment record of a base folder (``kit_base.json``), or ``{}``."""
    path = Path(folder) / BASE_INFO
    return json.loads(path.read_text()) if path.is_file() else {}
