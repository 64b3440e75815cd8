"""zenkube's KServe model deployer: the deployer contract (integrations/deployer.py) for one
InferenceService per registered model."""

from __future__ import annotations

import time
from typing import ClassVar, cast

from zenml.logger import get_logger

from core.errors import ZenkubeError
from integrations.deployer import DeployerContract, DeploymentRequest
from integrations.kserve.flavor import KServeModelDeployerConfig, KServeModelDeployerFlavor
from integrations.kserve.service import KServeService, KServeServiceConfig

logger = get_logger(__name__)


class KServeDeployError(ZenkubeError):
    """A new revision did not become Ready; the previous model serves on."""


class KServeModelDeployer(DeployerContract):
    """One InferenceService per registered model, on the V2 protocol.

    A new version replaces the InferenceService's spec; KServe keeps the old revision
    serving until the new one is Ready. If it is not Ready in time (or the deploy is
    interrupted), the spec goes back to the version that was served (fail closed).
    """

    NAME: ClassVar[str] = "KServe"
    FLAVOR: ClassVar[type] = KServeModelDeployerFlavor
    SERVICE_CLASS: ClassVar[type] = KServeService
    PROTOCOLS: ClassVar[tuple[str, ...]] = ("v2",)

    @property
    def config(self) -> KServeModelDeployerConfig:
        return cast(KServeModelDeployerConfig, self._config)

    def service_config(self, request: DeploymentRequest) -> KServeServiceConfig:
        c = self.config
        return KServeServiceConfig(
            name="",
            model_name=request.model_name,
            model_version=request.model_version,
            model_uri=request.model_uri,
            namespace=c.kubernetes_namespace,
            kubernetes_context=c.kubernetes_context,
            base_url=c.base_url,
            service_account=c.service_account,
            runtime=c.runtime,
            cpu=request.cpu or c.cpu,
            memory=request.memory or c.memory,
            logger_url=c.request_logger_url,
        )

    def same(self, service: KServeService, config: KServeServiceConfig) -> bool:
        return (service.config.model_uri, service.config.model_version) == (
            config.model_uri,
            config.model_version,
        )

    def revive(self, service: KServeService, timeout: int) -> KServeService:
        service.provision()  # the same version again: make sure it is there
        return service

    def prove(self, new: KServeService, old: list, timeout: int) -> None:
        """Replace the spec; KServe routes to the new revision once it is Ready."""
        new.provision()
        if timeout:
            self._wait_ready(new, min(timeout, self.config.ready_timeout))

    def discard(self, new: KServeService, old: list, error: BaseException):
        if old:  # fail closed: the spec goes back to what was served
            old[0].provision()
        return None

    def is_serving(self, service: KServeService) -> bool:
        state, _ = service.check_status()
        return state.value == "active"

    def protocol_of(self, service) -> str:
        return "v2"

    @staticmethod
    def _wait_ready(service: KServeService, timeout: float) -> None:
        deadline, why = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            state, why = service.check_status()
            if state.value == "active":
                return
            time.sleep(5)
        raise KServeDeployError(
            f"The InferenceService {service.name} did not become Ready within {timeout:.0f}s "
            f"({why}). The previous version keeps serving. `kubectl -n "
            f"{service.config.namespace} describe inferenceservice {service.name}` says why."
        )

    def server_facts(self, service: KServeService) -> dict[str, str | None]:
        return {
            "HOST_HEADER": service.host,
            "INFERENCE_SERVICE": f"{service.config.namespace}/{service.name}",
        }
