"""A bar chart of three bars A, B, C: which is tallest, which is shortest (data understanding)."""
from __future__ import annotations

import numpy as np

from kit.pools.testbed import draw as d
from kit.pools.testbed.base import Attribute, Family, Scene

BARS = ("A", "B", "C")
UNIT = 9          # pixels per unit of height
BASE = 52         # the x axis (y pixel)
X = (14, 32, 50)  # bar centres


def _arg(s, fn):
    h = s["heights"]
    return BARS[int(fn(h))]


class Bars(Family):
    name = "bars"
    source = "charts"
    capability = "data"
    ratings = {"data": 4, "comparative": 2, "ocr": 1}
    subject = "bar chart"
    attributes = (
        Attribute("tallest", BARS, lambda s: _arg(s, np.argmax),
                  ("Which bar is the tallest?", "Which bar has the highest value?"),
                  ("Is bar {v} the tallest?", "Does bar {v} have the highest value?"),
                  "Which bar in the chart is the tallest?", answer=str),
        Attribute("shortest", BARS, lambda s: _arg(s, np.argmin),
                  ("Which bar is the shortest?", "Which bar has the lowest value?"),
                  ("Is bar {v} the shortest?", "Does bar {v} have the lowest value?"),
                  "Which bar in the chart is the shortest?", answer=str),
    )
    cot_q = "Which bar is the tallest? Read the chart step by step."
    json_q = ('Which bars are the tallest and the shortest? '
              'Answer as a JSON object with the keys "tallest" and "shortest".')

    def draw(self, rng):
        heights = tuple(int(h) for h in rng.choice(np.arange(1, 6), size=3, replace=False))
        return Scene.of(self.name, heights=heights, color=d.COLOR_NAMES[int(rng.integers(8))],
                        width=int(rng.integers(8, 13)), bg=int(rng.integers(3)))

    def set_value(self, s, attribute, value):
        h = list(s["heights"])
        now = BARS.index(_arg(s, np.argmax if attribute == "tallest" else np.argmin))
        new = BARS.index(value)
        h[now], h[new] = h[new], h[now]
        return s.with_(heights=tuple(h))

    def image(self, s):
        im, dr = d.canvas(s["bg"])
        dr.line([(4, BASE), (60, BASE)], fill=(60, 60, 60), width=1)
        half = s["width"] / 2
        for x, h, label in zip(X, s["heights"], BARS):
            dr.rectangle([x - half, BASE - h * UNIT, x + half - 1, BASE - 1], fill=d.COLORS[s["color"]])
            d.text(dr, label, x, 58, 9, color=(40, 40, 40))
        return im

    def describe(self, s):
        h = dict(zip(BARS, s["heights"]))
        return (f"A bar chart with three {s['color']} bars: A is {h['A']}, B is {h['B']} and C is {h['C']} units high; "
                f"{_arg(s, np.argmax)} is the tallest.")

    def captions(self, s):
        return [f"A bar chart with bars A, B and C.", f"Bar {_arg(s, np.argmax)} is the tallest.", self.describe(s)]

    def cot(self, s):
        h = dict(zip(BARS, s["heights"]))
        steps = "\n".join(f"Bar {b} reaches {h[b]}." for b in BARS)
        top = _arg(s, np.argmax)
        return f"{steps}\nThe largest of {h['A']}, {h['B']} and {h['C']} is {h[top]}.\nAnswer: {top}"

    def check(self, s, image):
        mask = d.color_mask(image, s["color"])
        for x, h in zip(X, s["heights"]):
            seen = int(mask[:BASE, x].sum())
            if seen != h * UNIT:
                raise AssertionError(f"bar at x={x} is {seen} px high, the scene says {h * UNIT}")


FAMILY = Bars()
