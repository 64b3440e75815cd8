"""The InferenceService zenkube asks KServe for (plain functions: no cluster, no ZenML).

One registered model, one InferenceService: `modelFormat: mlflow` on the V2 protocol,
the model files where MLflow logged them in the stack's bucket (`storageUri`), storage
credentials through a service account (never in the manifest), and zenkube's serving
runtime, which runs the same MLServer runtime class as the local `v2` server, so
requests are checked and answered the same way on the laptop and on the cluster.

Validated against KServe's full CRDs (v0.20.0 and the oldest supported, v0.15.0) in
tests/kubeflow/test_kserve_manifest.py.
"""

from __future__ import annotations

from integrations import k8s_names
from integrations.traffic import safe_name

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
RUNTIME = "zenkube-mlserver"  # stacks/kserve/zenkube-mlserver-runtime.yaml
# The runtime class both the local `v2` server and the cluster runtime load.
RUNTIME_CLASS = "mlserver_runtime.ZenkubeMLflowRuntime"
PREFIX = "zenkube-"
# KServe names the predictor `<isvc>-predictor` and, in Standard mode, its ingress host
# `<isvc>-predictor-<namespace>.<domain>` (kserve `pkg/controller/v1beta1/inferenceservice/
# reconcilers/ingress`, `GenerateDomainName` with the default domain template
# `{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}`): that first DNS label is <= 63.
PREDICTOR_HOST_SUFFIX = "-predictor-"
MODEL_DIR = "/mnt/models"  # where KServe's storage initializer puts the model
PROBE_HEADER = "X-Zenkube-Probe"  # integrations/seldon_local/client.py


def service_name(model_name: str, namespace: str = "zenkube") -> str:
    """The model's InferenceService name: `zenkube-<model>` as a DNS-1035 label, short
    enough that KServe's predictor host label fits 63 in `namespace`, with `-<hash>`
    when the model name had to change (integrations/k8s_names.py)."""
    room = k8s_names.MAX - len(PREDICTOR_HOST_SUFFIX) - len(namespace)
    return k8s_names.dns_label(model_name, PREFIX, min(k8s_names.MAX, room))


def host(name: str, namespace: str, ingress_domain: str = "example.com") -> str:
    """The Host header KServe v0.20's default domain template gives an InferenceService."""
    return f"{name}-{namespace}.{ingress_domain}"


def prediction_path(name: str) -> str:
    """Where KServe's V2 endpoint of this InferenceService answers (behind the ingress)."""
    return f"/v2/models/{name}/infer"


def logger_url(sink_url: str, model_name: str) -> str:
    """Where KServe's logger posts this model's traffic: `<sink>/<model>`, the folder
    `monitor --from-traffic` reads (integrations/traffic.py, `model_folder`)."""
    return f"{sink_url.rstrip('/')}/{safe_name(model_name)}"


def resources(cpu: str, memory: str) -> dict:
    """Requests equal to limits (the predictor's QoS is Guaranteed)."""
    quantities = {"cpu": cpu, "memory": memory}
    return {"requests": dict(quantities), "limits": dict(quantities)}


def inference_service(
    model_name: str,
    model_version: str,
    storage_uri: str,
    namespace: str,
    service_account: str,
    resources: dict | None = None,
    runtime: str = RUNTIME,
    min_replicas: int = 1,
    sink_url: str = "",
) -> dict:
    """The InferenceService body, as the Kubernetes API takes it."""
    name = service_name(model_name, namespace)
    model: dict = {
        "modelFormat": {"name": "mlflow"},
        "protocolVersion": "v2",
        "runtime": runtime,
        "storageUri": storage_uri,
        # KServe >= v0.17 sets these for a runtime annotated `server-type: mlserver`
        # (`SetMlServerDefaults`); older releases only for `kserve-mlserver`. Set here,
        # MLServer serves the model as `<name>` on every supported release.
        "env": [
            {"name": "MLSERVER_MODEL_NAME", "value": name},
            {"name": "MLSERVER_MODEL_URI", "value": MODEL_DIR},
        ],
    }
    if resources:
        model["resources"] = resources
    predictor: dict = {
        "minReplicas": min_replicas,
        "serviceAccountName": service_account,
        "model": model,
    }
    if sink_url:
        predictor["logger"] = {
            "mode": "all",
            "url": logger_url(sink_url, model_name),
            # forwarded as Ce-Metadata: the sink skips deploy's smoke request
            "metadataHeaders": [PROBE_HEADER],
        }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app": "zenkube",
                "zenkube.model-name": k8s_names.label_value(model_name),
                "zenkube.model-version": k8s_names.label_value(str(model_version)),
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
