"""easy-vqa shapes rewritten into the nine interaction styles, with known truth.

easy-vqa (PyPI ``easy-vqa``, MIT licence, https://github.com/vzhou842/easy-VQA) holds 64x64 images
of one coloured shape (circle, rectangle or triangle; 8 colours) on a light background. The truth
of every image is read from its pixels (colour: the exact palette colour; shape: how much of its
bounding box the shape fills; bounding box from the pixel mask) and checked against easy-vqa's own
question/answer pairs about that image, so a template answer is always right.

Each template has a fixed style set and reference capability ratings (``TEMPLATES``, written by
hand as a teacher would rate such a sample), a ``params`` function that draws the question's free
choices (asked colour, option order, ...) and a ``render`` function ``(truth, params) -> turns``.
Rendering the same params with a perturbed truth gives a plausible wrong answer, and rendering with
another image's truth tells whether a mismatched image really contradicts the answer.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from kit.pools.labels import ratings, styles
from kit.pools.sample import Sample, conversation

SOURCE = "easyvqa"

# easy-vqa TRAIN image ids that the pools built by kit.pools.build_easyvqa_pool leave out by default:
# - "reserved" (1,200 images): what the kit's own models train on before they meet a pool: the image-text
#   stand-in's LiT head (kit.quality.image_text.lit_training) and the alignment of the tiny
#   vision-language model (kit.finetune.align);
# - "dev" (200 images): choosing the fine-tuning recipe of kit.finetune (never reported as a result).
# easy-vqa's TEST split is the held-out evaluation of kit.finetune.evaluate; nothing trains on it.
TRAIN_SLICES: dict[str, range] = {"dev": range(2600, 2800), "reserved": range(2800, 4000)}


def train_slice(name: str) -> list[int]:
    """The easy-vqa train image ids of one named slice (``"reserved"``, ``"dev"``) or ``"pool"`` (the rest)."""
    if name == "pool":
        kept = set().union(*TRAIN_SLICES.values())
        return [i for i in sorted(image_paths("train")) if i not in kept]
    if name not in TRAIN_SLICES:
        raise KeyError(f"unknown easy-vqa train slice {name!r}; use 'pool' or one of {sorted(TRAIN_SLICES)}")
    return list(TRAIN_SLICES[name])

# easy-vqa draws every shape in one of these exact colours.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
    "teal": (0, 128, 128), "brown": (165, 42, 42), "gray": (128, 128, 128), "black": (0, 0, 0),
}
COLORS = tuple(PALETTE)
SHAPES = ("circle", "rectangle", "triangle")
_SHAPE_EVIDENCE = {
    "circle": "Its outline is round and has no corners, so it is a circle.",
    "rectangle": "It has four straight sides that meet at right angles, so it is a rectangle.",
    "triangle": "It has three straight sides and three corners, so it is a triangle.",
}
_MC_SUFFIX = "Answer with the option's letter from the given choices directly."


@dataclass(frozen=True)
class Shape:
    """The truth of one easy-vqa image (coordinates normalised to 0..1, x to the right, y down)."""

    split: str
    image_id: int
    shape: str
    color: str
    bbox: tuple[float, float, float, float]
    area: float

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.bbox
        return (x1 + x2) / 2, (y1 + y2) / 2

    @property
    def third(self) -> str:
        """Which vertical third of the image holds the centre of the bounding box."""
        cx = self.center[0]
        return "left" if cx < 1 / 3 else ("right" if cx > 2 / 3 else "middle")

    @property
    def region(self) -> str:
        cx, cy = self.center
        v = "upper" if cy < 0.4 else ("lower" if cy > 0.6 else "")
        h = "left" if cx < 0.4 else ("right" if cx > 0.6 else "")
        return f"{v} {h} part".strip() if (v or h) else "centre"

    @property
    def size_word(self) -> str:
        return "small" if self.area < 0.04 else ("medium-sized" if self.area < 0.12 else "large")

    @property
    def image(self) -> str:
        return f"{SOURCE}/{self.split}_{self.image_id:05d}.png"


# --------------------------------------------------------------------------- reading the truth

def _package():
    try:
        import easy_vqa
    except ImportError as exc:  # pragma: no cover - dependency of the kit
        raise ImportError("the easy-vqa package is needed: pip install easy-vqa") from exc
    return easy_vqa


@lru_cache(maxsize=2)
def image_paths(split: str) -> dict[int, str]:
    ev = _package()
    if split == "train":
        return ev.get_train_image_paths()
    if split == "test":
        return ev.get_test_image_paths()
    raise ValueError(f"easy-vqa split must be 'train' or 'test', not {split!r}")


def split_questions(split: str) -> tuple[list, list, list]:
    """easy-vqa's (questions, answers, image ids) of a split (``train`` or ``test``), in the package's order."""
    ev = _package()
    if split == "train":
        return ev.get_train_questions()
    if split == "test":
        return ev.get_test_questions()
    raise ValueError(f"easy-vqa split must be 'train' or 'test', not {split!r}")


@lru_cache(maxsize=2)
def questions(split: str) -> dict[int, list[tuple[str, str]]]:
    """easy-vqa's own (question, answer) pairs, grouped by image id."""
    texts, answers, ids = split_questions(split)
    out: dict[int, list[tuple[str, str]]] = {}
    for q, a, i in zip(texts, answers, ids):
        out.setdefault(int(i), []).append((q, a))
    return out


