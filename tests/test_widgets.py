"""The explorers driven from Python, without a browser: the selection explorer's state machine (budget ->
count, method -> controls, export -> files), the sample browser's filters, pages and plane clicks, the
frontend check and the debouncer. ``tests/test_browser.py`` drives the same widgets in a real JupyterLab."""
import asyncio
import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import kit  # noqa: E402
from kit.export import manifest_path  # noqa: E402
from kit.eval.labels import load_labels  # noqa: E402
from kit.widgets import SampleBrowser, SelectionExplorer, has_frontend  # noqa: E402
from kit.widgets.debounce import Debouncer  # noqa: E402
from kit.widgets.filters import filter_samples, score_columns  # noqa: E402
from kit.widgets.frontend import request_allows_stdin  # noqa: E402
from tests.support.explorer_run import prepare_run  # noqa: E402

from .conftest import ROOT  # noqa: E402

POOL = ROOT / "data_samples" / "pool.json"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("explorer-run")
    table = prepare_run(POOL, run_dir)
    return {"dir": run_dir, "scores": table, "pool": kit.load_pool(POOL),
            "labels": load_labels(POOL.with_name("labels.csv"))}


@pytest.fixture(autouse=True)
def no_forced_mode(monkeypatch):
    monkeypatch.delenv("KIT_WIDGETS", raising=False)
    yield
    plt.close("all")


def explorer(run, tmp_path, **options):
    return SelectionExplorer(run["scores"], run["pool"], labels=run["labels"], out_dir=tmp_path, static=True,
                             **options)


def test_budget_moves_the_count_and_export_writes_the_subset(run, tmp_path):
    ex = explorer(run, tmp_path)
    n = len(run["scores"])
    assert ex.method == "mmssr" and ex.state["budget"] == int(0.1 * n) == ex.n_selected
    ex.set(budget=100)
    assert ex.n_selected == 100 == len(kit.select(run["scores"], "mmssr", 100))
    assert ex.count_text().startswith("selected 100 of 100 asked")
    assert ex.summary()["planted_defects"] == int((run["labels"]["defect"].loc[list(ex.selection)] != "none").sum())
    ex.set(budget=0.5)
    assert ex.state["budget"] == n // 2
    path = ex.export()
    assert path.parent == tmp_path and path.name.startswith(f"explorer_mmssr_{n // 2}_") and path.is_file()
    assert ex.export_path() == path                                  # the same settings, the same file
    ex.set(threshold=1.0)
    assert ex.export_path() != path and ex.export_path().name.startswith(f"explorer_mmssr_{n // 2}_")
    manifest = json.loads(manifest_path(path).read_text())
    ex.set(threshold=0.0)
    assert manifest["ids"] == list(ex.selection) and manifest["method"] == "mmssr"
    assert manifest["explorer"]["label"] == f"mmssr {n // 2}" and manifest["params"] == {"threshold": 0.0}
    assert kit.load_pool(path, images=run["pool"].image_root).ids == list(ex.selection)


def test_every_registered_selector_runs_or_says_why(run, tmp_path):
    ex = explorer(run, tmp_path)
    assert ex.methods == kit.SELECTORS.names()
    from kit.experiments.newer import NEWER

    for method in ex.methods:
        ex.set(method=method)
        assert (ex.selection is None) == (ex.error is not None), method
        if method in NEWER:   # their scorers (gradients, likelihoods of a model) are not in the prepared run: say so
            assert ex.selection is None and f"kit.score(pool, '{method}')" in ex.error, ex.error
            continue
        assert ex.selection is not None, f"{method}: {ex.error}"     # the prepared run has embeddings too
    assert ex.options == {}                                          # random takes no options
    ex.set(method="cells", choice="bottom_left")
    assert ex.options == {"cells": "bottom_left"} and ex.selection.method == "cells"
    ex.set(method="deita", threshold=0.8)
    assert ex.options == {"threshold": 0.8}
    ex.set(method="mmssr", capabilities=["ocr", "data"], threshold=1.0)
    assert ex.options == {"capabilities": ["ocr", "data"], "threshold": 1.0}
    assert ex.selection.resolved["capabilities"] == ["ocr", "data"]
    ex.set(method="deita")
    assert ex.threshold() == 0.8                                     # each method keeps its own threshold


def test_a_selector_that_cannot_run_shows_its_error_instead_of_crashing(run, tmp_path):
    scores = run["scores"].copy()                                    # a copy has no score info: no recorded
    assert kit.score_info(scores, required=False) is None            # embeddings folder
    ex = SelectionExplorer(scores, run["pool"], out_dir=tmp_path, static=True, method="deita")
    assert ex.selection is None and "embeddings" in ex.error and ex.n_selected is None
    assert "did not run" in ex.count_text()
    with pytest.raises(ValueError, match="nothing to export"):
        ex.export()
    fig = ex.figure()                                                # still draws (the error instead of bars)
    assert any("cannot run" in t.get_text() for a in fig.axes for t in a.texts)
    ex.set(method="random")
    assert ex.error is None and ex.n_selected == ex.state["budget"]
    with pytest.raises(ValueError, match="not among"):
        ex.set(method="nope")


