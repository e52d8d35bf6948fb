# One command per job. Every target builds .venv on first use (Python 3.11+ is all it needs).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint bench chaos clean

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
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
