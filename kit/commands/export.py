"""Write the samples named in IDS (a selection from kit select, a JSON list, or a text file with one id per line)
with a manifest beside them. --format llamafactory writes LLaMA-Factory's ShareGPT JSON and its dataset_info.json
entry, --format swift ms-swift's messages JSONL (absolute image paths).

examples:
  kit export data_samples/pool.json mmssr.json --out subset.jsonl
  kit export data_samples/pool.json mmssr.json --out lf/mmssr30.json --format llamafactory
  kit export data_samples/pool.json mmssr.json --out mmssr30.jsonl --format swift
"""
from __future__ import annotations

import json
from pathlib import Path

from kit.commands.common import add_loader, add_overwrite, check_outputs, load_pool, read_ids


def add_arguments(p) -> None:
    from kit.export import EXPORT_FORMATS

    p.add_argument("pool")
    p.add_argument("ids", help="selection JSON, JSON list of ids, or one id per line")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--format", choices=sorted(EXPORT_FORMATS), default=None,
                   help="default: from the --out suffix (a disagreeing one is refused); llamafactory (.json) "
                        "and swift (.jsonl) must be named")
    add_overwrite(p)
    add_loader(p)


def run(args) -> int:
    import kit
    from kit.export import format_of, manifest_path

    fmt = format_of(args.out, args.format)
    ids = read_ids(args.ids)
    inputs = [("the pool file", args.pool), ("the id list", args.ids)]
    check_outputs(args, [args.out, manifest_path(args.out)], inputs)
    pool = load_pool(args.pool, args)
    meta = json.loads(Path(args.ids).read_text(encoding="utf-8")) if Path(args.ids).suffix == ".json" else {}
    meta = meta if isinstance(meta, dict) else {}
    path = kit.export_subset(pool, ids, args.out, format=fmt, method=meta.get("method"), params=meta.get("params"),
                             seed=meta.get("seed"), scores_hash=meta.get("scores_hash"), overwrite=args.overwrite,
                             inputs=inputs)
    extra = " + dataset_info.json entry " + repr(path.stem) if fmt == "llamafactory" else ""
    print(f"{len(ids)} samples written to {path} (+ manifest{extra})")
    return 0
