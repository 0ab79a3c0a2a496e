"""What every notebook does first, in one line each.

    nb = kit.notebook.start(pool_path, run_dir)        # the pool, its truth table, the run folders
    scores = nb.score_table({"image_text": {...}, ...}) # cached under <run_dir>/scores/, reused on a re-run
    scores = nb.scores()                                # the table an earlier notebook scored, else score it
    nb.save(fig, "01_image_text")                       # <run_dir>/figures/01_image_text.png
    exp = kit.notebook.experiment(run_dir, quick, "tiny", pool_path)  # 04, 05: the run folder, the pool, the base
    kit.notebook.timings(scores)                        # wall time per scorer, and whether it was reused

``run_dir`` defaults to :func:`default_run_dir`, ``runs/interactive`` of the project folder (the working directory,
or its parent when that is a ``notebooks/`` folder, where Jupyter and papermill run a notebook): in a checkout the
checkout's ``runs/interactive``, so notebooks run by hand and under ``make demo`` (which passes
``runs/<timestamp>``) keep their scores and figures in the same layout.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


def default_run_dir(cwd=None) -> Path:
    """``runs/interactive`` of the project folder: ``cwd`` (default: the working directory), or its parent when it
    is a ``notebooks`` folder (a notebook runs in its own folder and reads ``../data_samples/``, ``../runs/``)."""
    here = Path(cwd if cwd is not None else Path.cwd()).resolve()
    project = here.parent if here.name == "notebooks" else here
    return project / "runs" / "interactive"


@dataclass
class NotebookRun:
    """A pool, its truth table (``labels``, or ``None`` when the pool has no ``labels.csv``) and the run folders."""

    pool_path: Path
    run_dir: Path
    pool: object
    labels: pd.DataFrame | None = None
    scorer_options: dict = field(default_factory=dict)

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    @property
    def scores_dir(self) -> Path:
        return self.run_dir / "scores"

    @property
    def figures_dir(self) -> Path:
        return self.run_dir / "figures"

    @property
    def subsets_dir(self) -> Path:
        return self.run_dir / "subsets"

    @property
    def embeddings_dir(self) -> Path:
        """Where the image-text scorer keeps its embeddings (``image.npy``, ``text.npy``, ``ids.json``)."""
        return self.run_dir / "embeddings"

    def save(self, fig, name: str) -> Path:
        """Save ``fig`` as ``<run_dir>/figures/<name>.png``."""
        from kit.plotting import save_figure

        return save_figure(fig, self.figures_dir, name)

    def defects(self, index=None) -> pd.Series | None:
        """The planted defect of each sample (``"none"`` when clean), in ``index`` order; ``None`` without labels."""
        if self.labels is None:
            return None
        defect = self.labels["defect"]
        return defect.reindex(self.pool.table.index if index is None else index)

    def score(self, name: str, **options) -> pd.DataFrame:
        """One scorer's own table (with its diagnostic columns), cached where :meth:`score_table` keeps it."""
        from kit.scoring import part_path, score_cached

        return score_cached(self.pool, name, part_path(self.scores_dir, name), **options)

    def default_scorers(self) -> dict:
        """The four scorers with their offline defaults (the image-text scorer keeps its embeddings)."""
        return {"image_text": {"embeddings_dir": str(self.embeddings_dir)}, "loss": {}, "rich": {}, "style": {}}

    def score_table(self, scorers=None, **common) -> pd.DataFrame:
        """:func:`kit.score_table` of this pool, cached under ``scores/`` (``scorers``: see there; default
        :meth:`default_scorers`)."""
        from kit.scoring import score_table

        return score_table(self.pool, scorers or self.default_scorers(), out=self.scores_dir, **common)

    def scores(self, scorers=None) -> pd.DataFrame:
        """The run's score table: the one an earlier notebook scored (same pool), else :meth:`score_table`."""
        from kit.scoreinfo import score_info
        from kit.scoring import load_score_table

        table = load_score_table(self.scores_dir, self.pool)
        have = getattr(score_info(table, required=False), "scorers", {}) if table is not None else {}
        if table is not None and (scorers is None or set(scorers) <= set(have)):
            return table
        return self.score_table(scorers)


