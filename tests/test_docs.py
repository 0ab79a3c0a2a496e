"""docs/results.md's generated blocks (kit docs): the committed document says what the committed results say, and
the tables print the report's figures."""
import json
import shutil
from pathlib import Path

import pytest

from kit.eval import docs
from kit.eval import markdown as md

ROOT = Path(__file__).resolve().parents[1]


def test_the_results_document_says_what_the_committed_results_say():
    """Every generated block of docs/results.md (the testbed's tables, the sample-pool figures) is what kit docs
    prints from results/: a figure there is printed by the kit, never typed by hand."""
    text = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    assert docs.changed_blocks(text, ROOT / "results") == []
    for name in docs.REPORTS.values():   # the JSON it prints from names the command that wrote it
        assert json.loads((ROOT / "results" / name).read_text())["command"].startswith("kit report ")


def _report(mismatch_auc=0.829):
    part = {"auc_all": mismatch_auc, "auc_within_source": 0.791, "auc_cross_source": 0.874,
            "below_origin_all": 10 / 11, "below_origin_within_source": 5 / 6, "below_origin_cross_source": 1.0,
            "duplicate_auc": 0.234, "duplicate_median_percentile": 81.1}
    concept = {**part, "auc_all": 0.595}
    loss = {"loss_sum": {"wrong_costs_more": 6, "pairs": 11}, "loss_mean": {"wrong_costs_more": 7, "pairs": 11}}
    return {"command": "kit report data_samples/", "n_samples": 372, "defects": {"mismatch": 11, "none": 328},
            "mismatch_kinds": {"within_source": 6, "cross_source": 5},
            "image_text_default": {"image_text": part, "image_text_concept": concept},
            "image_text_skip_identical_images": {"image_text": {**part, "auc_all": 0.783},
                                                 "image_text_concept": concept},
            "loss": loss, "aligned_loss": loss, "aligned_loss_model": {"caption_loss": 0.4771},
            "loss_by_template": {"loss_sum": {"easyvqa/yn_color": {"flagged": 3, "pairs": 5},
                                              "easyvqa/yn_shape": {"flagged": 1, "pairs": 4},
                                              "easyvqa/word_color": {"flagged": 2, "pairs": 2}}},
            "aligned_loss_by_template": {"loss_sum": {"easyvqa/yn_color": {"flagged": 4, "pairs": 5},
                                                      "easyvqa/yn_shape": {"flagged": 2, "pairs": 4},
                                                      "easyvqa/word_color": {"flagged": 2, "pairs": 2}}},
            "quality_space": {"space": {"n_outside": 16, "n_points": 364, "loss_col": "loss_sum",
                                        "bounds": [0.01, 0.99], "grid": 3, "binning": "equal"},
                              "defects_per_cell": {"none": {"high s, low l": 30, "outside": 2},
                                                   "mismatch": {"high s, low l": 1}}},
            "image_gain": {"image_gain (gray)": {"scorer": "image gain, gray reference", "in_sample": False,
                                                 "auc_all": 0.7, "auc_within_source": 0.6, "auc_cross_source": None,
                                                 "below_origin_all": 6 / 11}},
            "style": {"macro_f1": 0.9716, "exact": 0.9570},
            "rich": {"by": {"all": {"n": 372, "mean_spearman": 0.3681, "style_f1_micro": 0.871,
                                    "style_f1_macro": 0.887}},
                     "spearman": {"spatial": 0.5, "activity": None},
                     "template_held_out": {"folds": 5, "mean_spearman": 0.262, "style_f1_micro": 0.721,
                                           "style_f1_macro": 0.635},
                     "training_cv": {"folds": 5, "groups": "template", "mean_spearman": 0.481}}}


def test_report_tables_print_the_reports_figures():
    report = _report()
    text = "\n".join(md.image_text_markdown(report))
    assert "| stand-in (`image_text`) | 0.829 | 0.791 | 0.874 | 10 of 11; 5 of 6, 5 of 5 | 0.234 | 81 |" in text
    assert "0.783" in text and text.count("concept bottleneck") == 1   # skip_identical_images: only what it changes
    loss = "\n".join(md.loss_markdown(report, report))
    assert "| 6 / 7 | 6 / 7 | 55% |" in loss and "caption loss 0.477" in loss
    templates = "\n".join(md.loss_templates_markdown(report))
    assert "| all `yn_*` | 9 | 4 | 6 |" in templates and "| `easyvqa/word_color` | 2 | 2 | 2 |" in templates
    assert "all `word_*`" not in templates                                # a group of one template is its own row
    space = "\n".join(md.quality_space_markdown(report))
    assert space.startswith("16 of the 364 samples") and "the other 8 of the pool's 372" in space
    assert "| mismatch | 1 | 0 |" in space
    assert "| image gain, gray reference: `image_gain` | no | 0.700 | 0.600 | n/a | 6 of 11 |" in \
        "\n".join(md.image_gain_markdown(report))
    assert "| 0.972 | 95.7% |" in "\n".join(md.style_markdown(report))
    rich = "\n".join(md.rich_markdown(report))
    assert "| all samples | 372 | 0.368 | 0.871 | 0.887 |" in rich and "(5 folds; recorded at training) |  | 0.262" in rich
    assert "| 0.50 | n/a |" in rich and "grouped by template (recorded at training) |  | 0.481" in rich


