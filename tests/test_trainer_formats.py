"""Exports for LLaMA-Factory (ShareGPT + dataset_info.json) and ms-swift (messages JSONL): the documented schema,
a round trip through the kit's reader, and, where the library is installed beside the kit, its own loader."""
import json
from pathlib import Path

import pytest

import kit
from kit import cli
from kit.trainer_formats import DATASET_INFO, check_record, read_export

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "data_samples" / "pool.json"


@pytest.fixture(scope="module")
def pool():
    return kit.load_pool(POOL)


@pytest.fixture(scope="module")
def ids(pool):
    multi = [i for i in pool.table.index if len(pool.table.loc[i, "conversations"]) > 2][:3]
    return multi + [i for i in pool.table.index if i not in multi][:9]


@pytest.fixture(scope="module")
def selection(ids, tmp_path_factory):
    path = tmp_path_factory.mktemp("sel") / "sel.json"
    path.write_text(json.dumps({"ids": ids, "method": "hand", "seed": 3}))
    return path


def _export(tmp_path, selection, name, fmt, *more):
    out = tmp_path / name
    assert cli.main(["export", str(POOL), str(selection), "--out", str(out), "--format", fmt, *more]) == cli.EXIT_OK
    return out


@pytest.mark.parametrize("fmt,name", [("llamafactory", "lf/mmssr30.json"), ("swift", "mmssr30.jsonl")])
def test_an_export_round_trips_through_the_kits_reader(pool, ids, selection, tmp_path, fmt, name):
    out = _export(tmp_path, selection, name, fmt)
    text = out.read_text()
    rows = json.loads(text) if fmt == "llamafactory" else [json.loads(line) for line in text.splitlines()]
    assert len(rows) == len(ids) and all(set(r) == {"messages", "images"} for r in rows)
    first = rows[0]
    assert first["messages"][0]["role"] == "user" and first["messages"][1]["role"] == "assistant"
    assert all(Path(p).is_absolute() and Path(p).is_file() for r in rows for p in r["images"])
    manifest = json.loads(out.with_name(out.stem + ".manifest.json").read_text())
    assert manifest["format"] == fmt and manifest["ids"] == ids and manifest["method"] == "hand"

    back = read_export(out)
    assert [r["id"] for r in back] == ids
    for rec in back:
        assert rec["conversations"] == pool.table.loc[rec["id"], "conversations"]
        assert [rec["image"]] == pool.table.loc[rec["id"], "image_paths"]
    again = tmp_path / "again" / "pool.json"
    again.parent.mkdir()
    again.write_text(json.dumps(back))
    reread = kit.load_pool(again, allow_absolute_paths=True)
    assert len(reread.table) == len(ids) and not len(reread.report)
    assert reread.table["image_paths"].to_dict() == pool.table.loc[ids, "image_paths"].to_dict()


def test_llamafactory_gets_a_dataset_info_entry_beside_its_file(selection, tmp_path, capsys):
    info_path = tmp_path / DATASET_INFO
    info_path.write_text(json.dumps({"other": {"file_name": "other.json"}}))
    _export(tmp_path, selection, "mmssr30.json", "llamafactory")
    assert "dataset_info.json entry 'mmssr30'" in capsys.readouterr().out
    info = json.loads(info_path.read_text())
    assert info["other"] == {"file_name": "other.json"}                    # other entries kept
    entry = info["mmssr30"]
    assert entry["file_name"] == "mmssr30.json" and entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "messages", "images": "images"}
    assert entry["tags"] == {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                             "assistant_tag": "assistant", "system_tag": "system"}
    # the same name for another file is refused without --overwrite, and nothing is written
    info["mmssr30"]["file_name"] = "elsewhere.json"
    info_path.write_text(json.dumps(info))
    for name in ("mmssr30.json", "mmssr30.manifest.json"):
        (tmp_path / name).unlink()
    argv = ["export", str(POOL), str(selection), "--out", str(tmp_path / "mmssr30.json"), "--format", "llamafactory"]
    assert cli.main(argv) == cli.EXIT_ERROR
    assert "entry 'mmssr30' of another dataset" in capsys.readouterr().err
    assert not (tmp_path / "mmssr30.json").exists()
    assert cli.main([*argv, "--overwrite"]) == cli.EXIT_OK
    assert json.loads(info_path.read_text())["mmssr30"]["file_name"] == "mmssr30.json"


