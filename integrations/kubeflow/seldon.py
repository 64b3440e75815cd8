"""The `zenkube_seldon` model deployer: ZenML's, with S3 keys for Seldon in the right order."""

from __future__ import annotations

from zenml.integrations.seldon.model_deployers.seldon_model_deployer import SeldonModelDeployer
from zenml.integrations.seldon.secret_schemas import SeldonS3SecretSchema

from integrations.kubeflow.flavors import ZenkubeSeldonModelDeployerFlavor


class ZenkubeSeldonModelDeployer(SeldonModelDeployer):
    FLAVOR = ZenkubeSeldonModelDeployerFlavor  # error messages name our flavor

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
