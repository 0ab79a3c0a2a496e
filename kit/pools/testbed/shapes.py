"""Colour and shape of one flat shape (attribute identification), the easy-vqa task drawn afresh."""
from __future__ import annotations

import numpy as np

from kit.pools.testbed import draw as d
from kit.pools.testbed.base import Attribute, Family, Scene, cap


class Shapes(Family):
    name = "shapes"
    source = "shapes"
    capability = "attribute"
    ratings = {"attribute": 4, "finegrained": 2, "spatial": 1}
    subject = "shape"
    attributes = (
        Attribute("color", d.COLOR_NAMES, lambda s: s["color"],
                  ("What color is the shape?", "What is the color of the shape?", "Which color does the shape have?"),
                  ("Is the shape {v}?", "Is the shape in the image {v}?"), "What is the color of the shape?"),
        Attribute("shape", d.SHAPES, lambda s: s["shape"],
                  ("What shape is in the image?", "Which shape is shown?", "What is the shape?"),
                  ("Is the shape a {v}?", "Does the image show a {v}?"), "Which shape does the image show?"),
    )
    cot_q = "What is in the image? Think step by step."
    json_q = 'Report the shape and its color as a JSON object with the keys "color" and "shape".'

    def draw(self, rng):
        r = int(rng.integers(9, 19))
        return Scene.of(self.name, color=d.COLOR_NAMES[int(rng.integers(8))], shape=d.SHAPES[int(rng.integers(3))],
                        x=int(rng.integers(r + 2, 64 - r - 2)), y=int(rng.integers(r + 2, 64 - r - 2)), r=r,
                        bg=int(rng.integers(3)))

    def image(self, s):
        im, dr = d.canvas(s["bg"])
        d.shape(dr, s["shape"], s["x"], s["y"], s["r"], s["color"])
        return im

    def describe(self, s):
        return f"A {s['color']} {s['shape']} on a plain light background."

    def captions(self, s):
        return [f"A {s['color']} {s['shape']}.", f"{cap(s['color'])} {s['shape']}.", self.describe(s)]

    def cot(self, s):
        return (f"1. There is one shape on a plain background.\n2. Its fill is {s['color']}.\n"
                f"3. Its outline is that of a {s['shape']}.\nAnswer: a {s['color']} {s['shape']}.")

    def check(self, s, image):
        mask = d.color_mask(image, s["color"])
        if mask.sum() < 0.5 * s["r"] ** 2:
            raise AssertionError(f"no {s['color']} shape in the image of {s.as_dict()}")
        ys, xs = np.nonzero(mask)
        fill = mask.sum() / ((xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1))
        seen = "square" if fill > 0.93 else ("circle" if fill > 0.66 else "triangle")
        if seen != s["shape"]:
            raise AssertionError(f"pixels show a {seen}, the scene says {s['shape']}")


FAMILY = Shapes()
