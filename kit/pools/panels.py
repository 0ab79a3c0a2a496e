"""Rendered two-panel comparisons and shape layouts with exact coordinates (drawn with PIL)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.pools.imaging import figure_image, font, mpl_style, new_figure, save_png
from kit.pools.labels import ratings as r
from kit.pools.sample import Sample, make_sample

SOURCE = "rendered"
COLORS = {"red": (220, 40, 40), "blue": (40, 80, 210), "green": (40, 160, 60), "yellow": (235, 200, 20),
          "purple": (140, 60, 170), "orange": (245, 140, 20)}
SHAPE_KINDS = ["circle", "square", "triangle", "star"]


def _two_panels(width=256, height=128, bg=(248, 248, 248)):
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(im)
    half = width // 2
    d.rectangle([2, 2, half - 4, height - 3], fill=bg, outline=(120, 120, 120))
    d.rectangle([half + 3, 2, width - 3, height - 3], fill=bg, outline=(120, 120, 120))
    return im, d, [(2, 2, half - 4, height - 3), (half + 3, 2, width - 3, height - 3)]


def _draw_shape(d, kind: str, cx: float, cy: float, size: float, color) -> tuple[float, float, float, float]:
    """Draw a shape centred at (cx, cy) with bounding-box side ``size``; return its exact box."""
    h = size / 2
    if kind == "circle":
        d.ellipse([cx - h, cy - h, cx + h, cy + h], fill=color)
    elif kind == "square":
        d.rectangle([cx - h, cy - h, cx + h, cy + h], fill=color)
    elif kind == "triangle":
        d.polygon([(cx, cy - h), (cx + h, cy + h), (cx - h, cy + h)], fill=color)
    elif kind == "star":
        ang = -np.pi / 2 + np.arange(10) * np.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, h, h * 0.45)
        pts = [(float(cx + rr * np.cos(a)), float(cy + rr * np.sin(a))) for a, rr in zip(ang, rad)]
        d.polygon(pts, fill=color)
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        return min(xs), min(ys), max(xs), max(ys)
    else:
        raise ValueError(kind)
    return cx - h, cy - h, cx + h, cy + h


def _scatter_points(rng, n, box, radius):
    x0, y0, x1, y1 = box
    pts: list[tuple[float, float]] = []
    while len(pts) < n:
        p = (float(rng.uniform(x0 + radius + 4, x1 - radius - 4)),
             float(rng.uniform(y0 + radius + 4, y1 - radius - 4)))
        if all((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 > (2.6 * radius) ** 2 for q in pts):
            pts.append(p)
    return pts


def _clock(d, cx, cy, radius, hour, minute):
    d.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill="white", outline="black", width=3)
    for t in range(12):
        a = np.pi / 2 - t * np.pi / 6
        inner = radius * (0.78 if t % 3 == 0 else 0.86)
        d.line([cx + inner * np.cos(a), cy - inner * np.sin(a), cx + radius * 0.95 * np.cos(a),
                cy - radius * 0.95 * np.sin(a)], fill="black", width=2 if t % 3 == 0 else 1)
    m_ang = np.pi / 2 - minute * np.pi / 30
    h_ang = np.pi / 2 - (hour % 12 + minute / 60) * np.pi / 6
    d.line([cx, cy, cx + radius * 0.8 * np.cos(m_ang), cy - radius * 0.8 * np.sin(m_ang)], fill="black", width=2)
    d.line([cx, cy, cx + radius * 0.5 * np.cos(h_ang), cy - radius * 0.5 * np.sin(h_ang)], fill="black", width=4)
    d.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill="black")


def _more_dots(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """Which panel has more dots, and by how many."""
    n1, n2 = (int(v) for v in rng.choice(np.arange(3, 10), 2, replace=False))
    im, d, boxes = _two_panels()
    for n, box in zip((n1, n2), boxes):
        for x, y in _scatter_points(rng, n, box, 7):
            d.ellipse([x - 7, y - 7, x + 7, y + 7], fill=(40, 80, 210))
    side = "left" if n1 > n2 else "right"
    other = "right" if side == "left" else "left"
    big, small = max(n1, n2), min(n1, n2)
    save_png(im, images_dir / rel)
    return make_sample(key, rel, ["Which panel has more dots, and how many more?",
                                  f"The {side} panel, with {big - small} more ({big} vs {small})."],
                       SOURCE, "compare word", r(comparative=4, finegrained=3, logical=2),
                       wrong=f"The {other} panel, with {big - small} more ({big} vs {small}).")


def _larger_bar_total(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """Which panel's bar chart adds up to the larger total (chain of thought)."""
    while True:
        a, b = rng.integers(2, 10, 3).tolist(), rng.integers(2, 10, 3).tolist()
        if sum(a) != sum(b):
            break
    with mpl_style():
        fig, axes = new_figure(256, 144, ncols=2, sharey=True)
        for ax, vals, name in zip(axes, (a, b), ("Left", "Right")):
            bars = ax.bar(["x", "y", "z"], vals, color="#55A868")
            ax.bar_label(bars, labels=[str(v) for v in vals], fontsize=7)
            ax.set_title(name, fontsize=8)
            ax.set_ylim(0, 11.5)
        fig.tight_layout(pad=0.4)
        save_png(figure_image(fig), images_dir / rel)
    ta, tb = sum(a), sum(b)

    def cot(left_total):
        winner = "left" if left_total > tb else "right"
        return (f"1. Left panel: {' + '.join(map(str, a))} = {left_total}.\n"
                f"2. Right panel: {' + '.join(map(str, b))} = {tb}.\n"
                f"3. {max(left_total, tb)} > {min(left_total, tb)}.\n"
                f"The {winner} panel has the larger total.")
    wrong_total = tb + 2 if ta < tb else tb - 2
    return make_sample(key, rel, ["Which panel's bars add up to the larger total? Think step by step.",
                                  cot(ta)], SOURCE, "compare cot",
                       r(comparative=4, data=4, logical=3, ocr=2),
                       wrong=cot(wrong_total))


