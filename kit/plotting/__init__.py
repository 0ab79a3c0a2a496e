"""Plot helpers for the notebooks (matplotlib/seaborn), one module per subject.

``pool``: counts and sample grids · ``quality``: the 2-D quality plane · ``selection``: subsets vs pool.
"""
from kit.plotting.pool import conversation_caption, count_bars, sample_grid, save_figure

__all__ = ["conversation_caption", "count_bars", "sample_grid", "save_figure"]
