# One command sets up and runs each job on a fresh machine (Python 3.11 + pip only).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-slow test-all test-interop lint bench clean

# `make test` runs ruff and every test but the long acceptance studies (marked `slow`), with
# the Ray extra installed so that the Ray executor is tested on a local cluster;
# `make test-slow` runs those; CI (`.ci/run`) runs both.

$(PY):
	$(PYTHON) -m venv $(VENV)

# The CPU torch pin goes in first so that the unpinned `torch>=2.2` requirement is already met
# and pip never pulls a multi-GB CUDA build.
# `make demo` needs the package alone; the tests add the dev tools and the Ray extra.
BASE_STAMP := $(VENV)/.installed-base

$(BASE_STAMP): $(PY) pyproject.toml
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e .
	@touch $(BASE_STAMP)

$(STAMP): $(BASE_STAMP)
	$(PY) -m pip install -e ".[dev,ray]"
	@touch $(STAMP)

setup: $(STAMP)

demo: $(BASE_STAMP)
	$(VENV)/bin/stablerecon demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

test-all: test test-slow

# `make test-interop` runs the DeepInverse interop tests and example in their own venv: deepinv
# needs torchvision, whose wheels are pinned to one torch release each, so the pair goes in
# first and `pip install -e ".[dev,deepinv]"` then finds torch already satisfied.
DINV_VENV ?= .venv-deepinv
DINV_TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DINV_PY := $(DINV_VENV)/bin/python
DINV_STAMP := $(DINV_VENV)/.installed

$(DINV_PY):
	$(PYTHON) -m venv $(DINV_VENV)

$(DINV_STAMP): $(DINV_PY) pyproject.toml
	@$(DINV_PY) -c "import torch, torchvision" 2>/dev/null || $(DINV_PY) -m pip install $(DINV_TORCH_SPEC)
	$(DINV_PY) -m pip install -e ".[dev,deepinv]"
	@touch $(DINV_STAMP)

test-interop: $(DINV_STAMP)
	$(DINV_PY) -m pytest -q -p no:cacheprovider tests/interop
	$(DINV_PY) examples/audit_deepinv_model.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# `make bench` runs the benchmarks that finish within about 10 minutes each on 2 cores; the
# long studies (firenet_parameters, dip, posterior, csc robustness) are run by hand (README).
# The CSC timing goes to its own file, removed first: csc.py resumes finished tasks.
bench: $(STAMP)
	$(PY) benchmarks/operators.py
	$(PY) benchmarks/firenet.py
	$(PY) benchmarks/training.py
	$(PY) benchmarks/trained_accuracy.py --methods unet_fourier128 itnet_fourier128
	$(PY) benchmarks/audit.py
	$(PY) benchmarks/kernel_experiment.py
	$(PY) benchmarks/firenet_natural.py
	$(PY) benchmarks/firenet_inexact.py
	$(PY) benchmarks/inexact_input.py
	rm -f benchmarks/results/speed/csc.json
	$(PY) benchmarks/csc.py --tasks speed --out benchmarks/results/speed

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
