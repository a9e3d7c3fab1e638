# Two entry points (see README): `make serve` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: serve test test-fast lint format

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

# The default test tier's tools only (pytest, hypothesis, httpx): no torch, Ray or browsers.
$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The dev extra includes the sentence-transformers backend (torch pinned to the CPU wheel).
$(VENV)/.dev-installed: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Browser tests drive Debian's Chromium; it is never downloaded by Playwright.
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null

# The load test's generator (benchmarks/loadtest.py; a smoke run is part of the tests).
/usr/bin/wrk:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null

serve: $(VENV)/.installed
	$(BIN)/rag serve

test: $(VENV)/.dev-installed /usr/bin/chromium /usr/bin/wrk
	$(BIN)/python -m pytest

# The default tier: everything but what starts processes, Ray, browsers, soak, crash and load
# runs; tests of optional tools that are not installed skip.
test-fast: $(VENV)/.test-installed
	$(BIN)/python -m pytest -m "not slow"

# Lint, format check and types (ruff and mypy come with the dev extra); CI runs it before the tests.
lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
