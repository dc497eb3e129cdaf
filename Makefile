# Every target installs what it needs: `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck unit system-deps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

## run: serve this machine's telemetry on :9090 and a Unix socket (dashboard at /)
run: $(STAMP)
	$(BIN)/smicast api --socket

## test: system packages for the integration suite, then lint, types and every test
test: system-deps $(STAMP) lint typecheck unit

system-deps:
	bash scripts/install-system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/collect.py
	$(BIN)/python bench/encode.py
	$(BIN)/python bench/record.py
	$(BIN)/python bench/scrape.py
	$(BIN)/python bench/sse_fanout.py --subscribers 10000

clean:
	rm -rf $(VENV) build dist
