"""Process set-up that must happen before ZenML is imported (no ZenML imports here)."""

from __future__ import annotations

import os
from pathlib import Path

from core.paths import REPO_ROOT, zenkube_home


def prepare_environment() -> Path:
    """Keep zenkube's ZenML store and MLflow data in the project unless told otherwise.

    Honoured when already set: ZENKUBE_HOME, ZENML_CONFIG_PATH, ZENML_REPOSITORY_PATH.
    Returns the ZENKUBE_HOME folder.
    """
    home = zenkube_home()
    os.environ["ZENKUBE_HOME"] = str(home)
    os.environ.setdefault("ZENML_CONFIG_PATH", str(home / "zenml"))
    os.environ.setdefault("ZENML_REPOSITORY_PATH", str(REPO_ROOT))
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    os.environ.setdefault("ZENML_ENABLE_REPO_INIT_WARNINGS", "false")
    os.environ.setdefault("AUTO_OPEN_DASHBOARD", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    home.mkdir(parents=True, exist_ok=True)
    # The store holds secrets (base64 only): keep it to its owner.
    home.chmod(0o700)
    return home


def prepare_zenml() -> None:
    """Initialise the ZenML repository (once) and import code from the repo root."""
    from zenml.client import Client
    from zenml.utils import source_utils

    source_utils.set_custom_source_root(str(REPO_ROOT))
    _analytics_off_in_config()
    repo = Path(os.environ["ZENML_REPOSITORY_PATH"])
    if not (repo / ".zen").exists():
        Client.initialize(root=repo)


def _analytics_off_in_config() -> None:
    """Persist analytics_opt_in: false in the project's ZenML config.

    The environment variable covers zenkube's own processes; the file covers the plain
    `zenml` commands the README suggests. (ZenML reads the variable in place of the
    field, so the field is set unconditionally; ZenML writes the file on set.)
    """
    from zenml.config.global_config import GlobalConfiguration

    config = GlobalConfiguration()
    if "analytics_opt_in: false" not in _config_text(config):
        config.analytics_opt_in = False


def _config_text(config) -> str:
    path = Path(config.config_directory) / "config.yaml"
    return path.read_text() if path.exists() else ""


def ensure_zenml_ready(stack: str = "local") -> None:
    """Initialise the ZenML repository; register the zenkube stack unless another is active.

    A fresh store (ZenML's `default` stack active) gets `stack` registered and activated;
    a user who switched to another stack (`python run.py stack up kubeflow`) keeps it.
    """
    from zenml.client import Client

    from stacks.manage import load_spec, stack_up

    prepare_zenml()
    active = Client().active_stack_model.name
    if active in ("default", load_spec(stack)["stack_name"]):
        stack_up(stack)


def require_server_for_remote_stack() -> None:
    """Stop with one clear message when the active stack runs steps remotely on a local store.

    Pods can only report to a ZenML server; without one ZenML would first touch the bucket
    (an S3 credentials traceback) and then refuse anyway.
    """
    from zenml.client import Client

    from core.errors import ConfigError

    client = Client()
    stack = client.active_stack
    if not (stack.requires_remote_server and client.zen_store.is_local_store()):
        return
    zenml = f"ZENML_CONFIG_PATH={os.environ['ZENML_CONFIG_PATH']} .venv/bin/zenml"
    raise ConfigError(
        f"The active stack '{stack.name}' runs its steps in {stack.orchestrator.flavor} pods, "
        "and pods report to a ZenML server, but this machine uses a local ZenML store. "
        f"Connect to your ZenML server first (`{zenml} login https://YOUR-ZENML-SERVER`, "
        "see docs/kubeflow.md), or go back to the local stack with "
        "`python run.py stack up local`. (`python run.py compile` works without a server.)"
    )
