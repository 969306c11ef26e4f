# sam2enc — the two commands: `make demo` (set up and run) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MODEL ?= tiny
WEIGHTS ?= weights
export OMP_NUM_THREADS ?= 2

.PHONY: install test lint format export weights clean

install: $(VENV)/.installed  ## create .venv with every pinned dependency (CPU here)

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	# sam2 is an sdist that would build a CUDA extension and pull its own torch: neither is needed.
	SAM2_BUILD_CUDA=0 $(PY) -m pip install -q --no-deps --no-build-isolation sam2==1.1.0
	touch $@

test: install  ## lint, then the whole suite (CI runs exactly this)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

export: install  ## export a checkpoint you already have: make export MODEL=large CHECKPOINT=path.pt
	$(PY) -m sam2enc export --model $(MODEL) --checkpoint $(CHECKPOINT) --out $(WEIGHTS)

weights: install  ## download Meta's SAM2.1 checkpoint (sha256-checked) and export it: make weights MODEL=large
	$(PY) -m sam2enc weights --model $(MODEL) --out $(WEIGHTS)

clean:
	rm -rf .cache build .pytest_cache .ruff_cache
