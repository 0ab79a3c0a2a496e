"""Rendered bar, line and pie charts and tables (data understanding), answers computed from the data.

Each chart is drawn with matplotlib (or PIL for tables) from seeded random data; the question
templates below state their styles and hand-written reference ratings, and compute their answer
(and a plausible wrong answer) from the same numbers that were plotted.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kit.pools.imaging import figure_image, font, mpl_style, new_figure, save_png
from kit.pools.labels import ratings as r
from kit.pools.sample import Sample, make_sample

SOURCE = "rendered"
MC = "Answer with the option's letter from the given choices directly."

BAR_SETS = [
    ("Fruit sold at a market stall (kg)", ["Apples", "Pears", "Plums", "Cherries", "Grapes"]),
    ("Books borrowed per month", ["Jan", "Feb", "Mar", "Apr", "May", "Jun"]),
    ("Votes for the school mascot", ["Fox", "Owl", "Bear", "Wolf"]),
    ("Yearly rainfall by city (cm)", ["Oslo", "Lima", "Perth", "Pune", "Quito"]),
    ("Bikes rented per day", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
    ("Cups of coffee sold", ["Espresso", "Latte", "Mocha", "Tea"]),
    ("Trees planted by class", ["5A", "5B", "5C", "5D", "5E"]),
    ("Goals scored by team", ["Lions", "Hawks", "Sharks", "Bears"]),
    ("Visitors per museum room", ["Fossils", "Egypt", "Space", "Insects", "Ships"]),
]
LINE_SETS = [
    "Members of a chess club", "Average price of a loaf of bread (cents)", "Solar panels installed",
    "Visitors to a city park (thousands)", "Trains running late per month", "Emails received per day",
]
PIE_SETS = [
    ("How students get to school", ["Walk", "Bus", "Bike", "Car", "Train"]),
    ("Household budget", ["Rent", "Food", "Transport", "Savings"]),
    ("Favourite season", ["Spring", "Summer", "Autumn", "Winter"]),
    ("Energy sources", ["Wind", "Solar", "Gas", "Hydro", "Coal"]),
    ("Time spent on a Saturday", ["Sleep", "Sport", "Reading", "Screens"]),
]
SHOP_ITEMS = ["Notebook", "Pencil", "Eraser", "Ruler", "Glue", "Marker", "Stapler", "Folder", "Tape"]
TRAIN_DESTS = ["Oxford", "Leeds", "Bristol", "York", "Bath", "Derby", "Exeter"]


def _distinct_ints(rng, n, low, high) -> list[int]:
    return [int(v) for v in rng.choice(np.arange(low, high), n, replace=False)]


def _shares(rng, n) -> list[int]:
    """``n`` distinct integer percentages >= 5 summing to 100."""
    while True:
        cuts = np.sort(rng.choice(np.arange(1, 100), n - 1, replace=False))
        parts = np.diff(np.concatenate([[0], cuts, [100]]))
        if parts.min() >= 5 and len(set(parts.tolist())) == n:
            return [int(p) for p in parts]


def _options(rng, correct: str, pool: list[str]) -> tuple[list[str], str]:
    others = [p for p in pool if p != correct]
    opts = [correct, *rng.choice(others, min(3, len(others)), replace=False).tolist()]
    opts = [str(o) for o in rng.permutation(opts)]
    return opts, "ABCD"[opts.index(correct)]


def _mc(question: str, options: list[str]) -> str:
    return "\n".join([question] + [f"{'ABCD'[k]}. {o}" for k, o in enumerate(options)] + [MC])


def _other_letter(rng, letter: str, n: int) -> str:
    return str(rng.choice([c for c in "ABCD"[:n] if c != letter]))


def _bump(rng, value: int, low: int = 2, high: int = 9) -> int:
    return int(value + rng.choice([-1, 1]) * rng.integers(low, high))


# --------------------------------------------------------------------------- bar charts

def _draw_bar(title, cats, vals):
    with mpl_style():
        fig, ax = new_figure(256, 192)
        bars = ax.bar(cats, vals, color="#4C72B0")
        ax.bar_label(bars, labels=[str(v) for v in vals], fontsize=7, padding=1)
        ax.set_title(title, fontsize=8)
        ax.set_ylim(0, max(vals) * 1.18)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout(pad=0.4)
        return figure_image(fig)


def bar_charts(images_dir: Path, rng) -> list[Sample]:
    out = []
    for k, (title, cats) in enumerate(BAR_SETS):
        vals = _distinct_ints(rng, len(cats), 5, 60)
        rel = f"{SOURCE}/bar_{k + 1:02d}.png"
        save_png(_draw_bar(title, cats, vals), images_dir / rel)
        order = sorted(range(len(cats)), key=lambda i: -vals[i])
        hi, lo, second = order[0], order[-1], order[1]
        key = f"{SOURCE}/bar/{k + 1:02d}"
        if k == 0:
            s = make_sample(key, rel, ["Which category has the highest value in the chart?", cats[hi]],
                            SOURCE, "word", r(data=4, logical=1, ocr=1), wrong=cats[second])
        elif k == 1:
            i = int(rng.integers(len(cats)))
            s = make_sample(key, rel, [f"What is the value for {cats[i]}?", str(vals[i])], SOURCE, "word",
                            r(data=3, ocr=3), wrong=str(_bump(rng, vals[i])))
        elif k == 2:
            d = vals[hi] - vals[lo]

            def cot(diff):
                return (f"1. The highest bar is {cats[hi]} with {vals[hi]}.\n"
                        f"2. The lowest bar is {cats[lo]} with {vals[lo]}.\n"
                        f"3. {vals[hi]} - {vals[lo]} = {diff}.\nThe difference is {diff}.")
            s = make_sample(key, rel, ["What is the difference between the highest and the lowest value? "
                                       "Think step by step.", cot(d)], SOURCE, "cot",
                            r(data=5, logical=4, stem=1, ocr=1), wrong=cot(_bump(rng, d, 1, 6)))
        elif k == 3:
            opts, letter = _options(rng, cats[second], cats)
            s = make_sample(key, rel, [_mc("Which city has the second-highest rainfall?", opts), letter],
                            SOURCE, "mc", r(data=4, logical=2, ocr=1),
                            wrong=_other_letter(rng, letter, len(opts)))
        elif k == 4:
            a, b = (int(v) for v in rng.choice(len(cats), 2, replace=False))
            yes = vals[a] > vals[b]
            s = make_sample(key, rel, [f"Were more bikes rented on {cats[a]} than on {cats[b]}?",
                                       "Yes" if yes else "No"], SOURCE, "yn compare",
                            r(data=3, comparative=3, ocr=1), wrong="No" if yes else "Yes")
        elif k == 5:
            names = [cats[i] for i in order]
            swapped = names[:]
            swapped[0], swapped[1] = swapped[1], swapped[0]
            s = make_sample(key, rel, ["List the drinks from the most to the least sold, separated by "
                                       "commas, with no other text.", ", ".join(names)], SOURCE, "spec",
                            r(data=4, logical=3, language=1, ocr=1), wrong=", ".join(swapped))
        elif k == 6:
            total = sum(vals)

            def cot(t):
                return "Adding the bars: " + " + ".join(map(str, vals)) + f" = {t}.\nThe total is {t} trees."
            s = make_sample(key, rel, ["How many trees were planted by all classes together? Show your "
                                       "steps.", cot(total)], SOURCE, "cot",
                            r(data=5, logical=3, stem=2, ocr=2), wrong=cot(_bump(rng, total, 3, 12)))
        elif k == 7:
            mean = sum(vals) / len(vals)
            s = make_sample(key, rel, ["What is the average number of goals per team? Round to one "
                                       "decimal place.", f"{mean:.1f}"], SOURCE, "word",
                            r(data=4, stem=2, logical=2, ocr=2), wrong=f"{mean + rng.choice([-1, 1]) * 2.5:.1f}")
        else:
            text = (f"The bar chart shows {title[0].lower() + title[1:]}. {cats[hi]} is the highest with "
                    f"{vals[hi]}, and {cats[lo]} is the lowest with {vals[lo]}.")
            wrong = (f"The bar chart shows {title[0].lower() + title[1:]}. {cats[lo]} is the highest with "
                     f"{vals[hi]}, and {cats[hi]} is the lowest with {vals[lo]}.")
            s = make_sample(key, rel, ["Summarize what the chart shows in one or two sentences.", text],
                            SOURCE, "short", r(data=4, language=3, ocr=1), wrong=wrong)
        out.append(s)
    return out


# --------------------------------------------------------------------------- line charts

def _draw_line(title, years, series: dict[str, list[int]]):
    with mpl_style():
        fig, ax = new_figure(256, 192)
        for (name, vals), color in zip(series.items(), ["#C44E52", "#4C72B0"]):
            ax.plot(years, vals, marker="o", ms=3, color=color, label=name)
            if len(series) == 1:
                for x, y in zip(years, vals):
                    ax.annotate(str(y), (x, y), textcoords="offset points", xytext=(0, 4),
                                ha="center", fontsize=6)
        lo = min(min(v) for v in series.values())
        hi = max(max(v) for v in series.values())
        head = 0.25 if len(series) == 1 else 0.5  # room above the lines for labels or the legend
        ax.set_ylim(lo - (hi - lo) * 0.1 - 1, hi + (hi - lo) * head + 1)
        if len(series) > 1:
            ax.legend(loc="upper center", ncol=2, frameon=False)
        ax.set_xticks(years)
        ax.set_xticklabels([str(y) for y in years], rotation=45)
        ax.set_title(title, fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout(pad=0.4)
        return figure_image(fig)


def _walk(rng, n, start, step) -> list[int]:
    while True:
        vals = np.cumsum(np.concatenate([[start], rng.integers(-step, step + 1, n - 1)]))
        vals = vals.astype(int)
        if vals.min() > 0 and len(set(vals.tolist())) == n:
            return [int(v) for v in vals]


def line_charts(images_dir: Path, rng) -> list[Sample]:
    out = []
    years = list(range(2015, 2023))
    for k, title in enumerate(LINE_SETS):
        rel = f"{SOURCE}/line_{k + 1:02d}.png"
        key = f"{SOURCE}/line/{k + 1:02d}"
        if k == 4:  # two series that cross once
            while True:
                a = _walk(rng, len(years), 30, 6)
                b = _walk(rng, len(years), 18, 6)
                above = [bv > av for av, bv in zip(a, b)]
                if not above[0] and any(above) and above.index(True) >= 2 and all(
                        above[above.index(True):]):
                    break
            year = years[above.index(True)]
            save_png(_draw_line("Trains running late per month", years, {"North line": a, "South line": b}),
                     images_dir / rel)
            out.append(make_sample(key, rel, ["In which year did the South line first have more late "
                                              "trains than the North line?", str(year)], SOURCE, "word compare",
                                   r(data=5, comparative=4, logical=2, ocr=1), wrong=str(year + 1)))
            continue
        vals = _walk(rng, len(years), int(rng.integers(20, 60)), 9)
        save_png(_draw_line(title, years, {title: vals}), images_dir / rel)
        peak = years[int(np.argmax(vals))]
        if k == 0:
            low_year = years[int(np.argmin(vals))]
            out.append(make_sample(key, rel, ["In which year was the value highest?", str(peak)], SOURCE,
                                   "word", r(data=4, ocr=1), wrong=str(low_year)))
        elif k == 1:
            i = int(rng.integers(len(years) - 1))
            rose = vals[i + 1] > vals[i]
            out.append(make_sample(key, rel, [f"Did the price rise from {years[i]} to {years[i + 1]}?",
                                              ("Yes" if rose else "No") + f", it went from {vals[i]} to "
                                              f"{vals[i + 1]} cents."], SOURCE, "yn",
                                   r(data=4, comparative=1, ocr=2),
                                   wrong=("No" if rose else "Yes") + f", it went from {vals[i]} to "
                                                                    f"{vals[i + 1]} cents."))
        elif k == 2:
            change = vals[-1] - vals[0]

            def cot(c):
                word = "an increase" if c > 0 else "a decrease"
                return (f"1. In {years[0]} the value is {vals[0]}.\n2. In {years[-1]} it is {vals[-1]}.\n"
                        f"3. {vals[-1]} - {vals[0]} = {c}.\nSo it changed by {c}, {word} of {abs(c)}.")
            out.append(make_sample(key, rel, [f"By how much did the number change from {years[0]} to "
                                              f"{years[-1]}? Think step by step.", cot(change)], SOURCE, "cot",
                                   r(data=5, logical=3, stem=1, ocr=2), wrong=cot(change + 7)))
        elif k == 3:
            diffs = np.diff(vals)
            j = int(np.argmax(diffs))
            j2 = int(np.argsort(diffs)[-2])
            out.append(make_sample(key, rel, ["Between which two consecutive years did the number of "
                                              "visitors grow the most?", f"From {years[j]} to {years[j + 1]} "
                                              f"(+{int(diffs[j])} thousand)."], SOURCE, "word",
                                   r(data=5, logical=2, ocr=1),
                                   wrong=f"From {years[j2]} to {years[j2 + 1]} (+{int(diffs[j])} thousand)."))
        else:
            lo_year = years[int(np.argmin(vals))]
            trend = "upward" if vals[-1] > vals[0] else "downward"
            text = (f"This is a line chart titled \"{title}\" covering the years {years[0]} to {years[-1]}, "
                    f"with one value marked per year. The series starts at {vals[0]} and ends at {vals[-1]}, "
                    f"so the overall trend is {trend}. It reaches its highest point, {max(vals)}, in {peak} "
                    f"and its lowest, {min(vals)}, in {lo_year}. Each point is labelled with its value.")
            out.append(make_sample(key, rel, ["Describe this chart in detail.", text], SOURCE, "detailed",
                                   r(data=5, language=3, ocr=2, logical=1)))
    return out


# --------------------------------------------------------------------------- pie charts

def _draw_pie(title, labels, shares):
    with mpl_style():
        fig, ax = new_figure(224, 224)
        ax.pie(shares, labels=labels, autopct=lambda pct: f"{round(pct)}%", startangle=90, counterclock=False,
               textprops={"fontsize": 7}, colors=["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3"])
        ax.set_title(title, fontsize=8)
        fig.tight_layout(pad=0.3)
        return figure_image(fig)


def pie_charts(images_dir: Path, rng) -> list[Sample]:
    out = []
    for k, (title, labels) in enumerate(PIE_SETS):
        shares = _shares(rng, len(labels))
        rel = f"{SOURCE}/pie_{k + 1:02d}.png"
        key = f"{SOURCE}/pie/{k + 1:02d}"
        save_png(_draw_pie(title, labels, shares), images_dir / rel)
        order = sorted(range(len(labels)), key=lambda i: -shares[i])
        if k == 0:
            i = int(rng.integers(len(labels)))
            s = make_sample(key, rel, [f"What percentage does the \"{labels[i]}\" slice represent?",
                                       f"{shares[i]}%"], SOURCE, "word", r(data=4, ocr=3),
                            wrong=f"{shares[order[0] if order[0] != i else order[1]]}%")
        elif k == 1:
            s = make_sample(key, rel, ["Which part of the budget is the smallest?", labels[order[-1]]], SOURCE,
                            "word", r(data=4, logical=1, ocr=1), wrong=labels[order[0]])
        elif k == 2:
            a, b = order[1], order[2]
            both = shares[a] + shares[b]

            def cot(total):
                verdict = "more than half" if total > 50 else ("exactly half" if total == 50 else "less than half")
                return (f"1. {labels[a]} has {shares[a]}%.\n2. {labels[b]} has {shares[b]}%.\n"
                        f"3. {shares[a]}% + {shares[b]}% = {total}%.\n"
                        f"4. Half is 50%, so together they make up {verdict}.")
            s = make_sample(key, rel, [f"Do {labels[a]} and {labels[b]} together make up more than half of "
                                       "the votes? Think step by step.", cot(both)], SOURCE, "cot yn",
                            r(data=5, logical=4, stem=1, ocr=2), wrong=cot(both + (11 if both <= 50 else -11)))
        elif k == 3:
            opts, letter = _options(rng, labels[order[0]], labels)
            s = make_sample(key, rel, [_mc("Which energy source has the largest share?", opts), letter],
                            SOURCE, "mc", r(data=4, ocr=1), wrong=_other_letter(rng, letter, len(opts)))
        else:
            body = "{" + ", ".join(f'"{lab}": {sh}' for lab, sh in zip(labels, shares)) + "}"
            bad = "{" + ", ".join(f'"{lab}": {sh}' for lab, sh in zip(labels, shares[::-1])) + "}"
            s = make_sample(key, rel, ["Give the share of every slice as a JSON object mapping each label to "
                                       "its percentage (a number), and nothing else.", body], SOURCE, "spec",
                            r(data=4, ocr=3, language=1), wrong=bad)
        out.append(s)
    return out


# --------------------------------------------------------------------------- tables

def draw_table(header: list[str], rows: list[list[str]], title: str | None = None, width: int = 256):
    """A plain grid table drawn with PIL (DejaVu Sans), header row shaded."""
    from PIL import Image, ImageDraw

    f, fb = font(12), font(12, bold=True)
    row_h, pad_top = 22, (24 if title else 6)
    height = pad_top + row_h * (len(rows) + 1) + 6
    im = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(im)
    if title:
        d.text((width // 2, 4), title, font=fb, fill="black", anchor="mt")
    n = len(header)
    col_w = (width - 12) / n
    x0, y0 = 6, pad_top
    d.rectangle([x0, y0, width - 6, y0 + row_h], fill=(225, 230, 240))
    for j, h in enumerate(header):
        d.text((x0 + col_w * j + 5, y0 + 4), h, font=fb, fill="black")
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            d.text((x0 + col_w * j + 5, y0 + row_h * (i + 1) + 4), cell, font=f, fill="black")
    for i in range(len(rows) + 2):
        d.line([x0, y0 + row_h * i, width - 6, y0 + row_h * i], fill=(90, 90, 90), width=1)
    for j in range(n + 1):
        x = round(x0 + col_w * j)
        d.line([x, y0, x, y0 + row_h * (len(rows) + 1)], fill=(90, 90, 90), width=1)
    return im


def tables(images_dir: Path, rng) -> list[Sample]:
    out = []
    for k in range(6):
        rel = f"{SOURCE}/table_{k + 1:02d}.png"
        key = f"{SOURCE}/table/{k + 1:02d}"
        if k == 3:  # a departures board
            dests = [str(d) for d in rng.choice(TRAIN_DESTS, 4, replace=False)]
            times = sorted(f"{h:02d}:{m:02d}" for h, m in zip(rng.choice(np.arange(7, 12), 4, replace=False),
                                                             rng.choice([5, 15, 20, 35, 40, 50], 4)))
            plats = [int(p) for p in rng.choice(np.arange(1, 9), 4, replace=False)]
            rows = [[d, t, str(p)] for d, t, p in zip(dests, times, plats)]
            save_png(draw_table(["To", "Departs", "Platform"], rows, "Departures"), images_dir / rel)
            i = int(rng.integers(4))
            out.append(make_sample(key, rel, [f"Which platform does the train to {dests[i]} leave from, and "
                                              "at what time?", f"Platform {plats[i]}, at {times[i]}."],
                                   SOURCE, "word", r(ocr=4, data=3),
                                   wrong=f"Platform {plats[(i + 1) % 4]}, at {times[i]}."))
            continue
        n = int(rng.integers(3, 6))
        items = [str(x) for x in rng.choice(SHOP_ITEMS, n, replace=False)]
        prices = _distinct_ints(rng, n, 1, 13)
        qty = [int(q) for q in rng.integers(1, 7, n)]
        rows = [[it, f"${p}", str(q)] for it, p, q in zip(items, prices, qty)]
        save_png(draw_table(["Item", "Price", "Qty"], rows, "School supplies order"), images_dir / rel)
        if k == 0:
            lines = [f"{it}: {q} x ${p} = ${p * q}" for it, p, q in zip(items, prices, qty)]
            total = sum(p * q for p, q in zip(prices, qty))

            def cot(t):
                return ("Multiply price by quantity for each row, then add:\n" + "\n".join(lines) +
                        f"\nTotal: ${t}.")
            out.append(make_sample(key, rel, ["What is the total cost of the order? Show your steps.",
                                              cot(total)], SOURCE, "cot", r(data=5, logical=4, ocr=3, stem=2),
                                   wrong=cot(total + int(rng.integers(3, 9)))))
        elif k == 1:
            cheap = items[int(np.argmin(prices))]
            out.append(make_sample(key, rel, ["Which item has the lowest price per unit?", cheap], SOURCE,
                                   "word", r(data=4, ocr=3), wrong=items[int(np.argmax(prices))]))
        elif k == 2:
            i = int(rng.integers(n))
            out.append(make_sample(key, rel, [f"How many units of {items[i]} were ordered?", str(qty[i])],
                                   SOURCE, "word", r(ocr=4, data=2), wrong=str(qty[i] % 6 + 1)))
        elif k == 4:
            a, b = (int(v) for v in rng.choice(n, 2, replace=False))
            yes = prices[a] > prices[b]
            out.append(make_sample(key, rel, [f"Is one {items[a]} more expensive than one {items[b]}?",
                                              ("Yes" if yes else "No") + f": ${prices[a]} vs ${prices[b]}."],
                                   SOURCE, "yn compare", r(data=3, comparative=3, ocr=3),
                                   wrong=("No" if yes else "Yes") + f": ${prices[a]} vs ${prices[b]}."))
        else:
            csv_text = "Item,Price,Qty\n" + "\n".join(f"{it},${p},{q}" for it, p, q in zip(items, prices, qty))
            out.append(make_sample(key, rel, ["Transcribe the table as CSV with a header row. Output only "
                                              "the CSV.", csv_text], SOURCE, "spec", r(ocr=5, data=3, language=1)))
    return out


def samples(images_dir: Path, rng) -> list[Sample]:
    """All chart and table samples (writes their images)."""
    return bar_charts(images_dir, rng) + line_charts(images_dir, rng) + pie_charts(images_dir, rng) + \
        tables(images_dir, rng)
