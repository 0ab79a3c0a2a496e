"""The odd one out: three shapes in a row, two of one colour and one of another (logical deduction)."""
from __future__ import annotations

from kit.pools.testbed import draw as d
from kit.pools.testbed.base import Attribute, Family, Scene

PLACES = ("left", "middle", "right")
X = (11, 32, 53)


class OddOne(Family):
    name = "oddone"
    source = "shapes"
    capability = "logical"
    ratings = {"logical": 4, "comparative": 2, "attribute": 2}
    subject = "shapes"
    attributes = (
        Attribute("odd", PLACES, lambda s: s["odd"],
                  ("Which shape is the odd one out: the left, the middle or the right one?",
                   "Which of the three shapes does not belong with the others?"),
                  ("Is the {v} shape the odd one out?", "Is the shape on the {v} different from the other two?"),
                  "Which shape is the odd one out?"),
        Attribute("odd_color", d.COLOR_NAMES, lambda s: s["odd_color"],
                  ("What color is the odd one out?", "Which color does the shape that does not belong have?"),
                  ("Is the odd one out {v}?", "Is the shape that does not belong {v}?"),
                  "What is the color of the odd one out?"),
    )
    cot_q = "Which shape is the odd one out? Reason step by step."
    json_q = ('Which shape is the odd one out, and what is its color? '
              'Answer as a JSON object with the keys "odd" (left, middle or right) and "odd_color".')

    def draw(self, rng):
        colors = rng.choice(8, size=2, replace=False)
        return Scene.of(self.name, odd=PLACES[int(rng.integers(3))], odd_color=d.COLOR_NAMES[int(colors[0])],
                        common=d.COLOR_NAMES[int(colors[1])], shape=d.SHAPES[int(rng.integers(3))],
                        r=int(rng.integers(6, 9)), y=int(rng.integers(14, 51)), bg=int(rng.integers(3)))

    def set_value(self, s, attribute, value):
        if attribute == "odd_color" and value == s["common"]:
            return None
        return s.with_(**{attribute: value})

    def colors(self, s):
        return [s["odd_color"] if p == s["odd"] else s["common"] for p in PLACES]

    def image(self, s):
        im, dr = d.canvas(s["bg"])
        for x, c in zip(X, self.colors(s)):
            d.shape(dr, s["shape"], x, s["y"], s["r"], c)
        return im

    def describe(self, s):
        return (f"Three {s['shape']}s in a row: two are {s['common']} and the {s['odd']} one is {s['odd_color']}.")

    def captions(self, s):
        return [f"Three {s['shape']}s.", self.describe(s)]

    def cot(self, s):
        left, middle, right = self.colors(s)
        return (f"1. The left {s['shape']} is {left}, the middle one is {middle} and the right one is {right}.\n"
                f"2. Two of them are {s['common']}; only the {s['odd']} one is {s['odd_color']}.\n"
                f"Answer: the {s['odd']} one.")

    def check(self, s, image):
        for x, c in zip(X, self.colors(s)):
            if not d.color_mask(image, c)[s["y"], x]:
                raise AssertionError(f"the shape at x={x} is not {c} in the image of {s.as_dict()}")


FAMILY = OddOne()
