"""Handwritten digits (fine-grained recognition): scikit-learn's bundled 8 x 8 digits of 0 to 4, enlarged.

Simplified after the learnability gate (``docs/methods.md``, "The testbed"): with all ten digits placed anywhere
in the image the tiny model stayed 0.147 above the majority rate; now the five digits 0-4, near the centre.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from kit.pools.testbed import draw as d
from kit.pools.testbed.base import Attribute, Family, Scene

DIGITS = tuple(str(k) for k in range(5))
NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
INKS = ("black", "blue", "purple")
SIDE = 40   # the digit's side in pixels


@lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images, data.target


@lru_cache(maxsize=1)
def _kept():
    """Indices of scikit-learn's digits that the family draws (those of :data:`DIGITS`)."""
    _, target = _digits()
    return np.flatnonzero(target < len(DIGITS))


class Digits(Family):
    name = "digits"
    source = "digits"
    capability = "finegrained"
    ratings = {"finegrained": 4, "ocr": 2, "attribute": 1}
    subject = "digit"
    attributes = (
        Attribute("digit", DIGITS, lambda s: s["digit"],
                  ("Which digit is written in the image?", "What number is handwritten here?",
                   "Which digit does the image show?"),
                  ("Is the handwritten digit a {v}?", "Does the image show the digit {v}?"),
                  "Which digit is handwritten in the image?", answer=str),
    )
    # scikit-learn holds 1,797 digits only: more of them go to the tower's pretraining (reserved) than the default
    side_shares = {"train": 450, "reserved": 350, "dev": 50, "test": 150}
    cot_q = "Which digit is handwritten in the image? Describe its strokes first."
    json_q = 'Which digit is handwritten in the image? Answer as a JSON object with the key "digit".'

    def draw(self, rng):
        _, target = _digits()
        kept = _kept()
        index = int(kept[int(rng.integers(len(kept)))])
        middle = (64 - SIDE) // 2
        return Scene.of(self.name, index=index, digit=str(int(target[index])), ink=INKS[int(rng.integers(3))],
                        x=int(rng.integers(middle - 2, middle + 3)), y=int(rng.integers(middle - 2, middle + 3)),
                        bg=int(rng.integers(3)))

    def side_key(self, scene):
        return (("index", scene["index"]),)

    def image(self, s):
        from PIL import Image

        images, _ = _digits()
        ink = Image.fromarray(np.uint8(np.round(images[s["index"]] / 16 * 255))).resize((SIDE, SIDE),
                                                                                       Image.Resampling.BILINEAR)
        im, _ = d.canvas(s["bg"])
        solid = Image.new("RGB", (SIDE, SIDE), d.COLORS[s["ink"]])
        im.paste(solid, (s["x"], s["y"]), ink)
        return im

    def describe(self, s):
        return f"A handwritten digit {s['digit']} in {s['ink']} ink on a light background."

    def captions(self, s):
        return [f"The digit {s['digit']}.", f"A handwritten {NAMES[int(s['digit'])]}.", self.describe(s)]

    def cot(self, s):
        return (f"1. The image holds one handwritten character in {s['ink']} ink.\n"
                f"2. Its strokes form the shape of a {NAMES[int(s['digit'])]}.\nAnswer: {s['digit']}")

    def check(self, s, image):
        _, target = _digits()
        if str(int(target[s["index"]])) != s["digit"]:
            raise AssertionError(f"digit image {s['index']} is a {target[s['index']]}, the scene says {s['digit']}")


FAMILY = Digits()
