# OneWorkforce: `make run` serves the API on the embedded default; `make test` runs what CI runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Installs exactly the versions in the lock files (made by `make lock` from pyproject.toml).
LOCK     := requirements.lock
DEV_LOCK := requirements-dev.lock
UV_VERSION := 0.13.8
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(DEV_LOCK) | cksum | cut -d' ' -f1)
OWF    := $(BIN)/oneworkforce

.DEFAULT_GOAL := help
.PHONY: help setup lock run test lint typecheck pytest migrate bench bench-ingest bench-projection bench-export bench-compare bench-hostile bench-soak bench-explorer bench-scale fuzz openapi clients clean

help:
	@echo "make run        set up, migrate, load reference and demo data, serve on 127.0.0.1:8000"
	@echo "make test       set up and run ruff, mypy --strict, pytest and fuzz (what CI runs)"
	@echo "make lint       ruff (style, imports), radon (no function above complexity 20), pylint (no repeated logic)"
	@echo "make fuzz       schemathesis on every operation of a live API (PostgreSQL when DATABASE_URL names it)"
	@echo "make bench-soak 5 min of mixed traffic in full mode: errors, p50/p99 per kind, memory"
	@echo "make lock       re-resolve requirements*.lock (exact versions + hashes) from pyproject.toml"
	@echo "make bench-hostile  CSV line splitting against bytes.split; API memory under huge bodies"
	@echo "make clients    a Python client and TypeScript types from docs/openapi.json, in var/clients"
	@echo "make typecheck | pytest | migrate | bench | openapi | clean"
	@echo "make bench-export   England run's results as CSV through the API vs psql \\copy"
	@echo "make bench-compare  paired scenario comparison vs downloading both runs' results"
	@echo "make bench-explorer   time each Explorer page on the demo against the JSON reads"
	@echo "make bench-scale    England in full mode (API + 1 and 2 workers) vs the engine alone"

$(STAMP): pyproject.toml $(DEV_LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
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

# ruff: style and imports. radon: no function in services/ or shared/ above 20 in cyclomatic
# complexity (it lists any that are, and the step fails). pylint: no logic repeated across
# services/ and shared/.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@complex="$$($(BIN)/radon cc -n D -s services shared)"; \
	  if [ -n "$$complex" ]; then echo "$$complex"; \
	    echo "radon: functions above complexity 20; split each into a pure decision and a small effect"; \
	    exit 1; fi
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

# England with returns in all 42 ICBs, POST /v1/projections to succeeded on PostgreSQL + Redis
# (BENCH_DATABASE_URL, BENCH_REDIS_URL) with 1 and 2 worker processes, against the engine alone.
bench-scale: setup
	$(BIN)/python -m bench.scale

bench-compare: setup
	$(BIN)/python -m bench.compare --rounds 5 --iterations 200

bench-explorer: setup
	$(BIN)/python -m bench.explorer_pages --rounds 9

# Full mode (PostgreSQL + Redis + a worker) under 16 clients of mixed traffic for 5 minutes.
bench-soak: setup
	$(BIN)/python -m bench.soak --duration 300 --clients 16

bench-hostile: setup
	$(BIN)/python -m bench.hostile --runs 3

# An England run's 657,000 result rows as CSV through the API against psql \copy of the same
# SELECT (needs PostgreSQL and psql; builds its own database, BENCH_EXPORT_DATABASE_URL).
bench-export: setup
	$(BIN)/python -m bench.export --rounds 5

# Property-based fuzzing of every operation against a live server on a throwaway database
# (PostgreSQL when DATABASE_URL names one, else SQLite), following the OpenAPI links: any 5xx
# fails. Bounded by FUZZ_MAX_EXAMPLES per operation and FUZZ_MAX_TIME_S in all.
fuzz: setup
	FUZZ_MAX_TIME_S=$${FUZZ_MAX_TIME_S:-180} $(BIN)/python -m tests.fuzz

# Re-resolve the lock files after a change to pyproject.toml's dependencies (needs PyPI).
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	  --generate-hashes --quiet -o $(DEV_LOCK)
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	  --generate-hashes --quiet -c $(DEV_LOCK) -o $(LOCK)

openapi: setup
	$(BIN)/python -m services.api.openapi > docs/openapi.json

# What portal teams generate from the committed document: a Python package (openapi-python-client)
# and TypeScript types (openapi-typescript, pinned by clients/typescript/package-lock.json).
clients: setup
	rm -rf var/clients && mkdir -p var/clients/typescript var/typescript-check
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/openapi-python-client generate \
	  --path docs/openapi.json --config clients/python/config.yml --output-path var/clients/python
	cp clients/typescript/package.json clients/typescript/package-lock.json var/typescript-check/
	cd var/typescript-check && npm ci --no-audit --no-fund --prefer-offline --loglevel=error
	node var/typescript-check/node_modules/openapi-typescript/bin/cli.js docs/openapi.json \
	  --output var/clients/typescript/schema.d.ts
	cp clients/typescript/check.ts clients/typescript/tsconfig.json var/clients/typescript/
	node var/typescript-check/node_modules/typescript/bin/tsc -p var/clients/typescript/tsconfig.json

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis .schemathesis
