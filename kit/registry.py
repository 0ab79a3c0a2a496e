"""Lazy name -> implementation registries for scorers and selectors.

In the spirit of lm-evaluation-harness: each built-in entry is one line mapping a name to
``"module:attribute"``; the module is imported only when the name is first asked for, so a
torch-heavy scorer costs nothing until someone uses it. Users add their own with the
decorators::

    @kit.register_scorer("my_score")
    class MyScorer:
        def __init__(self, **options): ...
        def score(self, pool) -> pd.DataFrame: ...

    @kit.register_selector("my_selector")
    def my_selector(scores, budget, seed=0, **options) -> list: ...
"""
from __future__ import annotations

import importlib
from typing import Any, Callable


class Registry:
    """A mapping from names to objects, some of them given as lazy ``"module:attr"`` paths."""

    def __init__(self, kind: str, lazy: dict[str, str] | None = None):
        self.kind = kind
        self._lazy: dict[str, str] = dict(lazy or {})
        self._loaded: dict[str, Any] = {}

    def names(self) -> list[str]:
        return sorted(set(self._lazy) | set(self._loaded))

    def __contains__(self, name: str) -> bool:
        return name in self._lazy or name in self._loaded

    def add(self, name: str, obj: Any = None, *, path: str | None = None, overwrite: bool = False):
        """Register ``obj`` (or a lazy ``path``) under ``name``."""
        if (obj is None) == (path is None):
            raise ValueError("give exactly one of obj and path")
        if name in self and not overwrite:
            raise ValueError(f"{self.kind} {name!r} is already registered; pass overwrite=True to replace it")
        self._loaded.pop(name, None)
        self._lazy.pop(name, None)
        if obj is not None:
            self._loaded[name] = obj
        else:
            self._lazy[name] = path
        return obj

    def remove(self, name: str) -> None:
        """Unregister ``name`` (an unknown name fails with the nearest names)."""
        if name not in self:
            raise KeyError(self.unknown(name))
        self._loaded.pop(name, None)
        self._lazy.pop(name, None)

    def unknown(self, name) -> str:
        """The error text for a name that is not registered, with the nearest names as a suggestion."""
        import difflib

        names = self.names()
        close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
        return f"unknown {self.kind} {name!r}{hint} Registered: {', '.join(names) or '(none)'}"

    def register(self, name: str, overwrite: bool = False) -> Callable[[Any], Any]:
        """Decorator form of :meth:`add`."""

        def deco(obj):
            self.add(name, obj, overwrite=overwrite)
            return obj

        return deco

    def get(self, name: str) -> Any:
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._lazy:
            raise KeyError(self.unknown(name))
        module, _, attr = self._lazy[name].partition(":")
        obj = getattr(importlib.import_module(module), attr)
        self._loaded[name] = obj
        return obj


class BackendScorer:
    """A scorer whose work is done by one of several backends registered in ``backends``.

    ``cls(backend=name, **options)`` builds ``backends.get(name)(**options)`` (an unknown name fails here,
    with the nearest names); a backend is a class with ``score(pool) -> DataFrame``, like a scorer, and
    loads its model on first use. Subclasses set ``backends`` and ``default`` and may post-process
    :meth:`score`.
    """

    backends: "Registry"
    default: str
    pool_dependent = False

    def __init__(self, backend: str | None = None, **options):
        self.backend = backend or self.default
        self.impl = self.backends.get(self.backend)(**options)

    @property
    def label(self) -> str:
        return getattr(self.impl, "label", self.backend)

    def score(self, pool):
        return self.impl.score(pool)


# One line per built-in scorer: kit.score(pool, name, **options) calls cls(**options).score(pool).
SCORERS = Registry("scorer", {
    "image_text": "kit.quality.image_text.scorer:ImageTextScorer",
    "loss": "kit.quality.loss:LossScorer",
    "rich": "kit.mmssr.rich:RichScorer",
    "style": "kit.mmssr.style:Styler",
    "influence": "kit.influence.scorer:InfluenceScorer",
    "image_gain": "kit.quality.image_gain:ImageGainScorer",
    "cvs": "kit.quality.cvs:CVSScorer",
    "scalselect": "kit.baselines.scalselect:ScalSelectScorer",
})

# One line per built-in selector: kit.select(scores, name, budget, seed, **options).
SELECTORS = Registry("selector", {
    "random": "kit.baselines.random:select_random",
    "clip_top": "kit.baselines.clip_top:select_clip_top",
    "ppl_band": "kit.baselines.ppl_band:select_ppl_band",
    "deita": "kit.baselines.deita:select_deita",
    "coincide": "kit.baselines.coincide:select_coincide",
    "dis": "kit.quality.selectors:select_dis",
    "dil": "kit.quality.selectors:select_dil",
    "diq": "kit.quality.selectors:select_diq",
    "cells": "kit.quality.selectors:select_cells",
    "mmssr": "kit.mmssr.sampler:select_mmssr",
    "influence": "kit.baselines.influence:select_influence",
    "cvs": "kit.baselines.cvs:select_cvs",
    "scalselect": "kit.baselines.scalselect:select_scalselect",
})

# Backends of the scorers that have several: kit.score(pool, scorer, backend=name, **options) calls
# cls(**options); a backend is a class with score(pool) -> DataFrame, like a scorer.
RICH_BACKENDS = Registry("rich-scorer backend", {
    "distilled": "kit.mmssr.distilled.scorer:DistilledRichScorer",
    "vlm": "kit.mmssr.rich_vlm:VLMRichScorer",
})
STYLE_BACKENDS = Registry("styler backend", {
    "rules": "kit.mmssr.style_rules:RuleStyler",
    "distilled": "kit.mmssr.distilled.scorer:DistilledStyler",
    "vlm": "kit.mmssr.rich_vlm:VLMStyler",
})
# Image-text backends are encoders for the shared pipeline (kit.quality.image_text.pipeline), not scorers.
IMAGE_TEXT_BACKENDS = Registry("image-text backend", {
    "standin": "kit.quality.image_text.standin:StandinBackend",
    "open_clip": "kit.quality.image_text.openclip:OpenClipBackend",
})
# Feature extractors of the distilled head (kit.mmssr.distilled.features): factory(**options) -> extractor.
FEATURE_EXTRACTORS = Registry("feature extractor", {
    "offline": "kit.mmssr.distilled.features:OfflineFeatures",
})

register_scorer = SCORERS.register
register_selector = SELECTORS.register
