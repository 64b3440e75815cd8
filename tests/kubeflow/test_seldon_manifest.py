"""On a stack with zenkube's `zenkube_seldon` deployer, our deployment step yields a
SeldonDeployment that Seldon Core v1.18.2's full CRD accepts (nothing pruned) with names
its operator can turn into Services and Istio subsets.

There is no Kubernetes API server here, so only the HTTP call to it is intercepted
(`kubernetes.client.ApiClient.call_api`); everything above it is ZenML's own code.
"""

from __future__ import annotations

import base64
import json

import pytest
from zenml.client import Client
from zenml.enums import StackComponentType as T

from core.traffic.rows import folder_name
from integrations.k8s import names as k8s_names
from integrations.kubeflow import seldon_manifest
from integrations.kubeflow.flavors import SELDON_FLAVOR
from integrations.mlflow.registry import RegisteredModel
from steps.deployment.deploy import build_deployment_config, serve_champion
from tests.kubeflow.conftest import SELDON_CRD, cluster_stack, crd_problems, use_test_kubeconfig

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


def serve_on_seldon(name: str, version: str, model_id: str, location: str = ""):
    """Serve `name` v`version` (MLflow model `model_id`, its files in the stack's bucket
    unless `location` says) with the deployment step, on the stack's Seldon deployer."""
    champion = RegisteredModel(
        name=name,
        version=version,
        model_uri=f"models:/{model_id}",
        artifact_location=location
        or f"s3://zenkube-artifacts/mlflow/1/models/{model_id}/artifacts",
    )
    return serve_champion(champion, "seldon", "deployment_pipeline", "deploy_champion", timeout=0)


def test_deployment_step_builds_a_seldon_deployment_with_a_secret_reference(
    seldon_stack, kubernetes_api
):
    serve_on_seldon("zenkube-model", "3", "m-abc")

    posted = [c for c in kubernetes_api if c["method"] in {"POST", "PUT", "PATCH"}]
    secrets = [c for c in posted if c["path"].endswith("/secrets") or "/secrets/" in c["path"]]
    deployments = [c for c in posted if "seldondeployments" in c["path"]]
    assert len(secrets) == 1 and len(deployments) == 1

    manifest = deployments[0]["body"]
    assert crd_problems(manifest, SELDON_CRD) == []  # nothing refused, nothing pruned
    assert manifest["apiVersion"] == "machinelearning.seldon.io/v1"
    assert manifest["kind"] == "SeldonDeployment"
    assert manifest["metadata"]["name"].startswith("zenml-")
    assert "/namespaces/zenkube/seldondeployments" in deployments[0]["path"]
    assert "protocol" not in manifest["spec"]  # so the cluster speaks Seldon's v1 protocol
    (predictor,) = manifest["spec"]["predictors"]
    graph = predictor["graph"]
    assert graph["name"] == "classifier" and graph["type"] == "MODEL"
    assert graph["implementation"] == "MLFLOW_SERVER"
    assert graph["modelUri"] == "s3://zenkube-artifacts/mlflow/1/models/m-abc/artifacts"
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
    serve_on_seldon("house prices", "4", "m-def")
    (deployment,) = [c for c in kubernetes_api if "seldondeployments" in c["path"] and c["body"]]
    assert crd_problems(deployment["body"], SELDON_CRD) == []
    (predictor,) = deployment["body"]["spec"]["predictors"]
    assert predictor["name"] == seldon_manifest.predictor_name("house prices")
    sdep = deployment["body"]["metadata"]["name"]
    assert not k8s_names.problems(seldon_manifest.predictor_service(sdep, predictor["name"]))
    # Seldon's executor posts each request and response as CloudEvents to the sink, which
    # writes them where `monitor --from-traffic` reads (core/traffic/sink.py).
    assert predictor["graph"]["logger"] == {
        "mode": "all",
        # `house prices` had to change: its folder carries a hash (core/traffic/rows.py)
        # and its rows say who answered: the champion, version 4 (core/traffic/sink.py)
        "url": "http://zenkube-traffic-sink.zenkube/house_prices.7c775f494a21d2e2"
        f"?role=champion&version=4&predictor={predictor['name']}",
    }


