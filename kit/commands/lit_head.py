"""Train the image-text stand-in's LiT head (kit.models.lit_head) on easy-vqa, or check a saved head's pair AUC on
held-out easy-vqa pairs (own text vs another image's text); kit.quality.image_text.lit_training says how.

examples:
  kit lit-head train --split train --slice reserved --out kit/weights/lit_head_easyvqa.pt   # the shipped head
  kit lit-head eval --split test --n 500

Also ``python -m kit.quality.image_text.lit_training ...``.
"""
from __future__ import annotations

import json


def add_arguments(ap) -> None:
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the head and save it")
    t.add_argument("--split", default="train", choices=["train", "test"])
    t.add_argument("--slice", default="reserved", choices=["reserved", "dev", "pool", "all"],
                   help="part of the train split (kit.pools.easyvqa.TRAIN_SLICES); 'all' = the whole split")
    t.add_argument("--eval-split", default="test", choices=["train", "test"],
                   help="held-out pair AUC on the first --eval-n images of this split, saved with the head")
    t.add_argument("--eval-n", type=int, default=500)
    t.add_argument("--out", required=True, metavar="HEAD.pt",
                   help="where to write the head (in a checkout, kit/weights/lit_head_easyvqa.pt replaces the "
                        "shipped one)")
    t.add_argument("--steps", type=int, default=400)
    t.add_argument("--batch-size", type=int, default=256)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--limit", type=int, default=None, help="use only the first N images of the split")
    t.add_argument("--exclude-pool", default="data_samples/pool.json",
                   help="leave out easy-vqa images that this pool uses (a missing file is an error; `none` leaves nothing out)")
    t.add_argument("--device", default="cpu")
    e = sub.add_parser("eval", help="pair AUC of a saved head on an easy-vqa split")
    e.add_argument("--head", default=None, help="a saved head (default: the shipped one)")
    e.add_argument("--split", default="test", choices=["train", "test"])
    e.add_argument("--n", type=int, default=1000)
    e.add_argument("--device", default="cpu")


def run(args) -> int:
    from kit.models.lit_head import HEAD_PATH, load_head
    from kit.quality.image_text.lit_training import build_training_set, encode_training_set, pair_auc, train

    if args.cmd == "train":
        _, meta = train(args.split, args.out, args.steps, args.batch_size, args.seed,
                        None if args.exclude_pool.lower() == "none" else args.exclude_pool,
                        args.limit, args.device, slice=None if args.slice == "all" else args.slice,
                        eval_split=args.eval_split, eval_n=args.eval_n, command=getattr(args, "command_line", None))
        shown = {k: v for k, v in meta.items() if k != "image_ids"}
        print(json.dumps(dict(shown, n_image_ids=len(meta["image_ids"])), indent=1))
    else:
        head = load_head(args.head, "cpu")
        paths, texts, owner, labels, info = build_training_set(args.split, limit=args.n, seed=1, slice=None)
        image_feats, text_feats = encode_training_set(paths, texts, args.device)
        info.pop("image_ids")
        print(json.dumps({"head": str(args.head or HEAD_PATH), "trained_on": head.meta.get("split"), **info,
                          "pair_auc": round(pair_auc(head, image_feats, text_feats, owner, labels), 4)}, indent=1))
    return 0
