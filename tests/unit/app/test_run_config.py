"""Parameters are written once; per-stack files add settings only."""

from __future__ import annotations

import pytest

from app import config as app_config
from core.errors import ConfigError
from core.specs import DEFAULT_MODEL_NAME, ReleaseSpec, ServingSpec


def test_the_shipped_configs_hold_parameters_once_and_stack_files_only_settings():
    for name in app_config.PIPELINES:
        local = app_config.load_run_config(name, stack_kind="local")
        kubeflow = app_config.load_run_config(name, stack_kind="kubeflow")
        assert local.params == kubeflow.params
        assert local.params.model_name == DEFAULT_MODEL_NAME
        assert "settings" not in local.options
        assert kubeflow.options["settings"]["docker"]["skip_build"] is True
        assert kubeflow.options["enable_cache"] is False  # from the shared file


@pytest.fixture
def configs(tmp_path, monkeypatch):
    (tmp_path / "kubeflow").mkdir()
    monkeypatch.setattr(app_config, "CONFIGS", tmp_path)
    return tmp_path


def test_stack_settings_merge_under_the_pipeline_file(configs):
    (configs / "deployment.yaml").write_text(
        "settings:\n  resources:\n    cpu_count: 4\nparameters:\n  protocol: v2\n"
    )
    (configs / "kubeflow" / "deployment.yaml").write_text(
        "settings:\n  resources:\n    cpu_count: 1\n    memory: 1GB\n  docker:\n    skip_build: true\n"
    )
    run = app_config.load_run_config("deployment", stack_kind="kubeflow")
    assert run.options["settings"] == {
        "resources": {"cpu_count": 4, "memory": "1GB"},  # the pipeline's own file wins
        "docker": {"skip_build": True},
    }
    assert run.params.protocol == "v2"
    # The serving parameters, written at the top of `parameters:`, reach the pipeline as one spec.
    assert run.kwargs() == {
        "model_name": DEFAULT_MODEL_NAME,
        "serving": ServingSpec(
            protocol="v2",
            default_protocol="seldon",
            timeout=300,
            release=ReleaseSpec(),  # swap: a passed version replaces the champion at once
        ),
    }


def test_parameters_in_a_stack_file_are_refused_with_where_they_belong(configs):
    (configs / "deployment.yaml").write_text("parameters:\n  protocol: v2\n")
    (configs / "kubeflow" / "deployment.yaml").write_text("parameters:\n  protocol: seldon\n")
    with pytest.raises(ConfigError, match="per-stack files hold only settings"):
        app_config.load_run_config("deployment", stack_kind="kubeflow")
    # The local stack has no stack file: nothing to refuse.
    assert app_config.load_run_config("deployment", stack_kind="local").params.protocol == "v2"


def test_overrides_and_model_name_fall_back_to_the_config(configs):
    (configs / "monitoring.yaml").write_text("parameters:\n  model_name: churn\n")
    assert app_config.model_name(None) == "churn"
    assert app_config.model_name("other") == "other"
    run = app_config.load_run_config(
        "monitoring", overrides={"thresholds.p_value": 0.01}, stack_kind="local"
    )
    assert run.params.thresholds.p_value == 0.01 and run.params.model_name == "churn"


def test_only_the_training_pipeline_runs_under_a_zenml_model(configs):
    (configs / "training.yaml").write_text("parameters:\n  model_name: churn\n")
    (configs / "deployment.yaml").write_text("parameters: {}\n")
    training = app_config.load_run_config("training", stack_kind="local").zenml_options()
    assert training["model"].name == "churn"
    deployment = app_config.load_run_config("deployment", stack_kind="local").zenml_options()
    assert "model" not in deployment
