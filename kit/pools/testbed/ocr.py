"""Read a printed word (optical character recognition): one of six words.

Simplified after the learnability gate (``docs/methods.md``, "The testbed"): with twelve words the tiny model stayed
0.133 above the majority rate; now six words, printed nearer the centre.
"""
from __future__ import annotations

from kit.pools.testbed import draw as d
from kit.pools.testbed.base import Attribute, Family, Scene

WORDS = ("CAT", "DOG", "SUN", "BOX", "KEY", "PEN")
INKS = ("black", "blue", "red", "purple")


class Ocr(Family):
    name = "ocr"
    source = "text"
    capability = "ocr"
    ratings = {"ocr": 4, "language": 1, "finegrained": 1}
    subject = "text"
    attributes = (
        Attribute("word", WORDS, lambda s: s["word"],
                  ("What word is written in the image?", "What does the text in the image say?", "Read the word."),
                  ('Does the image say "{v}"?', 'Is the word in the image "{v}"?'),
                  "Which word is written in the image?", answer=str),
    )
    cot_q = "What word is written in the image? Read it letter by letter."
    json_q = 'Transcribe the word in the image as a JSON object with the key "word".'

    def draw(self, rng):
        return Scene.of(self.name, word=WORDS[int(rng.integers(len(WORDS)))], size=int(rng.integers(15, 20)),
                        x=int(rng.integers(29, 36)), y=int(rng.integers(26, 39)), ink=INKS[int(rng.integers(4))],
                        bg=int(rng.integers(3)))

    def image(self, s):
        im, dr = d.canvas(s["bg"])
        d.text(dr, s["word"], s["x"], s["y"], s["size"], color=d.COLORS[s["ink"]])
        return im

    def describe(self, s):
        return f"The word {s['word']} printed in {s['ink']} capital letters on a light background."

    def captions(self, s):
        return [f"The word {s['word']}.", f"{s['word']} in {s['ink']} letters.", self.describe(s)]

    def cot(self, s):
        letters = ", ".join(s["word"])
        return f"The letters are {letters}.\nTogether they spell {s['word']}.\nAnswer: {s['word']}"

    def check(self, s, image):
        import numpy as np

        ink = d.color_mask(image, s["ink"])
        ys, xs = np.nonzero(ink)
        if len(xs) < 20 or xs.min() == 0 or xs.max() == 63:
            raise AssertionError(f"the word {s['word']} is not wholly inside the image")


FAMILY = Ocr()
