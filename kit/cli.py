"""The ``kit`` command line (also ``python -m kit``): validate, score, select, curriculum, export, notebooks.

    kit validate data_samples/pool.json
    kit score data_samples/pool.json loss --out scores/loss            # resumable; add --ray for Ray Data
    kit score pool.jsonl image_text --out scores/it --option text=questions --option device=cuda
    kit select mmssr scores/rich scores/style --budget 0.3 --pool data_samples/pool.json --out subset.json
    kit curriculum scores/image_text scores/loss --pool data_samples/pool.json --stages 3 --budget 0.5 --out cur/
    kit export data_samples/pool.json subset.json --out subset.jsonl --format jsonl
    kit finetune train data_samples/pool.json --out runs/ft --subset subset.json   # align | train | eval
    kit notebooks --quick --only 00 01

Exit codes: 0 success; 1 the command could not do its job (the message says why); 2 wrong usage;
3 ``validate`` read the pool but rejected some records (the report says which). ``docs/scale.md``
has the full reference.

No command writes over one of its inputs (the same file after resolving links), and a file that exists
already is replaced only with ``--overwrite`` (atomically). ``kit score`` resumes its folder instead.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3


class CliError(Exception):
    """A problem to report in one line (exit code 1)."""


# --------------------------------------------------------------------------- option parsing

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


def _loader_options(args) -> dict:
    options = {"images": args.images, "text_only": args.text_only, "multi_image": args.multi_image,
               "allow_absolute_paths": args.allow_absolute_paths, "allow_symlinks_out": args.allow_symlinks_out,
               "check_images": not args.no_check_images, "fast_image_check": args.fast_image_check}
    if args.max_image_pixels is not None:
        options["max_image_pixels"] = args.max_image_pixels
    return options


def _load_pool(path, args):
    import kit

    return kit.load_pool(path, **_loader_options(args))


def _check_outputs(args, outputs, inputs, pool=None) -> None:
    """Refuse (one line) outputs that are inputs, or exist without --overwrite; with ``pool``, its images too."""
    from kit.export import pool_inputs
    from kit.outputs import check_outputs

    outputs = [o for o in outputs if o is not None]
    check_outputs(outputs, [*inputs, *(pool_inputs(pool) if pool is not None else [])],
                  overwrite=getattr(args, "overwrite", True))


# --------------------------------------------------------------------------- commands

def cmd_validate(args) -> int:
    import kit
    from kit.export import format_of, write_records

    if args.write:
        format_of(args.write)  # a suffix the loader reads back, before the (long) load
    outputs, inputs = [args.report, args.write], [("the pool file", args.pool)]
    _check_outputs(args, outputs, inputs)
    pool = kit.load_pool(args.pool, strict=args.strict, **_loader_options(args))
    print(pool.summary())
    if len(pool.report) and not args.quiet:
        import pandas as pd

        with pd.option_context("display.max_rows", args.show, "display.max_colwidth", 120, "display.width", 200):
            print(pool.report.head(args.show).to_string(index=False))
        if len(pool.report) > args.show:
            print(f"... {len(pool.report) - args.show} more (write them all with --report FILE)")
    for note in pool.notes:
        print(f"note: {note}")
    _check_outputs(args, outputs, inputs, pool)
    if args.report:
        _write_table(pool.report, args.report)
        print(f"rejections written to {args.report}")
    if args.write:
        write_records(pool.records(), args.write)
        print(f"{len(pool)} accepted records written to {args.write}")
    return EXIT_REJECTED if len(pool.report) else EXIT_OK


def _write_table(table, path) -> None:
    """A report as .parquet, .jsonl or (any other suffix) .csv, written atomically."""
    import io

    from kit.shards import atomic_write_bytes

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


def cmd_score(args) -> int:
    from kit.registry import SCORERS

    if args.scorer not in SCORERS:
        raise CliError(SCORERS.unknown(args.scorer))
    pool_real, out_real = os.path.realpath(args.pool), os.path.realpath(args.out)
    if pool_real == out_real or pool_real.startswith(out_real.rstrip(os.sep) + os.sep):
        raise CliError(f"--out {args.out} is or holds the pool file {args.pool}, an input: a score folder's files are "
                       "replaced as it is scored; score into another folder")
    options = parse_options(args.option, args.options)
    common = {"shard_size": args.shard_size, "on_mismatch": "overwrite" if args.overwrite else "error",
              "progress": not args.no_progress, "loader": _loader_options(args)}
    if args.ray:
        from kit.distributed import score_ray

        run = score_ray(args.pool, args.scorer, args.out, address=args.address, num_actors=args.num_actors,
                        cpus_per_actor=args.cpus_per_actor, gpus_per_actor=args.gpus_per_actor,
                        num_cpus=args.num_cpus, **common, **options)
    else:
        from kit.scoring import score_shards

        run = score_shards(args.pool, args.scorer, args.out, **common, **options)
    print(run)
    from kit.shards import read_manifest

    pool_info = read_manifest(args.out).get("pool", {})
    if pool_info.get("n_rejected"):
        reasons = ", ".join(f"{k} {v}" for k, v in pool_info.get("rejected_by_reason", {}).items())
        print(f"{pool_info['n_input']} records read, {pool_info['n_rejected']} rejected by the loader ({reasons}); "
              f"see them with: kit validate {args.pool}")
    print(f'read it with kit.load_scores("{args.out}")')
    return EXIT_OK


def _join_scores(paths, pool=None):
    """One table from several score files/folders, joined on the id (the first table's order)."""
    import pandas as pd

    import kit

    tables = []
    for path in paths:
        table = kit.load_scores(path)
        name = table.attrs.get("scorer_name")
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


def _selection_json(sel, extra: dict | None = None) -> dict:
    from kit.export import selection_manifest

    return {"ids": [str(i) for i in sel], "n_selected": len(sel), **selection_manifest(sel), **(extra or {})}


def cmd_select(args) -> int:
    import warnings

    import kit
    from kit.registry import SELECTORS

    if args.method not in SELECTORS:
        raise CliError(SELECTORS.unknown(args.method))
    from kit.export import format_of, manifest_path

    if args.export:
        format_of(args.export, args.format)
    if args.export and not args.pool:
        raise CliError("--export needs --pool (the records to write)")
    outputs = [args.out, args.export, manifest_path(args.export) if args.export else None]
    inputs = [("the pool file", args.pool), *(("a score table", p) for p in args.scores)]
    _check_outputs(args, outputs, inputs)
    pool = _load_pool(args.pool, args) if args.pool else None
    scores = _join_scores(args.scores, pool)
    options = parse_options(args.option, args.options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sel = kit.select(scores, args.method, args.budget, seed=args.seed, **options)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print(f"{args.method}: selected {len(sel)} of {len(scores)} samples (budget {sel.budget})")
    for note in sel.notes:
        print(f"  note: {note}")
    if pool is not None:
        _check_outputs(args, outputs, inputs, pool)
    if args.out:
        from kit.shards import atomic_write_bytes

        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, json.dumps(_selection_json(sel, {"scores": [str(p) for p in args.scores]}),
                                           indent=1).encode("utf-8"))
        print(f"selection written to {out}")
    if args.export:
        path = kit.export_subset(pool, sel, args.export, format=args.format, inputs=inputs)
        print(f"subset written to {path} (+ manifest)")
    return EXIT_OK


def cmd_curriculum(args) -> int:
    import kit
    from kit.quality.curriculum import MANIFEST_NAME

    inputs = [("the pool file", args.pool), *(("a score table", p) for p in args.scores)]
    _check_outputs(args, [Path(args.out) / MANIFEST_NAME], inputs)
    pool = _load_pool(args.pool, args)
    scores = _join_scores(args.scores, pool)
    options = parse_options(args.option, args.options)
    if (args.sizes is None) == (args.budget is None):
        raise CliError("give --sizes (samples per stage) or --budget (in all, split over the stages)")
    stages = kit.build_curriculum(scores, stages=args.stages, sizes=args.sizes, budget=args.budget, seed=args.seed,
                                  **options)
    for k, stage in enumerate(stages):
        print(f"stage {k}: {len(stage)} samples" + (f" ({stage.shortfall})" if stage.shortfall else ""))
    path = kit.export_curriculum(pool, stages, args.out, format=args.format, overwrite=args.overwrite, inputs=inputs)
    print(f"curriculum written to {Path(args.out)} ({MANIFEST_NAME}: {path.name})")
    return EXIT_OK


def _read_ids(path) -> list[str]:
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


def cmd_export(args) -> int:
    import kit
    from kit.export import format_of, manifest_path

    fmt = format_of(args.out, args.format)
    ids = _read_ids(args.ids)
    inputs = [("the pool file", args.pool), ("the id list", args.ids)]
    _check_outputs(args, [args.out, manifest_path(args.out)], inputs)
    pool = _load_pool(args.pool, args)
    meta = json.loads(Path(args.ids).read_text(encoding="utf-8")) if Path(args.ids).suffix == ".json" else {}
    meta = meta if isinstance(meta, dict) else {}
    path = kit.export_subset(pool, ids, args.out, format=fmt, method=meta.get("method"), params=meta.get("params"),
                             seed=meta.get("seed"), scores_hash=meta.get("scores_hash"), overwrite=args.overwrite,
                             inputs=inputs)
    extra = " + dataset_info.json entry " + repr(path.stem) if fmt == "llamafactory" else ""
    print(f"{len(ids)} samples written to {path} (+ manifest{extra})")
    return EXIT_OK


def cmd_finetune(args) -> int:
    """``kit finetune ...`` is ``python -m kit.finetune ...`` (the arguments pass through unchanged)."""
    from kit.finetune.__main__ import main as finetune_main

    return finetune_main(args.finetune_args)


def cmd_notebooks(args) -> int:
    import datetime as dt
    import time

    from kit.demo import ROOT, describe_pool, notebook_paths, run_notebook

    paths = notebook_paths(args.only)
    if not paths:
        raise CliError(f"no notebooks match {args.only}")
    params = parse_options(args.parameter, args.parameters)
    run_dir = (Path(args.out) if args.out else ROOT / "runs" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    pool = Path(args.pool).resolve() if args.pool else None
    print(f"{len(paths)} notebooks on {describe_pool(pool)} -> {run_dir}", flush=True)
    failed = 0
    for k, path in enumerate(paths, 1):
        print(f"[{k}/{len(paths)}] {path.name} ...", end=" ", flush=True)
        t0 = time.perf_counter()
        try:
            run_notebook(path, run_dir, pool, args.quick, parameters=params)
            print(f"ok in {time.perf_counter() - t0:.0f}s", flush=True)
        except Exception as exc:  # noqa: BLE001 - reported, the rest still run
            failed += 1
            last = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else repr(exc)
            print(f"FAILED in {time.perf_counter() - t0:.0f}s\n      {last}", flush=True)
    print(f"{len(paths) - failed} of {len(paths)} notebooks ran; executed copies in {run_dir}")
    return EXIT_ERROR if failed else EXIT_OK


# --------------------------------------------------------------------------- the parser

def _add_loader(p, with_images: bool = True) -> None:
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


def _add_overwrite(p) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace output files that exist (never an input of the command); atomically")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples of an epilog on their own lines."""


def build_parser() -> argparse.ArgumentParser:
    from kit.export import EXPORT_FORMATS, FORMATS

    examples, codes = __doc__.split("\n\n")[1:3]
    ap = argparse.ArgumentParser(prog="kit", description="Select multimodal instruction-tuning data: validate a "
                                 "pool, score it (resumably, locally or on Ray), select, build a curriculum, "
                                 "export, run the notebooks.",
                                 epilog="examples:\n" + examples + "\n\n" + codes.replace("``", "'")
                                 + "\n\nRun 'kit COMMAND --help' for a command's options.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    ap.add_argument("--version", action="version", version=f"kit {_version()}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="read and check a pool; report every rejected record",
                       formatter_class=_Formatter,
                       description="Read a LLaVA JSON / JSONL / parquet pool, check every record and print the "
                                   "summary and the rejected records. Exit code 3 when some were rejected.",
                       epilog="example: kit validate data_samples/pool.json --report rejected.csv")
    p.add_argument("pool", help="the pool file (.json, .jsonl or .parquet)")
    p.add_argument("--strict", action="store_true", help="stop at the first problem (exit code 1)")
    p.add_argument("--report", metavar="FILE", help="write every rejection (.csv, .jsonl or .parquet)")
    p.add_argument("--write", metavar="FILE", help="write the accepted records (.json, .jsonl or .parquet)")
    p.add_argument("--show", type=int, default=20, help="how many rejections to print (default 20)")
    p.add_argument("--quiet", action="store_true", help="print the summary line only")
    _add_overwrite(p)
    _add_loader(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("score", help="score a pool with any registered scorer, resumably (locally or on Ray)",
                       formatter_class=_Formatter,
                       description="Score every accepted sample with a registered scorer into a folder of parquet "
                                   "shards and a manifest. Run the same command again to resume an interrupted "
                                   "run: finished shards are kept. The pool is read as a stream.",
                       epilog="examples:\n  kit score data_samples/pool.json loss --out scores/loss\n"
                              "  kit score pool.jsonl image_text --out scores/it --option text=questions\n"
                              "  kit score pool.jsonl loss --out scores/loss --ray --address auto "
                              "--option device=cuda\nthen: kit.load_scores('scores/loss')")
    p.add_argument("pool", help="the pool file (.json, .jsonl or .parquet)")
    p.add_argument("scorer", help="a registered scorer: image_text, loss, rich, style, ...")
    p.add_argument("--out", required=True, metavar="DIR", help="the score folder (created, or resumed)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="a scorer option (value read as JSON when it parses); repeat for several")
    p.add_argument("--options", metavar="JSON", help="scorer options as a JSON object (or @file.json)")
    p.add_argument("--shard-size", type=int, default=None, help="samples per shard (default 1024; fixed per folder)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a folder that holds other scores (another scorer, options or pool)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("Ray Data")
    g.add_argument("--ray", action="store_true", help="score on Ray Data actors (a local instance unless --address)")
    g.add_argument("--address", default=None, help="a running Ray cluster (auto, ray://head:10001, ...)")
    g.add_argument("--num-actors", type=int, default=None, help="actor pool size (default: one per GPU or CPU)")
    g.add_argument("--cpus-per-actor", type=float, default=1, help="CPUs each actor reserves (default 1)")
    g.add_argument("--gpus-per-actor", type=float, default=None, help="default: 1 when the cluster has GPUs")
    g.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray instance")
    _add_loader(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("select", help="select a subset from score tables with any registered selector",
                       formatter_class=_Formatter,
                       description="Join one or more score tables (files or score folders) on the id and select "
                                   "BUDGET samples with a registered selector.",
                       epilog="examples:\n  kit select mmssr scores/rich scores/style --budget 0.3 "
                              "--pool data_samples/pool.json --out mmssr.json\n"
                              "  kit select diq scores/image_text scores/loss --budget 100 --option grid=3 --out diq.json")
    p.add_argument("method", help="a registered selector: random, mmssr, dis, dil, diq, cells, ...")
    p.add_argument("scores", nargs="+", help="score tables: parquet files or score folders")
    p.add_argument("--budget", type=parse_budget, required=True, help="a count (1000) or a fraction (0.3, 30%%)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a selector option; repeat for several")
    p.add_argument("--options", metavar="JSON", help="selector options as a JSON object (or @file.json)")
    p.add_argument("--pool", help="the pool (adds 'source'; needed for --export)")
    p.add_argument("--out", metavar="FILE", help="write the selection (ids and how they were chosen) as JSON")
    p.add_argument("--export", metavar="FILE", help="also write the selected records (with a manifest)")
    p.add_argument("--format", choices=sorted(EXPORT_FORMATS), default=None,
                   help="format of --export (default: from its suffix; a disagreeing one is refused; llamafactory "
                        "and swift are the trainers' formats)")
    _add_overwrite(p)
    _add_loader(p)
    p.set_defaults(func=cmd_select)

    p = sub.add_parser("curriculum", help="build and export the staged quality curriculum",
                       formatter_class=_Formatter,
                       description="Stages drawn toward high image-text score and high loss (arXiv 2407.00102), "
                                   "written as one file per stage plus curriculum.manifest.json.",
                       epilog="example: kit curriculum scores/image_text scores/loss --pool data_samples/pool.json "
                              "--stages 3 --budget 0.5 --out curriculum/")
    p.add_argument("scores", nargs="+", help="score tables holding image_text and a loss column")
    p.add_argument("--pool", required=True)
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--stages", type=int, default=3, help="number of stages (default 3)")
    p.add_argument("--sizes", type=parse_budget, default=None, help="samples per stage (count or fraction)")
    p.add_argument("--budget", type=parse_budget, default=None, help="samples in all, split over the stages")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--format", choices=sorted(FORMATS), default="llava", help="default llava")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="quality-space option (loss_col, bounds, ...); repeat for several")
    p.add_argument("--options", metavar="JSON")
    _add_overwrite(p)
    _add_loader(p)
    p.set_defaults(func=cmd_curriculum)

    p = sub.add_parser("export", help="write the records of a selection (LLaVA JSON, JSONL, parquet, "
                                      "LLaMA-Factory or ms-swift)",
                       formatter_class=_Formatter,
                       description="Write the samples named in IDS (a selection from kit select, a JSON list, or "
                                   "a text file with one id per line) with a manifest beside them. --format "
                                   "llamafactory writes LLaMA-Factory's ShareGPT JSON and its dataset_info.json "
                                   "entry, --format swift ms-swift's messages JSONL (absolute image paths).",
                       epilog="examples:\n  kit export data_samples/pool.json mmssr.json --out subset.jsonl\n"
                              "  kit export data_samples/pool.json mmssr.json --out lf/mmssr30.json --format "
                              "llamafactory\n  kit export data_samples/pool.json mmssr.json --out mmssr30.jsonl "
                              "--format swift")
    p.add_argument("pool")
    p.add_argument("ids", help="selection JSON, JSON list of ids, or one id per line")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--format", choices=sorted(EXPORT_FORMATS), default=None,
                   help="default: from the --out suffix (a disagreeing one is refused); llamafactory (.json) "
                        "and swift (.jsonl) must be named")
    _add_overwrite(p)
    _add_loader(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("finetune", help="align, fine-tune and evaluate (python -m kit.finetune; accelerate launch)",
                       add_help=False, formatter_class=_Formatter,
                       description="The fine-tuning commands of python -m kit.finetune: align, train, eval.",
                       epilog="examples:\n  kit finetune train data_samples/pool.json --out runs/ft --subset subset.json\n"
                              "  accelerate launch --multi_gpu --num_processes 4 -m kit finetune train POOL --out RUN "
                              "--option device=cuda\n"
                              "  kit finetune eval RUN --lmms-eval kit_easyvqa --limit 50\n"
                              "run 'kit finetune --help' for its options")
    p.add_argument("finetune_args", nargs=argparse.REMAINDER, help="align | train | eval and their options")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("notebooks", help="run the notebooks with papermill",
                       formatter_class=_Formatter,
                       description="Execute notebooks/[0-9][0-9]_*.ipynb in order into a run folder; each "
                                   "notebook gets the parameters its parameters cell declares.",
                       epilog="example: kit notebooks --quick --only 00 01 -p grid=4")
    p.add_argument("--pool", default=None, help="pool_path of every notebook (default: each notebook's own)")
    p.add_argument("--out", default=None, metavar="DIR", help="run_dir (default: runs/<timestamp>/)")
    p.add_argument("--quick", action="store_true", help="the notebooks' small parameter set")
    p.add_argument("--only", nargs="*", help="notebook prefixes, e.g. 00 01")
    p.add_argument("-p", "--parameter", action="append", metavar="KEY=VALUE", help="a notebook parameter")
    p.add_argument("--parameters", metavar="JSON", help="notebook parameters as a JSON object")
    p.set_defaults(func=cmd_notebooks)
    return ap


def _version() -> str:
    from kit import __version__

    return __version__


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def main(argv=None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if getattr(args, "command", None) == "finetune":  # everything after 'finetune' is python -m kit.finetune's
        args.finetune_args = unknown + args.finetune_args
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted (a score folder keeps its finished shards: run the same command to resume)",
              file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line, the traceback with --debug
        if args.debug:
            raise
        from kit.data import PoolFormatError, PoolValidationError
        from kit.shards import ScoreFolderError

        plain = (CliError, PoolFormatError, PoolValidationError, ScoreFolderError, FileNotFoundError, KeyError,
                 ValueError)
        kind = "" if isinstance(exc, plain) or type(exc).__name__ == "RayUnavailable" else f"{type(exc).__name__}: "
        print(f"kit {args.command}: error: {kind}{_message(exc)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
