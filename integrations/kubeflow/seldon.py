"""The `zenkube_seldon` model deployer: ZenML's, with S3 keys for Seldon in the right order."""

from __future__ import annotations

from zenml.integrations.seldon.model_deployers.seldon_model_deployer import SeldonModelDeployer
from zenml.integrations.seldon.secret_schemas import SeldonS3SecretSchema
from zenml.integrations.seldon.services.seldon_deployment import SeldonDeploymentService

from integrations.deployer import DeployerContract, DeploymentRequest
from integrations.kubeflow import seldon_manifest
from integrations.kubeflow.flavors import ZenkubeSeldonModelDeployerFlavor


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


class ZenkubeSeldonModelDeployer(DeployerContract, SeldonModelDeployer):
    """ZenML's Seldon Core deployer on zenkube's deployer contract: one SeldonDeployment
    per served version (ZenML names it after the service id); a new one must be Ready
    before the old one is deleted, and an interrupted deploy deletes the new one."""

    FLAVOR = ZenkubeSeldonModelDeployerFlavor  # error messages name our flavor
    SERVICE_CLASS = SeldonDeploymentService
    PROTOCOLS = ("seldon",)  # MLFLOW_SERVER without spec.protocol: Seldon's v1 REST
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

    def _convert_artifact_store_secret(self):
        from zenml.client import Client

        store = Client().active_stack.artifact_store
        if store.flavor != "s3":
            return super()._convert_artifact_store_secret()
        key, secret, token, _region = store.get_credentials()  # the order it really returns
        if not (key and secret):
            return super()._convert_artifact_store_secret()  # pod identity / env auth
        schema = SeldonS3SecretSchema(
            rclone_config_s3_access_key_id=key,
            rclone_config_s3_secret_access_key=secret,
            rclone_config_s3_session_token=token,
        )
        endpoint = (store.config.client_kwargs or {}).get("endpoint_url")
        if endpoint:
            schema.rclone_config_s3_endpoint = endpoint
            schema.rclone_config_s3_provider = "Minio"
        return schema
