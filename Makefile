# OneWorkforce: `make run` serves the API on the embedded default; `make test` runs what CI runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
OWF    := $(BIN)/oneworkforce

.DEFAULT_GOAL := help
.PHONY: help setup run test lint typecheck pytest migrate bench bench-ingest bench-projection bench-export bench-explorer fuzz openapi clean

help:
	@echo "make run        set up, migrate, load reference and demo data, serve on 127.0.0.1:8000"
	@echo "make test       set up and run ruff, mypy --strict, pytest and fuzz (what CI runs)"
	@echo "make lint       ruff (style, imports, no function above complexity 20) and the duplicate-code check"
	@echo "make fuzz       schemathesis on every operation of a live API (PostgreSQL when DATABASE_URL names it)"
	@echo "make typecheck | pytest | migrate | bench | openapi | clean"
	@echo "make bench-export   England run's results as CSV through the API vs psql \\copy"
	@echo "make bench-explorer   time each Explorer page on the demo against the JSON reads"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@$(BIN)/python -c "import services.cli, shared.config" || (echo "install failed"; exit 1)
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	$(OWF) migrate --load-reference --seed-roles
	$(OWF) demo
	$(OWF) serve

migrate: setup
	$(OWF) migrate

test: setup lint typecheck pytest fuzz

# ruff also fails on any function above 20 in cyclomatic complexity (C901); pylint fails on
# logic repeated across services/ and shared/.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pylint --score=n services shared

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest -q -p no:cacheprovider

bench: bench-ingest bench-projection

bench-ingest: setup
	$(BIN)/python -m bench.ingest --lines 1000000 --runs 3

bench-projection: setup
	$(BIN)/python -m bench.projection

bench-explorer: setup
	$(BIN)/python -m bench.explorer_pages --rounds 9

# An England run's 657,000 result rows as CSV through the API against psql \copy of the same
# SELECT (needs PostgreSQL and psql; builds its own database, BENCH_EXPORT_DATABASE_URL).
bench-export: setup
	$(BIN)/python -m bench.export --rounds 5

# Property-based fuzzing of every operation against a live server on a throwaway database
# (PostgreSQL when DATABASE_URL names one, else SQLite), following the OpenAPI links: any 5xx
# fails. Bounded by FUZZ_MAX_EXAMPLES per operation and FUZZ_MAX_TIME_S in all.
fuzz: setup
	FUZZ_MAX_TIME_S=$${FUZZ_MAX_TIME_S:-180} $(BIN)/python -m tests.fuzz

openapi: setup
	$(BIN)/python -m services.api.openapi > docs/openapi.json

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis .schemathesis
