"""mmSSR (Lyu et al., "Cream of the Crop", arXiv 2503.13383): rich scores, interaction styles and the sampler.

One module per job (``docs/methods.md``, section mmSSR, says where each comes from):

- :mod:`~kit.mmssr.prompts`: the official scorer and styler prompts, byte for byte, and their parsers;
- :mod:`~kit.mmssr.tokens`: the input ids, built as the official inference builds them (``preprocess_qwen``);
- :mod:`~kit.mmssr.rich`: ``kit.score(pool, "rich", backend=...)``, over :data:`kit.registry.RICH_BACKENDS`;
- :mod:`~kit.mmssr.rich_vlm`: the vision-language-model backend (the released scorer and styler);
- :mod:`~kit.mmssr.convert`: ``python -m kit.mmssr.convert SRC DST``, original checkpoints to the Hugging Face format;
- :mod:`~kit.mmssr.distilled`: the offline backend, a small head distilled from ratings;
- :mod:`~kit.mmssr.style`: ``kit.score(pool, "style", backend=...)``, over :data:`kit.registry.STYLE_BACKENDS`;
- :mod:`~kit.mmssr.style_rules`: the transparent rule-based styler;
- :mod:`~kit.mmssr.teacher`: a teacher model rating a seeded subset through a chat endpoint;
- :mod:`~kit.mmssr.sampler`: ``kit.select(scores, "mmssr", budget)``, the budget sampler.
"""
