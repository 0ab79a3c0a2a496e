"""Evaluation through lmms-eval: the kit's local tasks and their protocol pins (always), and, where lmms-eval is
installed (the optional 'eval' extra), ``kit finetune eval RUN --lmms-eval ...`` offline on a micro model, whose
answers must be the kit's own evaluation's."""
import importlib
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

import kit.finetune as ft
from kit import cli
from kit.finetune.lmms.tasks import TASKS, doc_to_target, doc_to_visual, process_generation, protocol, write_tasks

ROOT = Path(__file__).resolve().parents[1]


def _load_yaml(path: Path) -> dict:
    """A task YAML as lmms-eval reads it, ``!function`` resolved to the named function."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def function(loader, node):
        module, name = loader.construct_scalar(node).rsplit(".", 1)
        return getattr(importlib.import_module(module), name)

    Loader.add_constructor("!function", function)
    return yaml.load(path.read_text(), Loader=Loader)


def test_the_kit_tasks_pin_their_protocol(tmp_path):
    folder = write_tasks(tmp_path, ["kit_easyvqa", "kit_easyvqa_gen"])
    rank, gen = (_load_yaml(folder / f"{t}.yaml") for t in ("kit_easyvqa", "kit_easyvqa_gen"))
    data = Path(rank["dataset_kwargs"]["data_files"]["test"])
    assert data.is_absolute() and data == Path(gen["dataset_kwargs"]["data_files"]["test"]) == folder / "kit_easyvqa.jsonl"
    assert rank["output_type"] == "multiple_choice" and rank["target_delimiter"] == "" and rank["test_split"] == "test"
    assert rank["metric_list"] == [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]
    assert gen["output_type"] == "generate_until" and gen["generation_kwargs"] == {
        "max_new_tokens": 6, "until": ["\n"], "do_sample": False, "temperature": 0}
    assert rank["metadata"]["kit_protocol"] == protocol("kit_easyvqa")
    assert gen["metadata"]["kit_protocol"]["questions"] == {"set": "kit.finetune.easyvqa_eval_set", "split": "test",
                                                            "per_type": 600, "seed": 0, "order": "interleaved by type"}
    assert not (folder / "kit_testbed.yaml").exists()               # only the tasks asked for

    docs = [json.loads(line) for line in data.read_text().splitlines()]
    assert len(docs) == 1800 and [d["type"] for d in docs[:6]] == ["colour", "shape", "yes/no"] * 2
    first50 = [d["type"] for d in docs[:50]]
    assert (first50.count("colour"), first50.count("shape"), first50.count("yes/no")) == (17, 17, 16)
    held_out = ft.easyvqa_eval_set(per_type=600, seed=0)
    assert {d["qid"] for d in docs} == set(held_out.index)          # the kit's own evaluation set, reordered
    doc = docs[1]
    assert rank["doc_to_text"](doc) == held_out.loc[doc["qid"], "question"]
    assert rank["doc_to_choice"](doc)[doc_to_target(doc)] == doc["answer"] and len(doc["choices"]) == 13
    (image,) = doc_to_visual(doc)
    assert image.mode == "RGB"
    assert process_generation(doc, [doc["answer"].lower() + ". "]) == {"exact_match": 1.0}
    assert process_generation(doc, ["Nothing"]) == {"exact_match": 0.0}
    with pytest.raises(ValueError, match="unknown kit task 'kit_mme'"):
        write_tasks(tmp_path / "other", ["kit_mme"])
    assert set(TASKS) == {"kit_easyvqa", "kit_easyvqa_gen", "kit_testbed"}


def test_lmms_eval_is_an_optional_extra_registered_as_a_model():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any("lmms" in d for d in meta["dependencies"] + meta["optional-dependencies"]["dev"])
    assert any(d.startswith("lmms-eval") for d in meta["optional-dependencies"]["eval"])
    assert meta["entry-points"]["lmms_eval.models"] == {"kit": "kit.finetune.lmms.model:manifest"}


def test_without_lmms_eval_the_command_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "lmms_eval", None)             # as if not installed
    argv = ["finetune", "eval", "runs/none", "--lmms-eval", "kit_easyvqa", "--limit", "5"]
    assert cli.main(argv) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "pip install -e '.[eval]'" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- with lmms-eval installed

@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, micro_base):
    """A micro LLaVA fine-tuned for a few steps: a kit run folder with model/."""
    pytest.importorskip("lmms_eval")
    import kit
    from tests.support.micro import PRESET

    root = tmp_path_factory.mktemp("lmms")
    base = micro_base
    pool = kit.load_pool(ROOT / "data_samples" / "pool.json")
    ids = [i for i in pool.table.index if i.startswith("ev_")][:12]
    run = ft.finetune(pool, ids, preset=PRESET, base=base, out=root / "run", seed=0, progress=False, epochs=2.0)
    return run.out


def _kit_predictions(run_folder, qids):
    model, processor = ft.load_model(run_folder)
    questions = ft.easyvqa_eval_set(per_type=600, seed=0).loc[qids]
    return model, processor, questions, ft.evaluate(model, processor, questions)


def test_kit_finetune_eval_runs_lmms_eval_offline_and_agrees_with_the_kits_ranking(run_folder, capsys, monkeypatch):
    monkeypatch.setenv("KIT_CACHE", str(run_folder.parent / "cache"))   # the task folder goes there
    argv = ["finetune", "eval", str(run_folder), "--lmms-eval", "kit_easyvqa", "--limit", "50", "--log-samples"]
    assert cli.main(argv) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "|kit_easyvqa|" in out and "|acc   |" in out and f"results written to {run_folder / 'eval'}" in out
    result = json.loads((run_folder / "eval" / "lmms_eval-kit_easyvqa-limit50.json").read_text())
    assert result["kit_protocol"]["tasks"]["kit_easyvqa"] == protocol("kit_easyvqa")
    assert result["kit_protocol"]["lmms_model"] == "kit" and result["kit_protocol"]["limit"] == 50
    samples = [json.loads(line) for line in
               (run_folder / "eval" / "lmms_eval-kit_easyvqa-limit50.samples.jsonl").read_text().splitlines()]
    assert len(samples) == 50
    qids = [s["doc"]["qid"] for s in samples]
    _, _, questions, own = _kit_predictions(run_folder, qids)
    choices = [a for a in ft.ANSWERS]
    lmms_pred = [choices[int(np.argmin([r[0] for r in s["filtered_resps"]]))] for s in samples]
    assert lmms_pred == own.table["prediction"].tolist()             # the same answer for every question
    for s, (_, row) in zip(samples, own.table.iterrows()):            # and the same scores: -log-likelihood
        np.testing.assert_allclose([r[0] for r in s["filtered_resps"]], -row[list(choices)].to_numpy(dtype=float),
                                   rtol=1e-4, atol=1e-4)
    assert abs(result["results"]["kit_easyvqa"]["acc,none"] - own.summary["accuracy"]) < 1e-12


def test_the_generation_task_scores_the_kits_greedy_answers(run_folder, capsys, monkeypatch):
    monkeypatch.setenv("KIT_CACHE", str(run_folder.parent / "cache"))
    from kit.finetune.evaluate import generate_answers, says
    from kit.finetune.lmms import run_lmms_eval

    results, table = run_lmms_eval(run_folder, "kit_easyvqa_gen", limit=6, log_samples=True)
    assert "kit_easyvqa_gen" in table
    samples = results["samples"]["kit_easyvqa_gen"]
    model, processor, questions, _ = _kit_predictions(run_folder, [s["doc"]["qid"] for s in samples])
    own = generate_answers(model, processor, questions)
    assert [s["filtered_resps"][0].strip() for s in samples] == [g.split("\n")[0].strip() for g in own]
    mean = np.mean([says(g, a) for g, a in zip(own, questions["answer"])])
    assert results["results"]["kit_easyvqa_gen"]["exact_match,none"] == pytest.approx(mean)
