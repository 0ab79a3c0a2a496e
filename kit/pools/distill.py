"""The pool the shipped distilled rich scorer is trained on, built apart from ``data_samples/``.

    python -m kit.pools distill OUT                      # pool.json, labels.csv, images/

The offline rich scorer (``kit/weights/rich_distilled.pt``) is shown on ``data_samples/``, so it is trained
on none of its samples. This pool carries the same reference ratings (written per question template) on
other samples:

- **easy-vqa**: ``n_easyvqa`` clean samples spread over every template of :data:`kit.pools.easyvqa.TEMPLATES`,
  on easy-vqa train images that ``data_samples/`` does not use;
- **rendered**: the generators of :mod:`kit.pools.rendered` run with other seeds (``rendered_seeds``), so
  the charts, tables, documents and plots carry other data; a sample whose image bytes or conversation
  equal one of ``data_samples/`` (a few generators draw nothing at random) is left out, so its template is
  not in training at all;
- **photos**: none. Their questions are written by hand for each photo and there are no other photos
  offline, so new samples would repeat the same images and the same questions. The photos of
  ``data_samples/`` are therefore held out entirely: images and questions the head never saw.

Defects are planted at ``defect_rate`` of each kind (half of the mismatches within their source), with
the same rules for their reference ratings as ``data_samples/``. ``labels.csv`` has the same columns, the
question ``template`` included, so cross-validation can keep templates apart. Deterministic for a seed.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from kit.pools import easyvqa, rendered
from kit.pools.build import _clear, assign_ids, library_versions
from kit.pools.defects import KINDS, plant_defects
from kit.pools.footprint import SAMPLE_POOL, PoolFootprint, conversation_hash, footprint
from kit.pools.sample import Sample, write_pool

N_EASYVQA = 760
RENDERED_SEEDS = (1, 2, 3, 4)
DEFECT_RATE = 0.03


def _shown(path) -> str:
    """``path`` relative to the working directory when it lies inside it (so build_info.json does not name a
    machine)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _rendered_samples(images: Path, seeds, excluded: PoolFootprint) -> tuple[list[Sample], int]:
    """Rendered samples for each seed, images renamed ``rendered/seed<s>_<name>``; those equal to a sample of
    the excluded pool (image bytes or conversation) are dropped. Returns the samples and how many were dropped."""
    out: list[Sample] = []
    dropped = 0
    for seed in seeds:
        scratch = images / f"_seed{seed}"
        for s in rendered.samples(scratch, seed):
            src = scratch / s.image
            digest = hashlib.sha1(src.read_bytes()).hexdigest()
            if digest in excluded.image_sha1 or conversation_hash(s.conversations) in excluded.conversation_sha1:
                dropped += 1
                continue
            rel = f"{rendered.SOURCE}/seed{seed}_{Path(s.image).name}"
            (images / rel).parent.mkdir(parents=True, exist_ok=True)
            if not (images / rel).exists():
                shutil.copyfile(src, images / rel)
            out.append(s.derive(f"{s.key}@seed{seed}", image=rel, template=s.template))
        shutil.rmtree(scratch)
    return out, dropped


def build_distill_pool(out_dir, n_easyvqa: int = N_EASYVQA, rendered_seeds=RENDERED_SEEDS,
                       defect_rate: float = DEFECT_RATE, seed: int = 0, exclude_pool=SAMPLE_POOL,
                       progress: bool = True) -> list[Sample]:
    """Write the distillation pool (``pool.json``, ``labels.csv``, ``images/``, ``build_info.json``) to
    ``out_dir``; see the module docstring. ``exclude_pool`` is the pool it stays apart from: by default the
    committed sample pool (``data_samples/``, as its footprint shipped with the kit), else another ``pool.json``
    or a :class:`~kit.pools.footprint.PoolFootprint`."""
    excluded = footprint(exclude_pool)
    if excluded is None:
        raise ValueError("the distillation pool stays apart from a pool: pass exclude_pool (default: the sample pool)")
    out_dir = Path(out_dir)
    images = _clear(out_dir)
    names = list(easyvqa.TEMPLATES)
    schedule = {name: n_easyvqa // len(names) + (1 if k < n_easyvqa % len(names) else 0)
                for k, name in enumerate(names)}
    used = excluded.easyvqa_ids["train"]
    image_ids = [i for i in sorted(easyvqa.image_paths("train")) if i not in used]
    clean = easyvqa.samples_from_schedule(schedule, "train", images, seed, image_ids=image_ids,
                                          unique_images=False, progress=progress)
    more, dropped = _rendered_samples(images, rendered_seeds, excluded)
    clean += more
    n_defects = int(round(defect_rate * len(clean)))
    counts = {kind: n_defects for kind in KINDS}
    rng = np.random.default_rng([seed, 2000])
    defects = plant_defects(clean, counts, rng, within_source=(n_defects + 1) // 2)
    samples = assign_ids(clean + defects, rng)
    write_pool(out_dir, samples)
    info = {"command": f"python -m kit.pools distill {out_dir}", "seed": seed, "n_easyvqa": n_easyvqa,
            "rendered_seeds": list(rendered_seeds), "defect_rate": defect_rate,
            "exclude_pool": _shown(excluded.name), "rendered_dropped_as_in_exclude_pool": dropped,
            "library_versions": library_versions()}
    (out_dir / "build_info.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return samples
