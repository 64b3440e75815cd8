"""Model URIs a cluster's storage initializer can read (plain functions: no ZenML).

Before a model pod starts, the serving operator's storage initializer copies `modelUri` /
`storageUri` into the pod. It reads buckets and volumes, not MLflow's own URI schemes:

- Seldon Core v1.18.2 injects `seldonio/rclone-storage-initializer` (seldon-core
  `operator/controllers/model_initializer_injector.go`, `InjectModelInitializer`):
  rclone remotes such as `s3://` / `gs://` (credentials from `envSecretRefName`) and
  `pvc://<claim>/<path>`.
- KServe's storage initializer (kserve `python/kserve/kserve/storage/storage.py`,
  `Storage.download`) reads `s3://`, `gs://`, `pvc://`, … and fails on anything else
  with "Cannot recognize storage type".

An MLflow server started with `--artifacts-destination` alone gives new models
`mlflow-artifacts:/…` URIs, which neither reads: the pod never gets Ready. `deploy`
refuses such a URI before anything reaches the cluster.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import urlparse

READABLE_SCHEMES = ("s3", "gs", "pvc")
# MLflow's own pointers (a run's artifact, a registered version): resolved by MLflow.
MLFLOW_REFERENCES = ("runs", "models")
BACKENDS = {"zenkube_seldon": "Seldon Core", "seldon": "Seldon Core", "zenkube_kserve": "KServe"}


def unreadable(uri: str, backend: str, shared_volume: str | None = None) -> str:
    """Why `backend`'s storage initializer cannot read `uri` (one sentence), or "".

    `shared_volume`: the path of the stack's `shared_volume` artifact store, which every
    pod mounts at the same path; a model under it is read in place.
    """
    scheme = urlparse(uri).scheme
    if scheme in READABLE_SCHEMES and len(uri) > len(scheme) + 3:
        return ""
    path = uri[len("file://") :] if scheme == "file" else uri
    if shared_volume and scheme in ("", "file") and PurePosixPath(path).is_absolute():
        if PurePosixPath(path).is_relative_to(PurePosixPath(shared_volume)):
            return ""
    if scheme in MLFLOW_REFERENCES:
        # A pointer MLflow resolves, not a storage location; the server is not at fault.
        return (
            f"The model URI '{uri}' cannot be read by {backend}'s storage initializer on the "
            f"cluster: {scheme}:/ is a reference MLflow resolves, not a storage location (it "
            "reads s3://, gs:// or pvc:// URIs), so use the location it resolves to, like "
            "s3://<bucket>/mlflow/1/models/m-…/artifacts (`mlflow.MlflowClient()"
            ".get_model_version(NAME, VERSION).source` of a version zenkube registered; "
            "register a hand-made version from that location, or give it to `deploy "
            "--dry-run --model-uri`)."
        )
    return (
        f"The model URI '{uri}' cannot be read by {backend}'s storage initializer on the "
        "cluster (it reads s3://, gs:// or pvc:// URIs): start the MLflow server with "
        "`--default-artifact-root s3://<bucket>/mlflow --no-serve-artifacts` "
        "(docs/kubeflow.md, section 3) and train again, so the model is registered "
        "with an s3:// URI."
    )


def check_stack_model_uri(uri: str) -> None:
    """Refuse (ConfigError) a model URI the active stack's cluster deployer cannot fetch;
    a local deployer reads any URI MLflow can, so nothing is checked there."""
    from zenml.client import Client

    from core.errors import ConfigError
    from integrations.zenml_adapters.shared_volume import FLAVOR_NAME as SHARED_VOLUME

    stack = Client().active_stack
    deployer = stack.model_deployer
    if deployer is None or deployer.flavor not in BACKENDS:
        return
    store = stack.artifact_store
    shared = store.path if store.flavor == SHARED_VOLUME else None
    reason = unreadable(uri, BACKENDS[deployer.flavor], shared)
    if reason:
        raise ConfigError(reason)
