"""The image-text score *s*: one scorer over pluggable encoders (:data:`kit.registry.IMAGE_TEXT_BACKENDS`).

- :mod:`~kit.quality.image_text.scorer`: ``ImageTextScorer``, texts, the table, kept embeddings;
- :mod:`~kit.quality.image_text.pipeline`: the decoding/encoding loop every backend shares;
- :mod:`~kit.quality.image_text.openclip`: any open_clip model (CLIP, as in the paper);
- :mod:`~kit.quality.image_text.standin`: the offline stand-in (not CLIP);
- :mod:`~kit.quality.image_text.neighbours`: the stand-in's pool-neighbour part;
- :mod:`~kit.quality.image_text.lit_training`: training the stand-in's LiT head.
"""
