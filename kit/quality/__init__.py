"""The quality-driven curriculum (Wu, Meng & Chen, arXiv 2407.00102): image-text score x answer loss.

One module per job (``docs/methods.md``, section "Quality-driven curriculum"):

- :mod:`~kit.quality.image_text`: ``kit.score(pool, "image_text")``, the image-text score *s*;
- :mod:`~kit.quality.loss`: ``kit.score(pool, "loss")``, the answer loss *l*;
- :mod:`~kit.quality.space`: the 2-D (l, s) plane, its bounds, grid and named cells;
- :mod:`~kit.quality.selectors`: DIS, DIL, DIQ and draws from any cells;
- :mod:`~kit.quality.curriculum`: the K-stage curriculum and its export.
"""
