"""What several ``kit`` commands share: errors, ``--option`` parsing, budgets, the pool-loading flags, output checks.

Light to import (the standard library only at the top): ``kit --help`` and every ``kit COMMAND --help`` pass
through here.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


class CliError(Exception):
    """A problem to report in one line (exit code 1)."""


class UsageError(Exception):
    """Wrong usage found after parsing (exit code 2, with the command's usage line), as argparse reports its own."""


# --------------------------------------------------------------------------- option values

def parse_value(text: str):
    """A ``--option`` value: JSON when it parses (numbers, true/false, null, lists, objects), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_options(pairs: list[str] | None, blob: str | None) -> dict:
    """``--options '{"k": 1}'`` (JSON object) then ``--option k=v`` pairs (later ones win)."""
    options: dict = {}
    if blob:
        text = Path(blob[1:]).read_text(encoding="utf-8") if blob.startswith("@") else blob
        try:
            got = json.loads(text)
        except ValueError as exc:
            raise CliError(f"--options is not valid JSON ({exc})") from None
        if not isinstance(got, dict):
            raise CliError(f"--options must be a JSON object, not {type(got).__name__}")
        options.update(got)
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--option takes key=value, not {pair!r}")
        options[key.strip().replace("-", "_")] = parse_value(value)
    return options


def parse_budget(text: str):
    """A budget: an int count (``1000``) or a fraction (``0.3``, ``30%``)."""
    text = text.strip()
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a budget is a count (1000) or a fraction (0.3 or 30%), not {text!r}") from None


def grid_budget(text: str):
    """A budget of an experiment grid: a fraction (``0.3``), or a count when it is a whole number >= 1."""
    value = float(text)
    return int(value) if value >= 1 and value.is_integer() else value


# --------------------------------------------------------------------------- reading a pool

def add_loader(p, with_images: bool = True) -> None:
    """The loader flags of every command that reads a pool."""
    g = p.add_argument_group("reading the pool")
    if with_images:
        g.add_argument("--images", metavar="DIR", help="the image folder (default: images/ beside the pool file)")
    g.add_argument("--text-only", action="store_true", help="keep samples without an image (rejected by default)")
    g.add_argument("--multi-image", action="store_true", help="keep samples with several images (rejected by default)")
    g.add_argument("--allow-absolute-paths", action="store_true",
                   help="accept absolute image paths outside the image folder")
    g.add_argument("--allow-symlinks-out", action="store_true",
                   help="accept image paths whose symbolic links leave the image folder")
    g.add_argument("--max-image-pixels", type=int, default=None, metavar="N",
                   help="reject images with more pixels (default: PIL's limit, about 89 million)")
    g.add_argument("--no-check-images", action="store_true", help="do not open images while loading")
    g.add_argument("--fast-image-check", action="store_true",
                   help="read image headers only instead of decoding every image (faster; a truncated JPEG or "
                        "broken PNG data then passes, and fails later when a scorer decodes it)")


def loader_options(args) -> dict:
    options = {"images": args.images, "text_only": args.text_only, "multi_image": args.multi_image,
               "allow_absolute_paths": args.allow_absolute_paths, "allow_symlinks_out": args.allow_symlinks_out,
               "check_images": not args.no_check_images, "fast_image_check": args.fast_image_check}
    if args.max_image_pixels is not None:
        options["max_image_pixels"] = args.max_image_pixels
    return options


def load_pool(path, args):
    import kit

    return kit.load_pool(path, **loader_options(args))


# --------------------------------------------------------------------------- outputs

def add_overwrite(p) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace output files that exist (never an input of the command); atomically")


def check_outputs(args, outputs, inputs, pool=None) -> None:
    """Refuse (one line) outputs that are inputs, or exist without --overwrite; with ``pool``, its images too."""
    from kit.export import pool_inputs
    from kit.outputs import check_outputs as check

    outputs = [o for o in outputs if o is not None]
    check(outputs, [*inputs, *(pool_inputs(pool) if pool is not None else [])],
          overwrite=getattr(args, "overwrite", True))


def write_table(table, path) -> None:
    """A report as .parquet, .jsonl or (any other suffix) .csv, written atomically."""
    import io

    from kit.outputs import atomic_write_bytes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        buf = io.BytesIO()
        table.to_parquet(buf)
        data = buf.getvalue()
    elif path.suffix == ".jsonl":
        data = table.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")
    else:
        data = table.to_csv(index=False).encode("utf-8")
    atomic_write_bytes(path, data)


# --------------------------------------------------------------------------- score tables and id lists

def join_scores(paths, pool=None):
    """One table from several score files/folders, joined on the id (the first table's order)."""
    import pandas as pd

    import kit

    tables = []
    for path in paths:
        table = kit.load_scores(path)
        name = getattr(kit.score_info(table, required=False), "scorer_name", None)   # None for a joined table
        if name and "status" in table.columns:  # each scorer's status under its own name, as in score_table
            table = table.rename(columns={"status": f"status_{name}"})
        tables.append(table)
    joined = tables[0].copy()
    for path, table in zip(paths[1:], tables[1:]):
        new = [c for c in table.columns if c not in joined.columns]
        extra = table.index.difference(joined.index)
        if len(extra):
            raise CliError(f"{path} holds {len(extra)} ids the first table does not, e.g. {list(extra[:3])}")
        joined = joined.join(table[new])
    if pool is not None:
        missing = joined.index.difference(pool.table.index)
        if len(missing):
            raise CliError(f"the scores hold {len(missing)} ids that are not in the pool, e.g. {list(missing[:3])}")
        if "source" not in joined.columns:
            joined.insert(0, "source", pool.table["source"].reindex(joined.index))
    joined.index.name = "id"
    return pd.DataFrame(joined)


def read_ids(path) -> list[str]:
    """The ids of a selection JSON (from kit select), a JSON list, or a text file with one id per line."""
    path = Path(path)
    if not path.is_file():
        raise CliError(f"no id list at {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        if isinstance(data, dict) and "ids" in data:
            data = data["ids"]
        if not isinstance(data, list):
            raise CliError(f"{path}: expected a list of ids or a selection written by kit select")
        return [str(i) for i in data]
    return [line.strip() for line in text.splitlines() if line.strip()]