def _pixel_truth(path: str) -> tuple[str, str, tuple[float, float, float, float], float]:
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB"), dtype=np.int32)
    h, w, _ = a.shape
    codes = (a[..., 0] << 16 | a[..., 1] << 8 | a[..., 2]).ravel()
    pal = np.array(list(PALETTE.values()))
    pal_codes = pal[:, 0] << 16 | pal[:, 1] << 8 | pal[:, 2]
    k = int(np.argmax((codes[:, None] == pal_codes[None, :]).sum(0)))
    color, rgb = COLORS[k], pal[k]
    # background: the most frequent colour that is not the shape colour
    uniq, cnt = np.unique(codes, return_counts=True)
    cnt = np.where(uniq == pal_codes[k], -1, cnt)
    top = int(uniq[int(np.argmax(cnt))])
    bg = np.array([top >> 16 & 255, top >> 8 & 255, top & 255])
    mask = ((a - rgb) ** 2).sum(-1) < ((a - bg) ** 2).sum(-1)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError(f"easy-vqa image {path}: no shape pixels found")
    x1, x2, y1, y2 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    fill = mask.sum() / ((x2 - x1) * (y2 - y1))
    shape = "rectangle" if fill > 0.93 else ("circle" if fill > 0.7 else "triangle")
    bbox = (round(float(x1) / w, 2), round(float(y1) / h, 2), round(float(x2) / w, 2), round(float(y2) / h, 2))
    return shape, color, bbox, round(float(mask.sum()) / (w * h), 4)


def _yes_no_truth(question: str, shape: str, color: str) -> bool | None:
    """Evaluate one of easy-vqa's yes/no questions against a (shape, color); None if not yes/no."""
    q = question.lower().rstrip("?")
    if not q.startswith(("is ", "does ")):
        return None
    negated = " not " in f" {q} " or q.startswith("is no ")
    target_color = next((c for c in COLORS if re.search(rf"\b{c}\b", q)), None)
    target_shape = next((s for s in SHAPES if re.search(rf"\b{s}\b", q)), None)
    hit = (target_color == color) if target_color else (target_shape == shape)
    return hit != negated


def check_against_questions(truth: Shape) -> None:
    """Raise if any of easy-vqa's own answers about the image contradicts ``truth``."""
    for q, a in questions(truth.split).get(truth.image_id, []):
        said = _yes_no_truth(q, truth.shape, truth.color)
        if said is not None:
            ok = said == (a == "yes")
        elif a in SHAPES:
            ok = a == truth.shape
        elif a in COLORS:
            ok = a == truth.color
        else:
            ok = True
        if not ok:
            raise ValueError(f"easy-vqa {truth.split} image {truth.image_id}: pixels say {truth.color} "
                             f"{truth.shape} but easy-vqa answers {a!r} to {q!r}")


@lru_cache(maxsize=20000)
def truth(split: str, image_id: int) -> Shape:
    """The checked truth of one easy-vqa image."""
    paths = image_paths(split)
    if image_id not in paths:
        raise KeyError(f"easy-vqa {split} has no image {image_id}")
    shape, color, bbox, area = _pixel_truth(paths[image_id])
    t = Shape(split, int(image_id), shape, color, bbox, area)
    check_against_questions(t)
    return t


def copy_image(t: Shape, images_dir: Path) -> str:
    """Copy the original PNG (bytes unchanged) into ``images_dir``; return its relative path."""
    dest = images_dir / t.image
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image_paths(t.split)[t.image_id], dest)
    return t.image


