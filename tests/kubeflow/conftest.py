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
