"""Snapshot every registry the kit has (the :class:`kit.registry.Registry` objects in :mod:`kit.registry` and the
capability registry of :mod:`kit.capabilities`) and put it back; ``tests/conftest.py`` does so around every test,
so a test may register a scorer, selector, backend, extractor, command or capability without cleaning up."""
from __future__ import annotations


def registries() -> list:
    from kit import registry

    return [obj for obj in vars(registry).values() if isinstance(obj, registry.Registry)]


def snapshot():
    """A callable that restores every registry to what it holds now.

    A built-in that a test only *resolved* (its lazy path imported and cached) keeps its cache: the entry is
    unchanged, and dropping the cache would only make the next test import it again."""
    from kit import capabilities

    saved = [(reg, dict(reg._lazy), dict(reg._loaded), dict(getattr(reg, "summaries", {}))) for reg in registries()]
    caps = dict(capabilities._REGISTRY)

    def restore() -> None:
        for reg, lazy, loaded, summaries in saved:
            cached = {name: obj for name, obj in reg._loaded.items()
                      if name not in loaded and name in lazy and reg._lazy.get(name) == lazy[name]}
            if reg._lazy != lazy or reg._loaded != {**loaded, **cached}:
                reg._lazy.clear()
                reg._lazy.update(lazy)
                reg._loaded.clear()
                reg._loaded.update({**loaded, **cached})
            if hasattr(reg, "summaries") and reg.summaries != summaries:
                reg.summaries.clear()
                reg.summaries.update(summaries)
        if capabilities._REGISTRY != caps:
            capabilities._REGISTRY.clear()
            capabilities._REGISTRY.update(caps)

    return restore
