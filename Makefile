# retrain — every target installs what it needs first (idempotent), so a fresh clone needs only Python 3.11.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
export RETRAIN_HOME ?= $(CURDIR)/var
PYTEST_ARGS ?=

.PHONY: install demo test lint format system-deps bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip install -q -p $(PY) -r requirements.txt
	$(VENV)/bin/uv pip install -q -p $(PY) --no-deps -e .
	@# Byte-compile once: with PYTHONDONTWRITEBYTECODE set, every import of mlflow/airflow recompiles (~5 s).
	@$(PY) -m compileall -q -j 0 $(VENV)/lib/python3.11/site-packages >/dev/null 2>&1 || true
	@touch $@

# Debian packages the tests drive for real (Prometheus tools, a browser); installed only if missing.
system-deps:
	@bash scripts/system-deps.sh

demo: install
	$(VENV)/bin/retrain demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy src $(wildcard serving)

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The suite must leave the checkout as it found it: state belongs under RETRAIN_HOME, never in the repo.
test: install system-deps lint
	@git status --porcelain --untracked-files=all > .git/status-before-tests 2>/dev/null || true
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	@if [ -d .git ]; then git status --porcelain --untracked-files=all | diff .git/status-before-tests - \
		|| { echo "make test: the test suite changed the checkout (above); state belongs under RETRAIN_HOME"; exit 1; }; fi

# Every benchmark present in bench/, one after the other (~30-45 min in all, see bench/README.md); each
# rewrites only its own section of docs/benchmarks.md. One alone: .venv/bin/python bench/bench_<name>.py
BENCHES := $(wildcard bench/bench_validate.py bench/bench_onboard.py bench/bench_pipeline.py bench/bench_quality.py bench/bench_serving.py bench/bench_drift.py)
bench: install system-deps
	@set -e; for script in $(BENCHES); do echo "== $$script"; $(PY) $$script; done

clean:
	rm -rf var gx/uncommitted gx/expectations gx/checkpoints gx/validation_definitions .pytest_cache .mypy_cache .ruff_cache
