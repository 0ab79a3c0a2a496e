"""Named pool conditions of the testbed, and the builder that writes one (``python -m kit.pools testbed``).

=================  ===========================================================================================
condition          what the pool is like
=================  ===========================================================================================
``balanced-clean`` every family and every template in equal shares, no defects
``skewed-clean``   a long tail over families (:data:`SKEWED_FAMILIES`: the largest 46%, the rarest 2%) and
                   over interaction styles (:data:`SKEWED_KINDS`: short answers dominate), no defects
``skewed-noisy``   the same tail with planted defects (:data:`NOISY_DEFECTS`): image-text mismatches within a
                   family, wrong answers, truncated answers and near-duplicates
``redundant``      equal family and template shares, 60% of the pool near-duplicates of the rest (an image
                   re-drawn with pixel noise and the question asked again), in clusters of varying size
=================  ===========================================================================================

The shares and rates are fixed in ``docs/methods.md`` ("The testbed") before any result. A near-duplicate is
labelled ``duplicate`` in ``labels.csv`` (its ``origin`` the sample it copies), so a subset's share of them is
counted like any planted defect. Everything is drawn from the families' ``train`` side with seeded generators:
the same condition, ``n`` and seed give the same bytes.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kit.pools.defects import truncate_answer
from kit.pools.labels import defect_ratings, styles
from kit.pools.sample import Sample, conversation, write_pool
from kit.pools.testbed.base import VERSION, Drawn, render_question, stable_int

TEMPLATE_KINDS = ("word", "yn", "mc", "describe", "cot", "json", "multi")

SKEWED_FAMILIES: dict[str, float] = {"shapes": 0.46, "counting": 0.16, "position": 0.10, "ocr": 0.08, "bars": 0.06,
                                     "size": 0.05, "digits": 0.04, "arithmetic": 0.03, "oddone": 0.02}
SKEWED_KINDS: dict[str, float] = {"word": 0.40, "yn": 0.25, "describe": 0.12, "multi": 0.08, "mc": 0.05,
                                  "cot": 0.05, "json": 0.05}
NOISY_DEFECTS: dict[str, float] = {"mismatch": 0.08, "wrong_answer": 0.08, "truncated": 0.04, "duplicate": 0.05}


@dataclass(frozen=True)
class Condition:
    """A pool condition: family shares, template-kind shares (None: equal), defect rates, redundancy."""

    name: str
    description: str
    family_shares: dict | None = None
    kind_shares: dict | None = None
    defects: dict = field(default_factory=dict)
    redundancy: float = 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "family_shares": self.family_shares,
                "kind_shares": self.kind_shares, "defects": dict(self.defects), "redundancy": self.redundancy}


CONDITIONS: dict[str, Condition] = {c.name: c for c in (
    Condition("balanced-clean", "families and templates in equal shares, no defects"),
    Condition("skewed-clean", "a long tail over families and styles, no defects", SKEWED_FAMILIES, SKEWED_KINDS),
    Condition("skewed-noisy", "the skewed tail plus planted defects", SKEWED_FAMILIES, SKEWED_KINDS, NOISY_DEFECTS),
    Condition("redundant", "equal shares, 60% of the pool near-duplicates", redundancy=0.6),
)}


def template_kind(name: str) -> str:
    """``word_color`` -> ``word``; ``describe`` -> ``describe``."""
    head = name.split("_", 1)[0]
    return head if head in TEMPLATE_KINDS else name


def split_count(total: int, shares: dict) -> dict:
    """``total`` split by ``shares`` (normalised), largest remainders first, ties in the shares' order."""
    keys = list(shares)
    weights = np.array([float(shares[k]) for k in keys])
    if total < 0 or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"cannot split {total} by {shares}")
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    order = sorted(range(len(keys)), key=lambda k: (-(exact[k] - counts[k]), k))
    for k in order[:total - int(counts.sum())]:
        counts[k] += 1
    return {k: int(c) for k, c in zip(keys, counts)}


def schedule(condition: Condition, n_clean: int, families) -> dict[tuple[str, str], int]:
    """How many clean samples of each (family, template) the condition asks for."""
    names = [f.name for f in families]
    shares = condition.family_shares or {name: 1.0 for name in names}
    missing = [n for n in names if n not in shares]
    if missing:
        raise ValueError(f"condition {condition.name!r} gives no share to {missing}")
    per_family = split_count(n_clean, {n: shares[n] for n in names})
    out = {}
    for f in families:
        templates = list(f.templates())
        if condition.kind_shares is None:
            weights = {t: 1.0 for t in templates}
        else:  # a kind's share is split equally over the family's templates of that kind
            kinds = [template_kind(t) for t in templates]
            weights = {t: condition.kind_shares.get(k, 0.0) / kinds.count(k) for t, k in zip(templates, kinds)}
        for t, c in split_count(per_family[f.name], weights).items():
            out[(f.name, t)] = c
    return out


