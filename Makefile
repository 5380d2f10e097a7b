# Set-up is part of every target: a fresh machine needs only Python 3.11 and build-essential.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint board clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nanoquote demo

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q

# The tier without Verilator builds, place and route or slow tests.
test-fast: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -m "not rtl and not build and not slow"

# The board's bitstream (place and route, a few minutes; not part of `make test`).
board: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/nanoquote build --board ecp5-5g-evn --json build/board/board.json

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf build .pytest_cache
