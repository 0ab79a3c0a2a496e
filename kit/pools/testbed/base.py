"""What a testbed task family is: scenes with programmatic truth, their images, and question templates as data.

A **family** (one module each under :mod:`kit.pools.testbed`) draws *scenes*: a scene is the whole truth of one
image (what is drawn and where), so the image and every answer about it follow from the scene alone. The family
declares

- ``attributes``: the facts a question may ask, each with its closed set of answers (``values``), how the
  scene gives it, and how the questions about it are phrased. Every attribute yields three evaluation templates
  with closed candidate answers: ``word_<attr>`` (short word or number), ``yn_<attr>`` (yes/no) and ``mc_<attr>``
  (multiple choice, answered with a letter), and the vision pretraining of the testbed's model learns to
  classify every attribute from the pixels (:func:`vision_targets`);
- training-only templates in the other interaction styles: a short description, a chain-of-thought answer
  (when the family writes one), a JSON answer, and a two-turn conversation;
- the reference capability ratings of its templates (``ratings``), written by hand per template as a teacher
  would rate such a sample (the family's main capability rated highest; see :func:`template_ratings`).

**Sides.** Every scene belongs to exactly one *side* by a stable hash of the family name and the scene
(:func:`side_of`): ``train`` (what pools draw from), ``reserved`` (the alignment and vision pretraining of the
model, kept apart from every pool), ``dev`` (choosing a recipe) and ``test`` (the held-out evaluation). A
generator asked for a side draws until the scene falls on it, so the sides never share a scene, hence never
share an image, whatever the seed.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from kit.pools.labels import ratings as full_ratings

SIDES = ("train", "reserved", "dev", "test")
# Share of the scene space each side holds (per mille of the hash; cumulative bounds below).
SIDE_SHARES = {"train": 700, "reserved": 100, "dev": 50, "test": 150}
IMAGE_SIZE = 64
MC_SUFFIX = "Answer with the option's letter from the given choices directly."
LETTERS = "ABCD"
# The families' version: pools, held-out sets and alignments built under another are stale
# (also :data:`kit.pools.testbed.heldout.VERSION`).
VERSION = 4


def _side_bounds(shares: dict) -> list[tuple[str, int]]:
    out, total = [], 0
    for name in SIDES:
        total += shares[name]
        out.append((name, total))
    if total != 1000:
        raise ValueError(f"side shares must add up to 1000, not {total}: {shares}")
    return out


def stable_int(text: str) -> int:
    """A stable 32-bit integer of a text (for seeding a generator per family or template)."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:4], "big")


def side_of(family: str, key: tuple, shares: dict | None = None) -> str:
    """The side a scene belongs to: a stable hash (sha1) of the family name and the scene's key, cut by the
    sides' ``shares`` (per mille; default :data:`SIDE_SHARES`)."""
    digest = hashlib.sha1(f"{family}|{key!r}".encode()).digest()
    bucket = int.from_bytes(digest[:4], "big") % 1000
    for name, bound in _side_bounds(shares or SIDE_SHARES):
        if bucket < bound:
            return name
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Scene:
    """The truth of one image: ``family`` and sorted ``(name, value)`` pairs (hashable, so it keys its side)."""

    family: str
    items: tuple

    @classmethod
    def of(cls, family: str, **values) -> "Scene":
        return cls(family, tuple(sorted(values.items())))

    def __getitem__(self, name):
        for k, v in self.items:
            if k == name:
                return v
        raise KeyError(f"{self.family} scene has no {name!r}")

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def with_(self, **changes) -> "Scene":
        values = dict(self.items)
        values.update(changes)
        return Scene.of(self.family, **values)

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.items}


def cap(word: str) -> str:
    return word[:1].upper() + word[1:]


