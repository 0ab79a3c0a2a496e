"""Subsets for the trainers people use: LLaMA-Factory's ShareGPT JSON and ms-swift's messages JSONL.

Both take a sample as ``messages`` (``{"role", "content"}`` turns: an optional ``system`` turn first, then
``user`` and ``assistant`` alternating, ending with ``assistant``) and ``images`` (file paths, one per
``<image>`` placeholder in the turns, in order). A LLaVA record maps onto that turn by turn (``human`` ->
``user``, ``gpt`` -> ``assistant``, ``system`` -> ``system``; the texts, ``<image>`` tokens included, are kept
as they are), and its images become their **absolute** paths (the pool's resolved ones), so the trainer finds
them from any working directory (LLaMA-Factory joins a relative path to its ``media_dir``, ms-swift to the
working directory).

==============  =======  ===================================================================================
format          file     what is written
==============  =======  ===================================================================================
``llamafactory``  ``.json``  a JSON list of ``{"messages", "images"}`` and, beside it, ``dataset_info.json`` with
                         an entry named after the file's stem (``formatting: sharegpt``, the ``messages`` and
                         ``images`` columns, the ``role``/``content``/``user``/``assistant``/``system`` tags);
                         an existing ``dataset_info.json`` keeps its other entries. Train with
                         ``dataset_dir: <folder>`` and ``dataset: <stem>``.
``swift``       ``.jsonl``  one ``{"messages", "images"}`` object per line (ms-swift's standard format); train
                         with ``--dataset <file>``.
==============  =======  ===================================================================================

:func:`check_record` checks a written record against the library's documented schema (LLaMA-Factory's
``SharegptDatasetConverter`` and multimodal plugin, ms-swift's standard dataset keys), naming the sample;
:func:`read_export` reads an export back into LLaVA records (ids from its manifest), which
:func:`kit.load_pool` reads (``allow_absolute_paths=True``).
"""
from __future__ import annotations

import json
from pathlib import Path

TRAINER_FORMATS = {"llamafactory": ".json", "swift": ".jsonl"}
ROLES = {"human": "user", "gpt": "assistant", "system": "system"}
FROM = {v: k for k, v in ROLES.items()}
IMAGE = "<image>"
DATASET_INFO = "dataset_info.json"
SWIFT_KEYS = ("messages", "rejected_response", "label", "images", "videos", "audios", "tools", "objects")


def to_messages(sid, conversations: list[dict], images: list[str]) -> dict:
    """One sample as ``{"messages", "images"}``; ``ValueError`` naming ``sid`` for a turn of another role."""
    messages = []
    for k, turn in enumerate(conversations):
        role = ROLES.get(turn.get("from"))
        if role is None:
            raise ValueError(f"sample {sid!r}: turn {k} is from {turn.get('from')!r}; a trainer export maps "
                             f"{sorted(ROLES)} only")
        messages.append({"role": role, "content": str(turn.get("value", ""))})
    return {"messages": messages, "images": [str(p) for p in images]}


def trainer_records(pool, ids, format: str) -> list[dict]:
    """The records of ``ids`` in ``format``, each checked against the library's schema (:func:`check_record`)."""
    if format not in TRAINER_FORMATS:
        raise ValueError(f"unknown trainer format {format!r}; use one of {sorted(TRAINER_FORMATS)}")
    table = pool.table.loc[list(ids)]
    out = []
    for sid, conversations, images in zip(table.index, table["conversations"], table["image_paths"]):
        record = to_messages(sid, conversations, images)
        check_record(record, format, sid)
        out.append(record)
    return out


