"""Shared set-up for serving tests: a trained champion and its test split."""

from __future__ import annotations

from zenml.client import Client

from pipelines import runs
from tests.conftest import FAST_TRAINER


def train_champion(model_name: str):
    result = runs.train(None, {"model_name": model_name, **FAST_TRAINER})
    assert result.decision.promoted
    run = Client().get_pipeline_run(result.run_name)
    test = run.steps["split_data"].outputs["test_set"][0].load()
    model = run.steps["train_model"].outputs["model"][0].load()
    return result, test, model


def stop_all() -> None:
    deployer = Client().active_stack.model_deployer
    for service in deployer.services_for():
        deployer.delete_model_server(service.uuid, force=True)