@dataclass(frozen=True)
class Attribute:
    """One fact a question may ask about a scene, with its closed answer set.

    ``values``: every possible answer (as the scene holds it); ``get(scene)``: this scene's value;
    ``word``: question phrasings for the short-answer template; ``yn``: yes/no phrasings with ``{v}`` for the
    asked value; ``mc``: the multiple-choice question; ``answer(value)``: how an answer is written (first
    letter capitalised by default); ``phrase(value)``: how a value reads inside a question (default: as is).
    """

    name: str
    values: tuple
    get: Callable
    word: tuple
    yn: tuple
    mc: str
    answer: Callable = cap
    phrase: Callable = str

    def of(self, scene: Scene):
        value = self.get(scene)
        if value not in self.values:
            raise ValueError(f"{scene.family}.{self.name}: {value!r} is not one of {self.values}")
        return value


@dataclass(frozen=True)
class Template:
    """One question template: its styles (aliases of :mod:`kit.pools.labels`), its reference ratings, how it
    draws its free choices (``ask(scene, rng) -> params``), how it renders (``render(scene, params) -> turns``)
    and, for an evaluation template, its closed candidate answers (``candidates(params) -> list``).

    A plausible wrong answer (for planted ``wrong_answer`` defects) is the template rendered on a perturbed scene
    (:meth:`Family.perturb`), or what ``wrong`` gives where that cannot work (a multiple-choice letter)."""

    name: str
    styles: str
    ratings: dict
    ask: Callable
    render: Callable
    candidates: Callable | None = None
    wrong: Callable | None = None   # (scene, params, rng) -> a plausible wrong last answer; default: a perturbed scene

    @property
    def evaluable(self) -> bool:
        return self.candidates is not None


# Reference ratings per kind of template, from the family's own ratings (``Family.ratings``: its main
# capabilities for a short question about the image). Written once here so that every family rates its
# templates the same way: a description adds language generation and scene understanding, a chain of thought
# adds logical deduction and language, a JSON answer adds a specified format (in-context rules) and a two-turn
# conversation adds a little language. Ratings stay in 0..5.
def template_ratings(base: dict, kind: str) -> dict:
    r = dict(base)

    def at_least(key, value):
        r[key] = max(r.get(key, 0), value)

    if kind == "describe":
        r = {k: max(1, v - 1) if v else 0 for k, v in r.items()}
        at_least("language", 3)
        at_least("scene", 2)
    elif kind == "cot":
        at_least("logical", 3)
        at_least("language", 2)
    elif kind == "json":
        at_least("incontext", 2)
        at_least("language", 1)
    elif kind == "multi":
        at_least("language", 1)
    return full_ratings(r)


