"""The `zenkube_seldon` model deployer: ZenML's, with S3 keys for Seldon in the right order."""

from __future__ import annotations

import json
import time
from typing import ClassVar

from zenml.integrations.seldon.model_deployers.seldon_model_deployer import SeldonModelDeployer
from zenml.integrations.seldon.secret_schemas import SeldonS3SecretSchema
from zenml.integrations.seldon.services.seldon_deployment import SeldonDeploymentService
from zenml.logger import get_logger

from core.champion import locks
from core.errors import ConfigError
from integrations.k8s import patch as k8s_patch
from integrations.k8s import release as cluster_release
from integrations.kubeflow import seldon_manifest
from integrations.kubeflow.flavors import ZenkubeSeldonModelDeployerFlavor
from integrations.zenml_adapters.deployer import DeployerContract, check_release, served
from integrations.zenml_adapters.request import DeploymentRequest, ReleaseRequest

logger = get_logger(__name__)


class _WithRequestLogger:
    """The Kubernetes custom-objects API; every SeldonDeployment on its way to the cluster
    gets valid names and, with a sink URL, Seldon's request logger (ZenML's model has no
    `logger`)."""

    def __init__(self, api, url: str):
        self._api, self._url = api, url.rstrip("/")

    def __getattr__(self, name):
        return getattr(self._api, name)

    def _with_logger(self, body: dict) -> dict:
        return seldon_manifest.for_cluster(body, self._url)  # names Seldon accepts, logger

    def create_namespaced_custom_object(self, *args, body, **kwargs):
        return self._api.create_namespaced_custom_object(
            *args, body=self._with_logger(body), **kwargs
        )

    def patch_namespaced_custom_object(self, *args, body, **kwargs):
        return self._api.patch_namespaced_custom_object(
            *args, body=self._with_logger(body), **kwargs
        )

    def replace_namespaced_custom_object(self, *args, body, **kwargs):
        return self._api.replace_namespaced_custom_object(
            *args, body=self._with_logger(body), **kwargs
        )


