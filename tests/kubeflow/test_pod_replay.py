"""Pod replay: run each compiled KFP task as a new pod would, and compare with a local run.

Each task runs its exact command, args and env from the YAML, in topological order, in
a fresh process with a fresh working directory and a fresh ZENML_CONFIG_PATH. The
ZenML store (SQLite) and the artifact store (`shared_volume` flavor) sit at shared
absolute paths standing in for the cluster's; MLflow is a real `mlflow server`.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
from zenml.client import Client
from zenml.enums import StackComponentType as T

from app import loop, runner
from app.config import apply_overrides, pipeline_kwargs
from core.specs import TrainingParams
from integrations.kubeflow.compile import active_stack, compile_pipeline
from integrations.kubeflow.flavors import KUBEFLOW_FLAVOR
from integrations.kubeflow.validate import (
    load_documents,
)
from pipelines.training import training_pipeline
from tests.conftest import FAST_TRAINER
from tests.kfp_replay import replay as replay_documents
from tests.mlflow_server import MlflowServer

MODEL = "replayed"
LOCAL_MODEL = "replayed-local"


@pytest.fixture(scope="module")
def replay_stack(module_store, tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    client = Client()
    # `stack up` registered zenkube's flavors, shared_volume among them.
    client.create_secret(
        "zenkube-mlflow", values={"username": "zenkube", "password": "not-checked"}
    )
    with MlflowServer(root / "mlflow") as server:

        def comp(name, flavor, ctype, config):
            return [client.create_stack_component(name, flavor, ctype, config).id]

        client.create_stack(
            "replay",
            components={
                T.ORCHESTRATOR: comp(
                    "kfp",
                    KUBEFLOW_FLAVOR,
                    T.ORCHESTRATOR,
                    {"kubeflow_hostname": "http://127.0.0.1:9/pipeline"},
                ),
                T.ARTIFACT_STORE: comp(
                    "shared", "shared_volume", T.ARTIFACT_STORE, {"path": str(root / "artifacts")}
                ),
                T.CONTAINER_REGISTRY: comp(
                    "registry", "default", T.CONTAINER_REGISTRY, {"uri": "localhost:5000/zenkube"}
                ),
                T.IMAGE_BUILDER: comp("builder", "local", T.IMAGE_BUILDER, {}),
                T.EXPERIMENT_TRACKER: comp(
                    "mlflow-server",
                    "mlflow",
                    T.EXPERIMENT_TRACKER,
                    {
                        "tracking_uri": server.url,
                        "tracking_username": "{{zenkube-mlflow.username}}",
                        "tracking_password": "{{zenkube-mlflow.password}}",
                    },
                ),
                T.MODEL_REGISTRY: [
                    client.get_stack_component(T.MODEL_REGISTRY, "zenkube-mlflow-registry").id
                ],
            },
        )
        yield root, server


def replay(path: Path, root: Path) -> list[str]:
    """Run every task of the compiled pipeline as a pod would; return the task order."""
    return replay_documents(load_documents(path), root)


KUBEFLOW_OPTIONS = {
    "enable_cache": False,
    "settings": {
        "docker": {
            "parent_image": "localhost:5000/zenkube:test",
            "skip_build": True,
            "allow_download_from_artifact_store": False,
            "allow_download_from_code_repository": False,
        }
    },
}


def completed_runs_on_replay(pipeline: str):
    return [
        r
        for r in Client()
        .list_pipeline_runs(pipeline=pipeline, size=50, sort_by="desc:created")
        .items
        if r.stack and r.stack.name == "replay" and r.status == "completed"
    ]


@pytest.fixture(scope="module")
def replayed_training(replay_stack, tmp_path_factory):
    from zenml import Model

    root, server = replay_stack
    overrides = {"model_name": MODEL, **FAST_TRAINER}
    # The same seeded training on the local stack, under its own name: the local MLflow is
    # another registry, and a ZenML Model's champion lives in one registry.
    local = runner.train(None, {**overrides, "model_name": LOCAL_MODEL})
    params = apply_overrides(TrainingParams(), overrides)
    kwargs = pipeline_kwargs(params)
    options = {**KUBEFLOW_OPTIONS, "model": Model(name=MODEL)}
    out = tmp_path_factory.mktemp("yaml") / "training.yaml"
    with active_stack("replay"):
        path = compile_pipeline(training_pipeline, kwargs, options, out)
    order = replay(path, root)
    runs_on_replay = completed_runs_on_replay("training_pipeline")
    assert runs_on_replay, "the replayed training run did not complete"
    return local, Client().get_pipeline_run(runs_on_replay[0].id), order


def test_replayed_training_matches_the_local_run_and_registers_in_mlflow_server(
    replayed_training, replay_stack
):
    root, server = replay_stack
    local, replayed, order = replayed_training
    assert order[0] == "load_data" and order[-1] == "promote_if_better"
    report_artifact = replayed.steps["evaluate_model"].outputs["evaluation_report"][0]
    assert report_artifact.load().metrics == pytest.approx(local.metrics, abs=1e-12)
    assert str(root / "artifacts") in report_artifact.uri

    # MLflow in server mode: the pods registered there and the champion loads from it.
    os.environ["MLFLOW_TRACKING_URI"] = server.url
    mlflow.set_tracking_uri(server.url)
    mlflow.set_registry_uri(server.url)
    try:
        champion = mlflow.sklearn.load_model(f"models:/{MODEL}@champion")
        test = replayed.steps["split_data"].outputs["test_set"][0].load()
        trained = replayed.steps["train_model"].outputs["model"][0].load()
        np.testing.assert_array_equal(
            champion.predict(test.features), trained.predict(test.features)
        )
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        mlflow.set_tracking_uri("")


def test_replayed_monitoring_reaches_the_same_decision_as_locally(
    replayed_training, replay_stack, tmp_path
):
    from core.specs import MonitoringParams
    from pipelines.monitoring import monitoring_pipeline

    root, _ = replay_stack
    local_training, replayed, _ = replayed_training
    held_out = replayed.steps["split_data"].outputs["test_set"][0].load()
    batch = root / "batches" / "held-out.csv"
    batch.parent.mkdir(exist_ok=True)
    held_out.frame.to_csv(batch, index=False)

    params = MonitoringParams(model_name=MODEL, batch=str(batch), retrain=False)
    local = loop.monitor(
        None,
        {"model_name": LOCAL_MODEL, "batch": str(batch), "retrain": False},
        echo=lambda *_: None,
    )
    kwargs = pipeline_kwargs(params)
    with active_stack("replay"):
        path = compile_pipeline(
            monitoring_pipeline, kwargs, KUBEFLOW_OPTIONS, tmp_path / "monitoring.yaml"
        )
    order = replay(path, root / "monitoring")
    assert order[0] == "load_reference" and order[-1] == "decide_action"
    (run,) = completed_runs_on_replay("monitoring_pipeline")[:1]
    run = Client().get_pipeline_run(run.id)
    decision = run.steps["decide_action"].outputs["monitoring_decision"][0].load()
    drift = run.steps["detect_drift"].outputs["drift_report"][0].load()
    assert decision == local.decision
    assert [c.p_value for c in drift.columns] == [c.p_value for c in local.drift.columns]