def pair_image(left: Shape, right: Shape, images_dir: Path) -> str:
    """Write a two-panel image (left | right, 8 px white gap with a grey rule); return its path."""
    from PIL import Image, ImageDraw

    from kit.pools.imaging import save_png

    rel = f"{SOURCE}/pair_{left.split}_{left.image_id:05d}_{right.image_id:05d}.png"
    dest = images_dir / rel
    if not dest.exists():
        paths = image_paths(left.split)
        with Image.open(paths[left.image_id]) as a, Image.open(paths[right.image_id]) as b:
            canvas = Image.new("RGB", (64 * 2 + 8, 64), (255, 255, 255))
            canvas.paste(a.convert("RGB"), (0, 0))
            canvas.paste(b.convert("RGB"), (72, 0))
        ImageDraw.Draw(canvas).line([(67, 4), (67, 59)], fill=(150, 150, 150), width=2)
        save_png(canvas, dest)
    return rel


# --------------------------------------------------------------------------- templates

def _cap(word: str) -> str:
    return word[:1].upper() + word[1:]


def _yn(flag: bool) -> str:
    return "Yes" if flag else "No"


_YN_PATTERNS = {
    False: ["Is there a {x}?", "Is there a {x} in the image?", "Does the image contain a {x}?",
            "Is a {x} present?"],
    True: ["Is there not a {x}?", "Does the image not contain a {x}?", "Is no {x} present?"],
}


def _yn_params(kind: str, negated: bool):
    def params(t: Shape, rng: np.random.Generator) -> dict:
        true_value = t.color if kind == "color" else t.shape
        pool = COLORS if kind == "color" else SHAPES
        ask = true_value if rng.random() < 0.5 else str(rng.choice([v for v in pool if v != true_value]))
        pattern = str(rng.choice(_YN_PATTERNS[negated]))
        return {"ask": ask, "pattern": pattern}

    def render(t: Shape, p: dict) -> list[str]:
        x = f"{p['ask']} shape" if kind == "color" else p["ask"]
        hit = (t.color if kind == "color" else t.shape) == p["ask"]
        return [p["pattern"].format(x=x), _yn(hit != negated)]

    return params, render


def _word_color(t, rng):
    return {"q": str(rng.choice(["What color is the shape?", "What is the color of the shape?",
                                 f"What color is the {t.shape}?"]))}


def _word_shape(t, rng):
    return {"q": str(rng.choice(["What shape is in the image?", "What shape does the image contain?",
                                 "What shape is present?", f"What is the {t.color} shape?"]))}


def _mc_params(kind: str):
    def params(t: Shape, rng: np.random.Generator) -> dict:
        if kind == "color":
            others = [c for c in COLORS if c != t.color]
            opts = [t.color, *rng.choice(others, 3, replace=False).tolist()]
        else:
            opts = list(SHAPES) + ["pentagon"]
        return {"options": [str(o) for o in rng.permutation(opts)]}

    def render(t: Shape, p: dict) -> list[str]:
        value = t.color if kind == "color" else t.shape
        q = "What is the color of the shape?" if kind == "color" else "Which shape does the image show?"
        lines = [q] + [f"{'ABCD'[k]}. {o}" for k, o in enumerate(p["options"])] + [_MC_SUFFIX]
        return ["\n".join(lines), "ABCD"[p["options"].index(value)]]  # ValueError if not an option

    return params, render


def _short(t, p):
    caption = {0: f"A {t.color} {t.shape} on a plain light background.",
               1: f"A single {t.color} {t.shape} drawn on a pale, empty background."}[p["v"]]
    return [p["q"], caption]


def _detailed(t, p):
    pct = max(1, round(t.area * 100))
    text = (f"The image is a small synthetic picture with a plain, very light background and a single "
            f"{t.size_word} {t.color} {t.shape}. The {t.shape} sits in the {t.region} of the image and "
            f"covers about {pct}% of its area. It has a flat {t.color} fill with crisp edges; there is no "
            f"text, no texture and no other object in the scene.")
    return [p["q"], text]


def _cot_params(t, rng):
    if rng.random() < 0.5:
        return {"ask": [t.color, t.shape]}
    other_c = str(rng.choice([c for c in COLORS if c != t.color]))
    other_s = str(rng.choice([s for s in SHAPES if s != t.shape]))
    ask = [(other_c, t.shape), (t.color, other_s), (other_c, other_s)][int(rng.integers(3))]
    return {"ask": list(ask)}


