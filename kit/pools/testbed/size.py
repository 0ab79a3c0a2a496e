"""Which of two shapes is larger (comparative analysis)."""
from __future__ import annotations

from kit.pools.testbed import draw as d
from kit.pools.testbed.base import Attribute, Family, Scene

SIDES = ("left", "right")


class Size(Family):
    name = "size"
    source = "shapes"
    capability = "comparative"
    ratings = {"comparative": 4, "attribute": 2, "spatial": 1}
    subject = "two shapes"
    attributes = (
        Attribute("larger", SIDES, lambda s: "left" if s["r_left"] > s["r_right"] else "right",
                  ("Which shape is larger, the left or the right one?", "Which of the two shapes is bigger?"),
                  ("Is the {v} shape the larger one?", "Is the shape on the {v} bigger than the other?"),
                  "Which of the two shapes is larger?"),
        Attribute("larger_color", d.COLOR_NAMES,
                  lambda s: s["c_left"] if s["r_left"] > s["r_right"] else s["c_right"],
                  ("What color is the larger shape?", "Which color does the bigger shape have?"),
                  ("Is the larger shape {v}?", "Is the bigger of the two shapes {v}?"),
                  "What is the color of the larger shape?"),
    )
    cot_q = "Which of the two shapes is larger? Compare them step by step."
    json_q = ('Which shape is larger, and what is its color? '
              'Answer as a JSON object with the keys "larger" (left or right) and "larger_color".')

    def draw(self, rng):
        small, big = int(rng.integers(4, 8)), int(rng.integers(10, 14))
        left_big = bool(rng.random() < 0.5)
        colors = rng.choice(8, size=2, replace=False)
        return Scene.of(self.name, r_left=big if left_big else small, r_right=small if left_big else big,
                        c_left=d.COLOR_NAMES[int(colors[0])], c_right=d.COLOR_NAMES[int(colors[1])],
                        shape=d.SHAPES[int(rng.integers(3))], y=int(rng.integers(18, 47)), bg=int(rng.integers(3)))

    def set_value(self, s, attribute, value):
        if attribute == "larger":
            return s.with_(r_left=s["r_right"], r_right=s["r_left"])
        side = "left" if s["r_left"] > s["r_right"] else "right"
        other = s["c_right"] if side == "left" else s["c_left"]
        return None if value == other else s.with_(**{f"c_{side}": value})

    def image(self, s):
        im, dr = d.canvas(s["bg"])
        d.shape(dr, s["shape"], 16, s["y"], s["r_left"], s["c_left"])
        d.shape(dr, s["shape"], 48, s["y"], s["r_right"], s["c_right"])
        return im

    def describe(self, s):
        big = "left" if s["r_left"] > s["r_right"] else "right"
        return (f"Two {s['shape']}s side by side: a {s['c_left']} one on the left and a {s['c_right']} one on the "
                f"right; the {big} one is larger.")

    def captions(self, s):
        return [f"A {s['c_left']} {s['shape']} and a {s['c_right']} {s['shape']}.", self.describe(s)]

    def cot(self, s):
        big = "left" if s["r_left"] > s["r_right"] else "right"
        size = {True: "large", False: "small"}
        return (f"1. The left {s['shape']} is {s['c_left']} and {size[s['r_left'] > s['r_right']]}.\n"
                f"2. The right {s['shape']} is {s['c_right']} and {size[s['r_right'] > s['r_left']]}.\n"
                f"Answer: the {big} one.")

    def check(self, s, image):
        left = d.color_mask(image, s["c_left"])[:, :32].sum()
        right = d.color_mask(image, s["c_right"])[:, 32:].sum()
        if (left > right) != (s["r_left"] > s["r_right"]):
            raise AssertionError(f"pixel areas {left} / {right} disagree with the scene {s.as_dict()}")


FAMILY = Size()