class ZenkubeSeldonModelDeployer(cluster_release.ClusterDeployer, SeldonModelDeployer):
    """ZenML's Seldon Core deployer on zenkube's deployer contract: one SeldonDeployment
    per served version (ZenML names it after the service id); a new one must be Ready
    before the old one is deleted, and an interrupted deploy deletes the new one."""

    FLAVOR = ZenkubeSeldonModelDeployerFlavor  # error messages name our flavor
    SERVICE_CLASS = SeldonDeploymentService
    BACKEND = "Seldon Core"
    PROTOCOLS = ("seldon",)  # MLFLOW_SERVER without spec.protocol: Seldon's v1 REST
    RELEASE_MODES = ("canary", "shadow")  # traffic weights / a shadow predictor
    RELEASE_TIMEOUT: ClassVar[int] = 300  # seconds a candidate (or a promote) gets Ready
    # ZenML's own stop/start/delete (the contract's are for services we define).
    perform_stop_model = SeldonModelDeployer.perform_stop_model
    perform_start_model = SeldonModelDeployer.perform_start_model
    perform_delete_model = SeldonModelDeployer.perform_delete_model
    get_model_server_info = staticmethod(SeldonModelDeployer.get_model_server_info)

    def service_config(self, request: DeploymentRequest):
        return request.seldon_config()

    def same(self, service, config) -> bool:
        keys = ("model_uri", "model_version", "implementation")
        return all(getattr(service.config, k) == getattr(config, k) for k in keys)

    def revive(self, service, timeout: int):
        if not service.is_running:
            service.start(timeout=timeout)
        return service

    def prove(self, new, old: list, timeout: int) -> None:
        """ZenML's `perform_deploy_model`: the secret, then a SeldonDeployment of its own."""
        new.config.secret_name = (
            new.config.secret_name or self._create_or_update_kubernetes_secret()
        )
        new.start(timeout=timeout)

    def discard(self, new, old: list, error: BaseException):
        new.stop(timeout=0, force=True)  # its SeldonDeployment goes; the old one serves on
        return None

    def retire(self, old: list) -> None:
        for service in old:
            service.stop(timeout=0, force=True)

    def is_serving(self, service) -> bool:
        service.update_status()
        return service.is_running

    @property
    def seldon_client(self):
        """ZenML's client, whose SeldonDeployments get names Seldon accepts and, with
        `request_logger_url`, log their traffic (integrations/kubeflow/seldon_manifest.py)."""
        client = super().seldon_client
        url = getattr(self.config, "request_logger_url", "")
        api = client._custom_objects_api
        if not isinstance(api, _WithRequestLogger):
            client._custom_objects_api = _WithRequestLogger(api, url)
        return client

    # -- releases (issue #27): a second predictor on the served SeldonDeployment ---------
    def _objects(self):
        client = self.seldon_client
        return client._custom_objects_api, client.namespace

    def _read(self, name: str) -> dict | None:
        from kubernetes.client.rest import ApiException

        api, namespace = self._objects()
        m = seldon_manifest
        try:
            return api.get_namespaced_custom_object(m.GROUP, m.VERSION, namespace, m.PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _apply(self, name: str, current: dict, body: dict) -> None:
        """Patch the SeldonDeployment `name` so that its spec is `body`'s (which has been
        through `for_cluster`: names Seldon accepts, the request logger)."""
        api, namespace = self._objects()
        m = seldon_manifest
        patch = k8s_patch.object_patch(current, body)
        if patch:
            api.patch_namespaced_custom_object(
                m.GROUP, m.VERSION, namespace, m.PLURAL, name, body=patch
            )

    def _finished(self, body: dict) -> dict:
        return seldon_manifest.for_cluster(body, getattr(self.config, "request_logger_url", ""))

    def release_start(self, release: ReleaseRequest, timeout: int = 300) -> dict:
        """The candidate as a second predictor of the served SeldonDeployment: a canary
        (`traffic` weights) or a shadow (`shadow: true`). If the SeldonDeployment is not
        Available again within `timeout`, the candidate goes (fail closed)."""
        from integrations.k8s.storage_uri import check_stack_model_uri

        request, mode = release.candidate, release.mode
        check_release(self, mode, release.percent)
        share = k8s_patch.whole_percent(release.percent, self.BACKEND) if mode == "canary" else 0
        check_stack_model_uri(request.model_uri)
        model = request.model_name
        with locks.model_lock(model, "release", logger.info):
            champion = served(self, model)
            name = champion.seldon_deployment_name if champion is not None else ""
            body = self._read(name) if champion is not None else None
            last = seldon_manifest.read_release(body) if body is not None else None
            cluster_release.refuse_start(request, self.BACKEND, body, last, champion)
            # the champion's protocol: the same requests reach both (and its promote's deploy)
            request = release.with_protocol(self.protocol_of(champion)).candidate
            record = cluster_release.started(
                request, mode, share, release.thresholds,
                {"version": champion.config.model_version, "model_uri": champion.config.model_uri,
                 "predictor": seldon_manifest.champion_predictor(body)["name"], "deployment": name},
                {"predictor": seldon_manifest.candidate_predictor_name(model, request.model_version)},
            )  # fmt: skip
            new = seldon_manifest.release(
                body, mode, share, request.model_uri, request.model_version, record
            )
            try:
                self._apply(name, body, self._finished(new))
                if timeout:
                    self._wait_available(name, min(timeout, self.RELEASE_TIMEOUT))
            except BaseException as exc:
                with locks.uninterrupted():
                    self._abort(name, record, "release start", cluster_release.why(exc))
                raise
        return self.release_state(model) or {}

    def _wait_available(self, name: str, timeout: float) -> None:
        deadline, why = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            ready, why = seldon_manifest.available(self._read(name) or {})
            if ready:
                return
            time.sleep(5)
        raise ConfigError(
            f"The SeldonDeployment {name} was not Available with the release's candidate "
            f"within {timeout:.0f}s ({why}); the release was aborted and the champion serves "
            f"all traffic. `kubectl describe seldondeployment {name}` says why."
        )

    def _abort(self, name: str, record: dict, by: str, reason: str) -> None:
        body = self._read(name)
        if body is not None:
            ended = cluster_release.finished(record, "abort", by, reason)
            self._apply(name, body, self._finished(seldon_manifest.aborted(body, ended)))

    def _release_object(self, model_name: str) -> tuple[str, dict | None]:
        records = self.services_for(model_name)
        if not records:
            return "", None
        name = records[0].seldon_deployment_name
        return name, self._read(name)

    def release_state(self, model_name: str) -> dict | None:
        """The model's release, read back from its SeldonDeployment: the record zenkube
        wrote, the predictors' shares and the operator's status; None: it never had one."""
        name, body = self._release_object(model_name)
        record = seldon_manifest.read_release(body)
        if record is None:
            return None
        status = (body or {}).get("status") or {}
        ready, why = seldon_manifest.available(body or {})
        predictors = [
            {k: p[k] for k in ("name", "traffic", "shadow") if k in p}
            for p in (body.get("spec") or {}).get("predictors") or []
        ]
        backend = {
            "kind": "SeldonDeployment",
            "name": f"{(body.get('metadata') or {}).get('namespace', '')}/{name}",
            "state": status.get("state"),
            "ready": ready,
            "why_not_ready": why,
            "predictors": predictors,
            "deployments": status.get("deploymentStatus") or {},
        }
        return cluster_release.state(record, backend)

    def release_end(self, model_name: str, outcome: str, by: str, reason: str) -> dict:
        """promote: the candidate is deployed (a SeldonDeployment of its own, Ready before
        the released one goes, as every deploy here); abort: the champion's predictor
        alone again. An abort of an aborted release answers its state (idempotent)."""
        with locks.model_lock(model_name, f"release {outcome}", logger.info):
            name, body = self._release_object(model_name)
            record = seldon_manifest.read_release(body)
            if not cluster_release.to_end(record, model_name, outcome, self.BACKEND):
                return self.release_state(model_name) or {}
            if outcome != "promote":
                self._abort(name, record, by, reason)
                return self.release_state(model_name) or {}
            try:
                request = DeploymentRequest(**record["request"])
                new = DeployerContract.deploy(self, request, self.RELEASE_TIMEOUT)
            except BaseException:
                with locks.uninterrupted():
                    self._abort(name, record, by, f"promote failed: {reason}")
                raise
            ended = cluster_release.finished(record, "promote", by, reason)
            current = self._read(new.seldon_deployment_name) or {}
            note = {seldon_manifest.RELEASE: json.dumps(ended, sort_keys=True)}
            self._apply(new.seldon_deployment_name, current, {"metadata": {"annotations": note}})
        return self.release_state(model_name) or {}

    def _convert_artifact_store_secret(self):
        from zenml.client import Client

        store = Client().active_stack.artifact_store
        if store.flavor != "s3":
            return super()._convert_artifact_store_secret()
        key, secret, token, _region = store.get_credentials()  # the order it really returns
        endpoint = (store.config.client_kwargs or {}).get("endpoint_url")
        values = seldon_manifest.storage_secret_values(key, secret, token, endpoint)
        return SeldonS3SecretSchema(**values)  # the same values the dry run prints
