# Developer entry points. Needs only python3 (>= 3.11) on PATH: everything else goes into .venv.
#
#   make demo    play a simulated agent run through memory:// (or $STREAMSINK_URL) and print it
#   make test    lint, format check, type check, then the test suite (what .ci/run does)
#   make lint    ruff check + ruff format --check
#   make bench   the benchmarks (installs the 'bench' extra first)
#   make clean   remove .venv, caches and build output

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The stamps depend on pyproject.toml: a re-run installs nothing unless the dependencies changed.
DEV_STAMP   := $(VENV)/.stamp-dev
BENCH_STAMP := $(VENV)/.stamp-bench

.DEFAULT_GOAL := help
.PHONY: help $(VENV) demo test lint format typecheck pytest bench clean

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
	$(BIN)/ruff check src tests benchmarks plugins/streamsink-nats
	$(BIN)/ruff format --check src tests benchmarks plugins/streamsink-nats

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

typecheck: $(DEV_STAMP)
	$(BIN)/mypy
	cd plugins/streamsink-nats && ../../$(BIN)/mypy

pytest: $(DEV_STAMP)
	$(BIN)/pytest
	cd plugins/streamsink-nats && ../../$(BIN)/pytest -q

test: lint typecheck pytest

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +
