# embedgate — developer commands. Everything runs from a local .venv; nothing is installed
# globally and nothing needs root.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck unit bench fuzz format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[demo]"
	touch $@

## make demo: the embedded-analytics demo on http://127.0.0.1:8000
demo: $(VENV)/.installed-demo
	$(BIN)/embedgate demo

## make test: lint, type-check, then the whole test suite
test: lint typecheck unit

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests examples bench docs
	$(BIN)/ruff format --check src tests examples bench docs

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

unit: $(VENV)/.installed-dev
	$(BIN)/pytest

## make fuzz: the injection fuzz at nightly size (2 x 50k cases through ASGI and WSGI)
fuzz: $(VENV)/.installed-dev
	EMBEDGATE_FUZZ=nightly $(BIN)/pytest -q -p no:cacheprovider --timeout=0 tests/fuzz

## make bench: side-by-side measurements, printed as a table with ratios
bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests examples bench docs
	$(BIN)/ruff check --fix src tests examples bench docs

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache test-output
