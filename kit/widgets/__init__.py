"""Interactive explorers for JupyterLab (ipywidgets), with a static fallback where nothing draws widgets.

    explorer = kit.widgets.selection_explorer(scores, pool, labels=nb.labels, out_dir=nb.subsets_dir)
    browser = kit.widgets.sample_browser(pool, scores, labels=nb.labels)

``selection_explorer``: a selector, a budget and its options in, counts and figures out, live; an export
button (:mod:`kit.widgets.explorer`). ``sample_browser``: filter, page through and open samples,
also by clicking the quality plane (:mod:`kit.widgets.browser`). Under papermill or in a script both
show a static figure and their numbers instead (:mod:`kit.widgets.frontend`: ``static=True``/``False`` or
``KIT_WIDGETS=static``/``live`` force either).
"""
from kit.widgets.frontend import has_frontend
from kit.widgets.browser import SampleBrowser, sample_browser
from kit.widgets.explorer import SelectionExplorer, selection_explorer

__all__ = ["SampleBrowser", "SelectionExplorer", "has_frontend", "sample_browser", "selection_explorer"]