def test_a_trainer_format_keeps_its_suffix(selection, tmp_path, capsys):
    argv = ["export", str(POOL), str(selection), "--out", str(tmp_path / "x.jsonl"), "--format", "llamafactory"]
    assert cli.main(argv) == cli.EXIT_ERROR
    assert "name it x.json" in capsys.readouterr().err and not list(tmp_path.iterdir())


@pytest.mark.parametrize("record,message", [
    ({"messages": [{"role": "user", "content": "<image>Hi"}], "images": ["/a.png"]}, "alternate"),
    ({"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "<image>y"}],
      "images": ["/a.png"]}, "alternate"),
    ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "x"}],
      "images": ["/a.png"]}, "0 <image> placeholders for 1 images"),
    ({"messages": [{"role": "user", "content": "<image>Hi"}, {"role": "assistant", "content": 3}],
      "images": ["/a.png"]}, "'content': <text>"),
    ({"messages": [{"role": "user", "content": "<image>Hi"}, {"role": "assistant", "content": "x"}],
      "images": ["/a.png"], "id": "s1"}, "not in llamafactory's schema"),
])
def test_the_schema_check_names_the_sample(record, message):
    with pytest.raises(ValueError, match=message) as err:
        check_record(record, "llamafactory", "s1")
    assert "'s1'" in str(err.value)
    ok = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "<image>Hi"},
                       {"role": "assistant", "content": "x"}], "images": ["/a.png"]}
    for fmt in ("llamafactory", "swift"):
        check_record(ok, fmt, "s1")


def test_llamafactorys_own_loader_reads_the_export(selection, ids, tmp_path):
    """LLaMA-Factory's dataset_info parser and ShareGPT converter (installed beside the kit only in a venv of its
    own: it pins other transformers/peft/datasets releases than the kit's)."""
    parser = pytest.importorskip("llamafactory.data.parser")
    converter = pytest.importorskip("llamafactory.data.converter")
    from llamafactory.hparams import DataArguments

    out = _export(tmp_path, selection, "mmssr30.json", "llamafactory")
    (attr,) = parser.get_dataset_list(["mmssr30"], str(tmp_path))
    assert attr.load_from == "file" and attr.formatting == "sharegpt" and attr.images == "images"
    data_args = DataArguments(dataset_dir=str(tmp_path), media_dir=str(tmp_path))
    convert = converter.get_dataset_converter("sharegpt", attr, data_args)
    rows = json.loads(out.read_text())
    got = [convert(r) for r in rows]
    assert all(g["_prompt"] and g["_response"] for g in got)               # no record skipped as abnormal
    assert [len(g["_prompt"]) + len(g["_response"]) for g in got] == [len(r["messages"]) for r in rows]
    assert all(g["_images"] == r["images"] for g, r in zip(got, rows))


def test_ms_swifts_own_loader_reads_the_export(selection, ids, tmp_path):
    """ms-swift's load_dataset on the JSONL (installed beside the kit only in a venv of its own)."""
    pytest.importorskip("swift")
    try:
        from swift.dataset import load_dataset         # ms-swift 4
    except ImportError:
        from swift.llm import load_dataset             # ms-swift 3
    out = _export(tmp_path, selection, "mmssr30.jsonl", "swift")
    train, _ = load_dataset([str(out)], split_dataset_ratio=0.0, num_proc=1)
    assert len(train) == len(ids)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for got, row in zip(train, rows):
        assert got["messages"] == row["messages"]
        assert [i["path"] if isinstance(i, dict) else i for i in got["images"]] == row["images"]
