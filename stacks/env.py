"""Process set-up that must happen before ZenML is imported (no ZenML imports here)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.paths import REPO_ROOT, zenkube_home

STACKS_DIR = Path(__file__).resolve().parent


def spec_path(name_or_path: str) -> Path:
    """`local` → stacks/local.yaml; anything else is a path."""
    candidate = STACKS_DIR / f"{name_or_path}.yaml"
    path = candidate if candidate.exists() else Path(name_or_path)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in STACKS_DIR.glob("*.yaml")))
        raise ConfigError(f"No stack spec '{name_or_path}'. Known specs: {known}, or a YAML path.")
    return path


_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


def expand_vars(value: Any) -> Any:
    """Expand ${VAR} and ${VAR:-default} in every string of a YAML structure."""
    return _expand(value, {**os.environ, "ZENKUBE_HOME": str(zenkube_home())})


def _expand(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name not in env and default is not None:
                return default
            if name not in env:
                raise ConfigError(
                    f"The stack spec uses ${{{name}}} but it is not set; export {name}=... first."
                )
            return env[name]

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env) for v in value]
    return value


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
    settle_local_dashboard()


def settle_local_dashboard() -> list[str]:
    """Let ZenML's local dashboard (`zenml login --local`) open on the runs, not on forms.

    ZenML 0.98's dashboard asks for a name, an e-mail (newsletter ticked) and a role while
    the user's `email_opted_in` is unset or its `user_metadata` lacks
    `finished_onboarding_survey` (dashboard `index-*.js`, the `Zb` check); it shows a
    "get started" checklist until the server's onboarding state holds
    `oss_onboarding_completed` (set by ZenML when a pipeline is *deployed*, which zenkube
    never does); and its settings carry analytics, announcements and update notices (fetched
    from zenml.io). zenkube's own store answers these once: no e-mail, no survey, analytics,
    announcements and update notices off. A remote ZenML server is never touched: its
    owner decides there. Returns what it changed (nothing, once settled).
    """
    from zenml.client import Client
    from zenml.constants import FINISHED_ONBOARDING_SURVEY_KEY
    from zenml.enums import OnboardingStep
    from zenml.models import ServerSettingsUpdate

    client = Client()
    store = client.zen_store
    if not store.is_local_store():
        return []
    changed = []
    user = store.get_user(client.active_user.id, hydrate=True)  # not the client's cached copy
    metadata = dict(user.user_metadata or {})
    if user.email_opted_in is None or not metadata.get(FINISHED_ONBOARDING_SURVEY_KEY):
        client.update_user(
            user.id,
            updated_email_opt_in=False,
            updated_metadata={**metadata, FINISHED_ONBOARDING_SURVEY_KEY: True},
        )
        changed.append("survey")
    settings = store.get_server_settings()
    if settings.enable_analytics or settings.display_announcements or settings.display_updates:
        store.update_server_settings(
            ServerSettingsUpdate(
                enable_analytics=False, display_announcements=False, display_updates=False
            )
        )
        changed.append("server settings")
    # Only the SQL store itself keeps the onboarding state (not the REST client of the local
    # server that `zenml login --local` connects to; the answer is given before that anyway).
    onboarding = getattr(store, "get_onboarding_state", None)
    if onboarding and OnboardingStep.OSS_ONBOARDING_COMPLETED not in onboarding():
        store.update_onboarding_state({OnboardingStep.OSS_ONBOARDING_COMPLETED})
        changed.append("onboarding")
    return changed


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
        "`python run.py stack up local`."
    )
