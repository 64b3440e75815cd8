"""The `zenkube_kserve` model deployer flavor: a KServe InferenceService per model (V2)."""

from __future__ import annotations

from typing import Literal

from zenml.model_deployers.base_model_deployer import (
    BaseModelDeployerConfig,
    BaseModelDeployerFlavor,
)

from integrations.zenml_adapters.flavors import DeclaredFlavor, NoDocs

FLAVOR_NAME = "zenkube_kserve"


class KServeModelDeployerConfig(BaseModelDeployerConfig):
    """Where and how models are served by KServe.

    Attributes:
        kubernetes_context: kubeconfig context; empty means the in-cluster config (pods)
            or the current context.
        kubernetes_namespace: namespace of the InferenceServices.
        base_url: the ingress clients call (KServe routes by the Host header, which the
            prediction URL's `Host` is; e.g. the istio ingress gateway).
        service_account: the service account whose Secret holds the bucket credentials
            (KServe's storage initializer reads it); created by you, see docs/kubeflow.md.
        runtime: the ServingRuntime to use (`zenkube-mlserver`, shipped in
            stacks/kserve/); it runs the same runtime class as the local `v2` server.
        cpu / memory: resource requests (and limits) of the predictor.
        request_logger_url: KServe's request logger target (the traffic sink); empty: none.
        ready_timeout: seconds a new revision has to become Ready.
        deployment_mode: the KServe mode the InferenceServices run in, `Standard` (what
            docs/kubeflow.md installs) or `Serverless` (Knative): a canary release is a
            `spec.canary` entry (Standard, KServe >= v0.20) or `canaryTrafficPercent`
            (Serverless); see integrations/kserve/manifest.py.
        canary_routing: how a Standard-mode canary's share reaches it: `ingress` (KServe
            v0.20.0's Kubernetes Ingress routes to the stable predictor only, so a
            Standard canary is refused before it starts) or `gateway-api` (a KServe with
            #5912, whose Gateway API HTTPRoutes split by the canary's share).
    """

    kubernetes_context: str | None = None
    kubernetes_namespace: str = "zenkube"
    base_url: str = "http://localhost:8082"
    service_account: str = "zenkube-storage"
    runtime: str = "zenkube-mlserver"
    cpu: str = "500m"
    memory: str = "1Gi"
    request_logger_url: str = ""
    ready_timeout: float = 600.0
    deployment_mode: Literal["Standard", "Serverless"] = "Standard"
    canary_routing: Literal["ingress", "gateway-api"] = "ingress"

    @property
    def is_local(self) -> bool:
        return False


class KServeModelDeployerFlavor(DeclaredFlavor, NoDocs, BaseModelDeployerFlavor):
    """Flavor of zenkube's KServe model deployer."""

    NAME = FLAVOR_NAME
    CONFIG = KServeModelDeployerConfig
    IMPLEMENTATION = "integrations.kserve.model_deployer.KServeModelDeployer"
