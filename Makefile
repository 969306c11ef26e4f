# sam2enc — the two commands: `make demo` (set up and run) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MODEL ?= tiny
# The exported model directory: sam2enc --models-dir, $$SAM2ENC_MODELS_DIR, models_dir in Python.
MODELS_DIR ?= weights
export OMP_NUM_THREADS ?= 2

.PHONY: venv install install-web browser web bench-web demo test test-fast mutate lint format schema export weights serve space space-serve bench bench-gpu push clean

# Three layers, so that a target pulls in only what it uses: `venv` (Python only: demo, test-fast, the
# CLI), `node_modules` (npm: the page's onnxruntime-web, playwright-core) and `browser` (chromium, for
# the browser tests). `make install` is all three.
install: venv install-web  ## .venv with every pinned dependency (CPU), npm packages, and chromium where it can

venv: $(VENV)/.installed  ## .venv with every pinned Python dependency (CPU): all demo and test-fast need

$(VENV)/.installed: requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	# sam2 is an sdist that would build a CUDA extension and pull its own torch: neither is needed.
	SAM2_BUILD_CUDA=0 $(PY) -m pip install -q --no-deps --no-build-isolation sam2==1.1.0
	# gradio (the Space) caps Pillow below the 13.0.0 pinned above: its dependencies are pinned in
	# requirements-dev.txt, gradio itself goes in without them (space/README.md's sdk_version says the same).
	$(PY) -m pip install -q --no-deps gradio==6.31.0
	# sam2enc itself, editable, for the `sam2enc` command (its dependencies are the pins above).
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

install-web: node_modules/.package-lock.json browser  ## onnxruntime-web + playwright-core (npm, pinned) and chromium

node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20 (https://nodejs.org) for the browser app and its tests"; exit 1; }
	npm ci --no-audit --no-fund

# chromium for the browser tests: found on PATH, else installed with apt-get when we are root (CI, a
# container), else one line saying what to install. Never needed by demo or test-fast.
browser:
	@if command -v chromium || command -v chromium-browser || command -v google-chrome; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && apt-get install -y -q chromium; \
	else \
		echo "chromium not found: install Chromium or Chrome for the browser tests (Debian/Ubuntu: sudo apt-get install chromium; macOS: brew install --cask chromium)"; \
	fi

web: venv node_modules/.package-lock.json  ## the browser app + token proxy on 127.0.0.1:8000 (models from weights/, else random: loudly)
	$(PY) -m sam2enc.web serve --models-dir $(MODELS_DIR) --random-if-missing

demo: venv  ## offline end to end: photo -> predictor -> bundle -> one click -> out/demo/mask.png
	$(PY) -m tools.demo --models-dir $(MODELS_DIR)

test: install  ## lint, then the whole suite, browser tier included (CI runs exactly this)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

test-fast: venv  ## the quick tier while developing, Python only: no browser, no Node, no port opened, no slow builds
	$(PY) -m pytest -q -m "not browser and not server and not slow and not node"

mutate: install  ## break each promise on purpose and check its tests go red (table; ~30 min; not in make test)
	$(PY) -m tools.mutate

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

schema: venv  ## regenerate .cog/openapi_schema.json from predict.py (a test fails when they drift)
	$(PY) -m tools.cog_schema

export: venv  ## export a checkpoint you already have: make export MODEL=large CHECKPOINT=path.pt
	$(PY) -m sam2enc export --model $(MODEL) --checkpoint $(CHECKPOINT) --models-dir $(MODELS_DIR)

weights: venv  ## download Meta's SAM2.1 checkpoint (sha256-checked) and export it: make weights MODEL=large
	$(PY) -m sam2enc weights --model $(MODEL) --models-dir $(MODELS_DIR)

serve: venv  ## Cog's own HTTP server on 127.0.0.1:5000 over weights/ (PORT=... to change)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM2ENC_MODELS_DIR=$(MODELS_DIR) COG_PREDICT_TYPE_STUB=predict.py:Predictor \
		PORT=$${PORT:-5000} $(PY) -m cog.server.http --host 127.0.0.1

bench: install  ## every step side by side, the browser latency table, then the encode round trip over a simulated link -> build/bench*.json
	$(PY) -m tools.bench
	$(PY) -m tools.bench_web --models-dir $(MODELS_DIR)
	$(PY) -m tools.bench_roundtrip

# On a machine with an NVIDIA GPU (driver >= 580 for CUDA 13): a venv with onnxruntime-gpu and the CUDA 13 +
# cuDNN 9 libraries from pip (its [cuda,cudnn] extras) and nvJPEG (GPU JPEG decoding), then the GPU table into
# docs/bench-gpu-<gpu>.json.
GPU_VENV := .venv-gpu
$(GPU_VENV)/.installed: requirements-dev.txt requirements-serve.txt
	$(PYTHON) -m venv $(GPU_VENV)
	grep -v '^onnxruntime==' requirements-dev.txt > $(GPU_VENV)/requirements.txt
	$(GPU_VENV)/bin/pip install -q -r $(GPU_VENV)/requirements.txt \
		"$$(grep '^onnxruntime-gpu==' requirements-serve.txt | sed 's/==/[cuda,cudnn]==/')" \
		"$$(grep '^nvidia-nvjpeg==' requirements-serve.txt)"
	SAM2_BUILD_CUDA=0 $(GPU_VENV)/bin/pip install -q --no-deps --no-build-isolation sam2==1.1.0
	touch $@

bench-gpu: $(GPU_VENV)/.installed  ## GPU: SAM2 bf16 row, fp32/tf32/fp16 (in-graph preprocessing) p50+p95 with parity, the served one, predict() 12 MP -> docs/bench-gpu-<gpu>.json
	$(GPU_VENV)/bin/python -m tools.bench_gpu

bench-web: install  ## browser latency (headless chromium: WASM, and WebGPU where it has a hardware adapter): 512² and 4000×3000, then dataset mode's next photo (read ahead vs cold) and memory with 50 photos -> build/bench-web.json, build/bench-dataset.json
	$(PY) -m tools.bench_web --models-dir $(MODELS_DIR)
	$(PY) -m tools.bench_dataset --models-dir $(MODELS_DIR)

space-serve: venv  ## the Gradio Space on 127.0.0.1:7860 over weights/ (PORT=... to change): python -m sam2enc.space
	$(PY) -m sam2enc.space --models-dir $(MODELS_DIR) --port $${PORT:-7860}

space: venv  ## stage the Hugging Face Space (space/ + sam2enc + the encoder) into build/space/ (GPU=1: onnxruntime-gpu)
	$(PY) -m tools.space_build --models-dir $(MODELS_DIR) --out build/space $(if $(GPU),--gpu)

push:  ## build and push to Replicate with the cog CLI (needs Docker): make push MODEL_REF=r8.im/you/sam2enc
	@test -f $(MODELS_DIR)/model.json || { echo "run 'make weights MODEL=large' first"; exit 1; }
	@! grep -q '"randomWeights": true' $(MODELS_DIR)/model.json || { echo "weights/ holds random weights"; exit 1; }
	cog push $(MODEL_REF)

clean:
	rm -rf .cache build .pytest_cache .ruff_cache
