# Two commands do all set-up: `make build` and `make test`.
# Each creates .venv and installs the pinned dependencies when they are missing or changed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: build test lint bench demo clean help

help:
	@echo "make build   build the site into output/ (offline works: locked editions need no network)"
	@echo "make test    run every test (needs java and chromium; .ci/run installs them)"
	@echo "make lint    ruff check and format check"
	@echo "make bench   run the carnival and site benchmarks"
	@echo "make demo    serve demo blogs on 127.0.0.1, build the site live from them, serve it on :8000"

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	@touch $(NODE_STAMP)

build: $(STAMP)
	$(BIN)/invoke build

test: $(STAMP) $(NODE_STAMP)
	$(BIN)/invoke carnival.check
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/carnival_bench.py
	$(BIN)/python bench/client_bench.py
	$(BIN)/python bench/hostile_bench.py
	$(BIN)/python bench/roundup_bench.py
	$(BIN)/python bench/site_bench.py

demo: $(STAMP)
	$(BIN)/invoke demo

clean:
	rm -rf output .carnival-cache cache .demo
