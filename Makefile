# excon — set-up and the two main jobs. `make demo` and `make test` work on a fresh machine:
# they create .venv with python3 -m venv when it is missing and install the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-build serve test test-fast fuzz system-deps lint typecheck pytest bench fmt check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

DEMO_N ?= 20000

PORT ?= 8001

## demo: check the rulebooks, generate demo data, build kb.db from both, screen, then serve
demo: demo-build serve

## demo-build: everything `demo` does before serving
demo-build: $(STAMP)
	$(BIN)/excon check rulebooks
	$(BIN)/excon demo-data --declarations $(DEMO_N) --seed 1 --out demo
	$(BIN)/excon build rulebooks --db kb.db --declarations demo/declarations.csv \
	    --licences demo/licences.csv --parties demo/parties.csv
	$(BIN)/excon test rulebooks
	$(BIN)/excon screen demo/declarations.csv --licences demo/licences.csv \
	    --parties demo/parties.csv -o demo/findings.csv

## serve: publish kb.db with Datasette on http://127.0.0.1:$(PORT)/ (demo login: analyst)
serve: $(STAMP)
	@mkdir -p demo
	@test -s demo/analyst-password || $(BIN)/python -c \
	    "import secrets; print(secrets.token_urlsafe(12))" > demo/analyst-password
	@$(BIN)/excon password-hash --password - < demo/analyst-password \
	    | sed 's/^/analyst:/' > demo/credentials
	@echo "log in as 'analyst' with the password in demo/analyst-password"
	$(BIN)/excon serve --db kb.db --port $(PORT) --credentials demo/credentials

## test: ruff, mypy on dsl/ and kb/, then pytest (PostgreSQL is started by the tests)
test: system-deps lint typecheck pytest

# pytest-xdist: one process per CPU, each test file on one of them (module fixtures stay shared),
# in the order tests/conftest.py gives (the slowest files first; xdist would otherwise hand out
# the files with the most tests first, and a long Spark test started last)
PYTEST_JOBS ?= auto
# excon's modules compiled to bytecode once, before the tests start their hundreds of excon
# processes: where PYTHONDONTWRITEBYTECODE is set (as on this project's machines) each would
# otherwise compile them again (a sixth of a command's start)
BYTECODE := $(BIN)/python -m compileall -q -j 0 dsl kb bench tests > /dev/null
XDIST := -n $(PYTEST_JOBS) --dist loadfile --no-loadscope-reorder

## test-fast: the same without the slow end-to-end tests (marked `slow`); CI runs `make test`
test-fast: system-deps lint typecheck $(STAMP)
	$(BYTECODE)
	$(BIN)/pytest $(XDIST) -m "not slow" --durations=15

## fuzz: the property tests of the rulebook front end and of "what check accepts, every
## command accepts" with many fresh examples (EXCON_FUZZ_EXAMPLES, default 300; a few minutes)
FUZZ_EXAMPLES ?= 300
fuzz: $(STAMP)
	EXCON_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest $(XDIST) tests/test_gate.py \
	    --hypothesis-show-statistics

## system-deps: from Debian, PostgreSQL's server and client (cross-engine and bundle tests), the
## sqlite3 shell (the SQLite bundle's commands), Chromium and a CJK font (browser tests:
## screenshots show Chinese characters, not boxes), Java 17 (Spark), ICU with a C++ compiler
## (PyICU, which FollowTheMoney needs, builds against them), nginx and openssl (the
## deployment test: docs/deploy.md)
system-deps:
	@missing=""; \
	if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
	    missing="$$missing postgresql"; fi; \
	if ! command -v psql >/dev/null; then missing="$$missing postgresql-client"; fi; \
	if ! command -v sqlite3 >/dev/null; then missing="$$missing sqlite3"; fi; \
	if ! test -x /usr/bin/chromium; then missing="$$missing chromium"; fi; \
	if ! test -d /usr/share/fonts/opentype/noto || \
	    ! ls /usr/share/fonts/opentype/noto/NotoSansCJK* >/dev/null 2>&1; then \
	    missing="$$missing fonts-noto-cjk"; fi; \
	if ! java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; then \
	    missing="$$missing openjdk-17-jre-headless"; fi; \
	if ! pkg-config --exists icu-uc 2>/dev/null; then missing="$$missing libicu-dev pkg-config"; fi; \
	if ! test -x /usr/sbin/nginx; then missing="$$missing nginx"; fi; \
	if ! command -v openssl >/dev/null; then missing="$$missing openssl"; fi; \
	if ! command -v g++ >/dev/null; then missing="$$missing g++"; fi; \
	if test -n "$$missing"; then \
	    echo "installing$$missing (Debian packages) for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check dsl kb tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BYTECODE)
	$(BIN)/pytest $(XDIST) --durations=15

## bench: benchmarks under bench/ (not part of `make test`)
bench: $(STAMP)
	$(BIN)/python -m bench

fmt: $(STAMP)
	$(BIN)/excon fmt rulebooks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
