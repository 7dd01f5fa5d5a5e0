# The obvious verbs. `make demo` and `make test` are the two README commands.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint format bench install install-test services clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(PIP) install -e '.[demo]'

install-test: $(BIN)/python
	$(PIP) install -e '.[test]'

demo: install
	$(BIN)/clearance demo

services:
	bash scripts/services.sh

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install-test services lint
	$(BIN)/pytest -n 2 -q

bench: install-test services
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/gate.py
	$(BIN)/python bench/judge.py
	$(BIN)/python bench/rollback.py
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
