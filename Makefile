# Every target installs what it needs: `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 9090
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run demo venv test lint typecheck unit system-deps bench clean

# Checks the interpreter first (3.11+, venv module; as root it installs python3.X-venv).
$(STAMP): pyproject.toml scripts/bootstrap-venv.sh
	@bash scripts/bootstrap-venv.sh "$(PYTHON)" "$(VENV)"
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP)

## run: serve this machine's telemetry on :$(PORT) and a Unix socket (dashboard at /)
run: $(STAMP)
	@$(BIN)/python scripts/check-port.py $(PORT)
	$(BIN)/smicast api --port $(PORT) --socket

## demo: a simulated 8-GPU host, served on :$(PORT) and shown in the terminal viewer
demo: $(STAMP)
	@$(BIN)/python scripts/check-port.py $(PORT)
	@bash scripts/demo.sh $(BIN) $(PORT)

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
	$(BIN)/python bench/hung_driver.py

clean:
	rm -rf $(VENV) build dist
