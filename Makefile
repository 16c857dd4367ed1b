# mesbridge: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test lint pytest bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv/ with the project, its dev tools and .venv/bin/mesbridge

run: $(STAMP) ## run mesbridge on the embedded defaults and show it working
	$(BIN)/mesbridge run --demo

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

pytest: $(STAMP) ## the pytest suite alone
	$(BIN)/pytest

test: lint pytest ## set up, then ruff, mypy and the whole test suite

bench: $(STAMP) ## throughput, latency and memory of the service against raw pika (needs RabbitMQ)
	$(BIN)/python -m tests.bench.run_bench $(BENCH_ARGS)

clean: ## remove the virtual environment and local state
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
