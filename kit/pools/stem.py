"""Rendered geometry figures and function plots (STEM); answers computed from the drawn values."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kit.pools.imaging import figure_image, mpl_style, new_figure, save_png
from kit.pools.labels import ratings as r
from kit.pools.sample import Sample, make_sample

SOURCE = "rendered"
MC = "Answer with the option's letter from the given choices directly."


def _geometry_axes():
    fig, ax = new_figure(224, 224)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _finish(fig, ax, pad=0.6):
    ax.autoscale_view()
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y0 - pad, y1 + pad)
    fig.tight_layout(pad=0.2)
    return figure_image(fig)


def _linear(a: int, b: int) -> str:
    """``a x + b`` written the usual way: "-x - 1", "2x + 3", "x"."""
    head = {1: "x", -1: "-x"}.get(a, f"{a}x")
    return head if b == 0 else f"{head} {'+' if b > 0 else '-'} {abs(b)}"


def _hypotenuse(fig, ax, rng, key: str, rel: str):
    """A right triangle's hypotenuse from its legs (chain of thought)."""
    from matplotlib.patches import Polygon, Rectangle

    a, b, c = [(3, 4, 5), (6, 8, 10), (5, 12, 13), (8, 15, 17)][int(rng.integers(4))]
    s = 4 / max(a, b)
    ax.add_patch(Polygon([(0, 0), (a * s, 0), (0, b * s)], fill=False, lw=1.5))
    ax.add_patch(Rectangle((0, 0), 0.3, 0.3, fill=False, lw=1))
    ax.text(a * s / 2, -0.35, f"a = {a}", ha="center", va="top")
    ax.text(-0.25, b * s / 2, f"b = {b}", ha="right", va="center")
    ax.text(a * s / 2 + 0.2, b * s / 2 + 0.2, "c = ?", ha="left")
    img = _finish(fig, ax)

    def cot(cc):
        return (f"1. The triangle has a right angle, so c is the hypotenuse.\n"
                f"2. By the Pythagorean theorem, c^2 = a^2 + b^2 = {a}^2 + {b}^2 = {a * a} + {b * b} "
                f"= {a * a + b * b}.\n3. c = sqrt({a * a + b * b}) = {cc}.\nSo c = {cc}.")
    return img, make_sample(key, rel, ["Find the length of side c. Think step by step.", cot(c)], SOURCE,
                            "cot", r(stem=5, logical=3, spatial=1, ocr=1), wrong=cot(a + b))


def _circle_area(fig, ax, rng, key: str, rel: str):
    """A circle's area from its radius (chain of thought)."""
    from matplotlib.patches import Circle

    radius = int(rng.integers(2, 10))
    ax.add_patch(Circle((0, 0), 2, fill=False, lw=1.5))
    ax.plot([0, 2], [0, 0], color="black", lw=1)
    ax.plot([0], [0], "ko", ms=3)
    ax.text(1, 0.15, f"r = {radius} cm", ha="center", va="bottom")
    img = _finish(fig, ax, 0.3)
    area = math.pi * radius ** 2

    def cot(val, rr):
        return (f"1. The area of a circle is A = pi * r^2.\n2. Here r = {radius} cm, so r^2 = {rr}.\n"
                f"3. A = 3.1416 x {rr} = {val:.1f}.\nThe area is about {val:.1f} cm^2.")
    return img, make_sample(key, rel, ["What is the area of the circle? Think step by step and round "
                                       "to one decimal place.", cot(area, radius ** 2)], SOURCE, "cot",
                            r(stem=5, logical=2, ocr=1),
                            wrong=cot(math.pi * 2 * radius, radius ** 2))