def _cot(t, p):
    c, s = p["ask"]
    same_c, same_s = c == t.color, s == t.shape
    if same_c and same_s:
        verdict = "both the shape and the color match, so the answer is yes."
    elif same_s:
        verdict = f"the shape matches but the color does not ({t.color}, not {c}), so the answer is no."
    elif same_c:
        verdict = f"the color matches but the shape does not ({t.shape}, not {s}), so the answer is no."
    else:
        verdict = "neither the shape nor the color matches, so the answer is no."
    answer = ("Let's check step by step.\n"
              "1. The image contains exactly one shape on a plain background.\n"
              f"2. {_SHAPE_EVIDENCE[t.shape]}\n"
              f"3. Its fill color is {t.color}.\n"
              f"4. The question asks about a {c} {s}: {verdict}\n"
              f"Answer: {_yn(same_c and same_s)}.")
    return [f"Is the shape in this image a {c} {s}? Think step by step.", answer]


def _coord(t, p):
    q = (f"Give the bounding box of the {t.color} {t.shape} as [x1, y1, x2, y2], with coordinates "
         "normalized to the range 0 to 1 (origin at the top left).")
    return [q, "[" + ", ".join(f"{v:.2f}" for v in t.bbox) + "]"]


def _third(t, p):
    q = "Is the center of the shape in the left, middle or right third of the image? Answer with one word."
    return [q, _cap(t.third)]


def _spec_caps(t, p):
    return ["What color is the shape? Answer in one word, in capital letters.", t.color.upper()]


def _spec_json(t, p):
    q = ('Report the shape and its color as a JSON object with the keys "shape" and "color", '
         "and nothing else.")
    return [q, json.dumps({"shape": t.shape, "color": t.color})]


def _multi_turn(t, p):
    left_half = t.center[0] < 0.5
    return ["What shape is in the image?", f"A {t.shape}.",
            "What color is it?", _cap(t.color) + ".",
            "Is it in the left half of the image?", _yn(left_half) + "."]


def _compare_pair(pair, p):
    a, b = pair
    same_s, same_c = a.shape == b.shape, a.color == b.color
    if same_s and same_c:
        tail = f"They are the same: both are {a.color} {a.shape}s."
    elif same_s:
        tail = f"They have the same shape ({a.shape}) but different colors ({a.color} vs {b.color})."
    elif same_c:
        tail = f"They have the same color ({a.color}) but different shapes ({a.shape} vs {b.shape})."
    else:
        tail = "They differ in both shape and color."
    q = ("The image has two panels. Compare the shapes in the left and right panels: do they have "
         "the same shape and the same color?")
    return [q, f"The left panel shows a {a.color} {a.shape} and the right panel a {b.color} {b.shape}. {tail}"]


def _compare_size(pair, p):
    a, b = pair
    ratio = max(a.area, b.area) / max(min(a.area, b.area), 1e-9)
    if ratio < 1.5:
        raise ValueError("areas too close to compare")
    bigger = "left" if a.area > b.area else "right"
    big, small = (a, b) if bigger == "left" else (b, a)
    q = "The image has two panels. In which panel is the shape larger, left or right?"
    return [q, f"The {bigger} one: its {big.color} {big.shape} covers about {ratio:.1f} times the area "
               f"of the {small.color} {small.shape}."]


_CORNERS = {"circle": 0, "triangle": 3, "rectangle": 4}


def _incontext_params(t, rng):
    pairs = [(c, s) for c in COLORS for s in SHAPES if c != t.color and s != t.shape]
    i, j = rng.choice(len(pairs), 2, replace=False)
    return {"examples": [list(pairs[int(i)]), list(pairs[int(j)])]}


def _incontext(t, p):
    (c1, s1), (c2, s2) = p["examples"]
    q = ("We label shapes with a code: the color, a dash, then the number of corners. For example, a "
         f'{c1} {s1} is "{c1}-{_CORNERS[s1]}" and a {c2} {s2} is "{c2}-{_CORNERS[s2]}". '
         "What is the code for the shape in this image?")
    return [q, f"{t.color}-{_CORNERS[t.shape]}"]


def _fixed(**choices):
    def params(t, rng):
        return {k: (str(rng.choice(v)) if isinstance(v, list) else int(rng.integers(v)))
                for k, v in choices.items()}
    return params


def _none(t, rng):
    return {}


