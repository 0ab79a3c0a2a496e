"""Small helpers the explorers share: a figure as PNG bytes, HTML text, and showing a static fallback."""
from __future__ import annotations

import html
import io

import matplotlib.pyplot as plt


def figure_png(fig, dpi: int = 80, close: bool = True) -> bytes:
    """``fig`` as PNG bytes (for an ``ipywidgets.Image``); closes it so no backend shows it again."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if close:
        plt.close(fig)
    return buf.getvalue()


def escape(text) -> str:
    return html.escape(str(text), quote=True)


def bullet_list(lines, css_class: str = "") -> str:
    """An HTML list of ``lines`` (escaped); empty text when there are none."""
    lines = [str(line) for line in lines if str(line).strip()]
    if not lines:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return f"<ul class='{css_class}' style='margin:2px 0 2px 18px;padding:0'>{items}</ul>"


def show_static(fig, *tables) -> None:
    """Display a figure and tables as ordinary outputs (what an explorer does without a frontend)."""
    from IPython.display import display

    display(fig)
    plt.close(fig)
    for table in tables:
        display(table)