def _rectangle_perimeter(fig, ax, rng, key: str, rel: str):
    """A rectangle's perimeter from its sides."""
    from matplotlib.patches import Rectangle

    w, h = (int(v) for v in rng.choice(np.arange(2, 13), 2, replace=False))
    s = 4 / max(w, h)
    ax.add_patch(Rectangle((0, 0), w * s, h * s, fill=False, lw=1.5))
    ax.text(w * s / 2, -0.2, f"{w} m", ha="center", va="top")
    ax.text(w * s + 0.15, h * s / 2, f"{h} m", ha="left", va="center")
    img = _finish(fig, ax)
    return img, make_sample(key, rel, ["What is the perimeter of the rectangle?", f"{2 * (w + h)} m"],
                            SOURCE, "word", r(stem=4, logical=1, ocr=1), wrong=f"{w * h} m")


def _third_angle(fig, ax, rng, key: str, rel: str):
    """A triangle's third angle from the other two (chain of thought)."""
    from matplotlib.patches import Polygon

    A, B = int(rng.integers(35, 80)), int(rng.integers(35, 80))
    C = 180 - A - B
    pts = np.array([(0, 0), (4, 0), (4 * math.tan(math.radians(B)) /
                                      (math.tan(math.radians(A)) + math.tan(math.radians(B))),
                                      4 * math.tan(math.radians(A)) * math.tan(math.radians(B)) /
                                      (math.tan(math.radians(A)) + math.tan(math.radians(B))))])
    ax.add_patch(Polygon(pts, fill=False, lw=1.5))
    ax.text(0.45, 0.12, f"{A}°", fontsize=8)
    ax.text(3.25, 0.12, f"{B}°", fontsize=8)
    ax.text(pts[2][0], pts[2][1] - 0.45, "?", ha="center", fontsize=9)
    img = _finish(fig, ax)

    def cot(cc):
        return (f"1. The angles of a triangle add up to 180°.\n2. The two known angles are {A}° and "
                f"{B}°, which sum to {A + B}°.\n3. 180° - {A + B}° = {cc}°.\n"
                f"The missing angle is {cc}°.")
    return img, make_sample(key, rel, ["What is the size of the angle marked with a question mark? Think "
                                       "step by step.", cot(C)], SOURCE, "cot",
                            r(stem=5, logical=3, ocr=1), wrong=cot(360 - A - B))


def _square_diagonal(fig, ax, rng, key: str, rel: str):
    """A square's diagonal from its side."""
    from matplotlib.patches import Rectangle

    side = int(rng.integers(2, 11))
    ax.add_patch(Rectangle((0, 0), 3, 3, fill=False, lw=1.5))
    ax.plot([0, 3], [0, 3], "k--", lw=1)
    ax.text(1.5, -0.2, f"{side} cm", ha="center", va="top")
    ax.text(1.3, 1.7, "d", fontsize=9)
    img = _finish(fig, ax)
    d = side * math.sqrt(2)
    return img, make_sample(key, rel, ["How long is the diagonal d of the square? Round to one decimal "
                                       "place.", f"{d:.1f} cm"], SOURCE, "word", r(stem=4, logical=2, ocr=1),
                            wrong=f"{2 * side:.1f} cm")


def _rectangle_area_choice(fig, ax, rng, key: str, rel: str):
    """A shaded rectangle's area, multiple choice."""
    from matplotlib.patches import Rectangle

    w, h = (int(v) for v in rng.choice(np.arange(3, 12), 2, replace=False))
    s = 4 / max(w, h)
    ax.add_patch(Rectangle((0, 0), w * s, h * s, fill=True, fc="#cfe2f3", ec="black", lw=1.5))
    ax.text(w * s / 2, -0.2, f"{w} cm", ha="center", va="top")
    ax.text(w * s + 0.15, h * s / 2, f"{h} cm", ha="left", va="center")
    img = _finish(fig, ax)
    opts = [w * h, 2 * (w + h), w * h + w, w + h]
    opts = list(dict.fromkeys(opts))
    order = [int(i) for i in rng.permutation(len(opts))]
    labels = [f"{opts[i]} cm^2" for i in order]
    letter = "ABCD"[order.index(0)]
    q = "\n".join(["What is the area of the shaded rectangle?"] +
                  [f"{'ABCD'[j]}. {lab}" for j, lab in enumerate(labels)] + [MC])
    return img, make_sample(key, rel, [q, letter], SOURCE, "mc", r(stem=4, logical=1, ocr=1),
                            wrong="ABCD"[order.index(1)])


