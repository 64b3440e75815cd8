"""`run.py deploy --dry-run`: the objects `deploy` would apply on a cluster stack, as YAML,
with no cluster and no ZenML server.

The stack spec (stacks/<name>.yaml, ${VARS} expanded) gives the model deployer's
configuration; the deployment step's own config builder and the same manifest functions
the deployers run build the bodies, so what is printed is what `deploy` sends the
Kubernetes API (as `kubectl apply --dry-run=client -o yaml` shows objects). The model's
files come from `--model-uri`, or else from the champion in the stack's MLflow server.
"""

from __future__ import annotations

import uuid
from typing import Any

import yaml

from core.errors import ConfigError

SELDON_FLAVORS = ("zenkube_seldon", "seldon")
KSERVE_FLAVOR = "zenkube_kserve"


def _component(spec: dict, kind: str) -> dict[str, Any]:
    from stacks.manage import components_of

    return components_of(spec).get(kind) or {}


CONNECT_TIMEOUT = 3.0  # seconds an MLflow server gets to answer before the dry run says so


def _unanswered(tracking_uri: str) -> str | None:
    """Why the MLflow server at `tracking_uri` does not answer its /health GET within
    CONNECT_TIMEOUT (name lookup included), else None; None too for a URI that is not a
    server's (MLflow's own client reports those)."""
    from integrations.kubeflow.preflight import reachable

    if not tracking_uri.startswith(("http://", "https://")):
        return None
    return reachable(f"{tracking_uri.rstrip('/')}/health", timeout=CONNECT_TIMEOUT)


def _forward(tracking_uri: str) -> str:
    """How to reach a cluster Service's URI (`<svc>.<namespace>.svc…`) from here."""
    from urllib.parse import urlsplit

    parts = urlsplit(tracking_uri)
    labels = (parts.hostname or "").split(".")
    if len(labels) < 3 or labels[2] != "svc":
        return " and set ZENKUBE_MLFLOW_URI to its address"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return (
        f" (`kubectl -n {labels[1]} port-forward svc/{labels[0]} 5000:{port} &`, then "
        f"ZENKUBE_MLFLOW_URI={parts.scheme}://localhost:5000)"
    )


def champion(spec: dict, model_name: str, model_uri: str | None, version: str | None) -> Any:
    """The registered model to render: `--model-uri` as given, else the champion in the
    stack's MLflow server (reached with MLFLOW_TRACKING_USERNAME/PASSWORD)."""
    from integrations.mlflow import registry as mlflow_registry

    if model_uri:
        return mlflow_registry.RegisteredModel(
            name=model_name,
            version=version or "1",
            model_uri=model_uri,
            artifact_location=model_uri,
        )
    import os

    tracking = (_component(spec, "experiment_tracker").get("configuration") or {}).get(
        "tracking_uri", ""
    )
    unanswered = _unanswered(tracking)
    if unanswered:
        raise ConfigError(
            f"deploy --dry-run needs the model's files: without --model-uri it reads the "
            f"champion of '{model_name}' from the stack's MLflow server at {tracking}, which "
            f"does not answer from here ({unanswered}). Pass the champion's files to render "
            "the manifests offline, e.g. --model-uri s3://zenkube-artifacts/mlflow/1/models/"
            f"m-abc/artifacts, or make the server reachable from here{_forward(tracking)}."
        )
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a dry run does not wait
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    import mlflow

    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(tracking)
    try:
        mlflow.MlflowClient().search_experiments(max_results=1)  # reachable, logged in?
        found = mlflow_registry.get_champion(model_name)
    except Exception as exc:  # unreachable server, refused login: say how to go offline
        raise ConfigError(
            f"Could not read the champion of '{model_name}' from MLflow at {tracking} "
            f"({type(exc).__name__}); pass --model-uri s3://… to render the manifests offline."
        ) from None
    if found is None:
        raise ConfigError(
            f"'{model_name}' has no champion in MLflow at {tracking}; train it first, or pass "
            "--model-uri s3://… to render the manifests of a given model."
        )
    return found


def manifests(
    stack: str,
    model_name: str,
    model_uri: str | None = None,
    version: str | None = None,
    protocol: str = "seldon",
) -> list[dict]:
    """The objects `deploy` would apply for `model_name` on the cluster stack `stack`."""
    from integrations.k8s.storage_uri import BACKENDS, unreadable
    from integrations.zenml_adapters.shared_volume import FLAVOR_NAME as SHARED_VOLUME
    from stacks.manage import load_spec

    spec = load_spec(stack)
    deployer = _component(spec, "model_deployer")
    flavor = deployer.get("flavor", "")
    if flavor not in (*SELDON_FLAVORS, KSERVE_FLAVOR):
        raise ConfigError(
            f"--dry-run renders cluster manifests; the stack '{stack}' deploys with "
            f"'{flavor or 'no model deployer'}'. Use --stack kubeflow or --stack kubeflow-kserve."
        )
    model = champion(spec, model_name, model_uri, version)
    store = _component(spec, "artifact_store")
    shared = (store.get("configuration") or {}).get("path")
    reason = unreadable(
        model.artifact_location,
        BACKENDS[flavor],
        shared if store.get("flavor") == SHARED_VOLUME else None,
    )
    if reason:
        raise ConfigError(reason)
    config = deployer.get("configuration") or {}
    if flavor == KSERVE_FLAVOR:
        return [kserve_manifest(model, config)]
    return seldon_manifests(model, config, protocol, store)


