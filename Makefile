# Two commands: `make run` and `make test`. Both set up .venv first (a no-op when
# pyproject.toml has not changed since the last install).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench compile clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(VENV)/bin/uv || $(PY) -m pip install -q uv
	@echo "zenkube: installing the environment into $(VENV) (uv)..."
	$(VENV)/bin/uv pip install --python $(PY) -q -e ".[dev]"
	$(PY) -m pip check
	@touch $(STAMP)

run: $(STAMP)
	$(PY) run.py

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

compile: $(STAMP)
	$(PY) run.py compile

clean:
	-@test -x $(PY) && $(PY) run.py serve stop
	rm -rf .zenkube compiled
