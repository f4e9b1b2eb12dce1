# ArtStore developer commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install lint typecheck test test-only soak stack-up stack-down dev schemas bench clean

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

# Lint, type-check, start the real stack, run every test on Apache Kafka and the embedded-broker
# tests on Tansu too (tests/matrix.py), and stop the stack again (also on failure) unless it was
# already running before. Without java and mvn every test runs on Tansu (CI=true refuses that).
test: lint typecheck
	$(PY) -m tests.matrix $(PYTEST_ARGS)

test-only: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The kill and restart trials, longer: SOAK_ROUNDS rounds of every scenario with SOAK_UPLOADS
# uploads each; one JSON line per trial in SOAK_REPORT (docs/storage.md has the figures).
SOAK_ROUNDS  ?= 10
SOAK_UPLOADS ?= 200
SOAK_REPORT  ?= .artstore/soak.jsonl
soak: $(STAMP)
	$(PY) -m artstore.stack up
	mkdir -p $(dir $(SOAK_REPORT)); : > $(SOAK_REPORT)
	ARTSTORE_SOAK_ROUNDS=$(SOAK_ROUNDS) ARTSTORE_TRIAL_UPLOADS=$(SOAK_UPLOADS) \
	ARTSTORE_SOAK_REPORT=$(abspath $(SOAK_REPORT)) \
	$(PY) -m pytest tests/e2e/storage/test_kill_restart.py -q $(PYTEST_ARGS)
	$(PY) -m tests.e2e.storage.soak_summary $(SOAK_REPORT)

# Run all of ArtStore on this machine (stack and every service, supervised) until Ctrl-C.
dev: $(STAMP)
	$(VENV)/bin/artstore dev

schemas: $(STAMP)
	$(VENV)/bin/artstore schemas export

bench: $(STAMP)
	$(PY) -m bench.run_all

clean:
	-$(PY) -m artstore.stack down
	rm -rf $(VENV) .artstore .mypy_cache .ruff_cache .pytest_cache *.egg-info
