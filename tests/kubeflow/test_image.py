"""The step image as files: `Dockerfile` and `.dockerignore`, checked without Docker.

The build context is what `.dockerignore` lets through (Docker's rules: a pattern matches
from the context root, `**` any number of folders, a matched folder takes its contents).
A fresh virtualenv is built from it the way the Dockerfile builds the image (uv, the
dependencies of pyproject.toml, then zenkube itself with no dependencies), from uv's
cache, and must import what the pods run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO_ROOT

# The Dockerfile's install lines this test mirrors (after `UV_SYSTEM_PYTHON=1`).
DOCKERFILE_INSTALLS = ("RUN uv pip install -r pyproject.toml", "RUN uv pip install --no-deps -e .")

# What the pods import: ZenML's step entry point (the command ZenML writes for every task)
# with zenkube's flavors and every pipeline's steps and materializers, the KFP UI-output
# wrapper, and the traffic sink.
PODS_IMPORT = """
import importlib, json
from zenml.integrations.registry import integration_registry
integration_registry.activate_integrations()
modules = [
    "zenml.entrypoints.entrypoint",
    "zenml.entrypoints.step_entrypoint_configuration",
    "zenml.integrations.kubeflow.orchestrators.kubeflow_orchestrator",
    "integrations.kubeflow.flavors",
    "integrations.kubeflow.orchestrator",
    "integrations.kubeflow.seldon",
    "integrations.kubeflow.ui_outputs",
    "core.traffic.sink",
    "pipelines.training",
    "pipelines.deployment",
    "pipelines.monitoring",
    "pipelines.continuous_training",
]
for module in modules:
    importlib.import_module(module)
wanted = ["kubeflow", "mlflow", "seldon", "evidently", "sklearn", "s3"]
print(json.dumps({
    "imported": modules,
    "integrations": {n: integration_registry.is_installed(n) for n in wanted},
}))
"""


def ignore_patterns(path: Path) -> list[re.Pattern]:
    """`.dockerignore` as regular expressions over context-relative paths."""
    patterns = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "exceptions are not mirrored here"
        glob = line.strip("/")
        regex = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?)", glob):
            regex += {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                part, re.escape(part)
            )
        patterns.append(re.compile(regex))
    return patterns


def ignored(relative: str, patterns: list[re.Pattern]) -> bool:
    return any(p.fullmatch(relative) for p in patterns)


def build_context(root: Path, patterns: list[re.Pattern], into: Path) -> int:
    """Copy what Docker would send; return its size in bytes."""
    size = 0
    for folder, dirs, files in os.walk(root):
        relative_folder = os.path.relpath(folder, root)
        prefix = "" if relative_folder == "." else relative_folder + "/"
        dirs[:] = [d for d in dirs if not ignored(prefix + d, patterns)]
        for name in files:
            if ignored(prefix + name, patterns):
                continue
            target = into / prefix / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(folder) / name, target)
            size += target.stat().st_size
    return size


def test_the_dockerignore_keeps_stores_venvs_compiled_yaml_and_caches_out():
    patterns = ignore_patterns(REPO_ROOT / ".dockerignore")
    for kept_out in (
        ".venv/bin/python",
        ".zenkube/mlflow.db",
        ".zenkube/zenml/local_stores/x",
        ".zen/config.yaml",
        "compiled/training.yaml",
        "steps/__pycache__/x.cpython-311.pyc",
        "mlruns/0/meta.yaml",
        "somewhere/store.db",
        "store.sqlite",
        "zenkube.egg-info/PKG-INFO",
        ".git/HEAD",
    ):
        assert any(ignored(p, patterns) for p in _prefixes(kept_out)), kept_out
    for kept_in in (
        "pyproject.toml",
        "README.md",
        "run.py",
        "integrations/kubeflow/ui_outputs.py",
        "steps/training/train.py",
        "configs/kubeflow/training.yaml",
    ):
        assert not any(ignored(p, patterns) for p in _prefixes(kept_in)), kept_in


def _prefixes(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def test_the_dockerfile_installs_what_this_test_mirrors():
    lines = [line.strip() for line in (REPO_ROOT / "Dockerfile").read_text().splitlines()]
    assert [line for line in lines if line.startswith("RUN uv pip")] == list(DOCKERFILE_INSTALLS)
    assert "COPY . /app" in lines and "WORKDIR /app" in lines
    assert any(line.startswith("FROM python:3.11") for line in lines)


def test_a_fresh_environment_from_the_images_dependency_set_imports_what_the_pods_run(
    tmp_path,
):
    uv = str(Path(sys.executable).parent / "uv")  # a dependency of zenkube (pyproject.toml)
    app = tmp_path / "app"
    started = time.monotonic()
    size = build_context(REPO_ROOT, ignore_patterns(REPO_ROOT / ".dockerignore"), app)
    assert size < 20 * 2**20, f"the build context is {size / 2**20:.0f} MiB"
    assert not (app / ".venv").exists() and not (app / ".zenkube").exists()
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["UV_LINK_MODE"] = "hardlink"  # from uv's cache, as `make setup` fills it
    run = {"cwd": app, "env": env, "capture_output": True, "text": True}
    subprocess.run([uv, "venv", "-q", "--python", sys._base_executable, str(venv)], **run)
    for line in DOCKERFILE_INSTALLS:
        args = line.removeprefix("RUN uv pip install ").split()
        installed = subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(python), *args], **run
        )
        assert installed.returncode == 0, installed.stderr[-3000:]
    built = time.monotonic() - started
    check = subprocess.run(
        [str(python), "-c", PODS_IMPORT],
        **{**run, "env": {**env, "ZENML_CONFIG_PATH": str(tmp_path / "zenml")}},
    )
    assert check.returncode == 0, check.stderr[-3000:]
    found = json.loads(check.stdout.strip().splitlines()[-1])
    assert all(found["integrations"].values()), found["integrations"]
    # Nothing came from this repository's .venv: only the fresh environment's packages.
    assert (
        str(REPO_ROOT / ".venv")
        not in subprocess.run([str(python), "-c", "import sys; print(sys.path)"], **run).stdout
    )
    print(f"image environment built in {built:.1f}s, checked in {time.monotonic() - started:.1f}s")
