# Two entry points for a fresh machine (see README):  `make run`  and  `make test`.
# Everything installs into .venv in this folder; nothing needs activating beforehand.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test install browser example lint bench clean

# Open the Gradio app with the example site (http://127.0.0.1:7860).
run: install example
	$(PY) app.py

# Install everything (browser for the UI tests included) and run the whole test suite.
test: install browser
	$(PY) -m pytest -q

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt 2>&1 | grep -v "is ignored: it is neither" || true
	$(PY) -c "import torch, cv2, av, gradio, mediapipe, rembg, onnxruntime; cv2.bgsegm"
	touch $@

# Debian's Chromium for the Playwright browser tests (Playwright cannot download browsers here).
browser:
	bash scripts/install_chromium.sh

# The example site (OpenCV's vtest.avi from Debian's opencv-doc) and its dataset, built once.
example: install
	bash scripts/fetch_vtest.sh
	$(PY) -m examples.build_site --if-missing

lint: install
	$(VENV)/bin/ruff check .

bench: install
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
