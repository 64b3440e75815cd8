"""Stack specs: every invalid Kubeflow spec names the missing piece and the key to set."""

from __future__ import annotations

import copy

import pytest
import yaml

from stacks.manage import STACKS_DIR, expand_vars, secret_references, validate_spec


def kubeflow_spec() -> dict:
    return expand_vars(yaml.safe_load((STACKS_DIR / "kubeflow.yaml").read_text()))


def test_shipped_specs_are_valid():
    assert validate_spec(kubeflow_spec()) == []
    assert validate_spec(expand_vars(yaml.safe_load((STACKS_DIR / "local.yaml").read_text()))) == []


def without(spec: dict, component: str) -> dict:
    spec = copy.deepcopy(spec)
    del spec["components"][component]
    return spec


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda s: without(s, "container_registry"), "needs `components.container_registry`"),
        (lambda s: without(s, "image_builder"), "needs `components.image_builder`"),
        (
            lambda s: _set(
                s, "artifact_store", {"flavor": "local", "configuration": {"path": "/tmp/a"}}
            ),
            "needs a bucket artifact store",
        ),
        (
            lambda s: _set(s, "experiment_tracker", {"flavor": "mlflow", "configuration": {}}),
            "needs an MLflow tracking server: set `components.experiment_tracker.configuration.tracking_uri",
        ),
        (lambda s: without(s, "model_deployer"), "add a `zenkube_seldon` model_deployer"),
        (lambda s: without(s, "model_registry"), "add an mlflow `components.model_registry`"),
        (
            lambda s: _set(s, "orchestrator", {"flavor": "kubeflow"}),
            "use `flavor: zenkube_kubeflow` for the orchestrator",
        ),
        (
            lambda s: _set(s, "model_deployer", {"flavor": "seldon"}),
            "add a `zenkube_seldon` model_deployer",
        ),
    ],
)
def test_invalid_kubeflow_spec_names_the_key(change, message):
    problems = validate_spec(change(kubeflow_spec()))
    assert any(message in p for p in problems), problems


def _set(spec, component, values):
    spec = copy.deepcopy(spec)
    spec["components"][component][0].update(values)
    return spec


def test_environment_overrides_and_defaults(monkeypatch):
    monkeypatch.setenv("ZENKUBE_BUCKET", "s3://my-bucket/zenml")
    spec = kubeflow_spec()
    assert (
        spec["components"]["artifact_store"][0]["configuration"]["path"] == "s3://my-bucket/zenml"
    )
    assert spec["components"]["orchestrator"][0]["configuration"]["kubeflow_hostname"].startswith(
        "http://localhost"
    )


def test_credentials_are_only_secret_references():
    spec = kubeflow_spec()
    assert secret_references(spec) == {"zenkube-mlflow": {"username", "password"}}
    tracker = spec["components"]["experiment_tracker"][0]["configuration"]
    assert tracker["tracking_password"] == "{{zenkube-mlflow.password}}"
