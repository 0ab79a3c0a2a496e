"""The report command (kit report, kit.eval.report): its plumbing, on the fast sections."""
import json
from pathlib import Path

from kit.eval import report

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data_samples"


def test_report_prints_and_writes_the_figures_it_computes(tmp_path):
    lines = []
    out = report.report(DATA, sections=["style"], json_path=tmp_path / "f.json", stream=lines.append)
    text = "\n".join(lines)
    assert "372 samples" in text and "within_source 6" in text and "cross_source 5" in text
    assert "IN-SAMPLE" in text and "kit report" in text
    saved = json.loads((tmp_path / "f.json").read_text())
    assert saved["style"] == out["style"] and 0.9 <= saved["style"]["macro_f1"] <= 1
    assert saved["mismatch_kinds"] == {"within_source": 6, "cross_source": 5}
    assert saved["defects"]["mismatch"] == 11 and "image_text_default" not in saved


def test_unknown_sections_are_refused(capsys):
    from kit.cli import EXIT_USAGE, main

    assert main(["report", str(DATA), "--only", "style,colour"]) == EXIT_USAGE
    assert "unknown sections ['colour']" in capsys.readouterr().err


def test_recorded_paths_name_the_pool_wherever_the_kit_runs(tmp_path):
    """A head's metadata records pools relative to where it was trained (a checkout's root); the report matches
    them by their trailing parts, so a copy of data_samples/ outside the checkout is still the held-out pool."""
    here = (DATA / "pool.json").resolve()
    copy = tmp_path / "data_samples" / "pool.json"
    assert report._same_pool("data_samples/pool.json", here)
    assert report._same_pool("data_samples/pool.json", copy)
    assert report._same_pool(str(DATA / "pool.json"), here) and not report._same_pool(str(DATA / "pool.json"), copy)
    assert not report._same_pool("runs/distill_pool/pool.json", here) and not report._same_pool("", here)


def test_the_sample_pool_is_known_by_its_content(tmp_path):
    """The image-text stand-in is in-sample on data_samples/ and on any byte-identical copy of it, not on others."""
    copy = tmp_path / "pool.json"
    copy.write_bytes((DATA / "pool.json").read_bytes())
    assert report._is_sample_pool(DATA / "pool.json") and report._is_sample_pool(copy)
    copy.write_bytes((DATA / "pool.json").read_bytes().replace(b"ev_0001", b"ev_9999"))
    assert not report._is_sample_pool(copy) and not report._is_sample_pool(None)


def test_loss_figures_count_flagged_pairs_per_template(monkeypatch):
    import pandas as pd

    import kit
    from kit.eval.labels import load_labels

    labels = load_labels(DATA / "labels.csv")
    wrong = labels[labels["defect"] == "wrong_answer"]
    flagged = set(wrong.index[::2])          # every other wrong answer costs more than its origin
    values = pd.Series(1.0, index=labels.index)
    values[list(flagged)] = 2.0
    values[list(set(wrong.index) - flagged)] = 0.5
    table = pd.DataFrame({"loss_sum": values, "loss_mean": values})
    monkeypatch.setattr(kit, "score", lambda pool, name, **options: table)
    out = report.loss_figures(None, labels)
    assert out.loc["loss_sum", "wrong_costs_more"] == len(flagged) and out.loc["loss_sum", "pairs"] == len(wrong)
    per = out.attrs["by_template"]["loss_sum"]
    expected = pd.Series(wrong.index.isin(list(flagged)), index=wrong.index).groupby(wrong["template"]).sum()
    assert per["sum"].to_dict() == expected.astype(int).to_dict() and per["count"].sum() == len(wrong)
    lines = []
    report._per_template(out, lines.append)
    assert lines and all(f"{t} {int(n)}/" in lines[0] for t, n in expected.items())


def test_aligned_loss_section_reports_the_model_asked_for(monkeypatch, tmp_path):
    import pandas as pd

    seen = []

    def fake(pool, labels, **options):
        seen.append(options.get("model"))
        out = pd.DataFrame({"wrong_costs_more": [3, 4], "pairs": [11, 11]}, index=["loss_sum", "loss_mean"])
        out.attrs.update(by_template={}, label="loss", scores=pd.DataFrame())
        return out

    monkeypatch.setattr(report, "loss_figures", fake)
    lines = []
    out = report.report(DATA, sections=["aligned_loss"], stream=lines.append, loss_model=tmp_path / "tuned")
    text = "\n".join(lines)
    assert seen == [str(tmp_path / "tuned")]
    assert f"--loss-model {tmp_path / 'tuned'}" in text and "not paper B's protocol" in text
    assert out["aligned_loss"]["loss_sum"]["wrong_costs_more"] == 3
