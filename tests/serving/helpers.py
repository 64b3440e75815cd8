"""Shared set-up for serving tests: a trained champion and its test split."""

from __future__ import annotations

from zenml.client import Client

from app import runner as runs
from tests.conftest import FAST_TRAINER


def promoted(model_name: str, params: dict | None = None):
    """Train `model_name` (the fast trainer, and `params`); the result, promoted."""
    result = runs.train(None, {"model_name": model_name, **FAST_TRAINER, **(params or {})})
    assert result.decision.promoted
    return result


def trained_on(model_name: str, frame, path, target: str, params: dict | None = None):
    """`frame` written as CSV to `path`, then trained on with label `target`: promoted."""
    frame.to_csv(path, index=False)
    return promoted(model_name, {"data.source": str(path), "data.target": target, **(params or {})})


def train_champion(model_name: str):
    result = promoted(model_name)
    run = Client().get_pipeline_run(result.run_name)
    test = run.steps["split_data"].outputs["test_set"][0].load()
    model = run.steps["train_model"].outputs["model"][0].load()
    return result, test, model


def stop_all() -> None:
    deployer = Client().active_stack.model_deployer
    for service in [*deployer.services_for(), *deployer.candidates_for()]:
        deployer.delete_model_server(service.uuid, force=True)


def serve_champion_for_tests(model_name: str, protocol: str):
    """Train a champion and serve it; yield (deployment info, test split, model); then stop."""
    _, test, model = train_champion(model_name)
    info = runs.deploy(None, {"model_name": model_name, "protocol": protocol})
    yield info, test, model
    stop_all()


def deploy_folder(model_name: str, folder, version: str, **extra_args):
    """Deploy an MLflow model folder as `version` with the production config builder."""
    from zenml.integrations.seldon.services.seldon_deployment import SeldonDeploymentService

    from integrations.mlflow.registry import RegisteredModel
    from steps.deployment.deploy import build_deployment_config

    model = RegisteredModel(
        name=model_name, version=version, model_uri="", artifact_location=str(folder)
    )
    config = build_deployment_config(model, "seldon", "tests", "deploy_folder")
    config.extra_args.update(extra_args)
    deployer = Client().active_stack.model_deployer
    return deployer.deploy_model(config, service_type=SeldonDeploymentService.SERVICE_TYPE)
