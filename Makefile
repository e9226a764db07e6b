# Every target installs what it needs first, so each works alone on a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DURATION ?= 30
# make bench BENCH_ARGS=--quick: the short variants; BENCH_ARGS='--minutes 10': the memory run's length
BENCH_ARGS ?=
# pytest-xdist workers for make test: the tests mostly wait (emulators, subprocesses, Redis)
TEST_WORKERS ?= 2

.PHONY: install run test bench lint clean

COMPILED_SOURCES := $(shell python3 arbitrage/compiled.py)

$(STAMP): pyproject.toml setup.py arbitrage/compiled.py $(COMPILED_SOURCES)
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## ~30 s demo on the offline simulated market, live view, then a summary
	$(VENV)/bin/arb run --source sim --duration $(DURATION)

# the second, interpreted pass runs the suites that exercise the compiled modules (the levels
# reader, both strategies' checks: readers, strategies, sources, backtests, books, the compiled
# status); the rest (trading, emulators, faults, Redis, CLI) runs them the same way the first did
INTERPRETED_TESTS := tests/readers tests/strategies tests/sources tests/backtest tests/test_book.py \
	tests/test_compiled.py

test: $(STAMP)  ## the whole suite on the compiled modules, then their suites again interpreted
	$(VENV)/bin/pytest -n $(TEST_WORKERS)
	ARB_INTERPRETED=1 $(VENV)/bin/pytest -n $(TEST_WORKERS) $(INTERPRETED_TESTS)

bench: $(STAMP)  ## performance figures next to same-run baselines
	$(PY) bench/run_all.py $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check arbitrage tests bench setup.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
