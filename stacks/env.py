"""Process set-up that must happen before ZenML is imported (no ZenML imports here)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def prepare_environment() -> Path:
    """Keep zenkube's ZenML store and MLflow data in the project unless told otherwise.

    Honoured when already set: ZENKUBE_HOME, ZENML_CONFIG_PATH, ZENML_REPOSITORY_PATH.
    Returns the ZENKUBE_HOME folder.
    """
    home = Path(os.environ.setdefault("ZENKUBE_HOME", str(REPO_ROOT / ".zenkube"))).resolve()
    os.environ.setdefault("ZENML_CONFIG_PATH", str(home / "zenml"))
    os.environ.setdefault("ZENML_REPOSITORY_PATH", str(REPO_ROOT))
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    os.environ.setdefault("ZENML_ENABLE_REPO_INIT_WARNINGS", "false")
    os.environ.setdefault("AUTO_OPEN_DASHBOARD", "false")
    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    home.mkdir(parents=True, exist_ok=True)
    return home


def ensure_zenml_ready(stack: str = "local") -> None:
    """Initialise the ZenML repository and register + activate the zenkube stack."""
    from zenml.client import Client
    from zenml.utils import source_utils

    from stacks.manage import stack_up

    source_utils.set_custom_source_root(str(REPO_ROOT))
    repo = Path(os.environ["ZENML_REPOSITORY_PATH"])
    if not (repo / ".zen").exists():
        Client.initialize(root=repo)
    stack_up(stack)
