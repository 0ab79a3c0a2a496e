"""Rendered documents and signs (OCR), drawn with PIL; answers come from the rendered strings."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kit.pools.imaging import font, save_png
from kit.pools.labels import ratings as r
from kit.pools.sample import Sample, make_sample

SOURCE = "rendered"

SHOPS = ["CORNER CAFE", "GREEN GROCER", "CITY BAKERY", "HILLTOP DELI"]
RECEIPT_ITEMS = [("Coffee", 3.20), ("Bagel", 2.50), ("Orange juice", 3.80), ("Muffin", 2.90),
                 ("Sandwich", 6.40), ("Tea", 2.10), ("Soup", 4.70), ("Cookie", 1.60)]
PEOPLE = ["Dana Lee", "Omar Haddad", "Priya Nair", "Tom Becker", "Ana Souza", "Kenji Mori"]
MEMO_TOPICS = [("Fire drill", "A fire drill will take place on Thursday at 10:00. Please leave by the "
                              "nearest exit."),
               ("Office move", "The design team moves to the third floor next Monday. Pack your desks on "
                               "Friday."),
               ("Server upgrade", "Email will be offline on Saturday from 08:00 to 12:00 while the server "
                                  "is upgraded.")]
EVENTS = [("Spring Concert", "Town Hall"), ("Book Fair", "Central Library"), ("Science Night", "Riverside School"),
          ("Jazz Evening", "Harbour Theatre")]
DAYS = ["Friday 4 April", "Saturday 12 April", "Sunday 18 May", "Saturday 7 June"]
CITIES = ["Porto", "Lyon", "Graz", "Turku", "Leiden", "Cork"]
STREETS = ["Maple Ave", "Oak Street", "River Road", "Elm Lane", "Harbor Blvd", "Mill Street"]
WARNINGS = ["SLOW", "SCHOOL", "DETOUR", "ICE"]
TEXTS = [
    ["The old lighthouse stands on a rock at the end of the harbor.",
     "It was built in 1871 and guided ships for more than a century.",
     "Today it is a small museum open every summer."],
    ["Honeybees communicate with a waggle dance.",
     "The angle of the dance tells other bees the direction of food.",
     "Its length tells them how far away the flowers are."],
]


def _wrap(text: str, f, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for w in words:
        trial = f"{line} {w}".strip()
        if f.getlength(trial) <= width:
            line = trial
        else:
            lines.append(line)
            line = w
    return lines + ([line] if line else [])


def draw_page(blocks, width: int = 256, bg=(252, 250, 244), margin: int = 10):
    """A document: ``blocks`` are (text, size, bold, align) drawn top to bottom, wrapped to width."""
    from PIL import Image, ImageDraw

    laid = []
    y = margin
    for text, size, bold, align in blocks:
        f = font(size, bold)
        for line in (_wrap(text, f, width - 2 * margin) if text else [""]):
            laid.append((line, f, align, y))
            y += int(size * 1.35)
    height = min(256, y + margin)
    im = Image.new("RGB", (width, height), bg)
    d = ImageDraw.Draw(im)
    for line, f, align, yy in laid:
        if align == "center":
            d.text((width // 2, yy), line, font=f, fill=(20, 20, 20), anchor="ma")
        elif align == "right":
            d.text((width - margin, yy), line, font=f, fill=(20, 20, 20), anchor="ra")
        else:
            d.text((margin, yy), line, font=f, fill=(20, 20, 20))
    d.rectangle([0, 0, width - 1, height - 1], outline=(170, 170, 170))
    return im


def _receipt(rng):
    shop = str(rng.choice(SHOPS))
    idx = rng.choice(len(RECEIPT_ITEMS), int(rng.integers(3, 5)), replace=False)
    items = [RECEIPT_ITEMS[i] for i in idx]
    total = round(sum(p for _, p in items), 2)
    from PIL import Image, ImageDraw

    f, fb = font(13), font(14, bold=True)
    h = 40 + 20 * len(items) + 40
    im = Image.new("RGB", (200, h), (255, 255, 255))
    d = ImageDraw.Draw(im)
    d.text((100, 8), shop, font=fb, fill="black", anchor="ma")
    y = 34
    for name, price in items:
        d.text((10, y), name, font=f, fill="black")
        d.text((190, y), f"${price:.2f}", font=f, fill="black", anchor="ra")
        y += 20
    d.line([10, y + 2, 190, y + 2], fill="black")
    d.text((10, y + 8), "TOTAL", font=fb, fill="black")
    d.text((190, y + 8), f"${total:.2f}", font=fb, fill="black", anchor="ra")
    return im, total


def _receipt_total(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """The total of a shop receipt."""
    im, total = _receipt(rng)
    save_png(im, images_dir / rel)
    return make_sample(key, rel, ["What is the total amount on the receipt?", f"${total:.2f}"],
                       SOURCE, "word", r(ocr=4, data=2, logical=1), wrong=f"${total + 1.0:.2f}")


def _memo(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """Who sent a memo, and what it is about."""
    to, sender = (str(p) for p in rng.choice(PEOPLE, 2, replace=False))
    subject, body = MEMO_TOPICS[int(rng.integers(len(MEMO_TOPICS)))]
    date = f"{int(rng.integers(2, 28))} March 2024"
    save_png(draw_page([("MEMO", 16, True, "center"), (f"To: {to}", 12, False, "left"),
                        (f"From: {sender}", 12, False, "left"), (f"Date: {date}", 12, False, "left"),
                        (f"Subject: {subject}", 12, True, "left"), ("", 6, False, "left"),
                        (body, 12, False, "left")]), images_dir / rel)
    return make_sample(key, rel, ["Who sent this memo, and what is it about?",
                                  f"It was sent by {sender}, and it is about: {subject}. {body}"],
                       SOURCE, "short", r(ocr=4, language=2),
                       wrong=f"It was sent by {to}, and it is about: {subject}. {body}")


def _event_poster(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """When and where an event on a poster takes place."""
    (event, place), day = EVENTS[int(rng.integers(len(EVENTS)))], str(rng.choice(DAYS))
    time = f"{int(rng.integers(5, 9))} pm"
    price = int(rng.integers(4, 15))
    save_png(draw_page([(event.upper(), 20, True, "center"), ("", 8, False, "left"),
                        (f"{day}, {time}", 14, False, "center"), (place, 14, True, "center"),
                        ("", 8, False, "left"), (f"Tickets ${price} at the door", 12, False, "center")],
                       bg=(255, 244, 214)), images_dir / rel)
    other = next(p for _, p in EVENTS if p != place)
    return make_sample(key, rel, [f"When and where is the {event.lower()}?",
                                  f"On {day} at {time}, at the {place}."], SOURCE, "short",
                       r(ocr=4, language=1), wrong=f"On {day} at {time}, at the {other}.")


def _recipe_scaling(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """How much milk a recipe needs for twice the people (chain of thought)."""
    serves, eggs = int(rng.integers(2, 5)), int(rng.integers(1, 4))
    milk, flour = int(rng.choice([150, 200, 250, 300])), int(rng.choice([100, 120, 150, 200]))
    save_png(draw_page([(f"Pancakes (serves {serves})", 15, True, "left"), ("", 6, False, "left"),
                        (f"- {eggs} eggs", 13, False, "left"), (f"- {milk} ml milk", 13, False, "left"),
                        (f"- {flour} g flour", 13, False, "left"),
                        ("- 1 pinch of salt", 13, False, "left")]), images_dir / rel)

    def cot(m2):
        return (f"1. The recipe serves {serves} and uses {milk} ml of milk.\n"
                f"2. {2 * serves} people is twice as many, so the amount doubles.\n"
                f"3. 2 x {milk} = {m2} ml.\nYou need {m2} ml of milk.")
    return make_sample(key, rel, [f"How much milk is needed to make this recipe for {2 * serves} "
                                  "people? Think step by step.", cot(2 * milk)], SOURCE, "cot",
                       r(ocr=3, logical=3, stem=1, data=2), wrong=cot(milk + 100))


def _form_as_json(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """A membership form transcribed as JSON (specified style)."""
    name, city = str(rng.choice(PEOPLE)), str(rng.choice(CITIES))
    age = int(rng.integers(21, 70))
    save_png(draw_page([("MEMBERSHIP FORM", 15, True, "center"), ("", 6, False, "left"),
                        (f"Name: {name}", 13, False, "left"), (f"Age: {age}", 13, False, "left"),
                        (f"City: {city}", 13, False, "left"),
                        (f"Member since: {int(rng.integers(2005, 2024))}", 13, False, "left")]),
             images_dir / rel)
    good = f'{{"name": "{name}", "age": {age}, "city": "{city}"}}'
    bad = f'{{"name": "{name}", "age": {int(str(age)[::-1])}, "city": "{city}"}}'
    return make_sample(key, rel, ["Transcribe the form as a JSON object with the keys name, age "
                                  "and city, and output nothing else.", good], SOURCE, "spec",
                       r(ocr=5, language=1, data=1), wrong=bad if bad != good else None)


def _first_sentence(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """The first sentence of a short text."""
    sentences = TEXTS[int(rng.integers(len(TEXTS)))]
    save_png(draw_page([(" ".join(sentences), 13, False, "left")]), images_dir / rel)
    return make_sample(key, rel, ["What is the first sentence of the text?", sentences[0]], SOURCE,
                       "word", r(ocr=5, language=1), wrong=sentences[1])


def _library_hours(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """Whether the library is open on Sunday."""
    sat_close = int(rng.choice([13, 14, 16]))
    save_png(draw_page([("LIBRARY HOURS", 16, True, "center"), ("", 6, False, "left"),
                        ("Mon-Fri  9:00 - 18:00", 13, False, "left"),
                        (f"Saturday  10:00 - {sat_close}:00", 13, False, "left"),
                        ("Sunday  closed", 13, False, "left")]), images_dir / rel)
    return make_sample(key, rel, ["Is the library open on Sunday?", "No, it is closed on Sundays."],
                       SOURCE, "yn", r(ocr=3, logical=2),
                       wrong=f"Yes, from 10:00 to {sat_close}:00.")


# The documents, in build order (``rendered/document_01.png`` is the first): each
# ``make(images_dir, rng, key, rel)`` draws its page, writes it to ``images_dir / rel`` and returns its sample.
DOCUMENTS = (_receipt_total, _memo, _event_poster, _recipe_scaling, _form_as_json, _first_sentence, _library_hours)


def documents(images_dir: Path, rng) -> list[Sample]:
    """One sample of each document of :data:`DOCUMENTS`, drawn in turn from ``rng`` (writes their images)."""
    return [make(images_dir, rng, f"{SOURCE}/document/{k:02d}", f"{SOURCE}/document_{k:02d}.png")
            for k, make in enumerate(DOCUMENTS, start=1)]


# --------------------------------------------------------------------------- signs

def _canvas(size=(192, 192), bg=(205, 225, 240)):
    from PIL import Image, ImageDraw

    im = Image.new("RGB", size, bg)
    return im, ImageDraw.Draw(im)


def _regular_polygon(cx, cy, radius, n, rotation):
    angles = rotation + np.arange(n) * 2 * np.pi / n
    return [(float(cx + radius * np.cos(a)), float(cy + radius * np.sin(a))) for a in angles]


def _stop_sign(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """What a stop sign tells a driver."""
    im, d = _canvas()
    d.polygon(_regular_polygon(96, 96, 84, 8, np.pi / 8), fill=(200, 16, 30), outline="white", width=4)
    d.text((96, 96), "STOP", font=font(40, bold=True), fill="white", anchor="mm")
    save_png(im, images_dir / rel)
    return make_sample(key, rel, ["What does this sign tell a driver to do?",
                                  "It says STOP: the driver must come to a complete stop and go on "
                                  "only when it is safe."], SOURCE, "short",
                       r(ocr=3, causal=2, humanities=1, scene=1),
                       wrong="It says YIELD: the driver may keep going without stopping.")


def _speed_limit(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """The number on a speed-limit sign."""
    limit = int(rng.choice([20, 25, 30, 40, 50]))
    im, d = _canvas((160, 200))
    d.rectangle([14, 10, 146, 190], fill="white", outline="black", width=4)
    d.text((80, 40), "SPEED", font=font(24, bold=True), fill="black", anchor="mm")
    d.text((80, 70), "LIMIT", font=font(24, bold=True), fill="black", anchor="mm")
    d.text((80, 135), str(limit), font=font(60, bold=True), fill="black", anchor="mm")
    save_png(im, images_dir / rel)
    return make_sample(key, rel, ["What is the speed limit on this sign?", str(limit)], SOURCE,
                       "word", r(ocr=4), wrong=str(limit + 10))


def _street_name(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """The name on a street sign."""
    street = str(rng.choice(STREETS))
    im, d = _canvas((240, 120))
    d.rounded_rectangle([8, 30, 232, 90], radius=8, fill=(0, 110, 60), outline="white", width=3)
    d.text((120, 60), street, font=font(26, bold=True), fill="white", anchor="mm")
    save_png(im, images_dir / rel)
    other = next(s for s in STREETS if s != street)
    return make_sample(key, rel, ["What is the street name on the sign?", street], SOURCE, "word",
                       r(ocr=4), wrong=other)


def _warning_sign(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """A yellow warning sign described: shape, colour and text."""
    word = str(rng.choice(WARNINGS))
    im, d = _canvas()
    d.polygon([(96, 8), (184, 96), (96, 184), (8, 96)], fill=(250, 205, 0), outline="black", width=4)
    d.text((96, 96), word, font=font(30 if len(word) <= 4 else 24, bold=True), fill="black", anchor="mm")
    save_png(im, images_dir / rel)
    return make_sample(key, rel, ["Describe the sign: its shape, its color and its text.",
                                  f"It is a yellow diamond-shaped warning sign with a black border "
                                  f"and the word {word} in black capital letters."], SOURCE, "short",
                       r(ocr=3, attribute=3, language=1),
                       wrong=f"It is a red circular sign with the word {word} in white letters.")


def _exit_arrow(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """Which way an exit sign's arrow points."""
    left = bool(rng.random() < 0.5)
    im, d = _canvas((240, 110), bg=(60, 60, 60))
    d.rectangle([10, 20, 230, 90], fill=(0, 150, 70))
    d.text((150 if left else 90, 55), "EXIT", font=font(36, bold=True), fill="white", anchor="mm")
    tip, tail = (25, 85) if left else (215, 155)
    d.line([tail, 55, tip + (8 if left else -8), 55], fill="white", width=8)
    back = tip + (22 if left else -22)
    d.polygon([(tip, 55), (back, 38), (back, 72)], fill="white")
    save_png(im, images_dir / rel)
    side, opposite = ("left", "right") if left else ("right", "left")
    return make_sample(key, rel, ["Which way does the arrow on the exit sign point?", _title(side)],
                       SOURCE, "word", r(spatial=3, ocr=2), wrong=_title(opposite))


