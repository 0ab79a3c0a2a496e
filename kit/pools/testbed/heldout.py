"""What the testbed's model sees outside the pools: held-out questions (``test``/``dev`` sides) and the
alignment captions with the vision tower's pretraining targets (``reserved`` side).

Both are written once into the kit's cache (``$KIT_CACHE/testbed/...``) and reused: the images are drawn from
the families' own generators, so the folder is the same on every machine for the same arguments.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from kit.pools.testbed.base import VERSION, render_question, stable_int  # noqa: F401 - VERSION re-exported
from kit.pools.testbed.conditions import template_kind, write_image

STYLE_OF_KIND = {"word": "word", "yn": "yes/no", "mc": "multi-choice"}
# alignment instructions (as in LLaVA's 558K alignment set: a brief-caption request)
INSTRUCTIONS = (
    "Describe the image concisely.",
    "Provide a brief description of the given image.",
    "Summarize the visual content of the image.",
    "Write a terse but informative summary of the picture.",
)


def _folder(kind: str, settings: dict) -> Path:
    import hashlib

    from kit.cache import cache_root

    key = hashlib.sha1(json.dumps({**settings, "version": VERSION}, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / "testbed" / f"{kind}-{key}"


def _build_once(final: Path, build) -> Path:
    """Build into a temporary folder and move it into place (a finished folder is never half-written)."""
    if (final / "done.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        build(tmp)
        (tmp / "done.json").write_text("{}", encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def heldout_questions(families=None, per_family: int = 60, seed: int = 0, side: str = "test",
                      folder=None) -> pd.DataFrame:
    """The held-out questions: ``per_family`` per family, split equally over its evaluation templates, each on a
    fresh scene of ``side`` (``"test"``: the evaluation; ``"dev"``: choosing a recipe, never reported).

    One row per question (index ``qid``): ``question``, ``answer``, ``candidates`` (the closed answer set the
    evaluation ranks), ``family``, ``template``, ``style`` (word, yes/no, multi-choice), ``image_path``.
    """
    from kit.pools import testbed

    fams = testbed.families(families)
    settings = {"families": [f.name for f in fams], "per_family": per_family, "seed": seed, "side": side}
    folder = Path(folder) if folder is not None else _folder("heldout", settings)

    def build(tmp: Path):
        rows = []
        for f in fams:
            names = f.eval_templates()
            counts = {t: per_family // len(names) + (1 if k < per_family % len(names) else 0)
                      for k, t in enumerate(names)}
            rng = np.random.default_rng([seed, stable_int(f.name), stable_int(side)])
            templates = f.templates()
            for tname, count in counts.items():
                for _ in range(count):
                    scene = f.draw_on(side, rng)
                    drawn = render_question(f, templates[tname], scene, rng)
                    rows.append({"qid": f"{f.name}_{len(rows):05d}", "question": drawn.turns[0],
                                 "answer": drawn.turns[1], "candidates": drawn.candidates, "family": f.name,
                                 "template": f"{f.name}/{tname}", "style": STYLE_OF_KIND[template_kind(tname)],
                                 "image": write_image(f, scene, tmp / "images")})
        (tmp / "questions.json").write_text(json.dumps(rows, indent=0), encoding="utf-8")

    folder = _build_once(folder, build)
    table = pd.DataFrame(json.loads((folder / "questions.json").read_text(encoding="utf-8"))).set_index("qid")
    table["candidates"] = table["candidates"].map(tuple)
    table["image_path"] = table.pop("image").map(lambda p: str(folder / "images" / p))
    table.attrs.update({"split": f"testbed {side}", **settings})
    return table


def alignment_records(per_family: int = 150, captions_per_image: int = 3, seed: int = 0, families=None,
                      vision_per_family: int | None = None, folder=None) -> tuple[list[dict], dict, dict]:
    """Alignment data from the families' ``reserved`` side (no pool or test image is among them):

    ``(records, targets, classes)``: LLaVA records of a brief-caption instruction and a caption read from the
    scene (``captions_per_image`` per image of the first ``per_family`` of each family, absolute image paths),
    the vision pretraining targets of every image (``{path: {"<family>:<fact>": class}}``; ``vision_per_family``
    images of each family, the captioned ones first) and the number of classes of every target.
    """
    from kit.pools import testbed

    fams = testbed.families(families)
    settings = {"families": [f.name for f in fams], "per_family": per_family, "captions": captions_per_image,
                "seed": seed, "vision_per_family": vision_per_family}
    folder = Path(folder) if folder is not None else _folder("align", settings)

    def build(tmp: Path):
        records, targets = [], {}
        for f in fams:
            rng = np.random.default_rng([seed, stable_int(f.name), stable_int("reserved")])
            for k in range(max(per_family, vision_per_family or 0)):
                scene = f.draw_on("reserved", rng)
                image = write_image(f, scene, tmp / "images")
                targets[image] = f.vision_targets(scene)
                if k >= per_family:
                    continue
                captions = f.captions(scene)
                for j in range(captions_per_image):
                    caption = captions[j % len(captions)]
                    instruction = INSTRUCTIONS[int(rng.integers(len(INSTRUCTIONS)))]
                    records.append({"id": f"align_{f.name}_{k:04d}_{j}", "image": image,
                                    "conversations": [{"from": "human", "value": f"<image>\n{instruction}"},
                                                      {"from": "gpt", "value": caption}]})
        (tmp / "records.json").write_text(json.dumps(records, indent=0), encoding="utf-8")
        (tmp / "targets.json").write_text(json.dumps(targets, indent=0), encoding="utf-8")

    folder = _build_once(folder, build)
    records = json.loads((folder / "records.json").read_text(encoding="utf-8"))
    for r in records:
        r["image"] = str(folder / "images" / r["image"])
    targets = {str(folder / "images" / p): t for p, t in
               json.loads((folder / "targets.json").read_text(encoding="utf-8")).items()}
    classes = {k: v for f in fams for k, v in f.vision_classes().items()}
    return records, targets, classes


def texts(per_family: int = 40, seed: int = 0) -> list[str]:
    """Every text the testbed's data can hold, for a cut vocabulary to keep whole: each template rendered on
    ``per_family`` scenes of each family (all its attribute values asked), captions, and every candidate."""
    from kit.pools import testbed

    out: list[str] = list(INSTRUCTIONS)
    for f in testbed.families():
        rng = np.random.default_rng([seed, stable_int(f.name), 99])
        for _ in range(per_family):
            scene = f.draw(rng)
            out.extend(f.captions(scene))
            for t in f.templates().values():
                drawn = render_question(f, t, scene, rng)
                out.extend(drawn.turns)
                out.extend(drawn.candidates or ())
        for a in f.attributes:
            out.extend(a.answer(v) for v in a.values)
            out.extend(str(a.phrase(v)) for v in a.values)
    return out
