# ArtStore developer commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install lint typecheck test test-only stack-up stack-down dev schemas bench clean

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

# Lint, type-check, start the real stack, run every test, and stop the stack again (also on
# failure) unless it was already running before, e.g. for `make dev`.
test: lint typecheck
	@was_running=0; $(PY) -m artstore.stack status >/dev/null 2>&1 && was_running=1; \
	$(PY) -m artstore.stack up || exit 1; \
	status=0; $(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$was_running = 0 ]; then $(PY) -m artstore.stack down; fi; \
	exit $$status

test-only: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Run all of ArtStore on this machine (stack and every service, supervised) until Ctrl-C.
dev: $(STAMP)
	$(VENV)/bin/artstore dev

schemas: $(STAMP)
	$(VENV)/bin/artstore schemas export

bench: $(STAMP)
	$(PY) -m artstore.stack up
	$(PY) -m bench.run_all

clean:
	-$(PY) -m artstore.stack down
	rm -rf $(VENV) .artstore .mypy_cache .ruff_cache .pytest_cache *.egg-info
