"""The `zenkube_seldon` model deployer: ZenML's, with S3 keys for Seldon in the right order."""

from __future__ import annotations

from zenml.integrations.seldon.model_deployers.seldon_model_deployer import SeldonModelDeployer
from zenml.integrations.seldon.secret_schemas import SeldonS3SecretSchema

from integrations.kubeflow.flavors import ZenkubeSeldonModelDeployerFlavor
from integrations.traffic import safe_name


class _WithRequestLogger:
    """The Kubernetes custom-objects API, with Seldon's request logger added to every
    SeldonDeployment graph on its way to the cluster (ZenML's model has no `logger`)."""

    def __init__(self, api, url: str):
        self._api, self._url = api, url.rstrip("/")

    def __getattr__(self, name):
        return getattr(self._api, name)

    def _with_logger(self, body: dict) -> dict:
        if isinstance(body, dict) and body.get("kind") == "SeldonDeployment":
            model = (body.get("metadata", {}).get("labels") or {}).get("zenml.model_name", "")
            url = f"{self._url}/{safe_name(model)}"  # the sink writes traffic/<model>/
            for predictor in body.get("spec", {}).get("predictors", []):
                predictor["graph"]["logger"] = {"mode": "all", "url": url}
        return body

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


class ZenkubeSeldonModelDeployer(SeldonModelDeployer):
    FLAVOR = ZenkubeSeldonModelDeployerFlavor  # error messages name our flavor

    @property
    def seldon_client(self):
        """ZenML's client; with `request_logger_url`, its deployments log their traffic."""
        client = super().seldon_client
        url = getattr(self.config, "request_logger_url", "")
        api = client._custom_objects_api
        if url and not isinstance(api, _WithRequestLogger):
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