class Family:
    """A task family: subclasses set the class attributes and write :meth:`draw`, :meth:`image`,
    :meth:`describe` (and :meth:`cot` when the family has a chain-of-thought answer)."""

    name: str = ""
    source: str = ""            # the dataset this family's samples come from (several families may share one)
    capability: str = ""        # the main capability (for the docs and the checks)
    ratings: dict = {}          # reference ratings of a short question about the image
    attributes: tuple = ()
    subject: str = "image"      # what the descriptions and captions talk about
    describe_q: tuple = ("Describe the image briefly.", "Give a short description of the image.")
    cot_q: str | None = None    # the chain-of-thought question (None: the family has no such template)
    side_shares: dict | None = None  # per mille of the scene space per side (None: SIDE_SHARES)
    json_q: str | None = None   # the JSON question (None: one made from the attribute names)

    def draw(self, rng: np.random.Generator) -> Scene:
        raise NotImplementedError

    def image(self, scene: Scene):
        """The scene drawn as a ``IMAGE_SIZE`` x ``IMAGE_SIZE`` RGB PIL image (deterministic)."""
        raise NotImplementedError

    def describe(self, scene: Scene) -> str:
        raise NotImplementedError

    def cot(self, scene: Scene) -> str:
        raise NotImplementedError

    def captions(self, scene: Scene) -> list[str]:
        """Alignment captions (brief); by default the description."""
        return [self.describe(scene)]

    def check(self, scene: Scene, image) -> None:
        """Raise if the pixels disagree with the scene (each family reads back what it can)."""

    def perturb(self, scene: Scene, rng: np.random.Generator) -> Scene:
        """A scene with the same layout and one fact changed (for plausible wrong answers): by default one
        attribute's value set to another one, where the family can say how (:meth:`set_value`)."""
        for k in rng.permutation(len(self.attributes)):
            attr = self.attributes[int(k)]
            others = [v for v in attr.values if v != attr.of(scene)]
            for j in rng.permutation(len(others)):
                changed = self.set_value(scene, attr.name, others[int(j)])
                if changed is not None:
                    return changed
        return scene

    def set_value(self, scene: Scene, attribute: str, value) -> Scene | None:
        """The scene with ``attribute`` set to ``value`` (None where that cannot be done by one change)."""
        return scene.with_(**{attribute: value}) if attribute in dict(scene.items) else None

    # ------------------------------------------------------------------ drawing on a side

    def side_key(self, scene: Scene) -> tuple:
        """What decides a scene's side (default: the whole scene; a family whose images come from a fixed set,
        such as handwritten digits, keys on the source image alone so that no image is on two sides)."""
        return scene.items

    def side(self, scene: Scene) -> str:
        return side_of(self.name, self.side_key(scene), self.side_shares)

    def draw_on(self, side: str, rng: np.random.Generator, tries: int = 10_000) -> Scene:
        """A scene of ``side`` (drawn until one falls on it)."""
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, not {side!r}")
        for _ in range(tries):
            scene = self.draw(rng)
            if self.side(scene) == side:
                return scene
        raise RuntimeError(f"{self.name}: no {side} scene in {tries} draws")

    # ------------------------------------------------------------------ templates

    def templates(self) -> dict[str, Template]:
        """Every template of the family: three evaluation templates per attribute, then the training-only ones."""
        out = {}
        for attr in self.attributes:
            for t in (word_template(self, attr), yn_template(self, attr), mc_template(self, attr)):
                out[t.name] = t
        out["describe"] = Template("describe", "short", template_ratings(self.ratings, "describe"),
                                   _pick("q", self.describe_q), lambda s, p: [p["q"], self.describe(s)])
        if self.cot_q is not None:
            out["cot"] = Template("cot", "cot", template_ratings(self.ratings, "cot"), lambda s, rng: {},
                                  lambda s, p: [self.cot_q, self.cot(s)])
        out["json"] = json_template(self)
        if len(self.attributes) >= 1:
            out["multi"] = multi_turn_template(self)
        return out

    def eval_templates(self) -> list[str]:
        return [name for name, t in self.templates().items() if t.evaluable]

    def vision_targets(self, scene: Scene) -> dict[str, int]:
        """``{"<family>:<fact>": class index}`` for the vision tower's pretraining: every attribute (a family may
        add facts that are drawn but not asked, such as the two numbers of a sum)."""
        return {f"{self.name}:{a.name}": a.values.index(a.of(scene)) for a in self.attributes}

    def vision_classes(self) -> dict[str, int]:
        return {f"{self.name}:{a.name}": len(a.values) for a in self.attributes}


def _pick(key: str, options) -> Callable:
    return lambda scene, rng: {key: str(options[int(rng.integers(len(options)))])}


def word_template(family: Family, attr: Attribute) -> Template:
    def render(scene, p):
        return [p["q"], attr.answer(attr.of(scene))]

    return Template(f"word_{attr.name}", "word", template_ratings(family.ratings, "word"), _pick("q", attr.word),
                    render, candidates=lambda p: [attr.answer(v) for v in attr.values])


