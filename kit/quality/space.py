"""The 2-D quality space of the quality-driven curriculum (arXiv 2407.00102): image-text score s against answer loss l.

Every scored sample is a point (l, s). The space is bounded by pool quantiles (default 1% and 99%)
and cut into an n x n grid (default 3 x 3), equal-width within the bounds or equal-frequency.
As in the paper's region definitions (``S_min <= s <= S_max``, ``L_min <= l <= L_max``), a point outside
the bounds lies in no cell (``outside="exclude"``, the default); it is counted (``n_outside``, the notes,
``cell_of`` names it ``"outside"``), never dropped silently. ``outside="clip"`` clips such points into
the edge cells instead. The loss axis is ``loss_sum`` by default (the paper sums the loss over the answer
tokens); ``loss="mean"`` (``loss_mean``) is the per-token option. Cells are addressed as
``(row, col)`` with **row 0 = low s** (image-text score) and **col 0 = low l** (loss), or by name::

    top_left      top_center      top_right        row n-1 (high s)
    middle_left   center          middle_right
    bottom_left   bottom_center   bottom_right     row 0   (low s)
    col 0 (low l)                 col n-1 (high l)

The corner names exist for every n; the ``center``/``middle``/``*_center`` names only for odd n.

    space = QualitySpace.fit(scores)                   # bounds and edges from the pool
    cells = space.assign(scores)                       # row / col per sample (-1 if in no cell)
    ids = space.ids_in(scores, ["top_right", (1, 2)])  # pool order
    grid_summary(scores)                               # counts, edges, mean token length per cell

Samples whose s or l is missing or non-finite are "unscored": they lie in no cell and are never
selected. Bounds are closed: a point at S_max or L_max belongs to the last cell.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

SCORE_COL = "image_text"
LOSS_COL = "loss_sum"   # the paper's loss: summed over the answer tokens
LOSS_COLUMNS = {"mean": "loss_mean", "sum": "loss_sum"}
BINNINGS = ("width", "frequency")
OUTSIDE = ("exclude", "clip")   # what points outside the bounds do: lie in no cell (the paper) / join an edge cell


# --------------------------------------------------------------------------- reading columns

def resolve_loss_col(loss_col: str | None = None, loss: str | None = None) -> str:
    """The loss column: ``loss_col`` as given, or ``loss="mean"|"sum"`` -> ``loss_mean``/``loss_sum``.

    With neither, ``loss_sum`` (:data:`LOSS_COL`, the paper's summed loss).
    """
    if loss is not None:
        named = LOSS_COLUMNS.get(loss, loss)
        if loss_col is not None and loss_col != named:
            raise ValueError(f"loss={loss!r} and loss_col={loss_col!r} disagree; give one of them")
        return named
    return loss_col if loss_col is not None else LOSS_COL


def numeric_column(scores: pd.DataFrame, col: str) -> np.ndarray:
    """``scores[col]`` as float64; missing values become NaN, non-numbers raise naming the sample."""
    if not isinstance(scores, pd.DataFrame):
        raise TypeError("scores must be a pandas DataFrame indexed by sample id")
    if col not in scores.columns:
        raise KeyError(f"score table has no column {col!r}; columns: {', '.join(map(str, scores.columns))}")
    raw = scores[col]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.any():
        sid = raw.index[bad.to_numpy()][0]
        raise ValueError(f"column {col!r} of sample {sid!r} is not a number: {raw[sid]!r}")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def scored_mask(scores: pd.DataFrame, cols: Iterable[str]) -> np.ndarray:
    """True where every column in ``cols`` holds a finite number."""
    mask = np.ones(len(scores), dtype=bool)
    for col in cols:
        mask &= np.isfinite(numeric_column(scores, col))
    return mask


def unscored_note(n_excluded: int, cols: Iterable[str]) -> str:
    cols = list(cols)
    what = " or ".join(repr(c) for c in cols)
    return f"{n_excluded} sample{'s' if n_excluded != 1 else ''} without a finite {what} score excluded"


def outside_note(n_outside: int, outside: str, of: int | None = None) -> str:
    """How many scored points lie outside the bounds, and what became of them."""
    what = f"{n_outside} of {of} scored samples" if of is not None else \
        f"{n_outside} scored sample{'s' if n_outside != 1 else ''}"
    verb = "lies" if of is None and n_outside == 1 else "lie"
    if outside == "clip":
        return f"{what} {verb} outside the bounds, clipped into the edge cells"
    return f"{what} {verb} outside the bounds and in no cell (outside='clip' puts them in the edge cells)"


# --------------------------------------------------------------------------- cell names

def cell_names(grid: int) -> dict[str, tuple[int, int]]:
    """The named cells of an ``grid`` x ``grid`` space (row 0 = low s, col 0 = low l)."""
    top = last = grid - 1
    names = {"top_left": (top, 0), "top_right": (top, last), "bottom_left": (0, 0), "bottom_right": (0, last)}
    if grid % 2 == 1:
        mid = grid // 2
        names.update({"center": (mid, mid), "top_center": (top, mid), "bottom_center": (0, mid),
                      "middle_left": (mid, 0), "middle_right": (mid, last)})
    return names


def _is_pair(obj) -> bool:
    return (isinstance(obj, (tuple, list)) and len(obj) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in obj))


def parse_cells(cells, grid: int) -> list[tuple[int, int]]:
    """One cell or many as a list of ``(row, col)`` without duplicates, in the order given.

    A cell is a name (``"top_right"``) or a ``(row, col)`` pair (a 2-list of ints, as JSON gives it,
    counts as one pair); anything else iterable is a collection of cells.
    """
    if isinstance(cells, str) or _is_pair(cells):
        cells = [cells]
    if cells is None:
        raise ValueError("no cells given")
    names = cell_names(grid)
    out: list[tuple[int, int]] = []
    for cell in cells:
        if isinstance(cell, str):
            if cell not in names:
                raise ValueError(f"unknown cell name {cell!r} for a {grid}x{grid} grid; "
                                 f"names: {', '.join(sorted(names))}, or (row, col) pairs")
            rc = names[cell]
        elif _is_pair(cell):
            rc = (int(cell[0]), int(cell[1]))
            if not (0 <= rc[0] < grid and 0 <= rc[1] < grid):
                raise ValueError(f"cell {rc} is outside the {grid}x{grid} grid (rows and cols 0..{grid - 1})")
        else:
            raise ValueError(f"a cell is a name or a (row, col) pair of ints, not {cell!r}")
        if rc not in out:
            out.append(rc)
    if not out:
        raise ValueError("no cells given")
    return out


def cell_label(cell: tuple[int, int], grid: int) -> str:
    """The name of a cell if it has one, else ``"(row, col)"``."""
    for name, rc in cell_names(grid).items():
        if rc == tuple(cell):
            return name
    return f"({cell[0]}, {cell[1]})"


# --------------------------------------------------------------------------- the space

def _edges(values: np.ndarray, lo: float, hi: float, grid: int, binning: str) -> np.ndarray:
    """``grid + 1`` edges from ``lo`` to ``hi``; inner edges equal-width or at the k/grid quantiles of
    ``values`` (the points that fall in cells), so every cell row / column holds the same number of them."""
    if binning == "width":
        edges = np.linspace(lo, hi, grid + 1)
    else:
        if len(values):
            inner = np.quantile(values, np.arange(1, grid) / grid)
        else:  # no point falls inside the bounds: equal-width inner edges
            inner = np.linspace(lo, hi, grid + 1)[1:-1]
        edges = np.concatenate([[lo], np.clip(inner, lo, hi), [hi]])
    return edges


def _within(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (values >= lo) & (values <= hi)


@dataclass
class QualitySpace:
    """Bounds and cell edges of the (l, s) plane.

    ``s_edges`` / ``l_edges`` hold ``grid + 1`` increasing edges; the first and last are the bounds
    (S_min, S_max, L_min, L_max), both closed. Inside the bounds a value below the first inner edge falls
    in cell 0, at or above the last inner edge in cell ``grid - 1``. ``outside`` says what a point
    outside the bounds does: ``"exclude"`` (the paper's regions: it lies in no cell, no region and no
    curriculum stage) or ``"clip"`` (it joins the edge cell it is nearest to). ``n_outside`` counts the
    fitted points outside the bounds (in either mode).
    """

    s_edges: np.ndarray
    l_edges: np.ndarray
    score_col: str = SCORE_COL
    loss_col: str = LOSS_COL
    bounds: tuple[float, float] = (0.01, 0.99)
    binning: str = "width"
    n_points: int = 0
    notes: list[str] = field(default_factory=list)
    outside: str = "exclude"
    n_outside: int = 0

    @classmethod
    def fit(cls, scores: pd.DataFrame, *, score_col: str = SCORE_COL, loss_col: str | None = None,
            loss: str | None = None, bounds=(0.01, 0.99), grid: int = 3, binning: str = "width",
            outside: str = "exclude") -> "QualitySpace":
        """Fit bounds (pool quantiles ``bounds``) and a ``grid`` x ``grid`` grid on the scored samples.

        Equal-frequency edges (``binning="frequency"``) are quantiles of the points that fall in cells
        (those inside the bounds, or every scored point with ``outside="clip"``).
        """
        loss_col = resolve_loss_col(loss_col, loss)
        if binning not in BINNINGS:
            raise ValueError(f"binning must be one of {BINNINGS}, got {binning!r}")
        if outside not in OUTSIDE:
            raise ValueError(f"outside must be one of {OUTSIDE}, got {outside!r}")
        if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 1:
            raise ValueError(f"grid must be a positive int, got {grid!r}")
        lo_q, hi_q = (float(b) for b in bounds)
        if not 0.0 <= lo_q < hi_q <= 1.0:
            raise ValueError(f"bounds are quantiles with 0 <= low < high <= 1, got {bounds!r}")
        s, l = numeric_column(scores, score_col), numeric_column(scores, loss_col)
        ok = np.isfinite(s) & np.isfinite(l)
        if not ok.any():
            raise ValueError(f"no sample has finite {score_col!r} and {loss_col!r} scores; cannot fit the space")
        s, l = s[ok], l[ok]
        s_lo, s_hi = np.quantile(s, [lo_q, hi_q])
        l_lo, l_hi = np.quantile(l, [lo_q, hi_q])
        inside = _within(s, s_lo, s_hi) & _within(l, l_lo, l_hi)
        n_outside = int((~inside).sum())
        notes = []
        for name, lo, hi in ((score_col, s_lo, s_hi), (loss_col, l_lo, l_hi)):
            if hi <= lo:
                notes.append(f"{name}: the bounds coincide ({lo:g}); every point falls in one edge row/column")
        if (~ok).sum():
            notes.append(unscored_note(int((~ok).sum()), (score_col, loss_col)) + " from the space")
        if n_outside:
            notes.append(outside_note(n_outside, outside, of=int(ok.sum())))
        keep = inside if outside == "exclude" else np.ones(len(s), dtype=bool)
        return cls(s_edges=_edges(s[keep], s_lo, s_hi, grid, binning),
                   l_edges=_edges(l[keep], l_lo, l_hi, grid, binning),
                   score_col=score_col, loss_col=loss_col, bounds=(lo_q, hi_q), binning=binning,
                   n_points=int(ok.sum()), notes=notes, outside=outside, n_outside=n_outside)

    # ----------------------------------------------------------------- geometry
    @property
    def grid(self) -> int:
        return len(self.s_edges) - 1

    @property
    def s_min(self) -> float:
        return float(self.s_edges[0])

    @property
    def s_max(self) -> float:
        return float(self.s_edges[-1])

    @property
    def l_min(self) -> float:
        return float(self.l_edges[0])

    @property
    def l_max(self) -> float:
        return float(self.l_edges[-1])

    def cell_names(self) -> dict[str, tuple[int, int]]:
        return cell_names(self.grid)

    def parse_cells(self, cells) -> list[tuple[int, int]]:
        return parse_cells(cells, self.grid)

    def clip(self, scores: pd.DataFrame) -> pd.DataFrame:
        """``s`` and ``l`` clipped into the bounds (NaN where unscored), indexed like ``scores``."""
        s = np.clip(numeric_column(scores, self.score_col), self.s_min, self.s_max)
        l = np.clip(numeric_column(scores, self.loss_col), self.l_min, self.l_max)
        return pd.DataFrame({"s": s, "l": l}, index=scores.index)

    def points(self, scores: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(s, l, in_cell)`` as the space sees them: with ``outside="clip"`` the values are clipped into
        the bounds and every scored point is in a cell; with ``"exclude"`` the values are raw and
        ``in_cell`` holds only where both lie within the (closed) bounds."""
        s, l = numeric_column(scores, self.score_col), numeric_column(scores, self.loss_col)
        scored = np.isfinite(s) & np.isfinite(l)
        if self.outside == "clip":
            return np.clip(s, self.s_min, self.s_max), np.clip(l, self.l_min, self.l_max), scored
        return s, l, scored & _within(s, self.s_min, self.s_max) & _within(l, self.l_min, self.l_max)

    def outside_mask(self, scores: pd.DataFrame) -> np.ndarray:
        """True where a sample is scored but lies outside the bounds (in either ``outside`` mode)."""
        s, l = numeric_column(scores, self.score_col), numeric_column(scores, self.loss_col)
        scored = np.isfinite(s) & np.isfinite(l)
        return scored & ~(_within(s, self.s_min, self.s_max) & _within(l, self.l_min, self.l_max))

    def assign(self, scores: pd.DataFrame) -> pd.DataFrame:
        """Per sample: ``row`` (s bin) and ``col`` (l bin), both -1 where the sample is in no cell; ``scored``
        (finite s and l), ``outside`` (scored but outside the bounds) and ``in_cell``."""
        s, l, in_cell = self.points(scores)
        scored = np.isfinite(s) & np.isfinite(l)
        row = np.searchsorted(self.s_edges[1:-1], s, side="right")
        col = np.searchsorted(self.l_edges[1:-1], l, side="right")
        return pd.DataFrame({"row": np.where(in_cell, row, -1), "col": np.where(in_cell, col, -1),
                             "scored": scored, "outside": self.outside_mask(scores), "in_cell": in_cell},
                            index=scores.index)

    def mask(self, scores: pd.DataFrame, cells) -> np.ndarray:
        """Boolean mask over ``scores`` of the samples in ``cells`` (one or many)."""
        rc = self.parse_cells(cells)
        cell = self.assign(scores)
        flat = cell["row"].to_numpy() * self.grid + cell["col"].to_numpy()
        wanted = np.array([r * self.grid + c for r, c in rc])
        return cell["in_cell"].to_numpy() & np.isin(flat, wanted)

    def cell_of(self, scores: pd.DataFrame) -> pd.Series:
        """Each sample's cell name (``cell_label``); ``"outside"`` for a scored sample in no cell (outside the
        bounds), ``None`` where unscored."""
        cell = self.assign(scores)
        names = [cell_label((r, c), self.grid) if inc else ("outside" if ok else None)
                 for r, c, inc, ok in zip(cell["row"], cell["col"], cell["in_cell"], cell["scored"])]
        return pd.Series(names, index=scores.index, name="cell", dtype=object)

    def crosstab(self, scores: pd.DataFrame, by: pd.Series) -> pd.DataFrame:
        """Counts of ``by`` (e.g. each sample's planted defect) per cell, scored samples only (an ``outside``
        column holds those outside the bounds, with ``outside="exclude"``)."""
        cells = self.cell_of(scores)
        both = pd.DataFrame({"by": by.reindex(scores.index), "cell": cells}).dropna()
        table = pd.crosstab(both["by"].rename(by.name or "by"), both["cell"])
        n = self.grid  # columns laid out like the plane: top row (high s) first, low l to high l, then outside
        order = [cell_label((r, c), n) for r in range(n - 1, -1, -1) for c in range(n)] + ["outside"]
        return table[[c for c in order if c in table.columns]]

    def ids_in(self, scores: pd.DataFrame, cells) -> list:
        """Ids of the samples in ``cells``, in pool (table) order."""
        return scores.index[self.mask(scores, cells)].tolist()

    def stage_thresholds(self, stages: int) -> list[tuple[float, float]]:
        """``(l_threshold, s_threshold)`` of each curriculum stage k: L_min + k*dL, S_min + k*dS.

        Stage k's region is ``{l >= l_threshold and s >= s_threshold}`` inside the bounds (see
        :meth:`stage_mask`): its upper bounds stay L_max and S_max.
        """
        if isinstance(stages, bool) or not isinstance(stages, (int, np.integer)) or stages < 1:
            raise ValueError(f"stages must be a positive int, got {stages!r}")
        dl, ds = (self.l_max - self.l_min) / stages, (self.s_max - self.s_min) / stages
        return [(self.l_min + k * dl, self.s_min + k * ds) for k in range(stages)]

    def stage_mask(self, scores: pd.DataFrame, l_threshold: float, s_threshold: float) -> np.ndarray:
        """The samples of a curriculum stage's region: ``l >= l_threshold`` and ``s >= s_threshold``, inside
        the bounds (``outside="exclude"``: a point above L_max or S_max is in no stage, like in no cell;
        ``"clip"``: values are clipped into the bounds first, so such a point joins every stage whose
        thresholds it passes)."""
        s, l, in_cell = self.points(scores)
        return in_cell & (l >= l_threshold) & (s >= s_threshold)

    def info(self) -> dict:
        """The space as plain JSON-able values (for manifests and reports)."""
        return {"score_col": self.score_col, "loss_col": self.loss_col, "bounds": list(self.bounds),
                "grid": self.grid, "binning": self.binning, "outside": self.outside, "n_points": self.n_points,
                "n_outside": self.n_outside,
                "s_edges": [float(v) for v in self.s_edges], "l_edges": [float(v) for v in self.l_edges]}


SPACE_OPTIONS = ("score_col", "loss_col", "loss", "bounds", "grid", "binning", "outside")


def space_for(scores: pd.DataFrame, space: QualitySpace | None = None, **options) -> QualitySpace:
    """``space`` if given (then no space options may be passed), else one fitted on ``scores``."""
    unknown = set(options) - set(SPACE_OPTIONS)
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; space options are {list(SPACE_OPTIONS)}")
    if space is not None:
        if options:
            raise TypeError(f"give either space= or the space options {sorted(options)}, not both")
        return space
    return QualitySpace.fit(scores, **options)


# --------------------------------------------------------------------------- summaries for plots

def grid_summary(scores: pd.DataFrame, space: QualitySpace | None = None,
                 tokens_col: str = "n_answer_tokens", **options) -> pd.DataFrame:
    """One row per cell: name, count, fraction, edges, mean s and l, mean token length if present.

    Rows run over ``(row, col)`` in order (row 0 = low s). ``mean_tokens`` is the mean of
    ``tokens_col`` (answer tokens) per cell when the table has that column; it is the reason summed
    loss follows length. ``fraction`` is of the samples in cells. The fitted space is in
    ``.attrs["space"]``; ``.attrs["n_unscored"]`` and ``.attrs["n_outside"]`` count the samples in no cell
    (unscored, and scored but outside the bounds with ``outside="exclude"``).
    """
    space = space_for(scores, space, **options)
    cell = space.assign(scores)
    ok = cell["in_cell"].to_numpy()
    n = space.grid
    flat = (cell["row"].to_numpy() * n + cell["col"].to_numpy())[ok]
    counts = np.bincount(flat, minlength=n * n)
    s, l = numeric_column(scores, space.score_col)[ok], numeric_column(scores, space.loss_col)[ok]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_s = np.bincount(flat, weights=s, minlength=n * n) / counts
        mean_l = np.bincount(flat, weights=l, minlength=n * n) / counts
    rows, cols = np.divmod(np.arange(n * n), n)
    out = pd.DataFrame({
        "row": rows, "col": cols, "name": [cell_label((r, c), n) for r, c in zip(rows, cols)],
        "count": counts, "fraction": counts / max(int(ok.sum()), 1),
        "s_low": space.s_edges[rows], "s_high": space.s_edges[rows + 1],
        "l_low": space.l_edges[cols], "l_high": space.l_edges[cols + 1],
        "mean_s": mean_s, "mean_l": mean_l,
    })
    if tokens_col in scores.columns:
        tok = numeric_column(scores, tokens_col)[ok]
        has = np.isfinite(tok)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["mean_tokens"] = (np.bincount(flat[has], weights=tok[has], minlength=n * n)
                                  / np.bincount(flat[has], minlength=n * n))
    out.attrs["space"] = space.info()
    out.attrs["n_unscored"] = int((~cell["scored"]).sum())
    out.attrs["n_outside"] = int((cell["scored"] & ~cell["in_cell"]).sum())
    return out


def grid_matrix(summary: pd.DataFrame, value: str = "count") -> pd.DataFrame:
    """A ``grid_summary`` column as an n x n table laid out like the plane (high s on top, high l right)."""
    mat = summary.pivot(index="row", columns="col", values=value)
    mat = mat.sort_index(ascending=False)
    mat.index.name, mat.columns.name = "row (s)", "col (l)"
    return mat
