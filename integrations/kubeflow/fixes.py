"""Fixes for ZenML 0.98's cluster components, applied by zenkube before it uses them.

Decisions (see docs/kubeflow.md):
- kfp 2.17 rejects ZenML's `.after(<component>)` on any pipeline with dependencies:
  we **pin** `kfp>=2.16,<2.17` (pyproject) instead of rewriting ZenML's graph code.
- `ResourceSettings(memory=...)` crashes compilation: ZenML passes a float where KFP
  wants a Kubernetes quantity string. We **fix** it here: memory becomes "<n>Mi".
- The `seldon` model deployer unpacks `S3ArtifactStore.get_credentials()` as
  (region, key, secret, token) but it returns (key, secret, token, region): with key
  authentication the Secret for Seldon's storage initializer gets no usable keys. We
  **fix** the order here.
"""

from __future__ import annotations

from zenml.integrations.kubeflow.orchestrators import kubeflow_orchestrator as _ko

_ORIGINAL = _ko.KubeflowOrchestrator._configure_container_resources


def memory_quantity(resource_settings) -> str | None:
    """ResourceSettings memory as a Kubernetes quantity ("512Mi"), or None."""
    from zenml.config.resource_settings import ByteUnit

    if not resource_settings or not resource_settings.memory:
        return None
    mebibytes = resource_settings.get_memory(ByteUnit.MIB)
    return f"{int(round(mebibytes))}Mi"


def _configure_container_resources(
    self, dynamic_component, resource_settings, node_selector_constraint=None
):
    memory = memory_quantity(resource_settings)
    if memory is not None:
        # Let ZenML apply CPU/GPU/node selectors without the memory it mishandles.
        resource_settings = resource_settings.model_copy(update={"memory": None})
    task = _ORIGINAL(self, dynamic_component, resource_settings, node_selector_constraint)
    if memory is not None:
        task = task.set_memory_limit(memory).set_memory_request(memory)
    return task


def _fix_seldon_s3_secret() -> None:
    from zenml.integrations.seldon.model_deployers import seldon_model_deployer as _sd
    from zenml.integrations.seldon.secret_schemas import SeldonS3SecretSchema

    if getattr(_sd.SeldonModelDeployer, "_zenkube_fixed", False):
        return
    original = _sd.SeldonModelDeployer._convert_artifact_store_secret

    def convert(self):
        from zenml.client import Client

        store = Client().active_stack.artifact_store
        if store.flavor != "s3":
            return original(self)
        key, secret, token, _region = store.get_credentials()  # the order it really returns
        if not (key and secret):
            return original(self)  # pod identity / env auth: ZenML's path is right
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

    _sd.SeldonModelDeployer._convert_artifact_store_secret = convert
    _sd.SeldonModelDeployer._zenkube_fixed = True


def apply() -> None:
    """Install the fixes (idempotent)."""
    _ko.KubeflowOrchestrator._configure_container_resources = _configure_container_resources
    _fix_seldon_s3_secret()