@dataclass(frozen=True)
class Template:
    """A question template: its styles, reference ratings, and how to draw and render it."""

    name: str
    styles: tuple[str, ...]
    ratings: dict
    params: Callable
    render: Callable
    pair: bool = False  # two images side by side


def _t(name, style_spec, rating, params, render, pair=False):
    return Template(name, styles(style_spec), rating, params, render, pair)


_yn_specs = {(k, n): _yn_params(k, n) for k in ("color", "shape") for n in (False, True)}
_mc_color, _mc_shape = _mc_params("color"), _mc_params("shape")

# name -> template; the ratings are the hand-written reference ratings of each template.
TEMPLATES: dict[str, Template] = {t.name: t for t in [
    _t("yn_color", "yn", ratings(attribute=3, finegrained=1), *_yn_specs["color", False]),
    _t("yn_color_negated", "yn", ratings(attribute=3, finegrained=1, logical=2, language=1),
       *_yn_specs["color", True]),
    _t("yn_shape", "yn", ratings(attribute=2, finegrained=2), *_yn_specs["shape", False]),
    _t("yn_shape_negated", "yn", ratings(attribute=2, finegrained=2, logical=2, language=1),
       *_yn_specs["shape", True]),
    _t("word_color", "word", ratings(attribute=3, finegrained=1), _word_color,
       lambda t, p: [p["q"], _cap(t.color)]),
    _t("word_shape", "word", ratings(attribute=2, finegrained=2), _word_shape,
       lambda t, p: [p["q"], _cap(t.shape)]),
    _t("mc_color", "mc", ratings(attribute=3, finegrained=1, logical=1), *_mc_color),
    _t("mc_shape", "mc", ratings(attribute=2, finegrained=2, logical=1), *_mc_shape),
    _t("short_description", "short", ratings(attribute=3, scene=1, finegrained=1, language=2),
       _fixed(v=2, q=["Describe the image briefly.", "Give a short caption for this image.",
                      "What does this image show? Answer in one sentence."]), _short),
    _t("detailed_description", "detailed",
       ratings(attribute=3, spatial=2, scene=2, finegrained=1, language=3),
       _fixed(q=["Describe this image in detail.", "Give a detailed description of the image.",
                 "Write a thorough description of everything visible in the image."]), _detailed),
    _t("cot_match", "yn cot", ratings(attribute=3, logical=3, finegrained=2, language=1),
       _cot_params, _cot),
    _t("coordinate_bbox", "coord", ratings(spatial=4, attribute=1, finegrained=1), _none, _coord),
    _t("word_third", "word", ratings(spatial=3), _none, _third),
    _t("spec_caps", "word spec", ratings(attribute=3, language=1), _none, _spec_caps),
    _t("spec_json", "spec", ratings(attribute=3, finegrained=1, language=2), _none, _spec_json),
    _t("incontext_code", "word spec", ratings(incontext=4, logical=3, attribute=3, finegrained=1),
       _incontext_params, _incontext),
    _t("multi_turn", "word yn", ratings(attribute=3, finegrained=1, spatial=1, incontext=2, language=1),
       _none, _multi_turn),
    _t("compare_pair", "compare", ratings(comparative=4, attribute=3, finegrained=1, logical=1, language=1),
       _none, _compare_pair, pair=True),
    _t("compare_size", "compare word", ratings(comparative=4, attribute=2, spatial=1), _none,
       _compare_size, pair=True),
]}


# --------------------------------------------------------------------------- samples

def _render_ok(tpl: Template, t, params) -> list[str] | None:
    try:
        return tpl.render(t, params)
    except ValueError:
        return None


def perturbations(t, rng: np.random.Generator) -> list:
    """Plausible false truths near ``t`` (other colour, other shape, moved box), in random order."""
    if isinstance(t, tuple):  # a pair: perturb one side
        left, right = t
        return [(p, right) for p in perturbations(left, rng)] + [(left, p) for p in perturbations(right, rng)]
    out = [replace(t, color=c) for c in COLORS if c != t.color]
    out += [replace(t, shape=s) for s in SHAPES if s != t.shape]
    x1, y1, x2, y2 = t.bbox
    for _ in range(4):
        dx, dy = rng.uniform(0.15, 0.35, 2) * rng.choice([-1, 1], 2)
        dx, dy = float(np.clip(dx, -x1, 1 - x2)), float(np.clip(dy, -y1, 1 - y2))
        if abs(dx) + abs(dy) < 0.1:
            continue
        moved = tuple(round(v, 2) for v in (x1 + dx, y1 + dy, x2 + dx, y2 + dy))
        out.append(replace(t, bbox=moved))
    out.append(replace(t, bbox=(round(1 - x2, 2), y1, round(1 - x1, 2), y2)))  # mirrored
    out.append(replace(t, area=round(t.area * 3.5, 4)))
    order = rng.permutation(len(out))
    return [out[k] for k in order]