def _larger_circle(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """Which of two circles is larger."""
    r1, r2 = (float(v) for v in rng.choice([14, 20, 26, 34, 42, 50], 2, replace=False))
    im, d, boxes = _two_panels()
    for rad, (x0, y0, x1, y1) in zip((r1, r2), boxes):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        d.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], fill=(220, 40, 40))
    save_png(im, images_dir / rel)
    side = "left" if r1 > r2 else "right"
    return make_sample(key, rel, ["Which circle is larger, the left or the right one?",
                                  f"The {side} one."], SOURCE, "compare word",
                       r(comparative=3, spatial=2, attribute=1),
                       wrong=f"The {'right' if side == 'left' else 'left'} one.")


def _rising_trend(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """Which of two line charts rises."""
    rising_left = bool(rng.random() < 0.5)
    up = np.cumsum(rng.integers(1, 5, 6))
    down = 25 - np.cumsum(rng.integers(1, 5, 6))
    with mpl_style():
        fig, axes = new_figure(256, 144, ncols=2)
        for ax, vals, name in zip(axes, (up, down) if rising_left else (down, up), ("Left", "Right")):
            ax.plot(range(2019, 2025), vals, marker="o", ms=3, color="#4C72B0")
            ax.set_title(name, fontsize=8)
            ax.set_xticks([2019, 2021, 2023])
        fig.tight_layout(pad=0.4)
        save_png(figure_image(fig), images_dir / rel)
    side = "left" if rising_left else "right"
    return make_sample(key, rel, ["One panel shows a rising trend and the other a falling trend. "
                                  "Which panel shows the rising trend?", f"The {side} panel."],
                       SOURCE, "compare word", r(comparative=4, data=3),
                       wrong=f"The {'right' if side == 'left' else 'left'} panel.")


def _clock_difference(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """How many minutes apart two clocks are (chain of thought)."""
    h1, m1 = int(rng.integers(1, 10)), int(rng.choice(np.arange(0, 60, 5)))
    delta = int(rng.choice(np.arange(20, 180, 5)))
    total = h1 * 60 + m1 + delta
    h2, m2 = (total // 60 - 1) % 12 + 1, total % 60
    im, d, boxes = _two_panels()
    for (hh, mm), (x0, y0, x1, y1) in zip(((h1, m1), (h2, m2)), boxes):
        _clock(d, (x0 + x1) / 2, (y0 + y1) / 2, 50, hh, mm)
    save_png(im, images_dir / rel)

    def cot(minutes):
        return (f"1. The left clock shows {h1}:{m1:02d}.\n2. The right clock shows {h2}:{m2:02d}.\n"
                f"3. From {h1}:{m1:02d} to {h2}:{m2:02d} is {minutes // 60} h {minutes % 60} min = "
                f"{minutes} minutes.\nThe right clock is {minutes} minutes later.")
    return make_sample(key, rel, ["How many minutes later is the time on the right clock than on the "
                                  "left clock? Think step by step.", cot(delta)], SOURCE,
                       "compare cot",
                       r(comparative=3, logical=3, stem=2, finegrained=3), wrong=cot(delta + 60))


def _cheaper_item(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """Which of two price tags is cheaper, and by how much."""
    goods = ["Scarf", "Mug", "Lamp", "Clock", "Kite", "Vase"]
    items = [str(v) for v in rng.choice(goods, 2, replace=False)]
    prices = [round(float(v) / 100, 2) for v in rng.choice(np.arange(199, 2999, 25), 2, replace=False)]
    im, d, boxes = _two_panels()
    for name, price, (x0, y0, x1, y1) in zip(items, prices, boxes):
        cx = (x0 + x1) / 2
        d.rounded_rectangle([x0 + 10, y0 + 25, x1 - 10, y1 - 25], radius=8, fill=(255, 236, 150),
                            outline="black", width=2)
        d.text((cx, y0 + 48), name, font=font(16, bold=True), fill="black", anchor="mm")
        d.text((cx, y0 + 76), f"${price:.2f}", font=font(18), fill="black", anchor="mm")
    save_png(im, images_dir / rel)
    cheap = 0 if prices[0] < prices[1] else 1
    diff = abs(prices[0] - prices[1])
    return make_sample(key, rel, ["Which item is cheaper, and by how much?",
                                  f"The {items[cheap].lower()}, by ${diff:.2f}."], SOURCE,
                       "compare word",
                       r(comparative=4, ocr=3, logical=2, data=1),
                       wrong=f"The {items[1 - cheap].lower()}, by ${diff:.2f}.")


def _missing_shape(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """Which shape of the left panel is missing from the right one."""
    kinds = [str(v) for v in rng.permutation(SHAPE_KINDS)]
    missing = kinds[0]
    im, d, boxes = _two_panels()
    for present, (x0, y0, x1, y1) in zip((kinds, kinds[1:]), boxes):
        order = [str(v) for v in rng.permutation(present)]
        for j, kind in enumerate(order):
            cx = x0 + (x1 - x0) * (0.28 + 0.44 * (j % 2))
            cy = y0 + (y1 - y0) * (0.28 + 0.44 * (j // 2))
            _draw_shape(d, kind, cx, cy, 36, (140, 60, 170))
    save_png(im, images_dir / rel)
    return make_sample(key, rel, ["Which shape appears in the left panel but not in the right panel?",
                                  f"The {missing}."], SOURCE, "compare word",
                       r(comparative=4, finegrained=2, logical=2), wrong=f"The {kinds[1]}.")


def _same_color(images_dir: Path, rng, key: str, rel: str) -> Sample:
    """Whether two squares have the same colour."""
    names = list(COLORS)
    a = str(rng.choice(names))
    same = bool(rng.random() < 0.5)
    b = a if same else str(rng.choice([n for n in names if n != a]))
    im, d, boxes = _two_panels()
    for name, (x0, y0, x1, y1) in zip((a, b), boxes):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        d.rectangle([cx - 35, cy - 35, cx + 35, cy + 35], fill=COLORS[name])
    save_png(im, images_dir / rel)
    answer = f"Yes, both are {a}." if same else f"No: the left one is {a} and the right one is {b}."
    wrong = f"No: the left one is {a} and the right one is {'blue' if a != 'blue' else 'red'}." if same \
        else f"Yes, both are {a}."
    return make_sample(key, rel, ["Are the two squares the same color?", answer], SOURCE, "yn compare",
                       r(comparative=3, attribute=3), wrong=wrong)


# The kinds of two-panel comparison, in build order (``rendered/compare_01.png`` is the first): each
# ``make(images_dir, rng, key, rel)`` draws its image, writes it to ``images_dir / rel`` and returns its sample.
COMPARISONS = (_more_dots, _larger_bar_total, _larger_circle, _rising_trend, _clock_difference, _cheaper_item,
               _missing_shape, _same_color)


def comparisons(images_dir: Path, rng) -> list[Sample]:
    """One sample of each kind of :data:`COMPARISONS`, drawn in turn from ``rng`` (writes their images)."""
    return [make(images_dir, rng, f"{SOURCE}/compare/{k:02d}", f"{SOURCE}/compare_{k:02d}.png")
            for k, make in enumerate(COMPARISONS, start=1)]


# --------------------------------------------------------------------------- layouts

@dataclass(frozen=True)
class Placed:
    kind: str
    color: str
    box: tuple[float, float, float, float]  # normalised x1, y1, x2, y2

    @property
    def name(self) -> str:
        return f"{self.color} {self.kind}"

    @property
    def center(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2

    @property
    def region(self) -> str:
        """Where the centre lies in a 3x3 split of the image, as a phrase ("in the top left", ...)."""
        cx, cy = self.center
        v = "top" if cy < 1 / 3 else ("bottom" if cy > 2 / 3 else "")
        h = "left" if cx < 1 / 3 else ("right" if cx > 2 / 3 else "")
        if v and h:
            return f"in the {v} {h} corner"
        if v:
            return f"at the {v} center"
        if h:
            return f"on the middle {h}"
        return "in the center"


def _layout(rng, n, size=256):
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (size, size), (240, 240, 236))
    d = ImageDraw.Draw(im)
    cells = [int(c) for c in rng.choice(9, n, replace=False)]
    colors = [str(c) for c in rng.choice(list(COLORS), n, replace=False)]
    kinds = [str(rng.choice(SHAPE_KINDS[:3])) for _ in range(n)]
    cell = size / 3
    placed = []
    for c, color, kind in zip(cells, colors, kinds):
        s = float(rng.uniform(36, 60))
        cx = (c % 3) * cell + cell / 2 + float(rng.uniform(-8, 8))
        cy = (c // 3) * cell + cell / 2 + float(rng.uniform(-8, 8))
        x1, y1, x2, y2 = _draw_shape(d, kind, cx, cy, s, COLORS[color])
        placed.append(Placed(kind, color, tuple(round(v / size, 2) for v in (x1, y1, x2, y2))))
    return im, placed


def _fmt_box(box) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in box) + "]"


def layouts(images_dir: Path, rng) -> list[Sample]:
    out = []
    coord_q = "with coordinates normalized to the range 0 to 1 (origin at the top left)"
    for k in range(6):
        rel = f"{SOURCE}/layout_{k + 1:02d}.png"
        key = f"{SOURCE}/layout/{k + 1:02d}"
        im, placed = _layout(rng, int(rng.integers(3, 6)))
        save_png(im, images_dir / rel)
        target = placed[int(rng.integers(len(placed)))]
        if k == 0:
            other = next(p for p in placed if p != target)
            out.append(make_sample(key, rel, [f"Give the bounding box of the {target.name} as [x1, y1, x2, y2], "
                                              f"{coord_q}.", _fmt_box(target.box)], SOURCE, "coord",
                                   r(spatial=5, attribute=1, finegrained=1), wrong=_fmt_box(other.box)))
        elif k == 1:
            left = min(placed, key=lambda p: p.center[0])
            right = max(placed, key=lambda p: p.center[0])
            out.append(make_sample(key, rel, ["Which shape is furthest to the left?", f"The {left.name}."],
                                   SOURCE, "word", r(spatial=4, attribute=1), wrong=f"The {right.name}."))
        elif k == 2:
            n = len(placed)
            out.append(make_sample(key, rel, ["How many shapes are in the image?", str(n)], SOURCE, "word",
                                   r(finegrained=2, spatial=1), wrong=str(n + 1)))
        elif k == 3:
            cx, cy = target.center
            out.append(make_sample(key, rel, [f"Give the center point of the {target.name} as [x, y], {coord_q}.",
                                              f"[{cx:.2f}, {cy:.2f}]"], SOURCE, "coord", r(spatial=5, attribute=1),
                                   wrong=f"[{cy:.2f}, {cx:.2f}]" if abs(cx - cy) > 0.05
                                   else f"[{1 - cx:.2f}, {cy:.2f}]"))
        elif k == 4:
            pairs = [(a, b) for a in placed for b in placed if abs(a.center[1] - b.center[1]) > 0.2]
            a, b = pairs[int(rng.integers(len(pairs)))]
            above = a.center[1] < b.center[1]
            out.append(make_sample(key, rel, [f"Is the {a.name} above the {b.name}?", "Yes" if above else "No"],
                                   SOURCE, "yn", r(spatial=4, logical=1), wrong="No" if above else "Yes"))
        else:
            top_down = sorted(placed, key=lambda p: (p.center[1], p.center[0]))
            parts = [f"{'an' if p.color[0] in 'aeiou' else 'a'} {p.name} {p.region}" for p in top_down]
            text = (f"The image shows {len(placed)} flat, solid-colored shapes on a light gray background, "
                    "with no overlap between them. Reading from top to bottom: " + ", ".join(parts[:-1]) +
                    f" and {parts[-1]}. The shapes are of similar size, each roughly a fifth of the image "
                    "width across.")
            out.append(make_sample(key, rel, ["Describe the positions of all the shapes in detail.", text], SOURCE,
                                   "detailed", r(spatial=4, attribute=3, language=3, scene=1)))
    return out


def samples(images_dir: Path, rng) -> list[Sample]:
    """All comparison and layout samples (writes their images)."""
    return comparisons(images_dir, rng) + layouts(images_dir, rng)
