"""The InferenceService zenkube asks KServe for (plain functions: no cluster, no ZenML).

One registered model, one InferenceService: `modelFormat: mlflow` on the V2 protocol,
the model files where MLflow logged them in the stack's bucket (`storageUri`), storage
credentials through a service account (never in the manifest), and zenkube's serving
runtime, which runs the same MLServer runtime class as the local `v2` server, so
requests are checked and answered the same way on the laptop and on the cluster.

Validated against KServe's full CRDs (v0.20.0 and the oldest supported, v0.15.0) in
tests/kubeflow/test_kserve_manifest.py.

Releases (issue #27): a canary keeps the served version and gives a candidate a share of
the traffic, in the form of the KServe mode the deployer's `deployment_mode` names
(docs/kubeflow.md, "Releases on KServe"):

- Standard (RawDeployment), KServe >= v0.20: an entry of `spec.canary` (kserve
  `pkg/apis/serving/v1beta1/inference_service.go`, `CanarySpec`, #5672): its own predictor
  (`name` required, Deployment and Service `<isvc>-<name>-predictor`) and
  `trafficPercent`; the validating webhook requires the isvc's own
  `serving.kserve.io/deploymentMode: Standard` annotation
  (`inference_service_validation.go`, `validateCanarySpecs`). Abort removes the entry;
  promote gives the stable predictor the candidate's model and removes the entry (the
  v0.20 release notes' rollback and promotion). v0.15's CRD has no `spec.canary` (the API
  server prunes it). KServe v0.20.0 routes its Kubernetes Ingress to the stable predictor
  only (`reconcilers/ingress/kube_ingress_reconciler.go`); the weighted split reaches the
  canary through Gateway API HTTPRoutes from #5912 on (after v0.20.0).
- Serverless (Knative): `spec.predictor.canaryTrafficPercent` with the candidate's spec
  (`reconcilers/knative/ksvc_reconciler.go`: the latest revision gets the share, the last
  rolled-out revision the rest). Promote removes the field (100 % to the latest
  revision); abort is KServe's documented rollback, `canaryTrafficPercent: 0` (all
  traffic back to the previous rolled-out revision), with the champion's spec again.
  Outside Knative the field is ignored (#4074, #5335).

KServe has no shadow (kserve #2978): `SHADOW_REFUSED` says so.
"""

from __future__ import annotations

import copy

from pydantic import BaseModel

from core.traffic.rows import folder_name, logged_as
from integrations.k8s import names as k8s_names
from integrations.k8s.patch import RELEASE, read_release, release_annotation  # noqa: F401 (shared)

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
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"  # kserve pkg/constants
STANDARD, SERVERLESS = "Standard", "Serverless"
STANDARD_ROUTING = (
    "KServe v0.20.0 routes its Kubernetes Ingress to the stable predictor only: the canary's "
    "share reaches it through Gateway API HTTPRoutes, from KServe #5912 on (after v0.20.0); "
    "behind an Ingress the candidate is deployed but answers no live request"
)
GATEWAY_ROUTING = (
    "Gateway API HTTPRoutes split the requests by the canary's share (canary_routing: "
    "gateway-api, KServe #5912)"
)
STANDARD_CANARY_REFUSED = (
    "KServe v0.20.0 routes its Kubernetes Ingress to the stable predictor only (a "
    "spec.canary predictor gets its share through Gateway API HTTPRoutes, from KServe #5912 "
    "on, after v0.20.0), so a Standard-mode canary behind an Ingress would be deployed but "
    "answer no live request and leave the gate nothing to judge; nothing was started. If "
    "your KServe has #5912 and serves through the Gateway API, set canary_routing: "
    "gateway-api in the KServe model deployer's config (KSERVE_CANARY_ROUTING=gateway-api, "
    "then `python run.py stack up kubeflow-kserve`); if KServe runs on Knative, set "
    "deployment_mode: Serverless; or replace the champion at once with `deploy` (a swap)."
)
SHADOW_REFUSED = (
    "KServe has no shadow traffic: an InferenceService cannot mirror requests to a second "
    "model (kserve/kserve#2978, open since 2023), so a shadow release cannot run on the "
    "KServe deployer. Use `release start --canary PCT` (a share of live requests, answered "
    "by the candidate), or the Seldon Core deployer (`stack up kubeflow`) or the local "
    "stack, whose releases run as canary or shadow."
)