# --------------------------------------------------------------------------- samples and images

def image_name(drawn_family: str, scene, suffix: str = "") -> str:
    digest = hashlib.sha1(repr(scene.items).encode()).hexdigest()[:12]
    return f"{drawn_family}/{digest}{suffix}.png"


def write_image(family, scene, images_dir: Path, noise_seed=None) -> str:
    """Draw ``scene`` into ``images_dir`` (once per scene); with ``noise_seed`` a near-duplicate: the same scene
    with seeded pixel noise (sd 4 grey levels) in a file of its own. Returns the relative path."""
    from PIL import Image

    from kit.pools.imaging import save_png

    tag = None if noise_seed is None else hashlib.sha1(repr(noise_seed).encode()).hexdigest()[:8]
    suffix = "" if tag is None else f"_n{tag}"
    rel = image_name(family.name, scene, suffix)
    dest = images_dir / rel
    if not dest.exists():
        im = family.image(scene)
        if noise_seed is not None:
            rng = np.random.default_rng(int(tag, 16))
            a = np.asarray(im, dtype=np.float64) + rng.normal(0, 4, size=(im.size[1], im.size[0], 3))
            im = Image.fromarray(np.uint8(np.clip(np.round(a), 0, 255)))
        save_png(im, dest)
    return rel


def to_sample(family, template, drawn: Drawn, key: str, image: str, rng) -> Sample:
    """A clean pool sample from a rendered question, with a plausible wrong answer (a perturbed scene)."""
    wrong = template.wrong(drawn.scene, drawn.params, rng) if template.wrong else None
    for _ in range(0 if wrong else 5):
        other = template.render(family.perturb(drawn.scene, rng), drawn.params)[-1]
        if other != drawn.turns[-1]:
            wrong = other
            break
    meta = {"family": family.name, "scene": drawn.scene, "params": drawn.params}
    return Sample(key=key, image=image, conversations=conversation(*drawn.turns), source=family.source,
                  styles=styles(template.styles), ratings=dict(template.ratings), wrong=wrong, meta=meta,
                  template=f"{family.name}/{template.name}")


def clean_samples(plan: dict, families, images_dir: Path, seed: int, progress: bool = True) -> list[Sample]:
    from tqdm.auto import tqdm

    by_name = {f.name: f for f in families}
    out = []
    bar = tqdm(total=sum(plan.values()), desc="drawing samples", unit="sample", disable=not progress)
    for (fname, tname), count in plan.items():
        family = by_name[fname]
        template = family.templates()[tname]
        rng = np.random.default_rng([seed, stable_int(fname), stable_int(tname)])
        for k in range(count):
            scene = family.draw_on("train", rng)
            drawn = render_question(family, template, scene, rng)
            image = write_image(family, scene, images_dir)
            out.append(to_sample(family, template, drawn, f"{fname}:{tname}:{k}", image, rng))
            bar.update(1)
    bar.close()
    return out


# --------------------------------------------------------------------------- defects

def _derive(origin: Sample, kind: str, k: int, **changes) -> Sample:
    meta = {**origin.meta, "made_from": origin.key, **changes.pop("meta", {})}
    return origin.derive(f"{origin.key}#{kind}{k}", defect=kind, origin=origin.key,
                         ratings=defect_ratings(origin.ratings, kind), wrong=None, meta=meta, **changes)


def contradicts(template, scene, params, turns) -> bool:
    """Whether ``turns`` are wrong about ``scene``: its own answers to the same questions differ (or cannot be
    given, as when a multiple-choice question has no option that fits the scene)."""
    try:
        return template.render(scene, params) != turns
    except ValueError:
        return True


def mismatch(origin: Sample, family, images_dir: Path, rng, k: int, tries: int = 200) -> Sample | None:
    """The origin's conversation on the image of another ``train`` scene of its family that contradicts it
    (the same question's answers differ on that scene)."""
    template = family.templates()[origin.template.split("/", 1)[1]]
    turns = [t["value"].removeprefix("<image>\n") for t in origin.conversations]
    for _ in range(tries):
        other = family.draw_on("train", rng)
        if contradicts(template, other, origin.meta["params"], turns):
            image = write_image(family, other, images_dir)
            return _derive(origin, "mismatch", k, image=image, meta={"mismatch_kind": "within_source",
                                                                    "image_scene": other})
    return None


