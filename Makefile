# Two commands: `make run` and `make test`. Both set up .venv first (a no-op when
# pyproject.toml has not changed since the last install).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench compile clean setup

setup: $(STAMP)

# --compile-bytecode: the packages' .pyc once, at install (uv writes none by default; with
# PYTHONDONTWRITEBYTECODE set, every command would compile zenml, mlflow, sklearn... again:
# about half of train's start, docs/performance.md §13).
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(VENV)/bin/uv || $(PY) -m pip install -q uv
	@echo "zenkube: installing the environment into $(VENV) (uv)..."
	$(VENV)/bin/uv pip install --python $(PY) -q --compile-bytecode -e ".[dev]"
	$(PY) -m pip check
	@touch $(STAMP)

run: $(STAMP)
	$(PY) run.py

# Two workers (the machines have 2 cores), one test file per worker at a time: each file's
# module fixtures (stores, servers on free ports) stay in one process. Most of a test's
# time is spent waiting on servers and subprocesses, so two at once nearly halve the wall
# time (18.8 -> 11.4 min). PYTEST_ARGS="-n 0" runs them one by one.
# --no-loadscope-reorder: files go out in collection order (kubeflow, pipelines, serving,
# the CLI, then the many small unit files). xdist's default hands out the files with the
# most tests first, which sends the slowest files (one to nine tests each, minutes of
# servers and pods: test_submit_path, test_faults...) last, so one worker ran a
# multi-minute file alone at the end while the other sat idle.
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=25 $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

compile: $(STAMP)
	$(PY) run.py compile

clean:
	-@test -x $(PY) && $(PY) run.py warm stop
	-@test -x $(PY) && $(PY) run.py serve stop
	rm -rf .zenkube compiled
