"""Build the committed sample pool (``data_samples/``) and larger easy-vqa pools, deterministically."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Mapping

import numpy as np

from kit.pools import easyvqa, photos, rendered
from kit.pools.defects import KINDS, plant_defects
from kit.pools.sample import Sample, write_pool

SOURCES = (easyvqa.SOURCE, photos.SOURCE, rendered.SOURCE)
ID_PREFIX = {easyvqa.SOURCE: "ev", photos.SOURCE: "ph", rendered.SOURCE: "rd"}

# easy-vqa part of data_samples/: how many clean samples of each template (each on its own image).
SAMPLE_POOL_SCHEDULE: dict[str, int] = {
    "yn_color": 8, "yn_color_negated": 6, "yn_shape": 8, "yn_shape_negated": 6,
    "word_color": 10, "word_shape": 10, "mc_color": 10, "mc_shape": 8,
    "short_description": 12, "detailed_description": 10, "cot_match": 12, "coordinate_bbox": 14,
    "word_third": 10, "spec_caps": 8, "spec_json": 6, "incontext_code": 8, "multi_turn": 8,
    "compare_pair": 8, "compare_size": 6,
}
SAMPLE_POOL_DEFECTS: dict[str, int] = {"mismatch": 11, "wrong_answer": 11, "truncated": 11, "duplicate": 11}
# How many of the planted mismatches take their image from their own source (two per source); the
# other 5 take it from another source, so a scorer that only tells sources apart is not rewarded.
SAMPLE_POOL_WITHIN_SOURCE_MISMATCHES = 6
SAMPLE_POOL_SPLIT = "train"

DEFAULT_RATES: dict[str, float] = {"mismatch": 0.05, "wrong_answer": 0.05, "truncated": 0.02, "duplicate": 0.02}


def assign_ids(samples: list[Sample], rng: np.random.Generator, width: int = 4) -> list[Sample]:
    """Order samples by source, shuffle within each source (so defects are not bunched at the
    end and their ids give nothing away) and number them ``<prefix>_<k>``."""
    out: list[Sample] = []
    sources = [s for s in SOURCES if any(x.source == s for x in samples)]
    sources += sorted({x.source for x in samples} - set(sources))
    for src in sources:
        group = [x for x in samples if x.source == src]
        prefix = ID_PREFIX.get(src, src)
        for k, i in enumerate(rng.permutation(len(group)), start=1):
            group[i].id = f"{prefix}_{k:0{width}d}"
        out += sorted(group, key=lambda x: x.id)
    return out


# Libraries whose version can change the image bytes (encoders, rasterisers, bundled data).
IMAGE_LIBRARIES = ("numpy", "pillow", "matplotlib", "scikit-image", "scikit-learn", "easy-vqa")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the images (written to build_info.json)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in IMAGE_LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


def write_build_info(out_dir: Path, seed: int) -> None:
    import json

    info = {"command": "python -m kit.pools build data_samples/", "seed": seed,
            "library_versions": library_versions()}
    (out_dir / "build_info.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")


def _clear(out_dir: Path) -> Path:
    """Remove what a previous build wrote (only our files and image folders); return images/."""
    images = out_dir / "images"
    for src in SOURCES:
        if (images / src).is_dir():
            shutil.rmtree(images / src)
    for name in ("pool.json", "labels.csv", "build_info.json"):
        (out_dir / name).unlink(missing_ok=True)
    images.mkdir(parents=True, exist_ok=True)
    return images


def build_sample_pool(out_dir="data_samples", seed: int = 0, progress: bool = True) -> list[Sample]:
    """Rebuild ``out_dir`` (pool.json, labels.csv, images/, README.md) from the installed packages.

    The output is byte-identical on every rebuild with the same library versions.
    """
    from kit.pools.readme import write_readme

    out_dir = Path(out_dir)
    images = _clear(out_dir)
    clean = (easyvqa.samples_from_schedule(SAMPLE_POOL_SCHEDULE, SAMPLE_POOL_SPLIT, images, seed,
                                           progress=progress)
             + photos.samples(images) + rendered.samples(images, seed))
    rng = np.random.default_rng([seed, 1000])
    defects = plant_defects(clean, SAMPLE_POOL_DEFECTS, rng, within_source=SAMPLE_POOL_WITHIN_SOURCE_MISMATCHES)
    samples = assign_ids(clean + defects, rng)
    write_pool(out_dir, samples)
    write_readme(out_dir, samples)
    write_build_info(out_dir, seed)
    return samples


def defect_counts(n: int, rates: Mapping[str, float]) -> dict[str, int]:
    """``round(rate * n)`` defects of each kind, checked."""
    unknown = set(rates) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown defect kinds {sorted(unknown)}; use {KINDS}")
    bad = {k: v for k, v in rates.items() if not 0 <= v < 1}
    if bad:
        raise ValueError(f"defect rates must be in [0, 1), got {bad}")
    counts = {k: int(round(float(rates.get(k, 0.0)) * n)) for k in KINDS}
    if 2 * sum(counts.values()) > n:
        raise ValueError(f"defect rates {dict(rates)} leave too few clean samples to make them from (n={n})")
    return counts


def pool_easyvqa_ids(pool_path, split: str) -> set[int]:
    """easy-vqa image ids of ``split`` that a pool file uses (read from the image file names)."""
    import json

    from kit.pools.footprint import easyvqa_ids

    return easyvqa_ids(json.loads(Path(pool_path).read_text(encoding="utf-8")), split)


def build_easyvqa_pool(out_dir, n: int = 1000, rates: Mapping[str, float] | None = None, seed: int = 0,
                       split: str = "train", templates: list[str] | None = None, exclude_pool=None,
                       reserved: bool = False, progress: bool = True) -> list[Sample]:
    """Write a larger easy-vqa pool (pool.json, labels.csv, images/) with chosen defect rates.

    ``n`` is the total number of samples; ``round(rate * n)`` of them are defects of each kind,
    the rest clean, spread evenly over ``templates`` (default: all easy-vqa templates). Images are
    drawn at random (with reuse) from ``split`` and copied. The default is ``"train"``, without the
    slices :data:`kit.pools.easyvqa.TRAIN_SLICES` keeps apart (the images the LiT head and the tiny
    vision-language model's alignment train on, and the fine-tuning dev slice; ``reserved=True``
    draws from them too): 2,600 images. easy-vqa's ``"test"`` split is the held-out evaluation of
    :mod:`kit.finetune`. ``exclude_pool`` (e.g. ``"data_samples/pool.json"``) leaves out the easy-vqa
    images that pool already uses, so the two stay apart. A planted ``mismatch`` pairs a sample with
    another easy-vqa image of the pool whose truth contradicts its answer (mismatches within the source).
    """
    if n < 1:
        raise ValueError("n must be positive")
    counts = defect_counts(n, DEFAULT_RATES if rates is None else rates)
    n_clean = n - sum(counts.values())
    names = list(easyvqa.TEMPLATES) if templates is None else list(templates)
    schedule = {name: n_clean // len(names) + (1 if k < n_clean % len(names) else 0)
                for k, name in enumerate(names)}
    image_ids = sorted(easyvqa.image_paths(split))
    if split == "train" and not reserved:
        image_ids = easyvqa.train_slice("pool")
    if exclude_pool is not None:
        used = pool_easyvqa_ids(exclude_pool, split)
        image_ids = [i for i in image_ids if i not in used]
    out_dir = Path(out_dir)
    images = _clear(out_dir)
    clean = easyvqa.samples_from_schedule(schedule, split, images, seed, image_ids=image_ids,
                                          unique_images=False, progress=progress)
    rng = np.random.default_rng([seed, 1000])
    defects = plant_defects(clean, counts, rng)
    samples = assign_ids(clean + defects, rng, width=max(4, len(str(n))))
    write_pool(out_dir, samples)
    return samples
