"""How many dots: one to six dots of one colour on a 4 x 4 grid (counting, read as scene understanding)."""
from __future__ import annotations

from kit.pools.testbed import draw as d
from kit.pools.testbed.base import Attribute, Family, Scene

NUMBERS = ("1", "2", "3", "4", "5", "6")
WORDS = ("one", "two", "three", "four", "five", "six")
CELL = 16


class Counting(Family):
    name = "counting"
    source = "shapes"
    capability = "scene"
    ratings = {"scene": 4, "attribute": 2, "spatial": 2, "logical": 1}
    subject = "dots"
    attributes = (
        Attribute("count", NUMBERS, lambda s: str(len(s["cells"])),
                  ("How many dots are there?", "How many dots are in the image?", "Count the dots."),
                  ("Are there {v} dots?", "Does the image show exactly {v} dots?"),
                  "How many dots are in the image?"),
    )
    cot_q = "How many dots are in the image? Count them step by step."
    json_q = 'Count the dots and answer as a JSON object with the key "count".'

    def draw(self, rng):
        n = int(rng.integers(1, 7))
        cells = tuple(sorted(int(c) for c in rng.choice(16, size=n, replace=False)))
        return Scene.of(self.name, cells=cells, color=d.COLOR_NAMES[int(rng.integers(8))], r=int(rng.integers(4, 7)),
                        bg=int(rng.integers(3)))

    def set_value(self, s, attribute, value):
        cells = list(s["cells"])
        want = int(value)
        free = [c for c in range(16) if c not in cells]
        cells = sorted(cells[:want] if want < len(cells) else cells + free[:want - len(cells)])
        return s.with_(cells=tuple(cells))

    def image(self, s):
        im, dr = d.canvas(s["bg"])
        for c in s["cells"]:
            d.shape(dr, "circle", (c % 4) * CELL + CELL / 2, (c // 4) * CELL + CELL / 2, s["r"], s["color"])
        return im

    def describe(self, s):
        n = len(s["cells"])
        return f"{WORDS[n - 1].capitalize()} {s['color']} dot{'s' if n > 1 else ''} on a light background."

    def captions(self, s):
        n = len(s["cells"])
        return [f"{WORDS[n - 1].capitalize()} {s['color']} dot{'s' if n > 1 else ''}.", f"{n} dots.", self.describe(s)]

    def cot(self, s):
        n = len(s["cells"])
        rows = [sum(1 for c in s["cells"] if c // 4 == k) for k in range(4)]
        steps = "\n".join(f"Row {k + 1}: {m} dot{'s' if m != 1 else ''}." for k, m in enumerate(rows))
        return f"I count the dots row by row.\n{steps}\nIn all: {' + '.join(map(str, rows))} = {n}.\nAnswer: {n}"

    def check(self, s, image):
        seen = d.components(d.color_mask(image, s["color"]))
        if seen != len(s["cells"]):
            raise AssertionError(f"{seen} dots drawn, the scene says {len(s['cells'])}")


FAMILY = Counting()