def make_sample(key: str, template: str, t, params: dict, images_dir: Path,
                rng: np.random.Generator) -> Sample:
    """Render one clean sample (writes its image) with a plausible wrong answer attached."""
    tpl = TEMPLATES[template]
    turns = tpl.render(t, params)
    image = pair_image(*t, images_dir) if tpl.pair else copy_image(t, images_dir)
    wrong = None
    for alt in perturbations(t, rng):
        alt_turns = _render_ok(tpl, alt, params)
        if alt_turns and alt_turns[:-1] == turns[:-1] and alt_turns[-1] != turns[-1]:
            wrong = alt_turns[-1]
            break
    return Sample(key=key, image=image, conversations=conversation(*turns), source=SOURCE,
                  styles=tpl.styles, ratings=dict(tpl.ratings), wrong=wrong,
                  meta={"template": template, "truth": t, "params": params}, template=f"{SOURCE}/{template}")


def contradicts(sample: Sample, other_truth) -> bool:
    """Whether ``sample``'s final answer is wrong for an image with ``other_truth``.

    Used to pick mismatched images that really contradict the conversation (a "No" answer can
    stay right on another image). Samples not made here always count as contradicted.
    """
    if sample.source != SOURCE or "template" not in sample.meta:
        return True
    tpl = TEMPLATES[sample.meta["template"]]
    if tpl.pair != isinstance(other_truth, tuple):
        return True
    own = sample.meta["truth"]
    if tpl.pair:
        if any(o.shape == a.shape or o.color == a.color for o, a in zip(other_truth, own)):
            return False
    elif other_truth.shape == own.shape or other_truth.color == own.color:
        return False
    turns = _render_ok(tpl, other_truth, sample.meta["params"])
    return turns is None or turns[-1] != sample.last_answer


def draw_sample(key: str, template: str, split: str, image_ids: list[int], images_dir: Path,
                rng: np.random.Generator) -> Sample:
    """Draw images (one, or two for pair templates) from ``image_ids`` until the template fits."""
    tpl = TEMPLATES[template]
    for _ in range(100):
        if tpl.pair:
            a, b = rng.choice(image_ids, 2, replace=False)
            t = (truth(split, int(a)), truth(split, int(b)))
        else:
            t = truth(split, int(rng.choice(image_ids)))
        params = tpl.params(t, rng)
        if _render_ok(tpl, t, params) is not None:
            return make_sample(key, template, t, params, images_dir, rng)
    raise RuntimeError(f"template {template!r} found no fitting easy-vqa image in 100 draws")


def samples_from_schedule(schedule: dict[str, int], split: str, images_dir: Path, seed: int,
                          image_ids: list[int] | None = None, unique_images: bool = True,
                          progress: bool = False) -> list[Sample]:
    """Clean samples, ``schedule[template]`` of each, deterministic for a seed.

    With ``unique_images`` every single-image sample gets its own easy-vqa image.
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    ids = sorted(image_paths(split)) if image_ids is None else list(image_ids)
    ids = [int(i) for i in rng.permutation(ids)]
    out: list[Sample] = []
    cursor = 0
    jobs = [(name, k) for name, count in schedule.items() for k in range(count)]
    for name, k in tqdm(jobs, desc="easy-vqa samples", disable=not progress):
        if name not in TEMPLATES:
            raise KeyError(f"unknown easy-vqa template {name!r}; use one of {sorted(TEMPLATES)}")
        key = f"{SOURCE}/{name}/{k:05d}"
        if unique_images and not TEMPLATES[name].pair:
            while True:  # next unused image that fits the template
                if cursor >= len(ids):
                    raise ValueError(f"not enough easy-vqa {split} images for unique samples")
                t = truth(split, ids[cursor])
                cursor += 1
                params = TEMPLATES[name].params(t, rng)
                if _render_ok(TEMPLATES[name], t, params) is not None:
                    out.append(make_sample(key, name, t, params, images_dir, rng))
                    break
        else:
            out.append(draw_sample(key, name, split, ids, images_dir, rng))
    return out
