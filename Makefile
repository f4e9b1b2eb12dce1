# ArtStore developer commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install lint typecheck test test-only stack-up stack-down demo schemas bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

stack-up: $(STAMP)
	$(PY) -m artstore.stack up

stack-down: $(STAMP)
	$(PY) -m artstore.stack down

# Lint, type-check, start the real stack, run every test, stop the stack (also on failure).
test: lint typecheck
	$(PY) -m artstore.stack up
	status=0; $(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	$(PY) -m artstore.stack down; \
	exit $$status

test-only: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The main job for now: stack up, topics created, a real event published and consumed.
demo: $(STAMP)
	$(VENV)/bin/artstore demo

schemas: $(STAMP)
	$(VENV)/bin/artstore schemas export

bench: $(STAMP)
	$(PY) -m artstore.stack up
	$(PY) bench/run_all.py

clean:
	-$(PY) -m artstore.stack down
	rm -rf $(VENV) .artstore .mypy_cache .ruff_cache .pytest_cache
