"""The ZenML service behind a KServe deployment: one InferenceService, read and written
through the Kubernetes API."""

from __future__ import annotations

from collections.abc import Generator
from urllib.parse import urlparse

from pydantic import Field
from zenml.enums import ServiceState
from zenml.services.service import BaseDeploymentService, ServiceConfig
from zenml.services.service_status import ServiceStatus

from integrations.k8s import patch as k8s_patch
from integrations.kserve import manifest
from integrations.kserve.flavor import KServeModelDeployerConfig
from integrations.zenml_adapters.request import DeploymentRequest
from integrations.zenml_adapters.service_records import model_server_type


class KServeServiceConfig(manifest.InferenceServiceSpec, ServiceConfig):
    """One registered model version, served by KServe: the InferenceService's spec
    (manifest.py) and where its cluster is.

    Attributes:
        kubernetes_context, base_url: from the deployer's config (see flavor.py).
    """

    kubernetes_context: str | None = None
    base_url: str = ""

    @classmethod
    def for_request(
        cls, deployer: KServeModelDeployerConfig, request: DeploymentRequest
    ) -> KServeServiceConfig:
        """What the KServe deployer with config `deployer` serves for `request`: the
        request's model version, resources (else the deployer's) and the deployer's
        fields of the same names."""
        version = request.model_dump(include={"model_name", "model_version", "model_uri"})
        same_names = {"kubernetes_context", "base_url", "service_account", "runtime"}
        return cls(
            name="",
            **version,
            # read as attributes: ZenML resolves a {{secret.key}} value only then
            **{name: getattr(deployer, name) for name in same_names},
            namespace=deployer.kubernetes_namespace,
            cpu=request.cpu or deployer.cpu,
            memory=request.memory or deployer.memory,
            logger_url=deployer.request_logger_url,
        )


class KServeServiceStatus(ServiceStatus):
    url: str | None = None  # the InferenceService's status.url (its Host)


def kubernetes(context: str | None):
    """(CustomObjectsApi, CoreV1Api): in-cluster in a pod, else the kubeconfig context."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        config.load_incluster_config()
    except ConfigException:
        config.load_kube_config(context=context or None)
    return client.CustomObjectsApi(), client.CoreV1Api()


class KServeService(BaseDeploymentService):
    """A model served by a KServe InferenceService on the V2 protocol. Its state is read
    from the cluster (the InferenceService's Ready condition, and whether it still serves
    this version); ZenML's record holds the spec (config) and the last status seen."""

    SERVICE_TYPE = model_server_type(
        "kserve", "zenkube_kserve", "KServe InferenceService (V2 protocol, MLflow model)"
    )

    config: KServeServiceConfig
    status: KServeServiceStatus = Field(default_factory=KServeServiceStatus)

    def body(self) -> dict:
        """The InferenceService this service keeps in the cluster (manifest.py)."""
        return manifest.inference_service(self.config)

    @property
    def name(self) -> str:
        return manifest.service_name(self.config.model_name, self.config.namespace)

    def _api(self):
        return kubernetes(self.config.kubernetes_context)

    def _get(self) -> dict | None:
        from kubernetes.client.rest import ApiException

        api, _ = self._api()
        try:
            return api.get_namespaced_custom_object(
                manifest.GROUP, manifest.VERSION, self.config.namespace, manifest.PLURAL, self.name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def provision(self) -> None:
        """Create the InferenceService, or replace its spec: KServe rolls out a new
        revision and keeps the old one serving until the new one is Ready. A release's
        canary (`spec.canary`, `canaryTrafficPercent`) goes with the old spec, and a
        running release is recorded as ended by this deploy."""
        body = self.body()
        release = manifest.read_release(self._get())
        if release and release.get("active"):
            from integrations.k8s.release import finished

            reason = f"a deploy of version {self.config.model_version} replaced the spec"
            ended = finished(release, "abort", "deploy", reason)
            body["metadata"]["annotations"].update(manifest.release_annotation(ended))
        self.apply(body)

    def apply(self, body: dict) -> dict:
        """Create the InferenceService as `body`, or patch it so that its spec is exactly
        `body`'s (a merge patch with nulls for what `body` lacks: integrations/k8s/patch.py)."""
        api, _ = self._api()
        args = (manifest.GROUP, manifest.VERSION, self.config.namespace, manifest.PLURAL)
        current = self._get()
        if current is None:
            return api.create_namespaced_custom_object(*args, body=body)
        patch = k8s_patch.object_patch(current, body)
        return (
            api.patch_namespaced_custom_object(*args, self.name, body=patch) if patch else current
        )

    def read(self) -> dict | None:
        """The InferenceService as the API server has it (None: there is none)."""
        return self._get()

    def deprovision(self, force: bool = False) -> None:
        from kubernetes.client.rest import ApiException

        api, _ = self._api()
        try:
            api.delete_namespaced_custom_object(
                manifest.GROUP, manifest.VERSION, self.config.namespace, manifest.PLURAL, self.name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def check_status(self) -> tuple[ServiceState, str]:
        body = self._get()
        if body is None:
            return (
                ServiceState.INACTIVE,
                f"no InferenceService {self.name} in {self.config.namespace}",
            )
        spec_uri = body.get("spec", {}).get("predictor", {}).get("model", {}).get("storageUri")
        release = manifest.read_release(body) or {}
        # a Serverless canary's spec is the candidate's; the champion still serves
        champion = (
            (release.get("champion") or {}).get("model_uri") if release.get("active") else None
        )
        if self.config.model_uri not in (spec_uri, champion):
            return ServiceState.INACTIVE, "the InferenceService now serves another model version"
        self.status.url = (body.get("status") or {}).get("url")
        is_ready, why = manifest.ready(body)
        return (ServiceState.ACTIVE, "") if is_ready else (ServiceState.PENDING_STARTUP, why)

    @property
    def host(self) -> str | None:
        """The Host header KServe's ingress routes this model by."""
        return urlparse(self.status.url).hostname if self.status.url else None

    @property
    def prediction_url(self) -> str | None:
        base = self.config.base_url.rstrip("/")
        return f"{base}{manifest.prediction_path(self.name)}" if base else None

    @property
    def healthcheck_url(self) -> str | None:
        base = self.config.base_url.rstrip("/")
        return f"{base}/v2/models/{self.name}/ready" if base else None

    def get_logs(self, follow: bool = False, tail: int | None = None) -> Generator[str, bool, None]:
        _, core = self._api()
        pods = core.list_namespaced_pod(
            self.config.namespace, label_selector=f"serving.kserve.io/inferenceservice={self.name}"
        )
        for pod in pods.items:
            text = core.read_namespaced_pod_log(
                pod.metadata.name, self.config.namespace, container="kserve-container",
                tail_lines=tail,
            )  # fmt: skip
            yield from text.splitlines()