def check_record(record: dict, format: str, sid=None) -> None:
    """Raise ``ValueError`` (naming the sample) where ``record`` breaks the documented schema of ``format``.

    Both: ``messages`` a list of ``{"role", "content"}`` with string contents, an optional ``system`` turn
    first, then ``user``/``assistant`` alternating from ``user`` and ending with ``assistant``; ``images`` a
    list of path strings, as many as ``<image>`` placeholders in the turns. LLaMA-Factory skips a record whose
    roles do not alternate or whose turn count is odd (``SharegptDatasetConverter``) and stops on a placeholder
    count that differs from the images (its multimodal plugin); ms-swift takes only its standard keys.
    """
    who = f"sample {sid!r}" if sid is not None else "record"
    if format not in TRAINER_FORMATS:
        raise ValueError(f"unknown trainer format {format!r}; use one of {sorted(TRAINER_FORMATS)}")
    extra = set(record) - ({"messages", "images"} if format == "llamafactory" else set(SWIFT_KEYS))
    if extra:
        raise ValueError(f"{who}: keys {sorted(extra)} are not in {format}'s schema")
    messages, images = record.get("messages"), record.get("images", [])
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{who}: 'messages' must be a non-empty list of turns")
    if not all(isinstance(m, dict) and set(m) == {"role", "content"} and isinstance(m["content"], str)
               for m in messages):
        raise ValueError(f"{who}: every turn must be {{'role': ..., 'content': <text>}}")
    roles = [m["role"] for m in messages]
    body = roles[1:] if roles[0] == "system" else roles
    if not body or len(body) % 2 or any(r != ("user", "assistant")[k % 2] for k, r in enumerate(body)):
        raise ValueError(f"{who}: turns must alternate user/assistant from user and end with assistant "
                         f"(after an optional system turn), not {roles}")
    if not isinstance(images, list) or not all(isinstance(p, str) and p for p in images):
        raise ValueError(f"{who}: 'images' must be a list of paths")
    placeholders = sum(m["content"].count(IMAGE) for m in messages)
    if placeholders != len(images):
        raise ValueError(f"{who}: {placeholders} {IMAGE} placeholders for {len(images)} images")


def dataset_info_entry(path) -> dict:
    """LLaMA-Factory's ``dataset_info.json`` entry for the ShareGPT file ``path`` (named after its stem)."""
    return {"file_name": Path(path).name, "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                     "system_tag": "system"}}


def manifest_path(path) -> Path:
    """The manifest written beside an export ``path`` (``NAME.manifest.json``); re-exported by :mod:`kit.export`."""
    path = Path(path)
    return path.with_name(path.stem + ".manifest.json")


def merged_dataset_info(path, overwrite: bool = True) -> dict:
    """``dataset_info.json`` beside ``path`` with this export's entry added (other entries kept); an entry of the
    same name for another file is replaced only with ``overwrite``."""
    from kit.outputs import OutputError

    info_path = Path(path).with_name(DATASET_INFO)
    info = {}
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"{info_path} is not valid JSON ({exc}); fix or remove it") from None
        if not isinstance(info, dict):
            raise ValueError(f"{info_path} must hold a JSON object of dataset entries")
    name, entry = Path(path).stem, dataset_info_entry(path)
    if name in info and info[name] != entry and not overwrite:
        raise OutputError(f"{info_path} has an entry {name!r} of another dataset: give --overwrite to replace it, "
                          "or export under another name")
    info[name] = entry
    return info


def read_export(path) -> list[dict]:
    """An export in either format read back as LLaVA records (``id`` from its manifest, ``image`` the absolute
    path, or a list of them, ``conversations``); every record is checked against the schema first."""
    path = Path(path)
    manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    format = manifest.get("format")
    if format not in TRAINER_FORMATS:
        raise ValueError(f"{path}: its manifest says format {format!r}, not one of {sorted(TRAINER_FORMATS)}")
    text = path.read_text(encoding="utf-8")
    records = json.loads(text) if format == "llamafactory" else [json.loads(line) for line in text.splitlines()
                                                                  if line.strip()]
    if len(records) != len(manifest["ids"]):
        raise ValueError(f"{path}: {len(records)} records for the manifest's {len(manifest['ids'])} ids")
    out = []
    for sid, record in zip(manifest["ids"], records):
        check_record(record, format, sid)
        images = record.get("images", [])
        llava = {"id": sid, "conversations": [{"from": FROM[m["role"]], "value": m["content"]}
                                              for m in record["messages"]]}
        if images:
            llava["image"] = images[0] if len(images) == 1 else images
        out.append(llava)
    return out


__all__ = ["TRAINER_FORMATS", "to_messages", "trainer_records", "check_record", "dataset_info_entry",
           "manifest_path", "merged_dataset_info", "read_export", "DATASET_INFO"]
