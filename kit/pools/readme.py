"""Write ``data_samples/README.md``: the data card of the sample pool, counts taken from the build."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from kit.pools.labels import CAPABILITIES, DEFECTS, STYLES
from kit.pools.sample import Sample

LICENCES = [
    ("easyvqa/", "easy-vqa 1.0 (PyPI `easy-vqa`, https://github.com/vzhou842/easy-VQA), train split; "
                 "PNGs copied unchanged, `pair_*` panels composed from two of them",
     "MIT (Victor Zhou)"),
    ("photos/astronaut", "scikit-image `data.astronaut` (NASA portrait of Eileen Collins)",
     "public domain (NASA; no known copyright restrictions)"),
    ("photos/chelsea", "scikit-image `data.chelsea`", "CC0 (Stefan van der Walt)"),
    ("photos/coffee", "scikit-image `data.coffee` (courtesy of Pikolo Espresso Bar)", "CC0 (Rachel Michetti)"),
    ("photos/rocket", "scikit-image `data.rocket` (SpaceX launch photo of DSCOVR)",
     "public domain (released by SpaceX)"),
    ("photos/hubble_deep_field", "scikit-image `data.hubble_deep_field` (HubbleSite, 2012)",
     "public domain (NASA)"),
    ("photos/immunohistochemistry", "scikit-image `data.immunohistochemistry` (CMMI)",
     "no known copyright restrictions"),
    ("photos/retina", "scikit-image `data.retina` (Wikimedia, M. Häggström)", "CC0 1.0"),
    ("photos/stereo_motorcycle*", "scikit-image `data.stereo_motorcycle` (Middlebury 2014 stereo dataset, "
                                  "Scharstein et al., GCPR 2014)",
     "no licence stated in scikit-image; research dataset, cite Scharstein et al. 2014"),
    ("photos/camera", "scikit-image `data.camera`", "CC0 (Lav Varshney)"),
    ("photos/coins", "scikit-image `data.coins` (Brooklyn Museum collection)", "no known copyright restrictions"),
    ("photos/horse", "scikit-image `data.horse` (openclipart)", "CC0 (Andreas Preuss)"),
    ("photos/moon", "scikit-image `data.moon`", "no statement in its docstring; shipped under scikit-image's "
                                                 "BSD-3-Clause licence"),
    ("photos/page", "scikit-image `data.page`", "no statement in its docstring; shipped under scikit-image's "
                                                 "BSD-3-Clause licence"),
    ("photos/text", "scikit-image `data.text` (Wikipedia `Corner.png`)", "public domain"),
    ("photos/clock", "scikit-image `data.clock`", "public domain (Stefan van der Walt)"),
    ("photos/brick", "scikit-image `data.brick` (CC0Textures)", "CC0"),
    ("photos/grass", "scikit-image `data.grass` (DeviantArt, linolafett)", "CC0"),
    ("photos/gravel", "scikit-image `data.gravel` (CC0Textures)", "CC0"),
    ("photos/cell", "scikit-image `data.cell` (Müller et al., Optics Express 2018)", "CC0"),
    ("photos/checkerboard", "scikit-image `data.checkerboard` (synthetic)", "scikit-image, BSD-3-Clause"),
    ("photos/colorwheel", "scikit-image `data.colorwheel` (synthetic)", "scikit-image, BSD-3-Clause"),
    ("photos/logo", "scikit-image `data.logo` (the scikit-image logo)", "scikit-image, BSD-3-Clause"),
    ("photos/china", "scikit-learn `load_sample_image('china.jpg')` (Flickr, danielbuechele)", "CC BY 2.0"),
    ("photos/flower", "scikit-learn `load_sample_image('flower.jpg')` (Flickr, vultilion)", "CC BY 2.0"),
    ("photos/grace_hopper", "matplotlib `cbook.get_sample_data('grace_hopper.jpg')` (U.S. Navy portrait)",
     "public domain (work of the U.S. federal government); shipped with matplotlib"),
    ("rendered/", "drawn here with matplotlib and PIL (DejaVu Sans font from matplotlib) from seeded data",
     "MIT, same as the kit"),
]


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _intro() -> list[str]:
    """The title, what the pool is, and how it is rebuilt."""
    return [
        "# data_samples: a small real pool with known truth",
        "",
        "A pool of vision-language instruction samples in LLaVA format, small enough to commit and run "
        "every notebook and test on, with the truth of every sample written down: its interaction "
        "styles, hand-written reference capability ratings, and which samples carry a planted defect.",
        "",
        "**Generated file: do not edit by hand.** Everything in this folder (this README included) is "
        "rebuilt, byte for byte, from installed packages by",
        "",
        "```bash",
        "python -m kit.pools build data_samples/",
        "```",
        "",
        "(`make samples` runs the same). Seeds are fixed, PNGs carry no timestamps, matplotlib figures are "
        "rasterised at a fixed DPI with no `Software` metadata; a rebuild with the same library versions "
        "gives identical files (`tests/test_samples.py` checks this; `build_info.json` records the versions "
        "of the libraries that encode and draw the images, and under other versions the test compares image "
        "pixels instead of bytes). Images are at most 256 px on the long "
        "side (JPEG quality 85 for photos; PNG for line art, text and everything rendered).",
        "",
    ]


def _files() -> list[str]:
    """The files of the folder and the columns of ``labels.csv``."""
    return [
        "## Files",
        "",
        "- `pool.json`: a JSON list of records `{id, image, conversations, source}`; `image` is relative to "
        "`images/`; `conversations` alternate `human`/`gpt` and the first human turn starts with `<image>\\n`.",
        "- `images/easyvqa/`, `images/photos/`, `images/rendered/`: the images (first folder = source).",
        "- `build_info.json`: the build command, seed and library versions.",
        "- `labels.csv`: the truth, one row per sample: `id`, `defect` (" +
        ", ".join(f"`{d}`" for d in DEFECTS) + "), `origin` (for a defect, the id of the clean sample it was "
        "made from; empty otherwise), `mismatch_kind` (for a mismatch, `within_source` or `cross_source`: "
        "whether its image came from a sample of the same source; empty otherwise), `template` (the question "
        "template whose reference ratings the sample carries: `easyvqa/<template>` for easy-vqa, the sample's "
        "own question otherwise; a defect keeps its origin's), `styles` (style names joined by `|`) and the "
        "14 capability keys "
        "(" + ", ".join(f"`{c}`" for c in CAPABILITIES) + ") holding reference ratings 0-5.",
        "",
        "Load it with `kit.load_pool(\"data_samples/pool.json\")` and join `labels.csv` on `id`.",
        "",
    ]


def _counts(samples: list[Sample]) -> list[str]:
    """Samples per source and defect, per style, and the planted mismatches by kind."""
    sources = list(dict.fromkeys(s.source for s in samples))
    n = len(samples)
    n_def = sum(s.defect != "none" for s in samples)
    by_src = Counter((s.source, s.defect) for s in samples)
    src_rows = [[src] + [by_src[(src, d)] for d in DEFECTS] + [sum(by_src[(src, d)] for d in DEFECTS)]
                for src in sources]
    src_rows.append(["**all**"] + [sum(by_src[(src, d)] for src in sources) for d in DEFECTS] + [n])
    style_all = Counter(st for s in samples for st in s.styles)
    style_clean = Counter(st for s in samples if s.defect == "none" for st in s.styles)
    style_rows = [[f"`{st}`", style_clean[st], style_all[st]] for st in STYLES]
    mis = Counter((s.source, s.mismatch_kind) for s in samples if s.defect == "mismatch")
    n_mis, n_within = sum(mis.values()), sum(v for (_, k), v in mis.items() if k == "within_source")
    mis_rows = [[src, mis[(src, "within_source")], mis[(src, "cross_source")]] for src in sources]
    return [
        f"## Counts ({n} samples, {n_def} defects = {100 * n_def / n:.1f}%)",
        "",
        _table(["source"] + list(DEFECTS) + ["total"], src_rows),
        "",
        "Sources: `easyvqa` (easy-vqa shapes rewritten into the nine styles from the dataset's truth: colour "
        "and shape read from the pixels and checked against easy-vqa's own answers, bounding boxes from the "
        "shape mask, two-panel comparisons composed from two images); `photos` (the real photos that ship "
        "with scikit-image, scikit-learn and matplotlib, with hand-written questions on scene, activity, "
        "attributes, space, counting, OCR, humanities and STEM); `rendered` (bar/line/pie charts and tables, "
        "documents and signs, geometry figures and function plots, two-panel comparisons and shape layouts, "
        "with answers computed from the drawn data).",
        "",
        "Samples per style (a sample can have several styles):",
        "",
        _table(["style", "clean samples", "all samples"], style_rows),
        "",
        "Planted defects, each made from a distinct clean sample (its `origin`) and spread over all sources: "
        "`mismatch` (the conversation paired with the image of another sample that contradicts it), "
        "`wrong_answer` (the last answer replaced by a plausible wrong one: wrong colour, shape, "
        "number, side, ...), `truncated` (the last answer cut mid-sentence, or emptied when it is short), "
        "`duplicate` (an exact copy of the origin's image and conversation under a new id). Sample ids are "
        "shuffled within each source, so an id says nothing about its defect.",
        "",
        f"Of the {n_mis} mismatches, {n_within} take their image from the **same source** "
        "(`mismatch_kind` `within_source`), so a scorer cannot find them by telling sources apart: an "
        "easy-vqa image whose shape and colour both differ and whose truth makes the answer wrong, a photo of "
        "another subject (never for a question many photos answer alike, such as whether the image is in "
        "colour), or a rendered image of another kind (a bar-chart question on a pie chart, a sign question "
        "on a function plot). The other "
        f"{n_mis - n_within} take it from another source (`cross_source`). Neither kind is planted on a bare "
        "yes/no answer (outside easy-vqa, where the truth of the other image is checked), which can stay "
        "right on another image:",
        "",
        _table(["source", "within_source", "cross_source"], mis_rows),
        "",
    ]


def _reference_ratings(samples: list[Sample]) -> list[str]:
    """How the reference ratings were written, and their spread over the clean samples."""
    clean = [s for s in samples if s.defect == "none"]
    cap_rows = [[f"`{c}`", sum(s.ratings[c] >= 3 for s in clean),
                 f"{sum(s.ratings[c] for s in clean) / max(len(clean), 1):.2f}"] for c in CAPABILITIES]
    return [
        "## Reference ratings",
        "",
        "The capability ratings in `labels.csv` were **written by hand, as a teacher would rate each sample** "
        "for how useful it is in training a multimodal model for that capability (0 = useless, 5 = very "
        "useful), following the mmSSR capability list. They are set per question template (easy-vqa, "
        "rendered) or per hand-written question (photos) in the tables of `kit/pools/` (`easyvqa.TEMPLATES`, "
        "`photos.qa_table()`, `charts.py`, `documents.py`, `stem.py`, `panels.py`); they are reference "
        "judgements, not model outputs. Defective samples get low ratings: `mismatch` 0 everywhere; "
        "`wrong_answer` and `truncated` 1 where the origin had 3 or more, else 0; a `duplicate` keeps its "
        "origin's ratings.",
        "",
        "Clean samples rated 3 or more, and the mean rating over clean samples, per capability:",
        "",
        _table(["capability", "clean samples rated >= 3", "mean rating"], cap_rows),
        "",
    ]


def _larger_pools() -> list[str]:
    """How to build larger easy-vqa pools in the same format."""
    return [
        "## Larger pools",
        "",
        "The same module builds larger easy-vqa pools for experiments, in the same format, with a chosen "
        "rate of each defect. Images come from easy-vqa's train split by default, without the train slices kept apart "
        "for the kit's own models (`kit.pools.easyvqa.TRAIN_SLICES`; easy-vqa's test split is the held-out evaluation "
        "of `kit.finetune`); `--exclude-pool data_samples/pool.json` "
        "leaves out the train images this pool already uses:",
        "",
        "```bash",
        "python -m kit.pools easyvqa OUT_DIR --n 5000 --mismatch 0.05 --wrong-answer 0.05 "
        "--truncated 0.02 --duplicate 0.02 --seed 0 --exclude-pool data_samples/pool.json",
        "```",
        "",
        "or `kit.pools.build_easyvqa_pool(out_dir, n=5000, rates={...}, seed=0, "
        "exclude_pool=\"data_samples/pool.json\")`.",
        "",
    ]


def _licences() -> list[str]:
    """Where the images come from, under which licences."""
    return [
        "## Image sources and licences",
        "",
        _table(["images", "source", "licence"], [[f"`{p}`", s, lic] for p, s, lic in LICENCES]),
        "",
        "scikit-image image licences are taken from the docstrings of `skimage.data` (the package's "
        "`skimage/data/README.txt` has no per-image list); scikit-learn's from "
        "`sklearn/datasets/images/README.txt`. Please cite easy-vqa (Victor Zhou, MIT) when you use the "
        "`easyvqa` part.",
        "",
    ]


def render_readme(samples: list[Sample]) -> str:
    """The data card of a built pool: its sections in order, counts taken from ``samples``."""
    parts = _intro() + _files() + _counts(samples) + _reference_ratings(samples) + _larger_pools() + _licences()
    return "\n".join(parts)


def write_readme(out_dir: Path, samples: list[Sample]) -> None:
    (Path(out_dir) / "README.md").write_text(render_readme(samples), encoding="utf-8")
