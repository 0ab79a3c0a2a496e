"""The sample browser (``kit.widgets.sample_browser``): filter a pool by source, style, planted defect and score
ranges, page through the samples (image, conversation, every score), and click a point of the 2-D quality plane
to open that sample.

    browser = kit.widgets.sample_browser(pool, scores, labels=nb.labels)
    browser                                   # live in JupyterLab; a static page and the counts elsewhere
    browser.set_filter(sources=["photos"], ranges={"image_text": (0.0, 0.2)})
    browser.page_ids, browser.next_page(), browser.open("ev_0001")

The quality plane is an interactive matplotlib figure (ipympl): the whole pool in grey, the samples that pass
the filters in colour, the opened sample circled; a click opens the sample nearest to it. Without a frontend
(papermill, a script) the browser shows the plane and the current page as static figures and the counts as a
table (:mod:`kit.widgets.frontend`).
"""
from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from kit.capabilities import STYLES, style_names
from kit.widgets.filters import column_range, filter_samples, score_columns
from kit.widgets.frontend import has_frontend
from kit.widgets.render import LazyWidget, escape, show_static, thin

ROOT_CLASS = "kit-sample-browser"
MATCH_CLASS = "kit-browser-matches"
OPENED_CLASS = "kit-opened"
CARD_CLASS = "kit-sample-card"


def plane_loss_col(scores: pd.DataFrame) -> str | None:
    """The loss axis of a table's quality plane: the space's default (``loss_sum``, the paper's) where the table
    has it, else ``loss_mean``; None without an image-text score or a loss."""
    from kit.quality.space import LOSS_COL, SCORE_COL

    if SCORE_COL not in scores.columns:
        return None
    return next((c for c in (LOSS_COL, "loss_mean") if c in scores.columns), None)


