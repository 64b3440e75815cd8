"""On a stack with ZenML's `seldon` deployer, our deployment step yields a valid SeldonDeployment.

There is no Kubernetes API server here, so only the HTTP call to it is intercepted
(`kubernetes.client.ApiClient.call_api`); everything above it is ZenML's own code.
"""

from __future__ import annotations

import base64
import json

import pytest
from zenml.client import Client
from zenml.enums import StackComponentType as T

from integrations.kubeflow.flavors import SELDON_FLAVOR
from integrations.mlflow_registry import RegisteredModel
from steps.deployment.deploy import serve_champion
from tests.kubeflow.conftest import cluster_stack, use_test_kubeconfig

ACCESS_KEY = "AKIAZENKUBETESTKEY01"
SECRET_KEY = "zenkube/test+secret/key/value/0123456789"


SELDON = {
    "kubernetes_context": "zenkube-test",
    "kubernetes_namespace": "zenkube",
    "base_url": "http://seldon.example.com",
    "secret": None,
    "kubernetes_secret_name": None,
}


@pytest.fixture
def seldon_stack(zenml_store, tmp_path, monkeypatch):
    use_test_kubeconfig(tmp_path, monkeypatch)
    return cluster_stack("seldon-cluster", SELDON_FLAVOR, SELDON, ACCESS_KEY, SECRET_KEY)


def test_deployment_step_builds_a_seldon_deployment_with_a_secret_reference(
    seldon_stack, kubernetes_api
):
    champion = RegisteredModel(
        name="zenkube-model",
        version="3",
        model_uri="models:/m-abc",
        artifact_location="s3://zenkube-artifacts/mlflow/1/models/m-abc/artifacts",
    )
    serve_champion(champion, "seldon", "deployment_pipeline", "deploy_champion", timeout=0)

    posted = [c for c in kubernetes_api if c["method"] in {"POST", "PUT", "PATCH"}]
    secrets = [c for c in posted if c["path"].endswith("/secrets") or "/secrets/" in c["path"]]
    deployments = [c for c in posted if "seldondeployments" in c["path"]]
    assert len(secrets) == 1 and len(deployments) == 1

    manifest = deployments[0]["body"]
    assert manifest["apiVersion"] == "machinelearning.seldon.io/v1"
    assert manifest["kind"] == "SeldonDeployment"
    assert manifest["metadata"]["name"].startswith("zenml-")
    assert "/namespaces/zenkube/seldondeployments" in deployments[0]["path"]
    assert "protocol" not in manifest["spec"]  # so the cluster speaks Seldon's v1 protocol
    (predictor,) = manifest["spec"]["predictors"]
    graph = predictor["graph"]
    assert graph["name"] == "classifier" and graph["type"] == "MODEL"
    assert graph["implementation"] == "MLFLOW_SERVER"
    assert graph["modelUri"] == champion.artifact_location
    expected_secret = f"zenml-seldon-core-{seldon_stack.id}"
    assert graph["envSecretRefName"] == expected_secret
    assert predictor["replicas"] == 1

    secret = secrets[0]["body"]
    assert secret["metadata"]["name"] == expected_secret
    # The storage initializer reads the keys from this Secret, not from the manifest.
    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert values["RCLONE_CONFIG_S3_ACCESS_KEY_ID"] == ACCESS_KEY
    assert values["RCLONE_CONFIG_S3_SECRET_ACCESS_KEY"] == SECRET_KEY
    text = json.dumps(manifest)
    assert ACCESS_KEY not in text and SECRET_KEY not in text


def test_with_a_request_logger_url_every_graph_logs_its_traffic_to_the_sink(
    seldon_stack, kubernetes_api
):
    client = Client()
    logged = client.create_stack_component(
        "seldon-logged",
        SELDON_FLAVOR,
        T.MODEL_DEPLOYER,
        {**SELDON, "request_logger_url": "http://zenkube-traffic-sink.zenkube/"},
    )
    client.update_stack("seldon-cluster", component_updates={T.MODEL_DEPLOYER: [logged.id]})
    champion = RegisteredModel(
        name="house prices",
        version="4",
        model_uri="models:/m-def",
        artifact_location="s3://zenkube-artifacts/mlflow/1/models/m-def/artifacts",
    )
    serve_champion(champion, "seldon", "deployment_pipeline", "deploy_champion", timeout=0)
    (deployment,) = [c for c in kubernetes_api if "seldondeployments" in c["path"] and c["body"]]
    (predictor,) = deployment["body"]["spec"]["predictors"]
    # Seldon's executor posts each request and response as CloudEvents to the sink, which
    # writes them where `monitor --from-traffic` reads (integrations/traffic_sink.py).
    assert predictor["graph"]["logger"] == {
        "mode": "all",
        "url": "http://zenkube-traffic-sink.zenkube/house_prices",
    }