def zenml_body(model_name: str) -> dict:
    """The body ZenML 0.98's Seldon service sends for our deployment step's config."""
    from uuid import uuid4

    champion = RegisteredModel(name=model_name, version="1", model_uri="models:/m-1",
                               artifact_location="s3://b/m")  # fmt: skip
    config = build_deployment_config(champion, "seldon", "deployment_pipeline", "deploy")
    return seldon_manifest.zenml_body(config, uuid4())


NAMES = ["House_Prices", "house-prices", "house.prices", "churn_v2", "my.model", "m" * 62]


def test_every_model_name_yields_predictor_names_seldon_and_istio_accept():
    bodies = [seldon_manifest.for_cluster(zenml_body(n), "http://sink") for n in NAMES]
    predictors = [b["spec"]["predictors"][0]["name"] for b in bodies]
    assert len(set(predictors)) == len(NAMES)  # House_Prices and house-prices stay apart
    assert predictors[1] == "house-prices"
    for name, body in zip(NAMES, bodies, strict=True):
        assert crd_problems(body, SELDON_CRD) == []
        predictor = body["spec"]["predictors"][0]["name"]
        assert not k8s_names.problems(predictor)  # the Istio subset
        service = seldon_manifest.predictor_service(body["metadata"]["name"], predictor)
        assert not k8s_names.problems(service)  # the operator's Service name
        assert body["metadata"]["labels"]["zenkube.model-name"][-1].isalnum()
        assert (
            body["spec"]["predictors"][0]["graph"]["logger"]["url"]
            .split("?")[0]
            .endswith(
                "/" + folder_name(name)  # the model's own traffic folder (core/traffic/rows.py)
            )
        )
    urls = {b["spec"]["predictors"][0]["graph"]["logger"]["url"] for b in bodies}
    assert len(urls) == len(NAMES)  # house.prices and house_prices log apart


def test_deploy_refuses_a_model_uri_the_storage_initializer_cannot_read(
    seldon_stack, kubernetes_api
):
    from core.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        serve_on_seldon("house prices", "5", "m-ghi", "mlflow-artifacts:/1/models/m-ghi/artifacts")
    message = str(refused.value)
    assert message.count(". ") == 0 and "mlflow-artifacts:/1/models/m-ghi" in message
    assert "--default-artifact-root s3://" in message  # how to fix it
    assert not [c for c in kubernetes_api if c["method"] != "GET"]  # nothing was applied


def test_which_model_uris_a_storage_initializer_reads():
    from integrations.k8s.storage_uri import unreadable

    for uri in ("s3://b/mlflow/1/models/m/artifacts", "gs://b/m", "pvc://claim/m"):
        assert unreadable(uri, "KServe") == ""
    for uri in ("mlflow-artifacts:/1/m", "models:/m/1", "runs:/r/model", "/data/m", "s3://"):
        assert "cannot be read by KServe's storage initializer" in unreadable(uri, "KServe")
    # An MLflow reference is resolved, not fixed by restarting the MLflow server.
    for uri in ("models:/m/1", "runs:/r/model"):
        message = unreadable(uri, "KServe")
        assert "--default-artifact-root" not in message and ".source" in message
        assert message.count(". ") == 0  # one sentence
    assert "--default-artifact-root s3://" in unreadable("mlflow-artifacts:/1/m", "KServe")
    # a path on the shared volume every pod mounts is read in place; others are not
    assert unreadable("/mnt/shared/mlflow/1/m", "Seldon Core", "/mnt/shared") == ""
    assert unreadable("file:///mnt/shared/m", "Seldon Core", "/mnt/shared") == ""
    assert unreadable("/home/me/mlruns/m", "Seldon Core", "/mnt/shared")
