"""The warm worker's rules that need no worker: which commands go to it, when its imports
fit a command, and that a command in it imports this repository's code afresh."""

from __future__ import annotations

import sys
import types

import pytest

from app import warm
from core.paths import REPO_ROOT


@pytest.mark.parametrize(
    ("argv", "forwarded"),
    [
        (["run.py"], True),  # the whole loop
        (["run.py", "train", "--model-name", "m"], True),
        (["run.py", "--verbose", "deploy"], True),
        (["run.py", "monitor", "--input", "rows.csv"], True),
        (["run.py", "monitor", "history"], False),  # read-only: no ZenML at all
        (["run.py", "train", "--help"], False),
        (["run.py", "serve", "status"], False),
        (["run.py", "history"], False),
        (["run.py", "warm", "start"], False),
    ],
)
def test_only_pipeline_commands_go_to_the_worker(monkeypatch, argv, forwarded):
    monkeypatch.delenv(warm.CHILD_ENV, raising=False)
    monkeypatch.delenv(warm.SWITCH_ENV, raising=False)
    assert warm.wanted(argv) is forwarded


@pytest.mark.parametrize("variable", [warm.CHILD_ENV, warm.SWITCH_ENV])
def test_a_command_in_a_child_or_told_to_run_cold_is_not_forwarded(monkeypatch, variable):
    monkeypatch.setenv(variable, "1" if variable == warm.CHILD_ENV else "0")
    assert not warm.wanted(["run.py", "train"])


def test_the_key_follows_what_imports_read_not_the_shell():
    env = {"ZENML_LOGGING_VERBOSITY": "WARN", "PWD": "/a", "_": "/usr/bin/python", "SHLVL": "1"}
    same = {**env, "PWD": "/b", "_": "./run.py", "SHLVL": "3", warm.SWITCH_ENV: "1"}
    assert warm.key(env) == warm.key(same)
    assert warm.key(env) != warm.key({**env, "ZENML_LOGGING_VERBOSITY": "INFO"})
    assert warm.key(env) != warm.key({**env, "MLFLOW_TRACKING_URI": "http://x"})


def test_without_a_worker_the_command_runs_cold(monkeypatch, tmp_path):
    monkeypatch.setenv("ZENKUBE_HOME", str(tmp_path))
    assert warm.running() is None and warm.forward(["run.py", "train"]) is None
    (tmp_path / "warm.json").write_text('{"pid": 999999999, "key": "x"}')  # a dead worker
    assert warm.running() is None and warm.forward(["run.py", "train"]) is None


def test_a_child_forgets_this_repositorys_modules_and_keeps_the_libraries(monkeypatch):
    ours = types.ModuleType("zk_ours")
    ours.__file__ = str(REPO_ROOT / "steps" / "zk_ours.py")
    library = types.ModuleType("zk_library")
    library.__file__ = str(REPO_ROOT / ".venv" / "lib" / "zk_library.py")
    monkeypatch.setitem(sys.modules, "zk_ours", ours)
    monkeypatch.setitem(sys.modules, "zk_library", library)
    monkeypatch.setattr(sys, "modules", dict(sys.modules))  # the real table stays as it is
    warm._forget_project_modules()
    assert "zk_ours" not in sys.modules and "app.warm" not in sys.modules
    assert sys.modules["zk_library"] is library and "pytest" in sys.modules


def test_a_forwarded_command_imports_no_library_before_it_is_forwarded():
    """What a pipeline command imports before it goes to the worker (run.py's own imports
    are checked by the read-only commands' tests): a heavy import here would come back
    into every warm command's time."""
    import subprocess

    probe = (
        "import sys; import app.session, app.warm, app.warm_cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'zenml', 'mlflow', 'sklearn', 'pandas', 'numpy', 'sqlalchemy'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
