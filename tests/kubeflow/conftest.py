"""Shared by the cluster tests: a kubeconfig that points nowhere, and a stand-in for the
Kubernetes API server (the one part that cannot run here)."""

from __future__ import annotations

import pytest
from kubernetes.client import ApiClient
from kubernetes.client.rest import ApiException
from kubernetes.config import kube_config

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: zenkube, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: zenkube, user: {token: "not-used"}}]
contexts: [{name: zenkube-test, context: {cluster: zenkube, user: zenkube}}]
current-context: zenkube-test
"""


def cluster_stack(name: str, flavor: str, config: dict, key: str, secret: str):
    """Activate stack `name`: the local stack with an S3 bucket (its keys in a ZenML
    secret) and a cluster model deployer (`flavor`, `config`). Returns the bucket."""
    from zenml.client import Client
    from zenml.enums import StackComponentType as T

    client = Client()
    client.create_secret(
        "s3-creds", values={"aws_access_key_id": key, "aws_secret_access_key": secret}
    )
    store = client.create_stack_component(
        "bucket",
        "s3",
        T.ARTIFACT_STORE,
        {
            "path": "s3://zenkube-artifacts/zenml",
            "key": "{{s3-creds.aws_access_key_id}}",
            "secret": "{{s3-creds.aws_secret_access_key}}",
        },
    )
    deployer = client.create_stack_component(f"{name}-deployer", flavor, T.MODEL_DEPLOYER, config)
    local = client.get_stack("zenkube-local")
    components = {t: [c[0].id] for t, c in local.components.items()}
    components[T.ARTIFACT_STORE] = [store.id]
    components[T.MODEL_DEPLOYER] = [deployer.id]
    client.create_stack(name, components=components)
    client.activate_stack(name)
    return store


def use_test_kubeconfig(tmp_path, monkeypatch) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # kubernetes reads KUBECONFIG when it is imported; point its default at our file.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))


@pytest.fixture
def kubernetes_api(monkeypatch):
    """Stand in for the Kubernetes API server: record calls, keep created objects.

    Returns the list of calls; `.objects` holds what was created (path → body)."""
    calls, objects = Calls(), {}
    calls.objects = objects

    def call_api(
        self,
        resource_path,
        method,
        path_params=None,
        query_params=None,
        header_params=None,
        body=None,
        *args,
        **kwargs,
    ):
        path = resource_path
        for key, value in (path_params or {}).items():
            path = path.replace("{" + key + "}", str(value))
        body = self.sanitize_for_serialization(body)
        calls.append({"method": method, "path": path, "body": body})
        if method == "GET":
            if path in objects:
                return objects[path]
            raise ApiException(status=404, reason="Not Found")
        if method == "POST":
            objects[f"{path}/{body['metadata']['name']}"] = body
        elif method in {"PUT", "PATCH"}:
            objects[path] = {**objects.get(path, {}), **body}
        elif method == "DELETE":
            objects.pop(path, None)
        return body

    monkeypatch.setattr(ApiClient, "call_api", call_api)
    return calls


class Calls(list):
    objects: dict
