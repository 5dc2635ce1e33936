# tlskit — two commands on a fresh machine with Python >= 3.11:
#   make demo    the whole flow in a temporary home
#   make test    the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast test-scan bench venv clean dist

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "tlskit needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@# An editable install is not byte-compiled, and PYTHONDONTWRITEBYTECODE may be set:
	@# compile once so start-up is what a user of a normal install gets.
	$(BIN)/python -m compileall -q tlskit >/dev/null
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow and not scanner' $(PYTEST_ARGS)

test-scan: $(STAMP)
	$(BIN)/python -m pytest -m scanner $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench,fast]"  # fast: uvloop, for its rows
	$(BIN)/python -m compileall -q tlskit >/dev/null
	$(BIN)/python bench/run.py $(BENCH_ARGS)

dist: $(STAMP)
	$(BIN)/python -m pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) dist build *.egg-info .pytest_cache
