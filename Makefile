# One target per routine task. Each sets up what it needs first (a virtualenv in .venv,
# the project and its dependencies), so on a fresh machine with Python 3.11 these just work.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TEST_WORKERS ?= 2
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test check lint types bench audit test-deps clean help

help:
	@echo "make demo   - set up and serve the demo at http://127.0.0.1:8000"
	@echo "make test   - set up and run the whole test suite"
	@echo "make check  - lint, import contracts, types, then the tests"
	@echo "make bench  - run the benchmarks under bench/"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	  || { echo "Peerboard needs Python 3.11 or newer (found: $(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/peerboard demo

# Test-only tools outside Python: Debian's chromium (browser tests), panva's oidc-provider
# under Node (sign-in tests) and axe-core from npm (the accessibility test). Installed when possible; otherwise those tests skip and say why
# (.ci/run makes them mandatory).
test-deps:
	@bash scripts/ensure-chromium || true
	@bash scripts/ensure-oidc-provider || true
	@bash scripts/ensure-axe-core || true

test: $(STAMP) test-deps
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

types: $(STAMP)
	$(BIN)/mypy

check: lint types test

bench: $(STAMP)
	@for b in bench/*_bench.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Needs PyPI's vulnerability API (not reachable from the sandboxed CI machines; the
# installed versions are checked against SECURITY.md's floors by tests/test_dependency_floors.py).
audit: $(STAMP)
	$(BIN)/pip-audit --skip-editable

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache peerboard-demo.db*