class SampleBrowser(LazyWidget):
    """Browse the samples of ``pool`` with their scores from ``scores`` (see the module docstring).

    ``labels``: the truth table (planted defects; without it the defect filter is off); ``page_size``:
    samples per page; ``thumb``: the longest side of an image on a card, in pixels; ``static``: force the
    static (``True``) or live (``False``) display.
    """

    def __init__(self, pool, scores: pd.DataFrame, labels=None, *, page_size: int = 4, thumb: int = 220,
                 static: bool | None = None):
        if not isinstance(scores, pd.DataFrame):
            raise TypeError("scores must be a pandas DataFrame indexed by sample id")
        missing = scores.index.difference(pool.table.index)
        if len(missing):
            raise KeyError(f"{len(missing)} ids of the score table are not in the pool, e.g. {list(missing[:3])}")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.pool = pool
        self.scores = scores
        self.defects = None
        if labels is not None:
            column = labels["defect"] if isinstance(labels, pd.DataFrame) else labels
            self.defects = column.reindex(scores.index).astype(object).where(lambda s: s.notna(), "unlabelled")
        self.page_size = int(page_size)
        self.thumb = int(thumb)
        self.static = static
        self.score_cols = score_columns(scores)
        self.filters: dict = {"sources": (), "styles": (), "defect": (), "ranges": {}}
        self.page = 0
        self.opened: str | None = None
        self.matches = scores.index
        self.space = self._fit_space()
        self._widget = None
        self._controls: dict = {}
        self._plane: dict = {}
        self._syncing = False
        self._apply_filters()

    def _fit_space(self):
        from kit.quality.space import QualitySpace

        loss_col = plane_loss_col(self.scores)
        if loss_col is None:
            return None
        try:
            return QualitySpace.fit(self.scores, loss_col=loss_col)
        except Exception:  # noqa: BLE001 - a table without a scored plane browses without it
            return None

    # ------------------------------------------------------------------ filters and pages

    @property
    def sources(self) -> list[str]:
        return sorted(self.scores["source"].astype(str).unique()) if "source" in self.scores.columns else []

    @property
    def styles(self) -> list[str]:
        if "styles" not in self.scores.columns:
            return []
        found = {s for v in self.scores["styles"] for s in style_names(v)}
        return [s for s in STYLES if s in found] + sorted(found - set(STYLES))

    @property
    def defect_kinds(self) -> list[str]:
        if self.defects is None:
            return []
        kinds = set(self.defects.astype(str))
        return (["none"] if "none" in kinds else []) + sorted(kinds - {"none"})

    def set_filter(self, *, sources=None, styles=None, defect=None, ranges=None, range=None) -> "SampleBrowser":
        """Change filters (``None`` leaves one as it is; an empty list clears it) and go back to page 0.

        ``ranges`` replaces every score range (``{column: (low, high)}``); ``range=(column, low, high)``
        sets one (``(column, None, None)`` removes it).
        """
        for key, value in (("sources", sources), ("styles", styles), ("defect", defect)):
            if value is not None:
                self.filters[key] = tuple([value] if isinstance(value, str) else value)
        if ranges is not None:
            self.filters["ranges"] = {str(k): (float(lo), float(hi)) for k, (lo, hi) in dict(ranges).items()}
        if range is not None:
            col, low, high = range
            if low is None and high is None:
                self.filters["ranges"].pop(col, None)
            else:
                self.filters["ranges"][col] = (float(low), float(high))
        for col in self.filters["ranges"]:
            if col not in self.scores.columns:
                raise KeyError(f"score table has no column {col!r}; score columns: {self.score_cols}")
        self.page = 0
        self._apply_filters()
        if self._widget is not None:
            self._sync_controls()
            self._render()
        return self

    def _apply_filters(self) -> None:
        f = self.filters
        self.matches = filter_samples(self.scores, self.defects, sources=f["sources"], styles=f["styles"],
                                      defect=f["defect"], ranges=f["ranges"])

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.matches) // self.page_size))

    @property
    def page_ids(self) -> list:
        start = self.page * self.page_size
        return list(self.matches[start:start + self.page_size])

    def go(self, page: int) -> "SampleBrowser":
        self.page = int(min(max(page, 0), self.pages - 1))
        if self._widget is not None:
            self._render()
        return self

    def next_page(self) -> "SampleBrowser":
        return self.go(self.page + 1)

    def prev_page(self) -> "SampleBrowser":
        return self.go(self.page - 1)

    def open(self, sample_id) -> "SampleBrowser":
        """Show one sample in the detail view (what clicking its point does)."""
        if sample_id not in self.scores.index:
            raise KeyError(f"{sample_id!r} is not in the score table")
        self.opened = sample_id
        if self._widget is not None:
            self._render_opened()
            self._draw_plane()
        return self

    def nearest(self, x: float, y: float, candidates=None):
        """The id of the sample nearest to the point (x = loss, y = image-text score) of the plane, measured
        in units of each axis's spread; ``candidates``: positions in the table to choose among."""
        if self.space is None:
            raise ValueError("the score table has no quality plane (image_text and loss_sum or loss_mean)")
        xy = self._plane_xy()
        idx = np.flatnonzero(np.isfinite(xy).all(axis=1))
        if candidates is not None:
            idx = np.intersect1d(idx, np.asarray(list(candidates), dtype=int))
        if not len(idx):
            return None
        scale = np.nanstd(xy[idx], axis=0)
        scale[~(scale > 0)] = 1.0
        d = (((xy[idx] - [x, y]) / scale) ** 2).sum(axis=1)
        return self.scores.index[idx[int(np.argmin(d))]]

    def _plane_xy(self) -> np.ndarray:
        x = pd.to_numeric(self.scores[self.space.loss_col], errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(self.scores[self.space.score_col], errors="coerce").to_numpy(dtype=float)
        return np.column_stack([x, y])

    # ------------------------------------------------------------------ what a sample shows

    def sample_info(self, sample_id) -> dict:
        """Everything the browser shows about a sample: source, styles, planted defect, conversation, scores."""
        row = self.scores.loc[sample_id]
        return {"id": sample_id, "source": str(row.get("source", "")),
                "styles": style_names(row["styles"]) if "styles" in row.index else [],
                "defect": None if self.defects is None else str(self.defects.loc[sample_id]),
                "conversations": list(self.pool.table.at[sample_id, "conversations"]),
                "scores": {c: (None if pd.isna(row[c]) else float(row[c])) for c in self.score_cols},
                "status": {c: str(row[c]) for c in row.index if str(c).startswith("status") and pd.notna(row[c])
                           and str(row[c]) not in ("ok", "")}}

    def card_html(self, sample_id) -> str:
        info = self.sample_info(sample_id)
        head = f"<b>{escape(info['id'])}</b> · {escape(info['source'])}"
        if info["defect"] is not None:
            colour = "#2a7" if info["defect"] == "none" else "#C44E52"
            head += f" · planted defect: <b style='color:{colour}'>{escape(info['defect'])}</b>"
        styles = ", ".join(info["styles"]) or "(none)"
        turns = "".join(f"<div><b>{'Q' if t['from'] == 'human' else 'A'}:</b> "
                        f"{escape(str(t['value']).replace('<image>', '').strip())}</div>"
                        for t in info["conversations"])
        cells = "".join(f"<tr><td>{escape(k)}</td><td style='text-align:right'>"
                        f"{'—' if v is None else f'{v:.3f}'}</td></tr>" for k, v in info["scores"].items())
        status = "".join(f"<div style='color:#C44E52'>{escape(k)}: {escape(v)}</div>"
                         for k, v in info["status"].items())
        return (f"<div style='font-size:12px;line-height:1.35'>{head}<div>styles: {escape(styles)}</div>{status}"
                f"<div style='margin:4px 0;max-height:160px;overflow:auto'>{turns}</div>"
                f"<table style='font-size:11px'>{cells}</table></div>")

    def thumbnail_png(self, sample_id) -> bytes:
        """The sample's image, at most ``thumb`` pixels on its long side, as PNG bytes (empty if unreadable)."""
        try:
            image = self.pool.image(sample_id)
        except Exception:  # noqa: BLE001 - an unreadable image shows as missing, the card still shows
            return b""
        image.thumbnail((self.thumb, self.thumb))
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue()

    def counts(self) -> pd.DataFrame:
        """How many samples pass the filters, per source (and per planted defect with labels)."""
        group = self.scores["source"].astype(str) if "source" in self.scores.columns else \
            pd.Series("all", index=self.scores.index)
        table = pd.DataFrame({"pool": group.value_counts(), "match": group.loc[self.matches].value_counts()})
        if self.defects is not None:
            for kind in self.defect_kinds:
                ids = self.defects.index[self.defects.astype(str) == kind]
                table[f"match: {kind}"] = group.loc[self.matches.intersection(ids)].value_counts()
        table = table.fillna(0).astype(int).sort_index()
        table.loc["all"] = table.sum()
        return table

    def filter_text(self) -> str:
        f = self.filters
        parts = [f"{k}: {', '.join(map(str, v))}" for k, v in (("sources", f["sources"]), ("styles", f["styles"]),
                                                               ("defect", f["defect"])) if v]
        parts += [f"{c} in [{lo:.3g}, {hi:.3g}]" for c, (lo, hi) in f["ranges"].items()]
        return "; ".join(parts) or "no filter"

    def match_text(self) -> str:
        return (f"{len(self.matches)} of {len(self.scores)} samples match ({self.filter_text()}) · "
                f"page {self.page + 1} of {self.pages}")

    # ------------------------------------------------------------------ static figures

    def plane_figure(self, ax=None):
        """The quality plane: the pool in grey, the matches in colour, the opened sample circled (a Figure)."""
        if ax is None:
            fig, ax = plt.subplots(figsize=(5.6, 4.6))
        self._draw_plane_on(ax)
        return ax.figure

    def _draw_plane_on(self, ax):
        from kit.plotting.quality import draw_grid

        ax.clear()
        if self.space is None:
            ax.axis("off")
            ax.text(0.5, 0.5, "no quality plane (image_text and loss_sum or loss_mean)", ha="center", va="center")
            return {}
        xy = self._plane_xy()
        pos = self.scores.index.get_indexer(self.matches)
        every, shown = thin(np.arange(len(xy))), thin(pos)      # a seeded sample of a large pool is drawn
        pool = ax.scatter(xy[every, 0], xy[every, 1], s=10, color="0.82", lw=0, label=f"pool ({len(xy)})")
        match = ax.scatter(xy[shown, 0], xy[shown, 1], s=14, color="#4C72B0", lw=0, label=f"match ({len(pos)})")
        opened = ax.scatter([], [], s=120, facecolor="none", edgecolor="#C44E52", lw=2, label="opened")
        if self.opened is not None:
            k = self.scores.index.get_loc(self.opened)
            opened.set_offsets(xy[[k]])
        draw_grid(ax, self.space, names=False)
        ax.set_xlabel(f"answer loss l ({self.space.loss_col})")
        from kit.scoring import scorer_label

        ax.set_ylabel(f"image-text score s ({scorer_label(self.scores, 'image_text')})")
        ax.set_title("click near a point to open that sample", fontsize=9)
        ax.legend(fontsize=7, loc="best", framealpha=0.8)
        return {"pool": pool, "match": match, "opened": opened}

    def page_figure(self):
        """The current page as a grid of images with their conversations and main scores (a Figure)."""
        from kit.plotting.pool import sample_grid

        ids = self.page_ids
        if not ids:
            fig, ax = plt.subplots(figsize=(5, 1.2))
            ax.axis("off")
            ax.text(0.5, 0.5, "no sample passes the filters", ha="center", va="center")
            return fig
        titles = []
        for sid in ids:
            info = self.sample_info(sid)
            bits = [f"{sid} [{info['source']}]"]
            if info["defect"] not in (None, "none"):
                bits.append(f"defect: {info['defect']}")
            s = info["scores"]
            bits.append(" ".join(f"{k}={s[k]:.2f}" for k in ("image_text", "loss_sum", "loss_mean") if s.get(k) is not None))
            titles.append("\n".join(b for b in bits if b))
        return sample_grid(self.pool, ids, titles=titles, ncols=min(self.page_size, 4))

    # ------------------------------------------------------------------ display

    def _ipython_display_(self):
        from IPython.display import display

        if has_frontend(self.static):
            display(self.widget)
        else:
            self.show_static()

    def show_static(self) -> None:
        """The static fallback: the plane, the current page and the counts as ordinary outputs."""
        from IPython.display import display

        print(self.match_text())
        if self.space is not None:
            fig = self.plane_figure()
            display(fig)
            plt.close(fig)
        show_static(self.page_figure(), self.counts())

    def _build(self):
        import ipywidgets as w

        c = self._controls
        rows = 6
        c["sources"] = w.SelectMultiple(options=self.sources, description="source", rows=rows,
                                        layout=w.Layout(width="230px"))
        c["styles"] = w.SelectMultiple(options=self.styles, description="style", rows=rows,
                                       layout=w.Layout(width="330px"))
        c["defect"] = w.SelectMultiple(options=self.defect_kinds, description="defect", rows=rows,
                                       disabled=self.defects is None, layout=w.Layout(width="230px"))
        first = self.score_cols[0] if self.score_cols else None
        c["column"] = w.Dropdown(options=self.score_cols, value=first, description="score",
                                 disabled=not self.score_cols)
        lo, hi = column_range(self.scores, first) if first else (0.0, 1.0)
        c["range"] = w.FloatRangeSlider(value=(lo, hi), min=lo, max=hi if hi > lo else lo + 1, step=0.01,
                                        description="range", continuous_update=False, readout_format=".2f",
                                        disabled=not self.score_cols)
        c["clear"] = w.Button(description="clear filters", icon="times")
        c["matches"] = w.HTML()
        c["matches"].add_class(MATCH_CLASS)
        c["prev"] = w.Button(description="previous", icon="arrow-left")
        c["next"] = w.Button(description="next", icon="arrow-right")
        c["opened"] = w.HBox()
        c["page"] = w.VBox()
        for name in ("sources", "styles", "defect"):
            c[name].observe(self._on_filter, names="value")
        c["column"].observe(self._on_column, names="value")
        c["range"].observe(self._on_range, names="value")
        c["clear"].on_click(lambda _b: self._clear())
        c["prev"].on_click(lambda _b: self.prev_page())
        c["next"].on_click(lambda _b: self.next_page())
        plane = self._build_plane()
        c["opened"].add_class(OPENED_CLASS)
        top = w.HBox([c["sources"], c["styles"], c["defect"], w.VBox([c["column"], c["range"], c["clear"]])])
        middle = w.HBox([plane, c["opened"]]) if plane is not None else c["opened"]
        box = w.VBox([top, c["matches"], middle, w.HBox([c["prev"], c["next"]]), c["page"]])
        box.add_class(ROOT_CLASS)
        return box

    def _build_plane(self):
        if self.space is None:
            return None
        from matplotlib.figure import Figure

        Canvas, FigureManager = ipympl_canvas()

        fig = Figure(figsize=(5.4, 4.4), dpi=80)
        canvas = Canvas(fig)
        FigureManager(canvas, 0)
        canvas.header_visible = False
        canvas.footer_visible = False
        canvas.toolbar_visible = False
        canvas.resizable = False
        ax = fig.add_subplot(1, 1, 1)
        self._plane = {"fig": fig, "canvas": canvas, "ax": ax}
        canvas.mpl_connect("button_press_event", self._on_click)
        self._draw_plane()
        return canvas

    def _draw_plane(self) -> None:
        if not self._plane:
            return
        self._plane["artists"] = self._draw_plane_on(self._plane["ax"])
        self._plane["fig"].tight_layout()
        self._plane["canvas"].draw_idle()

    def _on_click(self, event) -> None:
        """A click inside the plane opens the sample nearest to it."""
        if event.inaxes is not self._plane.get("ax") or event.xdata is None or event.ydata is None:
            return
        sid = self.nearest(event.xdata, event.ydata)
        if sid is not None:
            self.open(sid)

    def _sync_controls(self) -> None:
        c, f = self._controls, self.filters
        self._syncing = True
        try:
            c["sources"].value = tuple(s for s in f["sources"] if s in c["sources"].options)
            c["styles"].value = tuple(s for s in f["styles"] if s in c["styles"].options)
            c["defect"].value = tuple(d for d in f["defect"] if d in c["defect"].options)
            self._sync_range()
        finally:
            self._syncing = False

    def _sync_range(self) -> None:
        c = self._controls
        col = c["column"].value
        if col is None:
            return
        lo, hi = column_range(self.scores, col)
        hi = hi if hi > lo else lo + 1.0
        slider = c["range"]
        slider.max = max(slider.max, hi)
        slider.min = min(slider.min, lo)
        slider.min, slider.max = lo, hi
        slider.step = (hi - lo) / 200
        slider.value = self.filters["ranges"].get(col, (lo, hi))

    def _on_filter(self, _change) -> None:
        if self._syncing:
            return
        c = self._controls
        self.set_filter(sources=list(c["sources"].value), styles=list(c["styles"].value),
                        defect=list(c["defect"].value))

    def _on_column(self, _change) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self._sync_range()
        finally:
            self._syncing = False

    def _on_range(self, change) -> None:
        if self._syncing:
            return
        c = self._controls
        col, (low, high) = c["column"].value, change["new"]
        full = (c["range"].min, c["range"].max)
        if np.isclose(low, full[0]) and np.isclose(high, full[1]):
            self.set_filter(range=(col, None, None))
        else:
            self.set_filter(range=(col, low, high))

    def _clear(self) -> None:
        self.set_filter(sources=[], styles=[], defect=[], ranges={})

    def _card(self, sample_id, wide: bool = False):
        import ipywidgets as w

        png = self.thumbnail_png(sample_id)
        image = w.Image(value=png, format="png", layout=w.Layout(width=f"{self.thumb}px")) if png else \
            w.HTML("<i>image could not be read</i>")
        text = w.HTML(self.card_html(sample_id), layout=w.Layout(width="520px" if wide else "420px"))
        card = w.HBox([image, text], layout=w.Layout(border="1px solid #ddd", padding="4px", margin="2px"))
        card.add_class(CARD_CLASS)
        return card

    def _render_opened(self) -> None:
        import ipywidgets as w

        c = self._controls
        if self.opened is None:
            c["opened"].children = [w.HTML("<i>click a point of the plane to open a sample here</i>")]
        else:
            c["opened"].children = [self._card(self.opened, wide=True)]

    def _render(self) -> None:
        c = self._controls
        c["matches"].value = f"<b>{escape(self.match_text())}</b>"
        c["prev"].disabled = self.page == 0
        c["next"].disabled = self.page >= self.pages - 1
        c["page"].children = [self._card(sid) for sid in self.page_ids]
        self._render_opened()
        self._draw_plane()


def ipympl_canvas():
    """ipympl's widget canvas and figure manager, imported without switching pyplot's backend.

    ``import ipympl`` calls ``matplotlib.use("module://ipympl.backend_nbagg")`` when matplotlib is loaded, which
    would close every open figure and turn every later pyplot figure of the notebook into a widget; the browser
    only wants one widget figure of its own, so that call is skipped while ipympl is imported.
    """
    import sys

    import matplotlib

    if "ipympl.backend_nbagg" not in sys.modules:
        use = matplotlib.use
        matplotlib.use = lambda *args, **kwargs: None
        try:
            import ipympl.backend_nbagg  # noqa: F401
        finally:
            matplotlib.use = use
    from ipympl.backend_nbagg import Canvas, FigureManager

    return Canvas, FigureManager


def sample_browser(pool, scores: pd.DataFrame, labels=None, **options) -> SampleBrowser:
    """A :class:`SampleBrowser` (display it: live widgets in JupyterLab, static figures elsewhere)."""
    return SampleBrowser(pool, scores, labels, **options)