def _circumference(fig, ax, rng, key: str, rel: str):
    """A circle's circumference from its diameter (chain of thought)."""
    from matplotlib.patches import Circle

    dia = int(rng.integers(2, 15))
    ax.add_patch(Circle((0, 0), 2, fill=False, lw=1.5))
    ax.plot([-2, 2], [0, 0], color="black", lw=1)
    ax.text(0, 0.15, f"d = {dia} m", ha="center", va="bottom")
    img = _finish(fig, ax, 0.3)
    circ = math.pi * dia

    def cot(val, mult):
        return (f"1. The circumference of a circle is C = pi * d.\n2. The diameter is d = {dia} m.\n"
                f"3. C = 3.1416 x {mult} = {val:.1f}.\nThe circumference is about {val:.1f} m.")
    return img, make_sample(key, rel, ["What is the circumference of the circle? Think step by step and "
                                       "round to one decimal place.", cot(circ, dia)], SOURCE, "cot",
                            r(stem=5, logical=2, ocr=1), wrong=cot(2 * math.pi * dia, 2 * dia))


def _polygon_angle_sum(fig, ax, rng, key: str, rel: str):
    """A regular polygon's sides and interior angle sum (chain of thought)."""
    from matplotlib.patches import Polygon

    n = int(rng.integers(5, 9))
    ax.add_patch(Polygon(np.c_[np.cos(np.pi / 2 + 2 * np.pi * np.arange(n) / n),
                               np.sin(np.pi / 2 + 2 * np.pi * np.arange(n) / n)] * 2,
                         fill=True, fc="#fce5cd", ec="black", lw=1.5))
    img = _finish(fig, ax, 0.3)

    def cot(nn):
        return (f"1. Counting the corners, the polygon has {nn} sides.\n"
                f"2. The interior angles of an n-sided polygon add up to (n - 2) x 180°.\n"
                f"3. ({nn} - 2) x 180° = {(nn - 2) * 180}°.\nThe angles sum to {(nn - 2) * 180}°.")
    return img, make_sample(key, rel, ["How many sides does this polygon have, and what is the sum of its "
                                       "interior angles? Think step by step.", cot(n)], SOURCE, "cot",
                            r(stem=5, logical=3, finegrained=2), wrong=cot(n + 1))


# The geometry figures, in build order (``rendered/geometry_01.png`` is the first): each
# ``draw(fig, ax, rng, key, rel)`` draws on the axes and returns the finished image and its sample.
GEOMETRY = (_hypotenuse, _circle_area, _rectangle_perimeter, _third_angle, _square_diagonal, _rectangle_area_choice,
            _circumference, _polygon_angle_sum)


def geometry(images_dir: Path, rng) -> list[Sample]:
    """One sample of each figure of :data:`GEOMETRY`, drawn in turn from ``rng`` (writes their images)."""
    out = []
    for k, draw in enumerate(GEOMETRY, start=1):
        rel = f"{SOURCE}/geometry_{k:02d}.png"
        with mpl_style():
            fig, ax = _geometry_axes()
            img, sample = draw(fig, ax, rng, f"{SOURCE}/geometry/{k:02d}", rel)
        save_png(img, images_dir / rel)
        out.append(sample)
    return out


# --------------------------------------------------------------------------- function plots

def _plot_axes(xlim=(-5, 5), ylim=(-5, 5)):
    fig, ax = new_figure(240, 240)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(0, color="black", lw=0.8)
    ax.grid(True, lw=0.4, color="#cccccc")
    ax.set_xticks(range(int(xlim[0]), int(xlim[1]) + 1))
    ax.set_yticks(range(int(ylim[0]), int(ylim[1]) + 1))
    ax.tick_params(labelsize=6)
    return fig, ax


