"""The command line as a user meets it: --help everywhere, and errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    home = tmp_path_factory.mktemp("cli")
    (home / "repo").mkdir()
    env = {
        **os.environ,
        "ZENKUBE_HOME": str(home / "home"),
        "ZENML_CONFIG_PATH": str(home / "home" / "zenml"),
        "ZENML_REPOSITORY_PATH": str(home / "repo"),
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "run.py", *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run


@pytest.mark.parametrize(
    "command",
    [[], ["train"], ["deploy"], ["predict"], ["monitor"], ["serve"], ["stack"], ["compile"]],
)
def test_every_command_explains_itself(cli, command):
    result = cli(*command, "--help")
    assert result.returncode == 0 and "Usage:" in result.stdout
    assert len(result.stdout.splitlines()) > 4


def test_missing_data_file_is_one_message_without_traceback(cli, tmp_path):
    result = cli("train", "--dataset", str(tmp_path / "missing.csv"), "--target", "y")
    assert result.returncode == 2
    assert "Error: Data file not found" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_misspelt_config_key_is_named(cli, tmp_path):
    config = tmp_path / "training.yaml"
    config.write_text("parameters:\n  trainer:\n    class_pth: sklearn.dummy.DummyClassifier\n")
    result = cli("train", "--config", str(config))
    assert result.returncode == 2
    assert "unknown key `parameters.trainer.class_pth`" in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_before_any_deployment_says_what_to_do(cli, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n")
    result = cli("predict", "--input", str(rows))
    assert result.returncode == 2
    assert "Nothing is deployed yet. Run `python run.py deploy` first." in result.stderr
