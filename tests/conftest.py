"""Shared fixtures: isolated ZenML stores and small, fast training settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
os.environ.setdefault("ZENML_LOGGING_VERBOSITY", "WARN")
# The default model (HistGradientBoosting) uses every core through OpenMP; tests run in
# two workers on two cores, where more threads than cores only wait on each other.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# A deploy starts one model-server process, not a user's two replicas (a warm standby:
# integrations/seldon_local/replicas.py): a second start per deploy would add minutes to
# the suite. The fault test (tests/serving/test_faults.py) runs the champion as two.
os.environ.setdefault("ZENKUBE_REPLICAS", "1")

# Small and quick, but the same code path as the defaults.
FAST_TRAINER = {
    "trainer.params": {"max_iter": 20, "random_state": 0},
    "trainer.search": {},
}


class IsolatedZenML:
    """A fresh ZenML config, repository, SQLite store, artifact store and MLflow db."""

    def __init__(self, root: Path):
        self.root = root
        self._saved = {}

    def __enter__(self) -> IsolatedZenML:
        env = {
            "ZENKUBE_HOME": str(self.root / "home"),
            "ZENML_CONFIG_PATH": str(self.root / "home" / "zenml"),
            "ZENML_REPOSITORY_PATH": str(self.root / "repo"),
        }
        (self.root / "repo").mkdir(parents=True, exist_ok=True)
        for key, value in env.items():
            self._saved[key] = os.environ.get(key)
            os.environ[key] = value
        _reset_zenml()
        from stacks.env import prepare_environment
        from stacks.manage import ensure_zenml_ready

        prepare_environment()
        ensure_zenml_ready("local")
        return self

    def __exit__(self, *exc) -> None:
        stop_servers_under(self.root / "home" / "serving")
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reset_zenml()


def stop_servers_under(serving_dir: Path) -> None:
    """Stop every model server a test started, even when the test failed half-way."""
    import json

    from integrations.seldon_local.process import stop_group

    for record in [*serving_dir.glob("*/server.json"), *serving_dir.glob("fronts/*/router.json")]:
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        # A front's group is its keeper's (the leader), as ModelFront.stop stops it: the
        # front's own pid names no group, so stopping only that left keeper and front up.
        standbys = [s.get("pid") for s in data.get("standbys") or [] if isinstance(s, dict)]
        for pid in dict.fromkeys(
            [data.get("group"), data.get("keeper"), data.get("pid"), *standbys]
        ):
            try:
                stop_group(pid, timeout=5)
            except OSError:
                pass


def _reset_zenml() -> None:
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration

    Client._reset_instance()
    GlobalConfiguration._reset_instance()
    try:
        import mlflow

        mlflow.set_tracking_uri("")
        while mlflow.active_run():
            mlflow.end_run()
    except Exception:
        pass


@pytest.fixture
def zenml_store(tmp_path):
    """A fresh isolated ZenML store for one test."""
    with IsolatedZenML(tmp_path) as store:
        yield store


@pytest.fixture(scope="module")
def module_store(tmp_path_factory):
    """A fresh isolated ZenML store shared by the tests of one scenario module."""
    with IsolatedZenML(tmp_path_factory.mktemp("zenml")) as store:
        yield store


# One marker per tier, from the folder a test lives in: `pytest -m unit` runs the fast
# tier alone; `-m "not kubeflow"` skips the Kubeflow submit path and compile checks.
TIERS = {"unit": "unit", "pipelines": "pipeline", "serving": "serving", "kubeflow": "kubeflow"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO_ROOT / "tests").parts
        tier = TIERS.get(parts[0], "pipeline")  # tests/test_cli.py runs real pipelines
        item.add_marker(getattr(pytest.mark, tier))


def cli_in(home: Path):
    """`run.py` as a user runs it, in a subprocess with its own ZenML store under `home`."""
    import subprocess

    (home / "repo").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "ZENKUBE_HOME": str(home / "home"),
        "ZENML_CONFIG_PATH": str(home / "home" / "zenml"),
        "ZENML_REPOSITORY_PATH": str(home / "repo"),
    }

    def run(*args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "run.py", *args],
            cwd=REPO_ROOT,
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )

    run.home = home / "home"
    run.env = env
    return run
