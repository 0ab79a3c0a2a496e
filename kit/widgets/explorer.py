"""The selection explorer (``kit.widgets.selection_explorer``): choose a selector, a budget and its options;
watch the counts and figures follow; export the subset.

    explorer = kit.widgets.selection_explorer(scores, pool, labels=nb.labels, out_dir=nb.subsets_dir)
    explorer                      # live widgets in JupyterLab; a static figure and the numbers under papermill
    explorer.set(method="dis", budget=0.2)   # the same state machine, driven from code
    explorer.export()             # LLaVA JSON + manifest of the current selection

It never re-scores: every change re-runs :func:`kit.select` on the score table it was given (a debounced
update, so dragging the budget slider selects once when the slider stops). A selector that cannot run with
the chosen options (e.g. ``deita`` without embeddings) shows its error instead of the counts; shortfalls
(:attr:`kit.Selection.shortfall`) and score-collapse warnings are listed under the counts. Which controls apply
to which selector is :mod:`kit.widgets.methods`; whether widgets are drawn is :mod:`kit.widgets.frontend`.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from kit.widgets.debounce import Debouncer
from kit.widgets.frontend import has_frontend
from kit.widgets.methods import MethodControls, builtin_controls, controls_for, selector_options
from kit.widgets.render import MAX_POINTS, LazyWidget, bullet_list, escape, figure_png, show_static, thin

ROOT_CLASS = "kit-selection-explorer"
BUDGET_CLASS = "kit-budget"
COUNT_CLASS = "kit-selection-count"
EXPORT_CLASS = "kit-export"
EXPORT_PATH_CLASS = "kit-export-path"
NO_CHOICE = "—"


class SelectionExplorer(LazyWidget):
    """Interactive selection over one score table (see the module docstring).

    ``scores``: the score table (``nb.scores()``); ``pool``: the pool, for exporting (without it the export
    button is disabled); ``labels``: the truth table, to count planted defects in the selection; ``out_dir``:
    where exports go (default ``./subsets``); ``embeddings``: an embeddings folder for ``deita``/``coincide``
    (default: the folder the score table's image-text scorer recorded); ``methods``: the selectors offered
    (default every registered one); ``method``, ``budget`` (a count or a fraction), ``seed``,
    ``capabilities``, ``threshold`` and ``choice``: the starting state; ``coverage_at``: the rating at or above
    which a sample covers a capability in the radar (:func:`kit.compare.capability_coverage`); ``static``:
    force the static (``True``) or live (``False``) display; ``debounce``: seconds of quiet before an update.
    """

    def __init__(self, scores: pd.DataFrame, pool=None, labels=None, *, out_dir=None, embeddings=None,
                 methods=None, method: str = "mmssr", budget=0.1, seed: int = 0, capabilities=None,
                 threshold: float | None = None, choice=None, coverage_at: float = 2.0,
                 export_format: str = "llava", static: bool | None = None, debounce: float = 0.25,
                 controls: dict[str, MethodControls] | None = None):
        from kit.capabilities import capability_keys
        from kit.registry import SELECTORS
        from kit.selection import resolve_budget

        if not isinstance(scores, pd.DataFrame):
            raise TypeError("scores must be a pandas DataFrame indexed by sample id")
        self.scores = scores
        self.pool = pool
        self.defects = None
        if labels is not None:
            column = labels["defect"] if isinstance(labels, pd.DataFrame) else labels
            self.defects = column.reindex(scores.index)
        self.out_dir = Path(out_dir) if out_dir is not None else Path("subsets")
        self.embeddings = embeddings
        self.methods = list(methods) if methods is not None else SELECTORS.names()
        unknown = [m for m in self.methods if m not in SELECTORS]
        if unknown:
            raise KeyError(SELECTORS.unknown(unknown[0]))
        if method not in self.methods:
            raise ValueError(f"method {method!r} is not among the methods offered: {self.methods}")
        self.capability_columns = [c for c in capability_keys() if c in scores.columns]
        self.controls_table = {**builtin_controls(), **(controls or {})}
        self.coverage_at = float(coverage_at)
        self.export_format = export_format
        self.static = static
        self.state = {"method": method, "budget": resolve_budget(budget, len(scores)), "seed": int(seed),
                      "capabilities": tuple(capabilities or ()), "threshold": {}, "choice": {}}
        if threshold is not None:
            self.state["threshold"][method] = float(threshold)
        if choice is not None:
            self.state["choice"][method] = choice
        self.selection = None
        self.error: str | None = None
        self.warnings: list[str] = []
        self.exported: Path | None = None
        self.updates = 0
        self._space = None
        self._widget = None
        self._controls: dict = {}
        self._syncing = False
        self._debouncer = Debouncer(self._apply, debounce)
        self.update()

    # ------------------------------------------------------------------ state

    @property
    def method(self) -> str:
        return self.state["method"]

    @property
    def controls(self) -> MethodControls:
        """The controls that apply to the current method."""
        return controls_for(self.method, self.controls_table)

    def threshold(self, method: str | None = None) -> float | None:
        spec = controls_for(method or self.method, self.controls_table).threshold
        if spec is None:
            return None
        return self.state["threshold"].get(method or self.method, spec.default)

    def choice(self, method: str | None = None):
        spec = controls_for(method or self.method, self.controls_table).choice
        if spec is None:
            return None
        return self.state["choice"].get(method or self.method, spec.default)

    @property
    def options(self) -> dict:
        """The keyword options the current method gets from the controls."""
        return selector_options(self.method, self.controls, capabilities=self.state["capabilities"],
                                threshold=self.threshold(), choice=self.choice(), embeddings=self.embeddings)

    @property
    def label(self) -> str:
        from kit.compare import budget_name

        return budget_name(self.method, self.state["budget"])

    def set(self, **changes) -> "SelectionExplorer":
        """Change the state (``method``, ``budget``, ``seed``, ``capabilities``, ``threshold``, ``choice``) and
        update at once (no debounce); the widgets, if drawn, follow."""
        from kit.selection import resolve_budget

        allowed = {"method", "budget", "seed", "capabilities", "threshold", "choice"}
        bad = set(changes) - allowed
        if bad:
            raise TypeError(f"unknown explorer settings {sorted(bad)}; use {sorted(allowed)}")
        if "method" in changes:
            if changes["method"] not in self.methods:
                raise ValueError(f"method {changes['method']!r} is not among the methods offered: {self.methods}")
            self.state["method"] = changes["method"]
        if "budget" in changes:
            self.state["budget"] = resolve_budget(changes["budget"], len(self.scores))
        if "seed" in changes:
            self.state["seed"] = int(changes["seed"])
        if "capabilities" in changes:
            caps = tuple(changes["capabilities"] or ())
            unknown = [c for c in caps if c not in self.capability_columns]
            if unknown:
                raise KeyError(f"capabilities {unknown} are not columns of the score table")
            self.state["capabilities"] = caps
        if "threshold" in changes and changes["threshold"] is not None:
            self.state["threshold"][self.method] = float(changes["threshold"])
        if "choice" in changes and changes["choice"] is not None:
            self.state["choice"][self.method] = changes["choice"]
        self._debouncer.cancel()
        self._apply()
        return self

    def update(self):
        """Run the current selector on the score table; keeps the result, its warnings or its error."""
        from kit.selection import select

        self.updates += 1
        self.error, self.warnings = None, []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                self.selection = select(self.scores, self.method, self.state["budget"], seed=self.state["seed"],
                                        **self.options)
            except Exception as exc:  # noqa: BLE001 - a method choice must never crash the explorer
                self.selection = None
                self.error = f"{self.method} cannot run with these settings: {type(exc).__name__}: {exc}"
        notes = list(self.selection.notes) if self.selection is not None else []
        for w in caught:
            text = str(w.message)
            if not any(note in text for note in notes) and text not in self.warnings:
                self.warnings.append(text)
        return self.selection

    # ------------------------------------------------------------------ numbers and figures

    @property
    def n_selected(self) -> int | None:
        return None if self.selection is None else len(self.selection)

    def summary(self) -> dict:
        """The numbers the explorer shows: method, options, asked, selected, shortfall, planted defects, notes."""
        sel = self.selection
        out = {"method": self.method, "options": self.options, "seed": self.state["seed"] if self.controls.seed
               else None, "asked": self.state["budget"], "selected": None if sel is None else len(sel),
               "share_of_pool": None if sel is None else len(sel) / max(len(self.scores), 1),
               "shortfall": str(sel.shortfall) if sel is not None and sel.shortfall is not None else None}
        if self.defects is not None and sel is not None:
            planted = self.defects.loc[list(sel)]
            out["planted_defects"] = int((planted.notna() & (planted != "none")).sum())
        out["notes"] = list(sel.notes) if sel is not None else []
        out["warnings"] = list(self.warnings)
        out["error"] = self.error
        return out

    def summary_table(self) -> pd.DataFrame:
        """:meth:`summary` as a one-column table (the static display's numbers)."""
        info = self.summary()
        rows = {k: ("; ".join(map(str, v)) if isinstance(v, list) else v) for k, v in info.items()}
        rows["options"] = ", ".join(f"{k}={v}" for k, v in info["options"].items()) or "(none)"
        return pd.DataFrame({self.label: pd.Series(rows, dtype=object)})

    def count_text(self) -> str:
        """The count line (``selected N of M asked ...``), as plain text."""
        if self.selection is None:
            return f"selected — of {self.state['budget']} asked ({self.method} did not run)"
        n = len(self.selection)
        text = f"selected {n} of {self.state['budget']} asked ({n / max(len(self.scores), 1):.1%} of the pool)"
        if self.defects is not None:
            text += f", {self.summary()['planted_defects']} with a planted defect"
        return text

    def coverage(self) -> pd.DataFrame | None:
        """Per-capability coverage of the pool and the current selection (None without capability columns)."""
        from kit.compare import capability_coverage

        if self.selection is None or len(self.capability_columns) < 3:
            return None
        return capability_coverage(self.scores, {self.label: self.selection}, self.capability_columns,
                                   at_least=self.coverage_at)

    def figure(self):
        """The current selection against the pool: capability coverage (radar), sources and styles, and the
        selection in the quality plane when the table has it. Returns a Figure."""
        from kit.plotting.selection import coverage_radar, share_bars

        coverage = self.coverage()
        from kit.widgets.browser import plane_loss_col

        plane = plane_loss_col(self.scores) is not None
        ncols = 1 + (coverage is not None) + plane
        fig = plt.figure(figsize=(5.4 * ncols, 5.4))
        col = 0
        if coverage is not None:
            ax = fig.add_subplot(1, ncols, 1, projection="polar")
            coverage_radar(coverage, ax=ax, title="capability coverage")
            col = 1
        ax = fig.add_subplot(1, ncols, col + 1)
        if self.selection is not None and "source" in self.scores.columns:
            share_bars(self._shares("source"), "sources: pool vs selection", ax=ax)
        else:
            ax.axis("off")
        if self.selection is None:
            ax.text(0.0, 0.5, escape_plain(self.error or "no selection"), wrap=True, fontsize=9, va="center")
        if plane:
            from kit.plotting.quality import quality_scatter
            from kit.quality.space import QualitySpace
            from kit.scoring import scorer_label

            ax = fig.add_subplot(1, ncols, col + 2)
            try:
                if self._space is None:
                    self._space = QualitySpace.fit(self.scores, loss_col=plane_loss_col(self.scores))
                chosen = list(self.selection)[:MAX_POINTS] if self.selection is not None else []
                shown = self.scores.index[thin(np.arange(len(self.scores)))].union(pd.Index(chosen), sort=False)
                title = "selection in the quality plane"
                if len(shown) < len(self.scores):
                    title += f" ({len(shown)} of {len(self.scores)} points drawn)"
                quality_scatter(self.scores.loc[shown], self._space, ax=ax, s=8,
                                highlight={self.label: chosen} if self.selection is not None else None, title=title,
                                score_label=f"image-text score s ({scorer_label(self.scores, 'image_text')})")
            except Exception as exc:  # noqa: BLE001 - an unscored plane is shown as such
                ax.axis("off")
                ax.text(0.0, 0.5, f"no quality plane: {exc}", wrap=True, fontsize=9)
        fig.suptitle(f"{self.count_text()}", fontsize=10)
        # a fixed layout: tight_layout measures every label and would double the time of each live update
        fig.subplots_adjust(left=0.07 if coverage is None else 0.04, right=0.98, bottom=0.2, top=0.82,
                            wspace=0.45)
        return fig

    def _shares(self, column: str) -> pd.DataFrame:
        values = self.scores[column].astype(str)
        pool = values.value_counts() / len(values)
        sub = values.loc[list(self.selection)].value_counts() / max(len(self.selection), 1)
        out = pd.DataFrame({"pool_share": pool, "selected_share": sub}).fillna(0.0)
        return out.sort_values("pool_share", ascending=False)

    # ------------------------------------------------------------------ export

    def export_path(self) -> Path:
        """``<out_dir>/explorer_<method>_<budget>_<fingerprint>.json``: the fingerprint hashes the options and
        seed, so the same settings export to the same file and different ones never overwrite each other."""
        import hashlib
        import json

        from kit.export import FORMATS
        from kit.provenance import jsonable

        settings = json.dumps({"options": jsonable(self.options), "seed": self.state["seed"]}, sort_keys=True)
        tag = hashlib.sha1(settings.encode()).hexdigest()[:6]
        return self.out_dir / f"explorer_{self.method}_{self.state['budget']}_{tag}{FORMATS[self.export_format]}"

    def export(self, path=None) -> Path:
        """Write the current selection (LLaVA JSON by default) and its manifest; returns the data file."""
        from kit.export import export_subset

        if self.pool is None:
            raise ValueError("the explorer was made without pool=, so it cannot export samples")
        if self.selection is None:
            raise ValueError(f"nothing to export: {self.error}")
        path = Path(path) if path is not None else self.export_path()
        self.exported = export_subset(self.pool, self.selection, path, format=self.export_format,
                                      extra={"explorer": {"label": self.label, "warnings": self.warnings}})
        if self._widget is not None:
            self._show_export()
        return self.exported

    # ------------------------------------------------------------------ display

    def _ipython_display_(self):
        from IPython.display import display

        if has_frontend(self.static):
            display(self.widget)
        else:
            self.show_static()

    def show_static(self) -> None:
        """The static fallback: the figure and the numbers as ordinary outputs."""
        show_static(self.figure(), self.summary_table())

    def _build(self):
        import ipywidgets as w

        n = len(self.scores)
        c = self._controls
        c["method"] = w.Dropdown(options=self.methods, value=self.method, description="method")
        c["budget"] = w.IntSlider(value=self.state["budget"], min=0, max=n, step=1, description="budget",
                                  continuous_update=True, layout=w.Layout(width="420px"))
        c["budget"].add_class(BUDGET_CLASS)
        c["budget_share"] = w.HTML()
        c["seed"] = w.BoundedIntText(value=self.state["seed"], min=0, max=2**31 - 1, description="seed",
                                     layout=w.Layout(width="180px"))
        c["capabilities"] = w.SelectMultiple(options=self.capability_columns, value=self.state["capabilities"],
                                             rows=min(7, max(len(self.capability_columns), 1)),
                                             description="capabilities",
                                             layout=w.Layout(width="300px"))
        c["threshold"] = w.FloatSlider(value=0.0, min=0.0, max=5.0, step=0.5, description="threshold",
                                       continuous_update=False)
        c["choice"] = w.Dropdown(options=[NO_CHOICE], value=NO_CHOICE, description="option")
        c["about"] = w.HTML()
        c["count"] = w.HTML()
        c["count"].add_class(COUNT_CLASS)
        c["notes"] = w.HTML()
        c["figure"] = w.Image(format="png", layout=w.Layout(max_width="100%"))
        c["export"] = w.Button(description="Export subset", icon="download", button_style="primary",
                               disabled=self.pool is None,
                               tooltip="write the selection as LLaVA JSON and its manifest"
                               if self.pool is not None else "made without pool=: cannot export")
        c["export"].add_class(EXPORT_CLASS)
        c["export_path"] = w.HTML()
        c["export_path"].add_class(EXPORT_PATH_CLASS)
        for name in ("method", "budget", "seed", "capabilities", "threshold", "choice"):
            c[name].observe(self._on_control, names="value")
        c["export"].on_click(self._on_export)
        box = w.VBox([
            w.HBox([c["method"], c["budget"], c["budget_share"], c["seed"]]),
            w.HBox([c["capabilities"], w.VBox([c["threshold"], c["choice"]])]),
            c["about"], c["count"], c["notes"], c["figure"],
            w.HBox([c["export"], c["export_path"]]),
        ])
        box.add_class(ROOT_CLASS)
        return box

    def _sync_controls(self) -> None:
        """Make the widgets show the state (and enable only the controls that apply to the method)."""
        c, spec = self._controls, self.controls
        self._syncing = True
        try:
            c["method"].value = self.method
            c["budget"].value = self.state["budget"]
            c["budget_share"].value = f"{self.state['budget'] / max(len(self.scores), 1):.1%} of {len(self.scores)}"
            c["seed"].value = self.state["seed"]
            c["seed"].disabled = not spec.seed
            c["capabilities"].value = self.state["capabilities"]
            c["capabilities"].disabled = not spec.capabilities
            slider = c["threshold"]
            if spec.threshold is not None:
                t = spec.threshold
                slider.max = max(slider.max, t.max)
                slider.min = t.min
                slider.max = t.max
                slider.step = t.step
                slider.value = self.threshold()
                slider.description = t.label
                slider.disabled = False
            else:
                slider.description = "threshold"
                slider.disabled = True
            drop = c["choice"]
            if spec.choice is not None:
                drop.options = list(spec.choice.values)
                drop.value = self.choice()
                drop.description = spec.choice.label
                drop.disabled = False
            else:
                drop.options = [NO_CHOICE]
                drop.value = NO_CHOICE
                drop.description = "option"
                drop.disabled = True
            applies = [name for name, on in (("seed", spec.seed), ("capabilities", spec.capabilities),
                                             ("threshold", spec.threshold is not None),
                                             ("option", spec.choice is not None)) if on]
            c["about"].value = (f"<i>{escape(self.method)}</i>: {escape(spec.about)}"
                                f" · controls that apply: {escape(', '.join(['budget', *applies]))}")
        finally:
            self._syncing = False

    def _on_control(self, change) -> None:
        if self._syncing:
            return
        c = self._controls
        method_changed = c["method"].value != self.method
        self.state["method"] = c["method"].value
        self.state["budget"] = int(c["budget"].value)
        self.state["seed"] = int(c["seed"].value)
        self.state["capabilities"] = tuple(c["capabilities"].value)
        if not method_changed:
            if self.controls.threshold is not None and not c["threshold"].disabled:
                self.state["threshold"][self.method] = float(c["threshold"].value)
            if self.controls.choice is not None and c["choice"].value != NO_CHOICE:
                self.state["choice"][self.method] = c["choice"].value
        self._sync_controls()
        c["count"].value = (f"<span style='color:#888'>updating: {escape(self.method)} with a budget of "
                            f"{self.state['budget']}…</span>")
        self._debouncer.trigger()

    def _apply(self) -> None:
        self.update()
        if self._widget is not None:
            self._sync_controls()
            self._render()

    def _render(self) -> None:
        c = self._controls
        c["count"].value = f"<b>{escape(self.count_text())}</b>"
        lines = ([self.error] if self.error else []) + [f"note: {n}" for n in
                                                         (self.selection.notes if self.selection else [])]
        lines += [f"warning: {w}" for w in self.warnings]
        c["notes"].value = bullet_list(lines, "kit-selection-notes")
        c["export"].disabled = self.pool is None or self.selection is None
        c["figure"].value = figure_png(self.figure())

    def _on_export(self, _button) -> None:
        try:
            self.export()
        except Exception as exc:  # noqa: BLE001 - shown beside the button
            self._controls["export_path"].value = f"<span style='color:#C44E52'>{escape(exc)}</span>"

    def _show_export(self) -> None:
        from kit.export import manifest_path

        path = self.exported
        self._controls["export_path"].value = (f"wrote <code>{escape(path)}</code> and "
                                               f"<code>{escape(manifest_path(path).name)}</code>")


def escape_plain(text: str) -> str:
    """Text for a matplotlib label: dollar signs would start mathtext."""
    return str(text).replace("$", r"\$")


def selection_explorer(scores: pd.DataFrame, pool=None, labels=None, **options) -> SelectionExplorer:
    """A :class:`SelectionExplorer` (display it: live widgets in JupyterLab, a static figure elsewhere)."""
    return SelectionExplorer(scores, pool, labels, **options)