def near_duplicate(origin: Sample, family, images_dir: Path, rng, k: int, seed: int) -> Sample:
    """The origin's scene re-drawn with pixel noise, the same template asked again (new free choices)."""
    template = family.templates()[origin.template.split("/", 1)[1]]
    drawn = render_question(family, template, origin.meta["scene"], rng)
    image = write_image(family, origin.meta["scene"], images_dir, noise_seed=(seed, origin.key, k))
    return _derive(origin, "duplicate", k, image=image, conversations=conversation(*drawn.turns),
                   meta={"params": drawn.params})


def plant(clean: list[Sample], counts: dict, redundancy: int, families, images_dir: Path, seed: int) -> list[Sample]:
    """Defects of each kind from distinct clean origins (near-duplicates for ``redundancy`` from origins drawn
    with replacement, so they come in clusters)."""
    by_name = {f.name: f for f in families}
    rng = np.random.default_rng([seed, 2000])
    order = [clean[int(i)] for i in rng.permutation(len(clean))]
    used: set[str] = set()
    out: list[Sample] = []
    for kind in ("mismatch", "wrong_answer", "truncated", "duplicate"):
        made = 0
        for origin in order:
            if made >= counts.get(kind, 0):
                break
            if origin.key in used:
                continue
            family = by_name[origin.meta["family"]]
            if kind == "mismatch":
                defect = mismatch(origin, family, images_dir, rng, made)
            elif kind == "wrong_answer":
                conv = [dict(t) for t in origin.conversations]
                conv[-1]["value"] = origin.wrong
                defect = _derive(origin, kind, made, conversations=conv) if origin.wrong else None
            elif kind == "truncated":
                conv = [dict(t) for t in origin.conversations]
                conv[-1]["value"] = truncate_answer(origin.last_answer, rng)
                defect = _derive(origin, kind, made, conversations=conv)
            else:
                defect = near_duplicate(origin, family, images_dir, rng, made, seed)
            if defect is not None:
                used.add(origin.key)
                out.append(defect)
                made += 1
        if made < counts.get(kind, 0):
            raise ValueError(f"could only plant {made} of {counts[kind]} {kind} defects")
    for k in range(redundancy):
        origin = clean[int(rng.integers(len(clean)))]
        out.append(near_duplicate(origin, by_name[origin.meta["family"]], images_dir, rng, 1000 + k, seed))
    return out


# --------------------------------------------------------------------------- the builder

def defect_plan(condition: Condition, n: int) -> tuple[dict, int, int]:
    """``(defect counts, near-duplicates for redundancy, clean samples)`` of a pool of ``n``."""
    counts = {kind: int(round(rate * n)) for kind, rate in condition.defects.items()}
    redundant = int(round(condition.redundancy * n))
    n_clean = n - sum(counts.values()) - redundant
    if n_clean < max(1, sum(counts.values())):
        raise ValueError(f"n={n} leaves too few clean samples for condition {condition.name!r}")
    return counts, redundant, n_clean


def build_condition(condition, out_dir, n: int = 2000, seed: int = 0, families=None,
                    progress: bool = True) -> list[Sample]:
    """Write one condition's pool into ``out_dir``: ``pool.json``, ``labels.csv`` (with ``family``),
    ``images/``, ``build_info.json``. Returns the samples."""
    from kit.pools import testbed
    from kit.pools.build import assign_ids, library_versions

    cond = CONDITIONS[condition] if isinstance(condition, str) else condition
    if isinstance(condition, str) and condition not in CONDITIONS:
        raise KeyError(f"unknown condition {condition!r}; use one of {', '.join(CONDITIONS)}")
    fams = testbed.families(families)
    out_dir = Path(out_dir)
    images = out_dir / "images"
    if images.exists():
        shutil.rmtree(images)
    images.mkdir(parents=True)
    counts, redundant, n_clean = defect_plan(cond, n)
    plan = schedule(cond, n_clean, fams)
    clean = clean_samples(plan, fams, images, seed, progress=progress)
    samples = clean + plant(clean, counts, redundant, fams, images, seed)
    samples = assign_ids(samples, np.random.default_rng([seed, 1000]), width=max(4, len(str(n))))
    write_pool(out_dir, samples, extra_columns=("family",))
    info = {"command": f"python -m kit.pools testbed {cond.name} OUT --n {n} --seed {seed}", "condition": cond.to_dict(),
            "n": n, "seed": seed, "families": [f.name for f in fams], "defects": counts, "redundant": redundant,
            "n_clean": n_clean, "testbed_version": _version(), "library_versions": library_versions()}
    (out_dir / "build_info.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return samples


def _version() -> int:
    """The families' version (:data:`kit.pools.testbed.base.VERSION`): a pool built under another is stale."""
    return VERSION
