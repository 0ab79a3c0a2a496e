import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def restore_registries():
    """Every registry (scorers, selectors, backends, feature extractors, commands, capabilities) as it was before
    the test, whatever the test registered or removed; see tests/support/registries.py. A test module that
    registers at import (tests/support/cheap_scorers.py) keeps its entries when imported at module level, as
    collection runs before any test; imported inside a test, its entries last for that test only."""
    from tests.support.registries import snapshot

    restore = snapshot()
    yield
    restore()


@pytest.fixture
def corrupt_pool_dir():
    return FIXTURES / "corrupt_pool"


@pytest.fixture(scope="session")
def repo_root():
    return ROOT


# --------------------------------------------------------------------------- models several test files use, built once

@pytest.fixture(scope="session")
def aligned_base(tmp_path_factory):
    """``aligned_base(preset, **changes)``: the folder of ``preset`` aligned (:func:`kit.finetune.align`), built once
    per session. Each base is a folder named as the kit's cache names it (``<preset>-<key of its settings>``,
    :func:`kit.finetune.aligned_path`) in one session folder, so presets whose alignment settings are the same
    share one base, and a second call finds the first's (``align`` returns a finished folder as it is). Built
    on one torch thread, as the modules that use it run. Read-only: a test that changes a base copies it."""
    import kit.finetune as ft
    from kit.models.threads import one_torch_thread as single_thread

    root = tmp_path_factory.mktemp("aligned")

    def build(preset, **changes):
        with single_thread():
            return ft.align(preset, out=root / ft.aligned_path(preset, **changes).name, progress=False, **changes)

    return build


@pytest.fixture(scope="session")
def micro_base(aligned_base):
    """The micro LLaVA preset's aligned base (``tests/support/micro.py``), the fine-tuning tests' starting model."""
    from tests.support.micro import PRESET

    return aligned_base(PRESET)


@pytest.fixture(scope="session")
def tiny_llava():
    """``(model, processor)`` of the tiny random LLaVA-OneVision (``tests/support/tiny_llava.py``, seed 0), in
    eval mode. Shared by the session: tests only run it (``tests/test_tiny_llava.py`` checks it still equals a
    fresh build); one that changes it builds its own."""
    from tests.support.tiny_llava import build_tiny_llava

    return build_tiny_llava(seed=0)


@pytest.fixture(scope="session")
def tiny_llava_dir(tmp_path_factory):
    """The tiny LLaVA-OneVision (seed 0) saved as a model folder (loadable by path like a hub model); read-only."""
    from tests.support.tiny_llava import save_tiny_llava

    return save_tiny_llava(tmp_path_factory.mktemp("tiny-llava") / "tiny", seed=0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tiny forwards on one torch thread (restored afterwards); see kit.models.threads.

    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    from kit.models.threads import one_torch_thread as single_thread

    with single_thread():
        yield
