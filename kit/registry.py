"""Lazy name -> implementation registries for scorers and selectors.

In the spirit of lm-evaluation-harness: each built-in entry is one line mapping a name to
``"module:attribute"``; the module is imported only when the name is first asked for, so a
torch-heavy scorer costs nothing until someone uses it. Users add their own with the
decorators::

    @kit.register_scorer("my_score")
    class MyScorer:
        def __init__(self, **options): ...
        def score(self, pool) -> pd.DataFrame: ...   # or (table, kit.ScoreInfo(columns=[...], label=...))

    @kit.register_selector("my_selector")
    def my_selector(scores, budget, seed=0, **options) -> list: ...

The ``kit`` command's subcommands live in :data:`COMMANDS` the same way: one line per command, naming the module
that parses its arguments and runs it, and the one line ``kit --help`` shows (without importing the module).
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
        obj = importlib.import_module(module)   # a path without ":attr" names the module itself
        obj = getattr(obj, attr) if attr else obj
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



class CommandRegistry(Registry):
    """The ``kit`` subcommands: name -> a module (or any object) with ``add_arguments(parser)`` and ``run(args)``.

    Each entry also carries the one line that ``kit --help`` prints, so listing the commands imports none of them;
    the names keep the order they were registered in (the order of the help)::

        COMMANDS.add("mine", path="mypackage.mine_command", summary="what it does, in one line")
    """

    def __init__(self, lazy: dict[str, tuple[str, str]] | None = None):
        lazy = dict(lazy or {})
        super().__init__("command", {name: path for name, (path, _) in lazy.items()})
        self.summaries: dict[str, str] = {name: summary for name, (_, summary) in lazy.items()}

    def names(self) -> list[str]:
        return list(dict.fromkeys([*self._lazy, *self._loaded]))

    def add(self, name: str, obj: Any = None, *, path: str | None = None, summary: str | None = None,
            overwrite: bool = False):
        """Register a command (an object with ``add_arguments`` and ``run``, or a lazy module ``path``)."""
        got = super().add(name, obj, path=path, overwrite=overwrite)
        doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
        self.summaries[name] = summary if summary is not None else (doc[0] if doc else "")
        return got

    def remove(self, name: str) -> None:
        super().remove(name)
        self.summaries.pop(name, None)

    def summary(self, name: str) -> str:
        return self.summaries.get(name, "")


# One line per kit subcommand: name -> (the module holding add_arguments(parser) and run(args), the line that
# `kit --help` prints). `python -m kit.X` aliases call the same module through kit.cli.alias.
COMMANDS = CommandRegistry({
    "validate": ("kit.commands.validate", "read and check a pool; report every rejected record"),
    "score": ("kit.commands.score", "score a pool with any registered scorer, resumably (locally or on Ray)"),
    "select": ("kit.commands.select", "select a subset from score tables with any registered selector"),
    "curriculum": ("kit.commands.curriculum", "build and export the staged quality curriculum"),
    "export": ("kit.commands.export", "write a selection's records (LLaVA JSON, JSONL, parquet, LLaMA-Factory, swift)"),
    "report": ("kit.commands.report", "docs/results.md's figures, against a pool's planted truth"),
    "docs": ("kit.commands.docs", "rewrite docs/results.md's generated tables from the committed results/"),
    "pools": ("kit.commands.pools", "build the sample, easy-vqa, distillation and testbed pools"),
    "finetune": ("kit.commands.finetune", "align a base, fine-tune on a subset, evaluate (accelerate launch too)"),
    "ablate": ("kit.commands.ablate", "select, fine-tune and evaluate methods x budgets x seeds on a pool"),
    "ablate-newer": ("kit.commands.ablate_newer", "the ablation grid of the newer methods (influence, cvs, scalselect)"),
    "testbed": ("kit.commands.testbed", "one testbed condition: build its pool, score it, run the grid, export"),
    "testbed-gate": ("kit.commands.testbed_gate", "the testbed's learnability gate: per-family dev accuracy"),
    "teacher": ("kit.commands.teacher", "rate a seeded sample of a pool through an OpenAI-compatible endpoint"),
    "distill": ("kit.commands.distill", "train, cross-validate or tune the distilled rich scorer"),
    "convert": ("kit.commands.convert", "convert an original LLaVA-OneVision / mmSSR checkpoint to Hugging Face"),
    "lit-head": ("kit.commands.lit_head", "train or check the image-text stand-in's LiT head"),
    "notebooks": ("kit.commands.notebooks", "run the notebooks with papermill; time and figures per notebook"),
    "demo": ("kit.commands.notebooks", "the same as notebooks: every notebook in order (make demo)"),
})

register_scorer = SCORERS.register
register_selector = SELECTORS.register
