# Every target installs what it needs first, so each works alone on a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DURATION ?= 30
# make bench BENCH_ARGS=--quick: the short variants; BENCH_ARGS='--minutes 10': the memory run's length
BENCH_ARGS ?=

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

# the second, interpreted pass leaves out the suites that drive wire protocols and subprocesses
# (exchange emulators, end to end, Redis): they exercise no compiled code the others do not
INTERPRETED_SKIP := --ignore=tests/emulator --ignore=tests/e2e --ignore=tests/bridge

test: $(STAMP)  ## the whole suite on the compiled modules, then again with them interpreted
	$(VENV)/bin/pytest
	ARB_INTERPRETED=1 $(VENV)/bin/pytest $(INTERPRETED_SKIP)

bench: $(STAMP)  ## performance figures next to same-run baselines
	$(PY) bench/run_all.py $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check arbitrage tests bench setup.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
