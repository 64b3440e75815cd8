"""`stack up` is idempotent, updates a changed spec, and refuses missing secrets clearly."""

from __future__ import annotations

import pytest
import yaml
from zenml.client import Client

from stacks.manage import STACKS_DIR, stack_up
from steps.errors import ConfigError


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
    ):
        stack_up("kubeflow")
    Client().create_secret("zenkube-mlflow", values={"username": "u", "password": "p"})
    created = stack_up("kubeflow")
    assert created.changed and Client().active_stack_model.name == "zenkube-kubeflow"
    assert not stack_up("kubeflow").changed
