# Developer entry points. Needs only python3 (>= 3.11) on PATH: everything else goes into .venv.
#
#   make demo    play a simulated agent run through memory:// (or $STREAMSINK_URL) and print it
#   make test    lint, format check, type check, then the test suite (what .ci/run does)
#   make lint    ruff check + ruff format --check
#   make docs    serve the docs site on http://127.0.0.1:8000 (make docs-build: build it, --strict)
#   make bench   the benchmarks (installs the 'bench' extra first)
#   make clean   remove .venv, caches and build output

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The stamps depend on pyproject.toml: a re-run installs nothing unless the dependencies changed.
DEV_STAMP   := $(VENV)/.stamp-dev
BENCH_STAMP := $(VENV)/.stamp-bench

.DEFAULT_GOAL := help
.PHONY: help $(VENV) demo test lint format typecheck pytest docs docs-build bench clean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(DEV_STAMP): pyproject.toml plugins/streamsink-nats/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e 'plugins/streamsink-nats[test]'
	@touch $@

$(BENCH_STAMP): pyproject.toml $(DEV_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $@

$(VENV): $(DEV_STAMP)
	@:

demo: $(DEV_STAMP)
	$(BIN)/streamsink demo

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks tools plugins/streamsink-nats
	$(BIN)/ruff format --check src tests benchmarks tools plugins/streamsink-nats

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

typecheck: $(DEV_STAMP)
	$(BIN)/mypy
	cd plugins/streamsink-nats && ../../$(BIN)/mypy

# Two workers: most tests wait on servers and timers, so the suite takes about half as long on 2
# cores; the fault tests stay together in one worker (tests/faults/conftest.py).
pytest: $(DEV_STAMP)
	$(BIN)/pytest -n 2 --dist loadgroup
	cd plugins/streamsink-nats && ../../$(BIN)/pytest -q

# mkdocs-material prints a notice about its successor on every build; the build itself is what counts.
docs: $(DEV_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

docs-build: $(DEV_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint typecheck docs-build pytest

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +
