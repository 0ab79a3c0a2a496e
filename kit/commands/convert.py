"""Convert an original LLaVA-OneVision checkpoint (LLaVA-NeXT code, e.g. the released mmSSR scorer and styler) to
the Hugging Face LlavaOnevisionForConditionalGeneration format (kit.mmssr.convert says how the keys map).

example:
  kit convert path/to/mmssr-7b-scorer path/to/mmssr-7b-scorer-hf
then: kit.score(pool, "rich", backend="vlm", model="path/to/mmssr-7b-scorer-hf", device="cuda")

A checkpoint the converter does not support is refused with the reason (exit code 1). Also
``python -m kit.mmssr.convert ...``.
"""
from __future__ import annotations

from kit.commands.common import CliError


def add_arguments(ap) -> None:
    ap.add_argument("src", help="original checkpoint folder (config.json with mm_* keys, weights, tokenizer)")
    ap.add_argument("dst", help="output folder (Hugging Face LlavaOnevisionForConditionalGeneration)")
    ap.add_argument("--vision-heads", type=int, default=None,
                    help="attention heads of the vision tower (default: width / 72, as SigLIP-so400m)")
    ap.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"],
                    help="cast the weights (default: keep the original dtype)")


def run(args) -> int:
    from kit.mmssr.convert import ConversionError, convert

    try:
        out = convert(args.src, args.dst, vision_heads=args.vision_heads, dtype=args.dtype)
    except ConversionError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {out} (load it with kit.score(pool, 'rich', backend='vlm', model={str(out)!r}))")
    return 0