def _slope(x: np.ndarray, rng, key: str, rel: str):
    """A line's slope."""
    a = int(rng.choice([-3, -2, -1, 1, 2, 3]))
    b = int(rng.integers(-2, 3))
    fig, ax = _plot_axes()
    ax.plot(x, a * x + b, color="#C44E52", lw=1.5)
    ax.set_title("y = f(x)", fontsize=8)
    return fig, make_sample(key, rel, ["What is the slope of the line?", str(a)], SOURCE, "word",
                            r(stem=4, data=2, logical=1), wrong=str(-a))


def _x_intercept(x: np.ndarray, rng, key: str, rel: str):
    """Where a line crosses the x-axis (chain of thought)."""
    root = int(rng.integers(-3, 4))
    a = int(rng.choice([-2, -1, 1, 2]))
    b = -a * root
    fig, ax = _plot_axes()
    ax.plot(x, a * x + b, color="#4C72B0", lw=1.5)
    ax.set_title(f"y = {_linear(a, b)}", fontsize=8)

    def cot(rt):
        return (f"1. The line crosses the x-axis where y = 0.\n2. Set {_linear(a, b)} = 0, so "
                f"{_linear(a, 0)} = {-b}.\n3. x = {-b} / ({a}) = {rt}.\n"
                f"It crosses the x-axis at ({rt}, 0), which matches the graph.")
    return fig, make_sample(key, rel, ["Where does the line cross the x-axis? Think step by step.",
                                       cot(root)], SOURCE, "cot", r(stem=5, logical=3, data=2, ocr=1),
                            wrong=cot(-root if root else 1))


def _vertex(x: np.ndarray, rng, key: str, rel: str):
    """A parabola's vertex."""
    h, kk = int(rng.integers(-3, 4)), int(rng.integers(-4, 2))
    fig, ax = _plot_axes()
    ax.plot(x, (x - h) ** 2 + kk, color="#55A868", lw=1.5)
    return fig, make_sample(key, rel, ["What are the coordinates of the vertex of the parabola?",
                                       f"({h}, {kk})"], SOURCE, "word", r(stem=4, data=2, spatial=1),
                            wrong=f"({kk}, {h})" if h != kk else f"({h + 1}, {kk})")


def _opens_downward(x: np.ndarray, rng, key: str, rel: str):
    """Whether a parabola opens downward."""
    sign = int(rng.choice([-1, 1]))
    fig, ax = _plot_axes()
    ax.plot(x, sign * 0.5 * x ** 2 + (-2 * sign), color="#8172B3", lw=1.5)
    down = sign < 0
    return fig, make_sample(key, rel, ["Does the parabola open downward?",
                                       "Yes, its arms point down, so it has a maximum." if down else
                                       "No, it opens upward, so it has a minimum."], SOURCE, "yn",
                            r(stem=3, data=1),
                            wrong="No, it opens upward, so it has a minimum." if down else
                            "Yes, its arms point down, so it has a maximum.")


def _sine_wave(x: np.ndarray, rng, key: str, rel: str):
    """A sine wave's amplitude and period."""
    amp, period = int(rng.integers(1, 5)), int(rng.choice([2, 4, 5]))
    fig, ax = _plot_axes(ylim=(-5, 5))
    ax.plot(x, amp * np.sin(2 * np.pi * x / period), color="#DD8452", lw=1.5)
    return fig, make_sample(key, rel, ["What are the amplitude and the period of this wave?",
                                       f"Amplitude {amp}, period {period}."], SOURCE, "word",
                            r(stem=4, data=3), wrong=f"Amplitude {2 * amp}, period {period}.")


def _exponential(x: np.ndarray, rng, key: str, rel: str):
    """Whether an exponential grows, and its value at x = 2."""
    base = int(rng.choice([2, 3]))
    xs = np.linspace(-1, 3, 200)
    fig, ax = new_figure(240, 240)
    ax.plot(xs, base ** xs, color="#C44E52", lw=1.5)
    ax.set_title(f"y = {base}^x", fontsize=8)
    ax.grid(True, lw=0.4, color="#cccccc")
    ax.tick_params(labelsize=6)
    return fig, make_sample(key, rel, ["Is the function increasing or decreasing, and what is y at x = 2?",
                                       f"Increasing; at x = 2, y = {base}^2 = {base ** 2}."], SOURCE, "word",
                            r(stem=4, data=2, logical=1, ocr=1),
                            wrong=f"Increasing; at x = 2, y = {base} x 2 = {base * 2}.")


