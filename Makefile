# One command sets up and runs each job on a fresh machine (Python 3.11 + pip only).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench clean

# `make test` runs every test, the `slow` ones included; `make test-fast` skips those.

$(PY):
	$(PYTHON) -m venv $(VENV)

# The CPU torch pin goes in first so that the unpinned `torch>=2.2` requirement is already met
# and pip never pulls a multi-GB CUDA build.
$(STAMP): $(PY) pyproject.toml
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/stablerecon demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) benchmarks/operators.py
	$(PY) benchmarks/firenet.py
	$(PY) benchmarks/training.py
	$(PY) benchmarks/trained_accuracy.py
	$(PY) benchmarks/audit.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
