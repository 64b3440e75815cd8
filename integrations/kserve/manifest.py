"""The InferenceService zenkube asks KServe for (plain functions: no cluster, no ZenML).

One registered model, one InferenceService: `modelFormat: mlflow` on the V2 protocol,
the model files where MLflow logged them in the stack's bucket (`storageUri`), storage
credentials through a service account (never in the manifest), and zenkube's serving
runtime, which runs the same MLServer runtime class as the local `v2` server, so
requests are checked and answered the same way on the laptop and on the cluster.
"""

from __future__ import annotations

import re

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
RUNTIME = "zenkube-mlserver"  # stacks/kserve/zenkube-mlserver-runtime.yaml
# The runtime class both the local `v2` server and the cluster runtime load.
RUNTIME_CLASS = "mlserver_runtime.ZenkubeMLflowRuntime"


def service_name(model_name: str) -> str:
    """A DNS-1035 name for the model's InferenceService (`zenkube-<model>`)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-") or "model"
    return f"zenkube-{slug}"[:45].rstrip("-")  # KServe appends -predictor-…: keep it short


def prediction_path(name: str) -> str:
    """Where KServe's V2 endpoint of this InferenceService answers (behind the ingress)."""
    return f"/v2/models/{name}/infer"


def inference_service(
    model_name: str,
    model_version: str,
    storage_uri: str,
    namespace: str,
    service_account: str,
    resources: dict | None = None,
    runtime: str = RUNTIME,
    min_replicas: int = 1,
    logger_url: str = "",
) -> dict:
    """The InferenceService body, as the Kubernetes API takes it."""
    name = service_name(model_name)
    model: dict = {
        "modelFormat": {"name": "mlflow"},
        "protocolVersion": "v2",
        "runtime": runtime,
        "storageUri": storage_uri,
    }
    if resources:
        model["resources"] = resources
    predictor: dict = {
        "minReplicas": min_replicas,
        "serviceAccountName": service_account,
        "model": model,
    }
    if logger_url:
        predictor["logger"] = {"mode": "all", "url": logger_url}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app": "zenkube",
                "zenkube.model-name": re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)[:63],
                "zenkube.model-version": str(model_version)[:63],
            },
            "annotations": {"zenkube.io/registered-model": model_name},
        },
        "spec": {"predictor": predictor},
    }


def ready(body: dict) -> tuple[bool, str]:
    """(Ready, why not) from an InferenceService's status conditions."""
    conditions = (body.get("status") or {}).get("conditions") or []
    for condition in conditions:
        if condition.get("type") == "Ready":
            if condition.get("status") == "True":
                return True, ""
            return False, condition.get("message") or condition.get("reason") or "not ready"
    return False, "KServe has not reported on it yet"