def _intersection(x: np.ndarray, rng, key: str, rel: str):
    """Where two lines meet (chain of thought)."""
    xi, yi = int(rng.integers(-2, 3)), int(rng.integers(-2, 3))
    m1, m2 = (int(v) for v in rng.choice([-2, -1, 1, 2], 2, replace=False))
    b1, b2 = yi - m1 * xi, yi - m2 * xi
    fig, ax = _plot_axes()
    ax.plot(x, m1 * x + b1, color="#4C72B0", lw=1.5, label=f"y = {_linear(m1, b1)}")
    ax.plot(x, m2 * x + b2, color="#C44E52", lw=1.5, label=f"y = {_linear(m2, b2)}")
    ax.legend(loc="upper left", fontsize=6)

    def cot(px, py):
        return (f"1. At the intersection both equations give the same y: {_linear(m1, b1)} = "
                f"{_linear(m2, b2)}.\n2. So ({m1} - ({m2}))x = {b2} - ({b1}), i.e. {m1 - m2}x = "
                f"{b2 - b1}, x = {px}.\n3. Then y = {m1} * ({px}) + ({b1}) = {py}.\n"
                f"They intersect at ({px}, {py}).")
    return fig, make_sample(key, rel, ["At what point do the two lines intersect? Solve step by step.",
                                       cot(xi, yi)], SOURCE, "cot", r(stem=5, logical=4, data=2, ocr=1),
                            wrong=cot(xi + 1, yi + m1))


def _correlation(x: np.ndarray, rng, key: str, rel: str):
    """The sign of a scatter plot's correlation."""
    sign = int(rng.choice([-1, 1]))
    xs = rng.uniform(0, 10, 30)
    ys = 5 + sign * 0.8 * (xs - 5) + rng.normal(0, 1.0, 30)
    fig, ax = new_figure(240, 240)
    ax.scatter(xs, ys, s=8, color="#4C72B0")
    ax.set_xlabel("hours studied")
    ax.set_ylabel("test score (points)" if sign > 0 else "errors made")
    ax.tick_params(labelsize=6)
    word = "positive" if sign > 0 else "negative"
    other = "negative" if sign > 0 else "positive"
    return fig, make_sample(key, rel, ["Is the correlation between the two variables positive or negative?",
                                       f"{word.capitalize()}: as one grows, the other tends to "
                                       f"{'grow' if sign > 0 else 'fall'}."], SOURCE, "word",
                            r(data=4, stem=3, logical=1),
                            wrong=f"{other.capitalize()}: as one grows, the other tends to "
                                  f"{'fall' if sign > 0 else 'grow'}.")


# The function plots, in build order (``rendered/function_01.png`` is the first): each
# ``plot(x, rng, key, rel)`` (``x``: the x values of a curve) returns its figure and its sample.
FUNCTION_PLOTS = (_slope, _x_intercept, _vertex, _opens_downward, _sine_wave, _exponential, _intersection,
                  _correlation)


def functions(images_dir: Path, rng) -> list[Sample]:
    """One sample of each plot of :data:`FUNCTION_PLOTS`, drawn in turn from ``rng`` (writes their images)."""
    out = []
    x = np.linspace(-5, 5, 401)
    for k, plot in enumerate(FUNCTION_PLOTS, start=1):
        rel = f"{SOURCE}/function_{k:02d}.png"
        with mpl_style():
            fig, sample = plot(x, rng, f"{SOURCE}/function/{k:02d}", rel)
            fig.tight_layout(pad=0.3)
            save_png(figure_image(fig), images_dir / rel)
        out.append(sample)
    return out


def samples(images_dir: Path, rng) -> list[Sample]:
    """All geometry and function-plot samples (writes their images)."""
    return geometry(images_dir, rng) + functions(images_dir, rng)
