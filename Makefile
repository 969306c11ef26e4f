# sam2enc — the two commands: `make demo` (set up and run) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MODEL ?= tiny
WEIGHTS ?= weights
export OMP_NUM_THREADS ?= 2

.PHONY: install install-web web demo test lint format schema export weights serve bench push clean

install: $(VENV)/.installed install-web  ## .venv with every pinned dependency (CPU here), npm packages, chromium

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	# sam2 is an sdist that would build a CUDA extension and pull its own torch: neither is needed.
	SAM2_BUILD_CUDA=0 $(PY) -m pip install -q --no-deps --no-build-isolation sam2==1.1.0
	touch $@

install-web: node_modules/.package-lock.json  ## onnxruntime-web + playwright-core (npm, pinned) and Debian's chromium
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

web: install install-web  ## the browser app + token proxy on 127.0.0.1:8000 (decoder from weights/)
	$(PY) -m sam2enc.web serve --models $(WEIGHTS)

demo: install  ## offline end to end: photo -> predictor -> bundle -> one click -> out/demo/mask.png
	$(PY) -m sam2enc.demo --weights $(WEIGHTS)

test: install  ## lint, then the whole suite (CI runs exactly this)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

schema: install  ## regenerate .cog/openapi_schema.json from predict.py (a test fails when they drift)
	$(PY) -m sam2enc.cog_schema

export: install  ## export a checkpoint you already have: make export MODEL=large CHECKPOINT=path.pt
	$(PY) -m sam2enc export --model $(MODEL) --checkpoint $(CHECKPOINT) --out $(WEIGHTS)

weights: install  ## download Meta's SAM2.1 checkpoint (sha256-checked) and export it: make weights MODEL=large
	$(PY) -m sam2enc weights --model $(MODEL) --out $(WEIGHTS)

serve: install  ## Cog's own HTTP server on 127.0.0.1:5000 over weights/ (PORT=... to change)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM2ENC_MODELS=$(WEIGHTS) COG_PREDICT_TYPE_STUB=predict.py:Predictor \
		PORT=$${PORT:-5000} $(PY) -m cog.server.http --host 127.0.0.1

bench: install  ## time every step side by side (random tiny always, weights/ when present) -> build/bench.json
	$(PY) -m sam2enc.bench

push:  ## build and push to Replicate with the cog CLI (needs Docker): make push MODEL_REF=r8.im/you/sam2enc
	@test -f $(WEIGHTS)/model.json || { echo "run 'make weights MODEL=large' first"; exit 1; }
	@! grep -q '"randomWeights": true' $(WEIGHTS)/model.json || { echo "weights/ holds random weights"; exit 1; }
	cog push $(MODEL_REF)

clean:
	rm -rf .cache build .pytest_cache .ruff_cache