def test_shortfalls_and_collapse_warnings_are_listed(run, tmp_path):
    ex = explorer(run, tmp_path, method="diq")
    assert ex.selection.shortfall is not None and ex.n_selected < ex.state["budget"]
    assert str(ex.selection.shortfall) in ex.summary()["notes"]
    scores = run["scores"].copy()
    scores["ocr"] = 0.0                                              # a collapsed capability column
    ex = SelectionExplorer(scores, run["pool"], out_dir=tmp_path, static=True)
    assert any("ocr" in w for w in ex.warnings), ex.warnings


def test_widgets_drive_the_same_state(run, tmp_path, monkeypatch):
    ex = SelectionExplorer(run["scores"], run["pool"], labels=run["labels"], out_dir=tmp_path, static=False)
    box = ex.widget
    c = ex._controls
    assert box is ex.widget and "selected 37 of 37 asked" in c["count"].value and c["figure"].value[:4] == b"\x89PNG"
    drawn = []                                 # from here on figures are built for every state, not rasterised
    monkeypatch.setattr("kit.widgets.explorer.figure_png",
                        lambda fig: (drawn.append(len(fig.axes)), plt.close(fig), b"png")[-1])
    c["budget"].value = 50                     # no event loop here: the debounced update runs at once
    assert ex.n_selected == 50 and "selected 50 of 50 asked" in c["count"].value
    c["method"].value = "dis"
    assert c["seed"].disabled and c["capabilities"].disabled and c["threshold"].disabled and c["choice"].disabled
    c["method"].value = "cells"
    assert not c["choice"].disabled and "top_right" in c["choice"].options and c["choice"].value == "top_right"
    assert not c["seed"].disabled
    c["method"].value = "deita"
    assert (c["threshold"].min, c["threshold"].max, c["threshold"].value) == (0.5, 1.0, 0.9)
    c["threshold"].value = 0.7
    assert ex.options["threshold"] == 0.7 and ex.selection.resolved["threshold"] == 0.7
    c["method"].value = "mmssr"
    assert not c["capabilities"].disabled and c["threshold"].max == 5.0
    c["capabilities"].value = ("ocr",)
    assert ex.selection.resolved["capabilities"] == ["ocr"]
    c["export"].click()
    assert ex.exported is not None and ex.exported.is_file() and str(ex.exported) in c["export_path"].value
    ex.set(budget=20)                          # code changes show in the widgets
    assert c["budget"].value == 20 and "of 20 asked" in c["count"].value
    assert len(drawn) == 8 and set(drawn) == {3} and c["figure"].value == b"png"   # one redraw per change


def test_static_display_shows_a_figure_and_the_numbers(run, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: shown.extend(objs))
    explorer(run, tmp_path)._ipython_display_()
    assert isinstance(shown[0], matplotlib.figure.Figure) and isinstance(shown[1], pd.DataFrame)
    assert shown[1].loc["selected"].iloc[0] == 37
    shown.clear()
    SampleBrowser(run["pool"], run["scores"], labels=run["labels"], static=True)._ipython_display_()
    assert [type(o).__name__ for o in shown] == ["Figure", "Figure", "DataFrame"]


class FakeKernel:
    def __init__(self, allow_stdin):
        self.allow_stdin = allow_stdin

    def get_parent(self):
        return {"header": {"msg_type": "execute_request"}, "content": {"allow_stdin": self.allow_stdin}}


def test_frontend_check(monkeypatch):
    assert has_frontend() is False                                   # no kernel in a test process
    assert has_frontend(static=False) is True and has_frontend(static=True) is False
    assert request_allows_stdin(FakeKernel(True)) and not request_allows_stdin(FakeKernel(False))
    monkeypatch.setattr("kit.widgets.frontend._kernel", lambda: FakeKernel(True))
    assert has_frontend() is True                                    # JupyterLab, Notebook, VS Code
    monkeypatch.setattr("kit.widgets.frontend._kernel", lambda: FakeKernel(False))
    assert has_frontend() is False                                   # papermill / nbconvert
    monkeypatch.setenv("KIT_WIDGETS", "live")
    assert has_frontend() is True and has_frontend(static=True) is False
    monkeypatch.setenv("KIT_WIDGETS", "sometimes")
    with pytest.raises(ValueError, match="KIT_WIDGETS"):
        has_frontend()


def test_debouncer_runs_once_after_a_burst():
    calls = []
    d = Debouncer(lambda: calls.append(1), wait=0.05)

    async def burst():
        for _ in range(5):
            d.trigger()
            await asyncio.sleep(0.005)
        assert calls == [] and d.pending
        await asyncio.sleep(0.2)

    asyncio.run(burst())
    assert calls == [1] and not d.pending
    d.trigger()                                                      # no running loop: at once
    assert calls == [1, 1]


