"""`stack up` is idempotent, updates a changed spec, and refuses missing secrets clearly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from zenml.client import Client

from core.errors import ConfigError
from stacks.manage import STACKS_DIR, stack_up


def test_stack_up_twice_is_a_no_op_and_a_change_is_an_update(zenml_store, tmp_path):
    again = stack_up("local")
    assert not again.changed and again.stack == "zenkube-local"
    spec = yaml.safe_load((STACKS_DIR / "local.yaml").read_text())
    spec["components"]["model_deployer"][0]["configuration"]["state_dir"] = str(
        tmp_path / "serving"
    )
    changed = tmp_path / "local-changed.yaml"
    changed.write_text(yaml.safe_dump(spec))
    update = stack_up(str(changed))
    assert update.updated == ["zenkube-seldon-local"] and not update.created
    deployer = Client().get_stack_component("model_deployer", "zenkube-seldon-local")
    assert deployer.configuration["state_dir"] == str(tmp_path / "serving")


def test_kubeflow_stack_needs_its_secret_first(zenml_store):
    with pytest.raises(
        ConfigError, match="zenml secret create zenkube-mlflow --password=... --username=..."
    ) as refused:
        stack_up("kubeflow")
    # ... in zenkube's ZenML config, not the user's global one
    assert f"`ZENML_CONFIG_PATH={os.environ['ZENML_CONFIG_PATH']} zenml" in str(refused.value)
    Client().create_secret("zenkube-mlflow", values={"username": "u", "password": "p"})
    created = stack_up("kubeflow")
    assert created.changed and Client().active_stack_model.name == "zenkube-kubeflow"
    assert not stack_up("kubeflow").changed


def test_kubeflow_stack_without_a_server_stops_every_command_with_one_message(tmp_path):
    from tests.conftest import cli_in

    cli = cli_in(tmp_path)
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}  # no credentials to find
    assert cli("stack", "show").returncode == 0  # creates the local store and stack
    secret = ["--username=u", "--password=p"]
    zenml = [os.path.join(os.path.dirname(sys.executable), "zenml")]
    subprocess.run(
        [*zenml, "secret", "create", "zenkube-mlflow", *secret],
        env={**os.environ, "ZENML_CONFIG_PATH": str(cli.home / "zenml")},
        cwd=tmp_path / "repo",
        check=True,
        capture_output=True,
    )
    assert cli("stack", "up", "kubeflow").returncode == 0
    for command in (["train"], ["deploy"], ["monitor"], ["serve", "status"]):
        result = cli(*command, extra_env=env)
        assert result.returncode == 2, (command, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and "pods report to a ZenML server" in errors[0], errors
        assert "zenml login https://YOUR-ZENML-SERVER" in errors[0]
        assert "Traceback" not in result.stdout + result.stderr
        assert "NoCredentialsError" not in result.stdout + result.stderr
