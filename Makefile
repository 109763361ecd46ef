# Two commands: `make run` (set up, then run the default pipeline) and `make test` (set up, lint, then test).
# `make test-fast` is the quick lane while editing: type check and the tests not marked slow (no pipeline runs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint setup setup-test clean bench

run: $(BIN)/automlops
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/automlops run $(ARGS)

test: lint
	$(BIN)/python -m mypy
	$(BIN)/lint-imports  # the layers in pyproject.toml [tool.importlinter]: imports point one way
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

test-fast: $(VENV)/.test-deps
	$(BIN)/python -m mypy
	$(BIN)/lint-imports
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m "not slow" -n 2 $(PYTEST_ARGS)

lint: $(VENV)/.test-deps
	$(BIN)/ruff check
	$(BIN)/ruff format --check

setup: $(BIN)/automlops
setup-test: $(VENV)/.test-deps

$(BIN)/automlops: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Benchmarks (benchmarks/README.md): search quality against peers at equal budgets, pipeline scale,
# serving latency and throughput, monitoring speed and memory, serving under hostile load, then kills at each
# stage x signal. Defaults take hours; pass flags through, e.g.
# make bench QUALITY_ARGS="--quick" SCALE_ARGS="--quick" SERVING_ARGS="--quick" MONITOR_ARGS="--quick" HOSTILE_ARGS="--quick".
bench: $(VENV)/.bench-deps
	$(BIN)/python benchmarks/search_quality.py $(QUALITY_ARGS)
	$(BIN)/python benchmarks/scale.py $(SCALE_ARGS)
	$(BIN)/python benchmarks/serving.py $(SERVING_ARGS)
	$(BIN)/python benchmarks/monitor.py $(MONITOR_ARGS)
	$(BIN)/python benchmarks/hostile_load.py $(HOSTILE_ARGS)
	$(BIN)/python benchmarks/reliability.py $(RELIABILITY_ARGS)

$(VENV)/.bench-deps: $(BIN)/automlops
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	touch $@

$(VENV)/.test-deps: $(BIN)/automlops
	$(BIN)/python -m pip install --quiet -e ".[test]"
	command -v chromium >/dev/null || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: the HTML report's browser test will skip"
	touch $@

clean:
	rm -rf $(VENV) .automlops artifacts data/prepared models .pytest_cache .hypothesis .mypy_cache
