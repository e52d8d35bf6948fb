# One command per job. Every target builds .venv on first use (Python 3.11+ is all it needs)
# with exactly the versions in requirements.lock (requirements-dev.lock for tests and linters),
# each file checked against its hash; `make lock` regenerates both from pyproject.toml.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# Only `make lock` uses it, from a throwaway virtualenv: not a dependency of Escalera.
LOCK_TOOL := pip-tools==7.7.0
# The build backend (setuptools, wheel) is locked too, and Escalera installed without fetching it.
LOCKED_INSTALL = $(BIN)/pip install --quiet --require-hashes --no-deps
PROJECT_INSTALL = $(BIN)/pip install --quiet --no-deps --no-build-isolation -e .

.PHONY: run test lint bench chaos clean lock

run: $(STAMP)
	$(BIN)/escalera up --demo

# Three processes, one test file each at a time: the chaos tests mostly wait for tickets' lives,
# so the whole suite takes ~6.5 min instead of ~12 on two cores.
test: $(DEV_STAMP)
	$(BIN)/python -m pytest -n 3 --dist loadfile

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The reliability suites at full size (20 kill trials of 5,000 tickets, a 10-minute sink outage:
# hours). `make test` runs them reduced. Figures: one JSON line per run in chaos-report.jsonl.
chaos: $(DEV_STAMP)
	ESCALERA_CHAOS_FULL=1 ESCALERA_CHAOS_REPORT=$${ESCALERA_CHAOS_REPORT:-chaos-report.jsonl} \
		$(BIN)/python -m pytest -s tests/chaos $(wildcard tests/hostile)

bench: $(DEV_STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/calendar_bench.py

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# `pip check` fails when pyproject.toml asks for something the lock does not hold: `make lock`.
$(STAMP): requirements.lock pyproject.toml $(VENV)/bin/python
	$(LOCKED_INSTALL) -r requirements.lock
	$(PROJECT_INSTALL)
	$(BIN)/pip check
	touch $@

$(DEV_STAMP): requirements-dev.lock pyproject.toml $(VENV)/bin/python
	$(LOCKED_INSTALL) -r requirements-dev.lock
	$(PROJECT_INSTALL)
	$(BIN)/pip check
	touch $@ $(STAMP)

# Regenerate the locks after a change to pyproject.toml, keeping every pin that still fits;
# `make lock LOCK_ARGS=--upgrade` moves everything to its newest release. Linux, this Python.
# deploy/flower.lock: Flower for the image, with Escalera's own versions of what they share.
COMPILE = CUSTOM_COMPILE_COMMAND="make lock" "$$tmp/bin/pip-compile" --quiet --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
	--no-emit-trusted-host $(LOCK_ARGS)
lock:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp"; \
	"$$tmp/bin/pip" install --quiet "$(LOCK_TOOL)"; \
	$(COMPILE) --all-build-deps --output-file requirements.lock pyproject.toml; \
	$(COMPILE) --all-build-deps --extra dev --constraint requirements.lock \
		--output-file requirements-dev.lock pyproject.toml; \
	$(COMPILE) --constraint requirements.lock --output-file deploy/flower.lock deploy/flower.in; \
	echo "requirements.lock, requirements-dev.lock and deploy/flower.lock regenerated"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
