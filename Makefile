# Two set-up commands: `make demo` and `make test`. Both install everything they need first.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# NudeNet (the NSFW stage's model) without its dependencies: it asks for opencv-python-headless, which clashes with
# the opencv-python that requirements.txt pins (rapidocr's); its own needs (onnxruntime, cv2, numpy) are pinned there.
NUDENET := nudenet==3.4.2
REQ_HASH := $(shell (cat requirements.txt pyproject.toml; echo $(NUDENET)) | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQ_HASH)
DEMO_DIR ?= demo-out
# pytest-xdist processes for `make test`: many tests wait on servers, subprocesses and Ray, so two fill two cores.
TEST_WORKERS ?= 2

# Quiet, offline, reproducible defaults for every command below (see docs/install.md).
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAY_AUTH_MODE := disabled
export RAY_USAGE_STATS_ENABLED := 0
export PYTHONHASHSEED := 0

.PHONY: setup system-deps demo test lint bench clean

setup: system-deps $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt 2> >(grep -v "is ignored" >&2)
	$(PY) -m pip install --quiet --no-deps $(NUDENET) 2> >(grep -v "is ignored" >&2)
	$(PY) -m pip install --quiet --no-deps -e . 2> >(grep -v "is ignored" >&2)
	$(PY) -c "import fusionforge.cli.main, ray, webdataset, fasttext, open_clip, datasketch, megatron.energon, nudenet"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: setup
	$(VENV)/bin/fusionforge demo -o $(DEMO_DIR)

test: setup
	@bash scripts/install-system-deps.sh --test
	@rc=0; $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure, not a pass" >&2; exit 1; fi; \
	exit $$rc

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup
	$(PY) -m pip install --quiet -r bench/requirements.txt 2> >(grep -v "is ignored" >&2)
	$(PY) bench/shard_throughput.py
	$(PY) bench/pack.py
	$(PY) bench/rft.py
	$(PY) bench/fetch.py
	$(PY) bench/audit.py
	$(PY) bench/sft.py
	$(PY) bench/filters.py
	$(PY) bench/pii.py
	$(PY) bench/filter_agreement.py
	$(PY) bench/safety_signals.py
	$(PY) bench/dedupe.py
	$(PY) bench/image_dedupe.py
	$(PY) bench/dedupe_memory.py
	$(PY) bench/semantic_dedup.py
	$(PY) bench/warc_read.py
	$(PY) bench/web_extract.py

clean:
	rm -rf $(DEMO_DIR) build dist *.egg-info .pytest_cache