def test_filters_keep_exactly_the_matching_samples(run):
    scores, defects = run["scores"], run["labels"]["defect"]
    photos = filter_samples(scores, sources=["photos"])
    assert len(photos) == int((scores["source"] == "photos").sum()) and list(photos) == \
        [i for i in scores.index if scores.at[i, "source"] == "photos"]
    yes_no = filter_samples(scores, styles=["yes/no"])
    assert all("yes/no" in scores.at[i, "styles"] for i in yes_no) and len(yes_no) > 0
    planted = filter_samples(scores, defects, defect=["mismatch", "duplicate"])
    assert set(defects.loc[planted]) == {"mismatch", "duplicate"} and len(planted) == 22
    low = filter_samples(scores, ranges={"image_text": (0.0, 0.2)})
    assert ((scores.loc[low, "image_text"] >= 0) & (scores.loc[low, "image_text"] <= 0.2)).all()
    both = filter_samples(scores, defects, sources=["photos"], defect=["mismatch"], ranges={"image_text": (-1, 1)})
    assert set(both) == set(photos) & set(planted) & set(defects.index[defects == "mismatch"])
    assert "styles" not in score_columns(scores) and "image_text" in score_columns(scores)
    with pytest.raises(ValueError, match="truth table"):
        filter_samples(scores, defect=["mismatch"])


def test_browser_pages_filters_and_opens_samples(run):
    b = SampleBrowser(run["pool"], run["scores"], labels=run["labels"], page_size=5)
    assert len(b.matches) == len(run["scores"]) and b.pages == -(-len(run["scores"]) // 5)
    b.set_filter(sources=["rendered"], defect=["wrong_answer"])
    assert len(b.matches) == 4 and b.pages == 1 and b.page_ids == list(b.matches)
    b.set_filter(defect=[])
    assert len(b.matches) == 84 and b.page_ids == list(b.matches[:5])
    b.next_page().next_page()
    assert b.page == 2 and b.page_ids == list(b.matches[10:15])
    b.go(999)
    assert b.page == b.pages - 1
    b.set_filter(range=("loss_mean", 0.0, 1.0))
    assert b.page == 0 and (run["scores"].loc[b.matches, "loss_mean"] <= 1.0).all()
    b.set_filter(range=("loss_mean", None, None))
    assert len(b.matches) == 84
    info = b.sample_info(b.page_ids[0])
    assert info["source"] == "rendered" and set(info["scores"]) == set(score_columns(run["scores"]))
    assert info["conversations"] == run["pool"].table.at[b.page_ids[0], "conversations"]
    html = b.card_html(b.page_ids[0])
    assert b.page_ids[0] in html and "planted defect" in html
    assert b.thumbnail_png(b.page_ids[0])[:4] == b"\x89PNG"
    counts = b.counts()
    assert counts.at["rendered", "match"] == 84 and counts.at["all", "pool"] == len(run["scores"])
    with pytest.raises(KeyError):
        b.set_filter(range=("nope", 0, 1))


@pytest.mark.filterwarnings("ignore:Passing unrecognized arguments:DeprecationWarning")   # inside ipympl's toolbar
def test_clicking_a_point_of_the_plane_opens_that_sample(run):
    from matplotlib.backend_bases import MouseEvent

    b = SampleBrowser(run["pool"], run["scores"], labels=run["labels"], static=False)
    b.widget
    canvas, ax = b._plane["canvas"], b._plane["ax"]
    canvas.draw()
    target = run["scores"].index[123]
    assert b.space.loss_col == "loss_sum"                             # the quality space's default axis
    x, y = run["scores"].loc[target, ["loss_sum", "image_text"]]
    px, py = ax.transData.transform((x, y))
    event = MouseEvent("button_press_event", canvas, px, py, button=1)
    canvas.callbacks.process("button_press_event", event)           # what a click in the browser does
    assert b.opened == target
    assert matplotlib.get_backend().lower() == "agg"                 # ipympl did not take over pyplot
    assert target in b._controls["opened"].children[0].children[1].value
    assert b.nearest(x, y) == target


def test_large_pools_draw_a_seeded_sample_of_points(run, tmp_path, monkeypatch):
    from kit.widgets.render import thin

    assert list(thin(range(5), 10)) == [0, 1, 2, 3, 4]
    few = thin(range(1000), 10, seed=3)
    assert len(few) == 10 == len(set(few)) and list(few) == sorted(few) and list(few) == list(thin(range(1000), 10, 3))
    monkeypatch.setattr("kit.widgets.explorer.MAX_POINTS", 50)
    monkeypatch.setattr("kit.widgets.explorer.thin", lambda pos: thin(pos, 50))
    ex = explorer(run, tmp_path, method="random", budget=20)
    fig = ex.figure()
    plane = fig.axes[-1]
    assert "points drawn" in plane.get_title() and str(len(run["scores"])) in plane.get_title()
    assert ex.n_selected == 20                                       # selection still over every sample
