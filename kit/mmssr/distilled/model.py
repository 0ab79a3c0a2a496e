"""The distilled head as a model: features + head, trained on ratings, saved to and loaded from one file.

    ratings = kit.eval.labels.load_ratings("data_samples/labels.csv")   # or a teacher JSONL
    head = DistilledHead(seed=0).fit(pool, ratings)
    table = head.score(pool)          # 14 integer ratings, 14 <key>_expected, styles, source, status
    head.save("head.pt"); head = DistilledHead.load("head.pt")

The scoring backends of ``kit.score(pool, "rich")`` and ``kit.score(pool, "style",
backend="distilled")`` (:mod:`kit.mmssr.distilled.scorer`) load one of these on first use.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from kit.mmssr.distilled.features import compute_features, get_feature_extractor, registered_extractors
from kit.mmssr.distilled.net import HeadConfig, build_head, fit_head, predict_head, styles_from_probs
from kit.outputs import atomic_path
from kit.package import shipped_path

FORMAT = "kit.rich_distilled/1"
DEFAULT_WEIGHTS = shipped_path("weights", "rich_distilled.pt")   # package data (kit/weights/)
# What a saved head still lets a caller set when loading it (the rest was fixed in training).
LOAD_OPTIONS = ("features", "style_threshold", "at_least_one_style", "integer", "cache_dir", "progress")


class DistilledHead:
    """Capability scores and styles from a small head on frozen features, trained on capability ratings
    (reference ratings from a pool's ``labels.csv``, or teacher ratings from :mod:`kit.mmssr.teacher`).

    Options: ``features`` (a registered extractor name, default ``"offline"``, or an extractor
    object), ``feature_options`` (its options), the :class:`HeadConfig` fields (``target``,
    ``hidden``, ``steps``, ``lr``, ``weight_decay``, ``l2``, ``dropout``, ``style_threshold``,
    ``at_least_one_style``, ``style_pos_weight``, ``block_gains``, ``batch_size``, ``seed``; the
    defaults were first chosen by cross-validation on ``data_samples``; the shipped head's settings were
    chosen on its own training pool, see its metadata ``tuning``), ``cache_dir`` (on-disk
    feature cache), ``integer`` (default ``True``: the capability columns hold the most probable
    integer rating 0-5, as the official scorer's parsed answers do, and the expected value goes to
    ``<key>_expected``; ``False``: the expected value in both) and ``progress``.
    """

    def __init__(self, features="offline", feature_options: dict | None = None, cache_dir=None,
                 integer: bool = True, progress: bool = True, **head_options):
        self.extractor = get_feature_extractor(features, **(feature_options or {}))
        if hasattr(self.extractor, "progress"):
            self.extractor.progress = progress
        self.config = HeadConfig(**head_options)
        if self.config.block_gains == "auto":
            slices = self.extractor.block_slices() if hasattr(self.extractor, "block_slices") else {}
            gains = {k: float(v) for k, v in getattr(self.extractor, "default_gains", {}).items() if k in slices}
            self.config.block_gains = gains or None
        elif isinstance(self.config.block_gains, str):
            raise ValueError(f"block_gains must be a dict, None or 'auto', not {self.config.block_gains!r}")
        self.cache_dir, self.integer, self.progress = cache_dir, integer, progress
        self.head = None
        self.capabilities: list[str] = []
        self.styles: list[str] = []
        self.metadata: dict[str, Any] = {}

    # ---------------------------------------------------------------- features
    def features(self, pool, ids: Sequence[str] | None = None) -> tuple[np.ndarray, list[str | None]]:
        """Cached features of ``ids`` (default: all of ``pool``) and per-sample errors."""
        return compute_features(self.extractor, pool, ids, cache_dir=self.cache_dir)

    # ---------------------------------------------------------------- training
    def _gain(self, dim: int) -> np.ndarray | None:
        """Per-feature gains from ``block_gains`` and the extractor's ``block_slices()``."""
        gains = self.config.block_gains
        if not gains:
            return None
        slices = self.extractor.block_slices() if hasattr(self.extractor, "block_slices") else {}
        unknown = sorted(set(gains) - set(slices))
        if unknown:
            raise ValueError(f"block_gains names blocks {unknown} that the features {self.extractor.name!r} "
                             f"do not have ({sorted(slices)})")
        g = np.ones(dim, dtype=np.float32)
        for name, value in gains.items():
            g[slices[name]] = float(value)
        return g

    def _targets(self, ratings: pd.DataFrame, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        sub = ratings.loc[list(ids)]
        Y = sub[self.capabilities].to_numpy(dtype=np.float64)
        S = np.zeros((len(sub), len(self.styles)), dtype=np.float32)
        pos = {name: j for j, name in enumerate(self.styles)}
        unknown: dict[str, str] = {}
        for i, (sid, names) in enumerate(zip(sub.index, sub["styles"])):
            if not isinstance(names, (list, tuple)):
                raise ValueError(f"sample {sid!r}: styles must be a list, got {names!r}")
            for name in names:
                if name in pos:
                    S[i, pos[name]] = 1.0
                else:
                    unknown.setdefault(name, sid)
        if unknown:
            warnings.warn(f"ignoring {len(unknown)} unknown style names in the ratings: "
                          + ", ".join(f"{n!r} (e.g. sample {s!r})" for n, s in list(unknown.items())[:5]), stacklevel=3)
        return Y, S

    def _training_ids(self, pool, ratings: pd.DataFrame) -> list[str]:
        if not isinstance(ratings, pd.DataFrame):
            raise TypeError("ratings must be a DataFrame indexed by sample id (see kit.eval.labels.load_ratings)")
        if not ratings.index.is_unique:
            raise ValueError(f"ratings have duplicate ids, e.g. {ratings.index[ratings.index.duplicated()][:3].tolist()}")
        in_pool = ratings.index.isin(pool.table.index)
        if not in_pool.any():
            raise ValueError("none of the rated ids is in the pool")
        if not in_pool.all():
            missing = ratings.index[~in_pool]
            warnings.warn(f"{len(missing)} rated ids are not in the pool and are ignored, e.g. {missing[:3].tolist()}",
                          stacklevel=3)
        rated = ratings.loc[in_pool]
        has_any = rated[self.capabilities].notna().any(axis=1) | rated["styles"].map(bool)
        keep = set(rated.index[has_any])
        return [sid for sid in pool.table.index if sid in keep]  # pool order

    def _resolve_columns(self, ratings: pd.DataFrame, capabilities: Iterable[str] | None) -> None:
        from kit.capabilities import STYLES, capability_keys

        keys = list(capabilities) if capabilities is not None else [k for k in capability_keys() if k in ratings.columns]
        missing = [k for k in keys if k not in ratings.columns]
        if missing or not keys:
            raise ValueError(f"ratings lack capability columns {missing or capability_keys()}")
        if "styles" not in ratings.columns:
            raise ValueError("ratings lack a 'styles' column (lists of style names)")
        self.capabilities, self.styles = keys, list(STYLES)

    def fit(self, pool, ratings: pd.DataFrame, capabilities: Iterable[str] | None = None):
        """Train on the rated samples of ``pool`` (``ratings`` indexed by id; see :func:`kit.eval.labels.load_ratings`).

        Samples whose features failed (an unreadable image) are left out and counted in the metadata.
        """
        self._resolve_columns(ratings, capabilities)
        ids = self._training_ids(pool, ratings)
        X, errors = self.features(pool, ids)
        ok = np.array([e is None for e in errors], dtype=bool)
        ids_ok = [sid for sid, good in zip(ids, ok) if good]
        if not ids_ok:
            raise ValueError("no rated sample has usable features")
        Y, S = self._targets(ratings, ids_ok)
        t0 = time.perf_counter()
        self.head = fit_head(X[ok], Y, S, self.config, self._gain(X.shape[1]), progress=False)
        self.metadata = {
            "trained_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "train_seconds": round(time.perf_counter() - t0, 3),
            "n_train": len(ids_ok),
            "n_skipped_feature_errors": int((~ok).sum()),
            "train_ids_sha1": hashlib.sha1("\n".join(ids_ok).encode()).hexdigest(),
            "pool_path": str(getattr(pool, "path", "") or ""),
            "target_means": {k: float(np.nanmean(Y[:, j])) if np.isfinite(Y[:, j]).any() else None
                             for j, k in enumerate(self.capabilities)},
            "style_rates": {name: float(S[:, j].mean()) for j, name in enumerate(self.styles)},
        }
        return self

    # ---------------------------------------------------------------- inference
    def _check_fitted(self):
        if self.head is None:
            raise RuntimeError("this DistilledHead is not trained: call .fit(pool, ratings) or "
                               "DistilledHead.load(path)")

    def predict_arrays(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected capability scores (n, c) and style probabilities (n, s) for a feature matrix."""
        self._check_fitted()
        return predict_head(self.head, X, self.config.target, len(self.capabilities))

    def score(self, pool) -> pd.DataFrame:
        """One row per pool sample: the capability ratings, ``<key>_expected``, ``styles``, ``source``, ``status``.

        The capability columns hold the most probable integer rating 0-5 (``integer=True``, the default)
        or the expected value (``integer=False``); ``<key>_expected`` always holds the expected value.
        A sample whose features failed keeps its row with NaN scores, no styles and the reason in
        ``status``.
        """
        from kit.capabilities import expected_column

        self._check_fitted()
        ids = list(pool.table.index)
        X, errors = self.features(pool, ids)
        ok = np.array([e is None for e in errors], dtype=bool)
        expected = np.full((len(ids), len(self.capabilities)), np.nan)
        ratings = np.full_like(expected, np.nan)
        probs = np.zeros((len(ids), len(self.styles)))
        if ok.any():
            expected[ok], probs[ok], ratings[ok] = predict_head(self.head, X[ok], self.config.target,
                                                                len(self.capabilities), ratings=True)
        table = pd.DataFrame(ratings if self.integer else expected, index=pd.Index(ids, name="id"),
                             columns=self.capabilities)
        for j, key in enumerate(self.capabilities):
            table[expected_column(key)] = expected[:, j]
        styles = styles_from_probs(probs, self.styles, self.config.style_threshold, self.config.at_least_one_style)
        table["styles"] = [s if good else [] for s, good in zip(styles, ok)]
        table["source"] = pool.table["source"].to_numpy()
        table["status"] = ["ok" if e is None else e for e in errors]
        return table

    def style_probabilities(self, pool) -> pd.DataFrame:
        """Per-style probabilities (one column per style name) for every pool sample."""
        self._check_fitted()
        X, errors = self.features(pool)
        probs = np.full((len(X), len(self.styles)), np.nan)
        ok = np.array([e is None for e in errors], dtype=bool)
        if ok.any():
            probs[ok] = self.predict_arrays(X[ok])[1]
        return pd.DataFrame(probs, index=pd.Index(pool.table.index, name="id"), columns=self.styles)

    # ---------------------------------------------------------------- persistence
    def save(self, path, **extra_metadata) -> Path:
        """Write the head, the settings and the metadata to one file (``torch.save`` of a dict)."""
        import torch

        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {**self.metadata, **extra_metadata}
        payload = {
            "format": FORMAT,
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.head.state_dict().items()},
            "capabilities": list(self.capabilities),
            "styles": list(self.styles),
            "features": {"name": self.extractor.name, "options": dict(getattr(self.extractor, "options", {})),
                         "fingerprint": self.extractor.fingerprint,
                         "dim": int(self.head.mean.shape[0])},
            "config": self.config.__dict__.copy(),
            "metadata_json": json.dumps(meta, default=str),
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path

    @classmethod
    def load(cls, path=None, features=None, **options) -> "DistilledHead":
        """Load a head saved by :meth:`save` (default: the shipped ``kit/weights/rich_distilled.pt``).

        The feature extractor is rebuilt from its stored name and options unless ``features`` gives
        one (needed for an extractor that is not registered). ``options`` override the stored
        inference settings (``style_threshold``, ``at_least_one_style``, ``integer``, ``cache_dir``,
        ``progress``).
        """
        import torch

        path = Path(path) if path is not None else DEFAULT_WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"no distilled rich-scorer head at {path}; train one with "
                                    "`kit distill train data_samples/ OUT.pt`")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} file")
        fspec = payload["features"]
        if features is None:
            if fspec["name"] not in registered_extractors():
                raise KeyError(f"{path} was trained on features {fspec['name']!r}, which is not registered here; "
                               "pass features=<extractor>")
            features = get_feature_extractor(fspec["name"], **fspec["options"])
        if features.fingerprint != fspec["fingerprint"]:
            raise ValueError(f"{path} expects features {fspec['fingerprint']!r}, got {features.fingerprint!r}")
        config = dict(payload["config"])
        wrong = sorted(set(options) - set(LOAD_OPTIONS))
        if wrong:
            raise TypeError(f"a loaded head cannot change {wrong}; only {sorted(LOAD_OPTIONS)} can be set")
        config.update({k: options.pop(k) for k in ("style_threshold", "at_least_one_style") if k in options})
        scorer = cls(features=features, **options, **config)
        scorer.capabilities, scorer.styles = list(payload["capabilities"]), list(payload["styles"])
        head = build_head(fspec["dim"], len(scorer.capabilities), len(scorer.styles), scorer.config.hidden,
                           scorer.config.target, scorer.config.dropout)
        head.load_state_dict(payload["state_dict"])
        scorer.head = head.eval()
        scorer.metadata = json.loads(payload.get("metadata_json") or "{}")
        scorer.metadata["loaded_from"] = str(path)
        return scorer
