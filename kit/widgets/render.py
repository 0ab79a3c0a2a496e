"""Small helpers the explorers share: a figure as PNG bytes, HTML text, and showing a static fallback."""
from __future__ import annotations

import html
import io

import matplotlib.pyplot as plt
import numpy as np

# At most this many points of a pool go into a live scatter (a seeded sample beyond it), so that a redraw stays
# quick on large pools; counts and selections always use every sample.
MAX_POINTS = 20_000


def figure_png(fig, dpi: int = 72, close: bool = True) -> bytes:
    """``fig`` as PNG bytes (for an ``ipywidgets.Image``); closes it so no backend shows it again.

    Drawn once, as laid out (no ``bbox_inches="tight"``, which draws twice): live updates stay quick."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    if close:
        plt.close(fig)
    return buf.getvalue()


def thin(positions, max_points: int = MAX_POINTS, seed: int = 0) -> np.ndarray:
    """``positions`` (ints), or a seeded sorted sample of ``max_points`` of them when there are more."""
    positions = np.asarray(positions, dtype=np.int64)
    if len(positions) <= max_points:
        return positions
    return np.sort(np.random.default_rng(seed).choice(positions, max_points, replace=False))


def escape(text) -> str:
    return html.escape(str(text), quote=True)


def bullet_list(lines, css_class: str = "") -> str:
    """An HTML list of ``lines`` (escaped); empty text when there are none."""
    lines = [str(line) for line in lines if str(line).strip()]
    if not lines:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return f"<ul class='{css_class}' style='margin:2px 0 2px 18px;padding:0'>{items}</ul>"


class LazyWidget:
    """What the explorer and the browser share: their ipywidgets box, built on first use (a subclass sets
    ``self._widget = None`` and gives ``_build``, ``_sync_controls`` and ``_render``)."""

    @property
    def widget(self):
        """The ipywidgets box (built on first use)."""
        if self._widget is None:
            self._widget = self._build()
            self._sync_controls()
            self._render()
        return self._widget


def show_static(fig, *tables) -> None:
    """Display a figure and tables as ordinary outputs (what an explorer does without a frontend)."""
    from IPython.display import display

    display(fig)
    plt.close(fig)
    for table in tables:
        display(table)
