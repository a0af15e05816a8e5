# One command sets up and runs each job on a fresh machine (Python 3.11 + pip only).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-slow test-all lint bench clean

# `make test` runs ruff and every test but the long acceptance studies (marked `slow`);
# `make test-slow` runs those; CI (`.ci/run`) runs both.

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
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

test-all: test test-slow

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# `make bench` runs the benchmarks that finish within about 10 minutes each on 2 cores; the
# long studies (firenet_parameters, dip, posterior, csc robustness) are run by hand (README).
# The CSC timing goes to its own file, removed first: csc.py resumes finished tasks.
bench: $(STAMP)
	$(PY) benchmarks/operators.py
	$(PY) benchmarks/firenet.py
	$(PY) benchmarks/training.py
	$(PY) benchmarks/trained_accuracy.py
	$(PY) benchmarks/audit.py
	$(PY) benchmarks/kernel_experiment.py
	rm -f benchmarks/results/speed/csc.json
	$(PY) benchmarks/csc.py --tasks speed --out benchmarks/results/speed

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