def yn_template(family: Family, attr: Attribute) -> Template:
    def ask(scene, rng):
        true = attr.of(scene)
        others = [v for v in attr.values if v != true]
        asked = true if rng.random() < 0.5 else others[int(rng.integers(len(others)))]
        return {"q": str(attr.yn[int(rng.integers(len(attr.yn)))]), "asked": asked}

    def render(scene, p):
        return [p["q"].format(v=attr.phrase(p["asked"])), "Yes" if attr.of(scene) == p["asked"] else "No"]

    return Template(f"yn_{attr.name}", "yn", template_ratings(family.ratings, "yn"), ask, render,
                    candidates=lambda p: ["Yes", "No"])


def mc_template(family: Family, attr: Attribute) -> Template:
    def ask(scene, rng):
        true = attr.of(scene)
        others = [v for v in attr.values if v != true]
        k = min(len(LETTERS), len(attr.values)) - 1
        picked = [others[int(i)] for i in rng.choice(len(others), size=k, replace=False)]
        options = [true, *picked]
        return {"options": [options[int(i)] for i in rng.permutation(len(options))]}

    def render(scene, p):
        opts = p["options"]
        lines = [attr.mc] + [f"{LETTERS[k]}. {attr.answer(o)}" for k, o in enumerate(opts)] + [MC_SUFFIX]
        return ["\n".join(lines), LETTERS[opts.index(attr.of(scene))]]  # ValueError if not an option

    def wrong(scene, p, rng):
        right = render(scene, p)[-1]
        others = [x for x in LETTERS[:len(p["options"])] if x != right]
        return others[int(rng.integers(len(others)))]

    return Template(f"mc_{attr.name}", "mc", template_ratings(family.ratings, "mc"), ask, render,
                    candidates=lambda p: list(LETTERS[:len(p["options"])]), wrong=wrong)


def json_template(family: Family) -> Template:
    import json

    names = [a.name for a in family.attributes]
    keys = ", ".join(f'"{n}"' for n in names)
    question = family.json_q or (f"Answer as a JSON object with the key{'s' if len(names) > 1 else ''} {keys}: "
                                 f"the {' and the '.join(n.replace('_', ' ') for n in names)} of the {family.subject}.")

    def render(scene, p):
        return [question, json.dumps({a.name: str(a.of(scene)) for a in family.attributes})]

    return Template("json", "spec", template_ratings(family.ratings, "json"), lambda s, rng: {}, render)


def multi_turn_template(family: Family) -> Template:
    """Two turns: the first attribute's short question, then a yes/no question about the last attribute."""
    first, last = family.attributes[0], family.attributes[-1]
    word, yn = word_template(family, first), yn_template(family, last)

    def ask(scene, rng):
        return {"first": word.ask(scene, rng), "second": yn.ask(scene, rng)}

    def render(scene, p):
        return word.render(scene, p["first"]) + yn.render(scene, p["second"])

    return Template("multi", "word yn", template_ratings(family.ratings, "multi"), ask, render)


@dataclass
class Drawn:
    """One rendered question about one scene: the sample's parts before it becomes a pool sample."""

    family: str
    template: str
    scene: Scene
    params: dict
    turns: list
    candidates: list | None = None
    meta: dict = field(default_factory=dict)


def render_question(family: Family, template: Template, scene: Scene, rng: np.random.Generator,
                    tries: int = 20) -> Drawn:
    """Draw a template's free choices for ``scene`` and render it (retrying choices a scene cannot take)."""
    last = None
    for _ in range(tries):
        params = template.ask(scene, rng)
        try:
            turns = template.render(scene, params)
        except ValueError as exc:
            last = exc
            continue
        cands = template.candidates(params) if template.evaluable else None
        if cands is not None and turns[-1] not in cands:
            raise AssertionError(f"{family.name}/{template.name}: answer {turns[-1]!r} not among {cands}")
        return Drawn(family.name, template.name, scene, params, turns, cands)
    raise ValueError(f"{family.name}/{template.name}: no question fits the scene {scene.as_dict()}: {last}")
