# The two quick-start commands: `make demo` and `make test`. Each sets itself up.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: demo test test-all lint bench mutate docs docs-serve release-check

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

# The docs site (mkdocs-material + mkdocstrings) into site/. --strict: a warning (a broken
# link, a missing include, a docstring mkdocstrings cannot read) fails the build. Then every
# public name (stripe_sessions.__all__, stripe_sessions.testing.__all__) must have its
# entry in the API reference.
$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,docs]'
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet
	$(PY) .ci/check-reference site

docs-serve: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

# Release hygiene: sdist and wheel built, twine check --strict, the wheel holds py.typed
# and no tests, and installs and imports in a fresh venv.
release-check: $(VENV)/.installed
	PY=$(PY) bash .ci/release-check

bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/run.py

# Mutation testing (mutmut; not in CI) of the core modules listed in pyproject.toml's
# [tool.mutmut], against their fast tests; two workers. Minutes per module on an idle
# machine. Narrow it with e.g. make mutate MUTANTS='stripe_sessions._wire.form*' (several
# patterns: space-separated). FRESH=1 deletes mutants/ first: the honest figure (mutmut keeps
# old verdicts and test associations otherwise). Run no other mutmut command meanwhile.
# Survivors: `.venv/bin/mutmut results`, one: `.venv/bin/mutmut show <name>`.
MUTANTS ?=
FRESH ?=

mutate: $(VENV)/.installed
	$(if $(FRESH),rm -rf mutants)
	$(VENV)/bin/mutmut run --max-children 2 $(foreach m,$(MUTANTS),'$(m)')
	$(VENV)/bin/mutmut export-cicd-stats
	$(VENV)/bin/mutmut results