def start(pool_path, run_dir=None, quiet: bool = False) -> NotebookRun:
    """Load the pool (and ``labels.csv`` beside it when there is one) and set up the run folders."""
    from kit.data import load_pool
    from kit.eval.labels import labels_path_for, load_labels

    pool_path = Path(pool_path)
    run_dir = Path(run_dir) if run_dir else default_run_dir()
    pool = load_pool(pool_path)
    labels_file = labels_path_for(pool_path)
    labels = load_labels(labels_file) if labels_file.exists() else None
    run_dir.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(pool.summary())
        print(f"truth table: {labels_file if labels is not None else 'none (no labels.csv beside the pool)'}")
        print(f"run folder: {run_dir}")
    return NotebookRun(pool_path, run_dir, pool, labels)


def timings(scores: pd.DataFrame) -> pd.DataFrame:
    """Per scorer of a score table: seconds, samples per second, and whether a cached table was reused."""
    from kit.scoreinfo import score_info

    rows = {}
    for name, info in getattr(score_info(scores, required=False), "scorers", {}).items():
        rows[name] = {"seconds": info.timing.get("seconds"), "samples/s": info.timing.get("samples_per_s"),
                      "reused": info.reused, "pool_dependent": bool(info.pool_dependent), "label": info.label or name}
    return pd.DataFrame.from_dict(rows, orient="index")


# The easy-vqa experiment pool of notebook 04 and the easy-vqa grid (docs/results.md, "Fine-tuning and ablations"):
# kit pools easyvqa OUT --n 2000 --mismatch 0.1 --wrong-answer 0.1 --truncated 0.05 --duplicate 0.05 --seed 0
EXPERIMENT_POOL = {"n": 2000, "rates": {"mismatch": 0.1, "wrong_answer": 0.1, "truncated": 0.05, "duplicate": 0.05},
                   "seed": 0}
# A briefly aligned base for a notebook's quick parameters, where a preset needs other settings than
# kit.finetune.quick_base's: seconds, not minutes; nothing measured with it is reported.
QUICK_ALIGN = {"testbed": {"steps": 20, "vision_pretrain_steps": 20, "images_per_family": 4,
                           "vision_images_per_family": 4}}


@dataclass
class Experiment(NotebookRun):
    """What the training notebooks (04, 05) set up first: a :class:`NotebookRun` (``pool`` is ``None`` where the
    notebook only draws committed tables), whether the run is quick, and the base every fine-tuning starts from."""

    quick: bool = False
    preset: str = "tiny"
    _base: object = field(default=None, repr=False)

    @property
    def base(self):
        """The aligned model the runs start from, built (or found in the kit's cache) when first read: with
        ``quick`` a briefly aligned one, else the preset's aligned base (:func:`kit.finetune.base_model`)."""
        if self._base is None:
            import kit.finetune as ft

            if not self.quick:
                self._base = ft.base_model(self.preset)
            elif self.preset in QUICK_ALIGN:
                self._base = ft.align(self.preset, progress=False, **QUICK_ALIGN[self.preset])
            else:
                self._base = ft.quick_base(self.preset)
        return self._base


def experiment(run_dir=None, quick: bool = False, preset: str = "tiny", pool_path=None,
               exclude_pool=None) -> Experiment:
    """Set up a training notebook: the run folder and, with ``pool_path``, its pool and truth table. A missing pool
    is built there first as the easy-vqa experiment pool (:data:`EXPERIMENT_POOL`, keeping ``exclude_pool``'s
    images out); with ``quick`` a third of the pool is kept (seconds of scoring). The base is built only when a
    notebook reads :attr:`Experiment.base`."""
    run_dir = Path(run_dir) if run_dir else default_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    if pool_path is None:
        return Experiment(None, run_dir, None, quick=quick, preset=preset)
    pool_path = Path(pool_path)
    if not pool_path.is_file():
        from kit.pools import build_easyvqa_pool

        build_easyvqa_pool(pool_path.parent, exclude_pool=exclude_pool, progress=False, **EXPERIMENT_POOL)
    nb = start(pool_path, run_dir, quiet=True)
    pool = nb.pool.subset(list(nb.pool.table.index[::3])) if quick else nb.pool
    print(pool.summary())
    return Experiment(pool_path, run_dir, pool, nb.labels, quick=quick, preset=preset)
