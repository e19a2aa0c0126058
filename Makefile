# excon — set-up and the two main jobs. `make demo` and `make test` work on a fresh machine:
# they create .venv with python3 -m venv when it is missing and install the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test system-deps lint typecheck pytest bench fmt check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

DEMO_N ?= 20000

## demo: check the rulebooks, generate demo data, build kb.db from both
demo: $(STAMP)
	$(BIN)/excon check rulebooks
	$(BIN)/excon demo-data --declarations $(DEMO_N) --seed 1 --out demo
	$(BIN)/excon build rulebooks --db kb.db --declarations demo/declarations.csv \
	    --licences demo/licences.csv --parties demo/parties.csv
	$(BIN)/excon test rulebooks
	$(BIN)/excon screen demo/declarations.csv --licences demo/licences.csv \
	    --parties demo/parties.csv -o demo/findings.csv

## test: ruff, mypy on dsl/ and kb/, then pytest (PostgreSQL is started by the tests)
test: system-deps lint typecheck pytest

## system-deps: PostgreSQL's server binaries from Debian, for the cross-engine tests
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
	    echo "installing PostgreSQL (Debian packages) for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check dsl kb tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

## bench: benchmarks under bench/ (not part of `make test`)
bench: $(STAMP)
	$(BIN)/python -m bench

fmt: $(STAMP)
	$(BIN)/excon fmt rulebooks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