def service_name(model_name: str, namespace: str = "zenkube") -> str:
    """The model's InferenceService name: `zenkube-<model>` as a DNS-1035 label, short
    enough that KServe's predictor host label fits 63 in `namespace`, with `-<hash>`
    when the model name had to change (integrations/k8s/names.py)."""
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
    `monitor --from-traffic` reads (core/traffic/rows.py, `model_folder`)."""
    return f"{sink_url.rstrip('/')}/{folder_name(model_name)}"


def resources(cpu: str, memory: str) -> dict:
    """Requests equal to limits (the predictor's QoS is Guaranteed)."""
    quantities = {"cpu": cpu, "memory": memory}
    return {"requests": dict(quantities), "limits": dict(quantities)}


class InferenceServiceSpec(BaseModel):
    """What one InferenceService is made of (the KServe service's config is one).

    Attributes:
        model_name / model_version: the MLflow registry version.
        model_uri: the model's files in the bucket (the InferenceService's storageUri).
        namespace, service_account, runtime, cpu, memory: from the deployer's config
            (integrations/kserve/flavor.py).
        logger_url: the traffic sink KServe's request logger posts to; empty: no logger.
    """

    model_name: str
    model_version: str = ""
    model_uri: str
    namespace: str = "zenkube"
    service_account: str = "zenkube-storage"
    runtime: str = RUNTIME
    cpu: str = "500m"
    memory: str = "1Gi"
    logger_url: str = ""


def inference_service(spec: InferenceServiceSpec) -> dict:
    """The InferenceService body, as the Kubernetes API takes it."""
    name = service_name(spec.model_name, spec.namespace)
    model: dict = {
        "modelFormat": {"name": "mlflow"},
        "protocolVersion": "v2",
        "runtime": spec.runtime,
        "storageUri": spec.model_uri,
        # KServe >= v0.17 sets these for a runtime annotated `server-type: mlserver`
        # (`SetMlServerDefaults`); older releases only for `kserve-mlserver`. Set here,
        # MLServer serves the model as `<name>` on every supported release.
        "env": [
            {"name": "MLSERVER_MODEL_NAME", "value": name},
            {"name": "MLSERVER_MODEL_URI", "value": MODEL_DIR},
        ],
        "resources": resources(spec.cpu, spec.memory),
    }
    predictor: dict = {"minReplicas": 1, "serviceAccountName": spec.service_account, "model": model}
    if spec.logger_url:
        predictor["logger"] = {
            "mode": "all",
            "url": logged_as(
                logger_url(spec.logger_url, spec.model_name), "champion", spec.model_version
            ),
            # forwarded as Ce-Metadata: the sink skips deploy's smoke request
            "metadataHeaders": [PROBE_HEADER],
        }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": spec.namespace,
            "labels": {
                "app": "zenkube",
                "zenkube.model-name": k8s_names.label_value(spec.model_name),
                "zenkube.model-version": k8s_names.label_value(str(spec.model_version)),
            },
            "annotations": {"zenkube.io/registered-model": spec.model_name},
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


# -- releases (issue #27) ------------------------------------------------------------------
def canary_name(version: str) -> str:
    """The canary predictor's name (Standard mode): `v<version>` as KServe's pattern
    `^[a-z]([-a-z0-9]*[a-z0-9])?$` wants it."""
    return k8s_names.dns_label(str(version), "v", 20)


def canary_service_name(name: str, version: str) -> str:
    """The canary's Deployment and Service (`constants.PredictorServiceName`)."""
    return f"{name}-{canary_name(version)}-predictor"


def canary(champion: dict, candidate: dict, percent: int, mode: str, release: dict) -> dict:
    """The InferenceService while a canary runs: `champion` and `candidate` are the two
    versions' plain bodies (`inference_service`); the candidate answers `percent` %."""
    body = copy.deepcopy(champion)
    annotations = body["metadata"].setdefault("annotations", {})
    annotations.update(release_annotation(release))
    if mode == SERVERLESS:
        # the spec is the candidate's: Knative makes it the latest revision, and KServe
        # sends the rest to the last rolled-out one (the champion's)
        body["spec"] = copy.deepcopy(candidate["spec"])
        body["spec"]["predictor"]["canaryTrafficPercent"] = percent
        _log_as_canary(body["spec"]["predictor"], release["candidate"]["version"])
        return body
    annotations[DEPLOYMENT_MODE] = STANDARD  # validateCanarySpecs reads the isvc's own
    version = release["candidate"]["version"]
    service = canary_service_name(body["metadata"]["name"], version)
    if k8s_names.problems(service, "1035"):
        from core.errors import ConfigError

        raise ConfigError(
            f"KServe would name the canary's Service '{service}', which is not a valid "
            f"Kubernetes name (at most 63 characters): the model name and the namespace are "
            f"too long together for a Standard-mode canary of version {version}. Use a "
            "shorter kubernetes_namespace in the KServe deployer's config, or `deploy` the "
            "version (a swap) instead of a release."
        )
    predictor = copy.deepcopy(candidate["spec"]["predictor"])
    _log_as_canary(predictor, version)
    predictor.pop("minReplicas", None)  # KServe sizes a canary by its share
    predictor["name"] = canary_name(version)
    # the v0.20 CRD requires the canary model's container name (the stable predictor's
    # is defaulted): KServe's own, constants.InferenceServiceContainerName
    predictor["model"]["name"] = "kserve-container"
    body["spec"]["canary"] = [{"trafficPercent": percent, "predictor": predictor}]
    return body


def _log_as_canary(predictor: dict, version: str) -> None:
    """The candidate's logger URL says its rows are the canary's (the sink's `_role`):
    each pod's agent posts to its own component's `logger.url` (KServe
    `components/component.go`, the `LoggerSinkUrlInternalAnnotationKey` annotation), and
    a Knative revision keeps the URL it was made with, so the champion's still says
    champion."""
    logger = predictor.get("logger")
    if logger and logger.get("url"):
        base = logger["url"].split("?", 1)[0]
        logger["url"] = logged_as(base, "canary", version)


def aborted(champion: dict, mode: str, release: dict) -> dict:
    """The InferenceService after an abort: the champion alone. Serverless: KServe's
    rollback, `canaryTrafficPercent: 0` (every request to the previous rolled-out revision,
    the champion's; the champion's spec again makes a revision that gets none), which the
    next deploy removes."""
    body = copy.deepcopy(champion)
    body["metadata"].setdefault("annotations", {}).update(release_annotation(release))
    if mode == SERVERLESS:
        body["spec"]["predictor"]["canaryTrafficPercent"] = 0
    else:
        body["metadata"]["annotations"][DEPLOYMENT_MODE] = STANDARD
    return body


def promoted(candidate: dict, mode: str, release: dict) -> dict:
    """The InferenceService after a promote: the candidate's plain body, no canary (the
    stable predictor serves the candidate's model; Serverless: 100 % to the latest
    revision, which is the candidate's)."""
    body = copy.deepcopy(candidate)
    body["metadata"].setdefault("annotations", {}).update(release_annotation(release))
    if mode == STANDARD:
        body["metadata"]["annotations"][DEPLOYMENT_MODE] = STANDARD
    return body


def canary_ready(body: dict, mode: str, version: str) -> tuple[bool, str]:
    """(Whether the candidate is Ready and gets its share, why not) from the status:
    Standard: `status.canaryStatuses` and the `CanaryPredictorReady` condition;
    Serverless: the predictor's traffic targets (`latestRevision` with the share)."""
    status = body.get("status") or {}
    if mode == STANDARD:
        name = canary_name(version)
        for entry in status.get("canaryStatuses") or []:
            if entry.get("name") == name:
                return (True, "") if entry.get("ready") else (False, f"canary {name} not ready")
        return False, f"KServe has not reported on canary {name} yet"
    traffic = ((status.get("components") or {}).get("predictor") or {}).get("traffic") or []
    latest = [t for t in traffic if t.get("latestRevision")]
    if latest and len(traffic) > 1:
        return True, ""
    return False, "KServe has not split the traffic to the latest revision yet"
