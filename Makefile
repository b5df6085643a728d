# The two quick-start commands: `make demo` and `make test`. Each sets itself up.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: demo test test-all lint bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m stripe_sessions demo

# The suite waits on servers far more than it computes: 4 workers fit 2 cores.
JOBS ?= 4

test: $(VENV)/.installed
	$(PY) -m pytest -q -n $(JOBS)

# The suite on every Python that requires-python promises (3.10 to 3.13), as CI runs it.
test-all:
	bash .ci/test-pythons

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict stripe_sessions

bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/run.py
