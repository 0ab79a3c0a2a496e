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


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tiny forwards on one torch thread (restored afterwards); see kit.models.threads.

    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    from kit.models.threads import one_torch_thread as single_thread

    with single_thread():
        yield
