"""Where one shape is: the quadrant of the image (object spatial understanding)."""
from __future__ import annotations

from kit.pools.testbed import draw as d
from kit.pools.testbed.base import Attribute, Family, Scene

QUADRANTS = ("top left", "top right", "bottom left", "bottom right")


class Position(Family):
    name = "position"
    source = "shapes"
    capability = "spatial"
    ratings = {"spatial": 4, "attribute": 1, "scene": 1}
    subject = "shape"
    attributes = (
        Attribute("quadrant", QUADRANTS, lambda s: s["quadrant"],
                  ("Where is the shape?", "In which part of the image is the shape?",
                   "Which corner of the image is the shape in?"),
                  ("Is the shape in the {v} of the image?", "Is the shape at the {v}?"),
                  "Where is the shape in the image?"),
    )
    cot_q = "In which part of the image is the shape? Think step by step."
    json_q = 'Give the position of the shape as a JSON object with the key "quadrant" (for example "top left").'

    def draw(self, rng):
        q = int(rng.integers(4))
        r = int(rng.integers(5, 10))
        x = int(rng.integers(r + 2, 32 - r - 1)) + (32 if q % 2 else 0)
        y = int(rng.integers(r + 2, 32 - r - 1)) + (32 if q // 2 else 0)
        return Scene.of(self.name, quadrant=QUADRANTS[q], x=x, y=y, r=r, shape=d.SHAPES[int(rng.integers(3))],
                        color=d.COLOR_NAMES[int(rng.integers(8))], bg=int(rng.integers(3)))

    def set_value(self, s, attribute, value):
        q, new = QUADRANTS.index(s["quadrant"]), QUADRANTS.index(value)
        dx, dy = (new % 2 - q % 2) * 32, (new // 2 - q // 2) * 32
        return s.with_(quadrant=value, x=s["x"] + dx, y=s["y"] + dy)

    def image(self, s):
        im, dr = d.canvas(s["bg"])
        d.shape(dr, s["shape"], s["x"], s["y"], s["r"], s["color"])
        return im

    def describe(self, s):
        return f"A {s['color']} {s['shape']} in the {s['quadrant']} of the image."

    def captions(self, s):
        return [f"A {s['shape']} at the {s['quadrant']}.", self.describe(s)]

    def cot(self, s):
        v, h = s["quadrant"].split()
        return (f"1. The shape's centre is in the {'upper' if v == 'top' else 'lower'} half of the image.\n"
                f"2. It is in the {h} half.\nAnswer: {s['quadrant'].capitalize()}")

    def check(self, s, image):
        import numpy as np

        ys, xs = np.nonzero(d.color_mask(image, s["color"]))
        v = "top" if ys.mean() < 32 else "bottom"
        h = "left" if xs.mean() < 32 else "right"
        if f"{v} {h}" != s["quadrant"]:
            raise AssertionError(f"the shape is drawn at the {v} {h}, the scene says {s['quadrant']}")


FAMILY = Position()
