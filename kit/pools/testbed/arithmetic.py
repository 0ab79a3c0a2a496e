"""A sum of two digits printed in the image, to be worked out (STEM knowledge)."""
from __future__ import annotations

from kit.pools.testbed import draw as d
from kit.pools.testbed.base import Attribute, Family, Scene

RESULTS = tuple(str(k) for k in range(2, 11))


class Arithmetic(Family):
    name = "arithmetic"
    source = "text"
    capability = "stem"
    ratings = {"stem": 4, "ocr": 2, "logical": 2}
    subject = "sum"
    attributes = (
        Attribute("result", RESULTS, lambda s: str(s["a"] + s["b"]),
                  ("What is the result of the sum in the image?", "Work out the sum shown in the image.",
                   "What does the expression in the image equal?"),
                  ("Does the sum in the image equal {v}?", "Is the result of the expression {v}?"),
                  "What is the result of the sum in the image?", answer=str),
    )
    cot_q = "Work out the sum in the image step by step."
    json_q = 'Work out the sum in the image and answer as a JSON object with the key "result".'

    def draw(self, rng):
        return Scene.of(self.name, a=int(rng.integers(1, 6)), b=int(rng.integers(1, 6)), size=int(rng.integers(15, 20)),
                        x=int(rng.integers(26, 39)), y=int(rng.integers(18, 47)), bg=int(rng.integers(3)))

    def vision_targets(self, s):  # the tower learns to read both numbers, not only their sum
        return {**super().vision_targets(s), "arithmetic:a": s["a"] - 1, "arithmetic:b": s["b"] - 1}

    def vision_classes(self):
        return {**super().vision_classes(), "arithmetic:a": 5, "arithmetic:b": 5}

    def set_value(self, s, attribute, value):
        b = int(value) - s["a"]
        if 1 <= b <= 5:
            return s.with_(b=b)
        a = int(value) - s["b"]
        return s.with_(a=a) if 1 <= a <= 5 else None

    def image(self, s):
        im, dr = d.canvas(s["bg"])
        d.text(dr, f"{s['a']}+{s['b']}", s["x"], s["y"], s["size"])
        return im

    def describe(self, s):
        return f"The sum {s['a']} + {s['b']} printed in black on a light background."

    def captions(self, s):
        return [f"{s['a']} + {s['b']}.", f"The sum {s['a']} plus {s['b']}.", self.describe(s)]

    def cot(self, s):
        return f"The image shows {s['a']} + {s['b']}.\n{s['a']} + {s['b']} = {s['a'] + s['b']}.\nAnswer: {s['a'] + s['b']}"

    def check(self, s, image):
        ink = d.color_mask(image, "black")
        if ink.sum() < 20:
            raise AssertionError(f"no printed sum in the image of {s.as_dict()}")


FAMILY = Arithmetic()
