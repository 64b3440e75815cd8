"""The `seldon_local` model deployer flavor: Seldon's serving runtime as a local process."""

from __future__ import annotations

from zenml.config.base_settings import BaseSettings
from zenml.model_deployers.base_model_deployer import (
    BaseModelDeployerConfig,
    BaseModelDeployerFlavor,
)

from integrations.zenml_adapters.flavors import DeclaredFlavor

FLAVOR_NAME = "seldon_local"


class SeldonLocalModelDeployerSettings(BaseSettings):
    """Per-deployment settings.

    Attributes:
        port: fixed port on 127.0.0.1; None keeps the current port or picks a free one.
        workers: server worker processes (each holds a copy of the model).
        replicas: model-server processes of the served version (each with its workers):
            the primary and warm standbys that answer at once when it dies (replicas.py);
            ZENKUBE_REPLICAS overrides it.
        start_timeout: seconds a new server has to become healthy.
        log_traffic: record served rows, predictions and feedback labels as Parquet in
            the artifact store (`traffic/<model>/`) for `monitor --from-traffic`.
        traffic_max_mb: cap of each model's traffic folder; the oldest files go first.
    """

    port: int | None = None
    workers: int = 2
    replicas: int = 2
    start_timeout: float = 120.0
    log_traffic: bool = True
    traffic_max_mb: int = 512


class SeldonLocalModelDeployerConfig(BaseModelDeployerConfig, SeldonLocalModelDeployerSettings):
    """Registration-time config of the local Seldon deployer.

    Attributes:
        state_dir: where deployments keep their model copy, log and process record;
            empty means `${ZENKUBE_HOME}/serving`.
    """

    state_dir: str = ""

    @property
    def is_local(self) -> bool:
        return True


class SeldonLocalModelDeployerFlavor(DeclaredFlavor, BaseModelDeployerFlavor):
    """Flavor of zenkube's local Seldon model deployer."""

    NAME = FLAVOR_NAME
    CONFIG = SeldonLocalModelDeployerConfig
    IMPLEMENTATION = "integrations.seldon_local.model_deployer.SeldonLocalModelDeployer"
