"""The visualisation notebook in a real browser: JupyterLab served on a free loopback port, driven headless by
Playwright in Debian's Chromium (``pytest -m browser`` runs this file alone).

It opens ``notebooks/06_explorer.ipynb`` (a copy whose parameters point at a prepared run folder, so nothing
is scored in the browser: :mod:`tests.support.explorer_run`), runs every cell, drags the explorer's budget
slider and checks that the displayed count follows (and equals what ``kit.select`` gives for that budget),
clicks the sample browser's quality plane and checks that a sample opens, presses *Export subset* and checks
that the file and its manifest exist, then stops everything it started.

The test installs nothing: ``make browser-deps`` installs Chromium (``apt-get install -y chromium``, as root;
``.ci/run`` calls it before ``make test``). Without Chromium or Playwright the test is skipped and says why, or
fails when the environment variable ``CI`` is set (``.ci/run`` sets it). Playwright never downloads a browser.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

import kit

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

from tests.support.explorer_run import prepare_run  # noqa: E402
from tests.support.jupyter_browser import (Unavailable, chromium, jupyter_lab, launch_chromium,  # noqa: E402
                                           leftovers, missing, sweep)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "06_explorer.ipynb"
POOL = (ROOT / "data_samples" / "pool.json").resolve()
TIMEOUT_MS = 240_000          # per wait; generous for a loaded 2-core machine
COUNT = re.compile(r"selected (\d+) of (\d+) asked")

KERNEL = "window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel"
NOTEBOOK_DONE = (f"() => {KERNEL}?.status === 'idle' && document.querySelectorAll('.jp-InputPrompt').length > 0 "
                 "&& [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
                 ".every(e => /\\[\\d+\\]/.test(e.textContent))")
COUNT_SETTLED = ("(n) => { const t = document.querySelector('.kit-selection-count')?.textContent || ''; "
                 "return t.includes('of ' + n + ' asked') && !t.includes('updating'); }")


def _notebook_copy(folder: Path, run_dir: Path) -> Path:
    """The visualisation notebook with its parameters pointing at ``run_dir`` (as papermill would inject them)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += (f"\n# set by tests/test_browser.py\npool_path = {str(POOL)!r}\nrun_dir = {str(run_dir)!r}\n"
                    "quick = True\n")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / NOTEBOOK.name
    nbformat.write(nb, path)
    return path


def _count(text: str) -> tuple[int, int]:
    m = COUNT.search(text)
    assert m, f"no selection count in {text!r}"
    return int(m.group(1)), int(m.group(2))


def test_explorer_notebook_runs_and_responds_in_jupyterlab(tmp_path):
    try:
        exe = chromium()
    except Unavailable as exc:
        missing(f"browser test needs Debian's chromium: {exc}")
    try:
        from playwright import sync_api
    except ImportError:
        missing("browser test needs Playwright: install the dev extras (pip install -e '.[dev]')")

    t0 = time.monotonic()
    run_dir = tmp_path / "run"
    table = prepare_run(POOL, run_dir)
    nb_path = _notebook_copy(tmp_path / "notebooks", run_dir)
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    marker = str(tmp_path) + os.sep            # every process started here names a path under tmp_path
    try:
        with jupyter_lab(nb_path.parent, tmp_path / "jupyter", env_extra=env) as (base, token, _server):
            with sync_api.sync_playwright() as p:
                context = launch_chromium(p, exe, tmp_path / "chromium-profile")
                try:
                    page = context.new_page()
                    page.set_default_timeout(TIMEOUT_MS)
                    page.goto(f"{base}/lab/tree/{nb_path.name}?token={token}")
                    page.wait_for_function(f"() => {KERNEL}?.status === 'idle'")
                    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                    page.wait_for_function(NOTEBOOK_DONE)
                    errors = page.locator('[data-mime-type="application/vnd.jupyter.error"]')
                    assert errors.count() == 0, errors.first.text_content()

                    explorer = page.locator(".kit-selection-explorer")
                    assert explorer.count() == 1, "the explorer did not render as a live widget"
                    assert page.locator(".kit-browser-matches").count() == 1, "the sample browser did not render"
                    count = page.locator(".kit-selection-count")
                    page.wait_for_function(COUNT_SETTLED, arg=str(_count(count.text_content())[1]))
                    before = _count(count.text_content())

                    explorer.scroll_into_view_if_needed()
                    handle = page.locator(".kit-budget .noUi-handle")
                    track = page.locator(".kit-budget .noUi-base").bounding_box()
                    box = handle.bounding_box()
                    y = box["y"] + box["height"] / 2
                    page.mouse.move(box["x"] + box["width"] / 2, y)
                    page.mouse.down()
                    page.mouse.move(track["x"] + 0.5 * track["width"], y, steps=8)
                    page.mouse.up()
                    budget = int(page.locator(".kit-budget .widget-readout").text_content())
                    assert budget != before[1], "dragging the slider did not change the budget"
                    page.wait_for_function(COUNT_SETTLED, arg=str(budget))
                    after = _count(count.text_content())
                    assert after[1] == budget and after[0] != before[0]
                    assert after[0] == len(kit.select(table, "mmssr", budget))   # the page shows the real count

                    # a click in the sample browser's quality plane (an ipympl canvas) opens the nearest sample
                    plane = page.locator(".kit-sample-browser .jupyter-matplotlib-canvas-div")
                    plane.scroll_into_view_if_needed()
                    page.wait_for_function("() => document.querySelector('.kit-sample-browser "
                                           ".jupyter-matplotlib-canvas-div')?.getBoundingClientRect().width > 100")
                    area = plane.bounding_box()
                    page.mouse.click(area["x"] + 0.5 * area["width"], area["y"] + 0.5 * area["height"])
                    opened = page.locator(".kit-opened .kit-sample-card")
                    opened.wait_for()
                    assert re.search(r"\b(ev|ph|rd)_\d{4}\b", opened.text_content())

                    explorer.scroll_into_view_if_needed()
                    page.locator(".kit-export").click()
                    shown = page.locator(".kit-export-path code").first
                    shown.wait_for()
                    exported = Path(shown.text_content())
                    assert exported.parent == run_dir / "subsets" and exported.is_file()
                    manifest = json.loads(exported.with_name(exported.stem + ".manifest.json").read_text())
                    assert manifest["method"] == "mmssr" and len(manifest["ids"]) == after[0]
                    assert len(json.loads(exported.read_text())) == after[0]
                finally:
                    context.close()
    finally:
        left = sweep(marker)
    assert not left and not leftovers(marker), f"processes left running: {left}"
    figures = {p.name for p in (run_dir / "figures").glob("06_*.png")}
    assert "06_explorer_selection.png" in figures, figures
    print(f"browser test: {time.monotonic() - t0:.0f} s")