def kserve_manifest(model, configuration: dict) -> dict:
    from integrations.kserve import manifest
    from integrations.kserve.flavor import KServeModelDeployerConfig
    from integrations.kserve.service import KServeServiceConfig
    from integrations.zenml_adapters.request import DeploymentRequest

    request = DeploymentRequest.for_model(model, protocol="v2", pipeline="", step_name="")
    deployer = KServeModelDeployerConfig(**configuration)
    return manifest.inference_service(KServeServiceConfig.for_request(deployer, request))


REDACTED = "REDACTED"  # a credential's value: deploy reads it from the artifact store's


def seldon_manifests(model, configuration: dict, protocol: str, store: dict) -> list[dict]:
    """The Secret and the SeldonDeployment `deploy` applies (ZenML's deployer always writes
    the storage Secret, `zenml-seldon-core-<artifact store id>`, unless
    `kubernetes_secret_name` names one of yours, and the graph's `envSecretRefName` names
    it). The ids deploy makes (service, artifact store) are stable stand-ins here, and a
    credential's value is REDACTED; everything else is what deploy sends."""
    from integrations.kubeflow import seldon_manifest as seldon
    from integrations.kubeflow.flavors import ZenkubeSeldonModelDeployerConfig
    from steps.deployment.deploy import build_deployment_config

    c = ZenkubeSeldonModelDeployerConfig(**configuration)
    config = build_deployment_config(model, protocol, "deployment_pipeline", "deploy_champion")
    settings = store.get("configuration") or {}
    store_id = uuid.uuid5(uuid.NAMESPACE_URL, f"zenkube:{settings.get('path', '')}")
    secret_name = c.kubernetes_secret_name or f"{seldon.SECRET_PREFIX}{store_id}"
    config.secret_name = secret_name
    # ZenML names the object after the service id `deploy` creates; a stable stand-in id
    # keeps the dry run reviewable in Git (the printed comment says so).
    service_id = uuid.uuid5(uuid.NAMESPACE_URL, f"zenkube:{model.name}:{model.version}")
    body = seldon.for_cluster(seldon.zenml_body(config, service_id), c.request_logger_url)
    body["metadata"]["namespace"] = c.kubernetes_namespace
    if c.kubernetes_secret_name:
        return [body]  # your Secret: deploy writes none
    has_keys = bool(settings.get("key") and settings.get("secret"))
    values = seldon.storage_secret_values(
        REDACTED if has_keys else None,
        REDACTED if has_keys else None,
        REDACTED if has_keys and settings.get("token") else None,
        (settings.get("client_kwargs") or {}).get("endpoint_url"),
    )
    secret = seldon.secret_body(secret_name, values)
    secret["data"] = {  # printed as text: a credential's value is not known here
        k: REDACTED if REDACTED in (values.get(k.lower()), str(values.get(k.lower()))) else v
        for k, v in secret["data"].items()
    }
    secret = {"apiVersion": "v1", "kind": "Secret", **secret}
    secret["metadata"]["namespace"] = c.kubernetes_namespace
    return [secret, body]


def describe(body: dict) -> list[str]:
    """Comment lines: what the object and what the operator derives from it are called."""
    meta = body["metadata"]
    lines = [f"# {body['kind']} {meta['namespace']}/{meta['name']}"]
    if body["kind"] == "Secret":
        return lines + [
            "#   the bucket credentials Seldon's storage initializer reads (rclone settings); "
            "metadata.name is zenml-seldon-core-<artifact store id>: a stable stand-in here",
            f"#   values of credentials are {REDACTED}: deploy reads them from the artifact "
            "store's credentials",
        ]
    if body["kind"] == "InferenceService":
        from integrations.kserve import manifest

        lines.append(
            f"#   predictor Deployment/Service: {meta['name']}-predictor; V2 path "
            f"{manifest.prediction_path(meta['name'])}; Host (default domain template): "
            f"{manifest.host(meta['name'], meta['namespace'])}"
        )
    else:
        from integrations.kubeflow import seldon_manifest as seldon

        predictor = body["spec"]["predictors"][0]["name"]
        lines += [
            "#   metadata.name is zenml-<service id>: `deploy` creates a new id, this one is "
            "stable for review",
            f"#   predictor (Istio subset): {predictor}; predictor Service: "
            f"{seldon.predictor_service(meta['name'], predictor)}",
            "#   graph.envSecretRefName: the Secret above",
        ]
    return lines


def render(bodies: list[dict]) -> str:
    """YAML documents, one per object, each after comment lines naming what it creates."""
    documents = []
    for body in bodies:
        text = yaml.safe_dump(body, sort_keys=False, default_flow_style=False, width=100)
        documents.append("\n".join([*describe(body), text.rstrip()]))
    return "---\n" + "\n---\n".join(documents) + "\n"
