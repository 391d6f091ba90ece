# OneWorkforce: `make run` serves the API on the embedded default; `make test` runs what CI runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
OWF    := $(BIN)/oneworkforce

.DEFAULT_GOAL := help
.PHONY: help setup run test lint typecheck pytest migrate bench bench-ingest bench-projection bench-explorer fuzz openapi clean

help:
	@echo "make run        set up, migrate, load reference and demo data, serve on 127.0.0.1:8000"
	@echo "make test       set up and run ruff, mypy --strict and pytest (what CI runs)"
	@echo "make lint       ruff (style, imports, no function above complexity 20) and the duplicate-code check"
	@echo "make typecheck | pytest | migrate | bench | fuzz | openapi | clean"
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

test: setup lint typecheck pytest

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

# Property-based fuzzing of every operation against a live server on a throwaway database:
# any 5xx fails. Uses the demo data so most operations find something to work on.
fuzz: setup
	rm -rf var/fuzz && mkdir -p var/fuzz
	DATABASE_URL=sqlite:///./var/fuzz/fuzz.db $(OWF) migrate --load-reference --seed-roles
	DATABASE_URL=sqlite:///./var/fuzz/fuzz.db LOAD_DEMO_DATA=true $(OWF) demo
	DATABASE_URL=sqlite:///./var/fuzz/fuzz.db $(OWF) keys create --scope admin --name fuzz \
	  | tail -1 > var/fuzz/key
	DATABASE_URL=sqlite:///./var/fuzz/fuzz.db LOG_LEVEL=WARNING $(OWF) serve --port 8799 & \
	  server=$$!; sleep 5; \
	  $(BIN)/schemathesis run http://127.0.0.1:8799/openapi.json \
	    -H "Authorization: Bearer $$(cat var/fuzz/key)" --checks not_a_server_error \
	    --max-examples 60 --workers 2; status=$$?; kill $$server; exit $$status

openapi: setup
	$(BIN)/python -m services.api.openapi > docs/openapi.json

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis .schemathesis