def _open_closed(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """Whether a shop sign says open."""
    is_open = bool(rng.random() < 0.5)
    im, d = _canvas((220, 140), bg=(120, 90, 60))
    d.rounded_rectangle([10, 15, 210, 125], radius=10, fill="white", outline="black", width=3)
    d.text((110, 55), "OPEN" if is_open else "CLOSED", font=font(36, bold=True),
           fill=(0, 130, 0) if is_open else (190, 0, 0), anchor="mm")
    d.text((110, 100), "Mon-Sat 9-17", font=font(14), fill="black", anchor="mm")
    save_png(im, images_dir / rel)
    answer = "Yes, it says OPEN." if is_open else "No, it says CLOSED."
    wrong = "No, it says CLOSED." if is_open else "Yes, it says OPEN."
    return make_sample(key, rel, ["Does the sign say the shop is open?", answer], SOURCE, "yn",
                       r(ocr=3, logical=1), wrong=wrong)


def _platform_sign(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """A platform sign read out in capitals (specified style)."""
    platform, dest = int(rng.integers(1, 10)), str(rng.choice(["Oxford", "Leeds", "Bristol", "York"]))
    im, d = _canvas((250, 120), bg=(230, 230, 230))
    d.rectangle([8, 20, 242, 100], fill=(20, 50, 130))
    d.text((125, 45), f"Platform {platform}", font=font(24, bold=True), fill="white", anchor="mm")
    d.text((125, 78), f"Trains to {dest}", font=font(18), fill="white", anchor="mm")
    save_png(im, images_dir / rel)
    return make_sample(key, rel, ["Read the sign. Answer in capital letters only.",
                                  f"PLATFORM {platform} TRAINS TO {dest.upper()}"], SOURCE, "spec",
                       r(ocr=4, language=1),
                       wrong=f"PLATFORM {platform + 1} TRAINS TO {dest.upper()}")


# The signs, in build order (``rendered/sign_01.png`` is the first): each ``make(images_dir, rng, key, rel)``
# draws its sign, writes it to ``images_dir / rel`` and returns its sample.
SIGNS = (_stop_sign, _speed_limit, _street_name, _warning_sign, _exit_arrow, _open_closed, _platform_sign)


def signs(images_dir: Path, rng) -> list[Sample]:
    """One sample of each sign of :data:`SIGNS`, drawn in turn from ``rng`` (writes their images)."""
    return [make(images_dir, rng, f"{SOURCE}/sign/{k:02d}", f"{SOURCE}/sign_{k:02d}.png")
            for k, make in enumerate(SIGNS, start=1)]


def _title(word: str) -> str:
    return word[:1].upper() + word[1:]


def samples(images_dir: Path, rng) -> list[Sample]:
    """All document and sign samples (writes their images)."""
    return documents(images_dir, rng) + signs(images_dir, rng)