def _document(tmp_path):
    """A copy of the committed document and results, with the report JSON replaced by a made-up one."""
    shutil.copytree(ROOT / "results", tmp_path / "results")
    for name in docs.REPORTS.values():
        (tmp_path / "results" / name).write_text(json.dumps(_report()))
    document = tmp_path / "results.md"
    shutil.copy(ROOT / "docs" / "results.md", document)
    return document, tmp_path / "results"


def test_kit_docs_rewrites_only_the_blocks_whose_results_moved(tmp_path, capsys):
    from kit.cli import main

    document, results = _document(tmp_path)
    before = document.read_text(encoding="utf-8")
    assert main(["docs", str(document), "--results", str(results), "--check"]) == 1
    assert "image-text" in capsys.readouterr().err
    assert main(["docs", str(document), "--results", str(results)]) == 0
    after = document.read_text(encoding="utf-8")
    assert "testbed-results" not in capsys.readouterr().out            # its tables did not move
    block = after.split(docs._markers("image-text")[0], 1)[1].split(docs._markers("image-text")[1], 1)[0]
    assert "| 0.829 |" in block and "| 0.783 |" in block
    # the authors' text around the blocks is kept as it was
    outside = [docs.render(before, results).split(b.begin)[0] for b in docs.blocks()]
    assert all(after.startswith(head) for head in outside) and after.endswith(before.rsplit("-->", 1)[1])
    assert main(["docs", str(document), "--results", str(results), "--check"]) == 0
    (results / docs.REPORTS["experiment"]).write_text(json.dumps(_report(mismatch_auc=0.5)))
    assert docs.changed_blocks(after, results) == []                   # its image-text part is not printed


def test_a_document_without_a_blocks_markers_is_refused(tmp_path):
    text = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    begin, end = docs._markers("rich")
    with pytest.raises(ValueError, match="rich"):
        docs.render(text.replace(begin, ""), ROOT / "results")
    (tmp_path / "report").mkdir()
    with pytest.raises(FileNotFoundError, match="data_samples.json"):
        docs.render(text, tmp_path)


def test_easyvqa_ablation_tables_print_the_runs_figures():
    """The easy-vqa ablation's summary: mean ± sd over seeds, the range, per question type, and the verdict against
    random beyond the pooled sd; the order table: the curriculum in stage order minus the same samples shuffled."""
    import pandas as pd

    from kit.experiments.ablation_markdown import order_markdown, summary_markdown

    rows = []
    for seed, (rand, dis, cur, shu) in enumerate([(0.30, 0.45, 0.20, 0.30), (0.32, 0.43, 0.22, 0.34),
                                                  (0.31, 0.44, 0.24, 0.32)]):
        for method, acc in [("random", rand), ("dis", dis), ("curriculum", cur), ("curriculum_shuffled", shu)]:
            rows.append({"method": method, "budget": "0.1", "seed": seed, "n": 200, "accuracy": acc,
                         "accuracy_colour": acc + 0.1, "accuracy_shape": acc - 0.1, "accuracy_yes/no": 0.5,
                         "/FULL": acc * 200, ">Rand": 3.0 if method == "dis" else 0.0, "defect_share": 0.25})
        rows.append({"method": "full", "budget": "full", "seed": seed, "n": 2000, "accuracy": 0.5,
                     "accuracy_colour": 0.6, "accuracy_shape": 0.4, "accuracy_yes/no": 0.5, "/FULL": 100.0,
                     ">Rand": float("nan"), "defect_share": 0.3})
    table = pd.DataFrame(rows)
    text = summary_markdown(table)
    lines = text.splitlines()
    assert lines[2].startswith("| random | 10% | 3 | 200 | 0.310 ± 0.010 | 0.300–0.320 | 0.410 / 0.210 / 0.500 |")
    assert "| dis | 10% | 3 | 200 | 0.440 ± 0.010 | 0.430–0.450 |" in text and "| 3.00 | 0.250 | beats random |" in text
    assert "| curriculum | 10% |" in text and "loses to random" in text
    assert lines[-1].startswith("| full | full | 3 | 2000 | 0.500 ± 0.000 |")
    assert "| 10% | 3 | -0.100 ± 0.020 |" in order_markdown(table)
