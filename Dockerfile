# The image of every zenkube task in a Kubeflow run, and of the traffic sink
# (docs/kubeflow.md §5): zenkube's code and the dependencies pyproject.toml lists (no dev
# tools). Build from the repository root; .dockerignore keeps the local stores, venvs,
# compiled YAML and caches out.
#
#   docker build -t REGISTRY/zenkube:0.1.0 . && docker push REGISTRY/zenkube:0.1.0
#
# tests/kubeflow/test_image.py checks, without Docker, that this dependency set resolves
# and that a fresh environment built the same way from the same build context imports
# what the pods run; it mirrors the two `uv pip install` lines below.
FROM python:3.11-slim

# UV_COMPILE_BYTECODE: the packages' .pyc are built once, here. uv compiles none by
# default and PYTHONDONTWRITEBYTECODE keeps Python from writing them, so every task would
# compile zenml's, mlflow's, sklearn's... sources at its start (docs/performance.md §13).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_SYSTEM_PYTHON=1 \
    UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1

RUN pip install --no-cache-dir uv

WORKDIR /app

# The dependencies first: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml /app/
RUN uv pip install -r pyproject.toml

# zenkube itself, editable: the tasks import it from /app whatever their working directory.
COPY . /app
RUN uv pip install --no-deps -e .
