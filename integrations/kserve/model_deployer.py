"""zenkube's KServe model deployer: takes the same deployment config as the Seldon ones."""

from __future__ import annotations

import time
from typing import ClassVar, cast

from zenml.client import Client
from zenml.logger import get_logger
from zenml.model_deployers import BaseModelDeployer
from zenml.services.service import BaseService, ServiceConfig

from core.errors import ZenkubeError
from integrations import service_records
from integrations.kserve.flavor import KServeModelDeployerConfig, KServeModelDeployerFlavor
from integrations.kserve.service import KServeService, KServeServiceConfig

logger = get_logger(__name__)


class KServeDeployError(ZenkubeError):
    """A new revision did not become Ready; the previous model serves on."""


class KServeModelDeployer(BaseModelDeployer):
    """One InferenceService per registered model, on the V2 protocol.

    A new version replaces the InferenceService's spec; KServe keeps the old revision
    serving until the new one is Ready. If it is not Ready in time, the spec goes back to
    the version that was served (fail closed) and the error says why.
    """

    NAME: ClassVar[str] = "KServe"
    FLAVOR: ClassVar[type] = KServeModelDeployerFlavor

    @property
    def config(self) -> KServeModelDeployerConfig:
        return cast(KServeModelDeployerConfig, self._config)

    def service_config(self, config: ServiceConfig) -> KServeServiceConfig:
        """ZenML's Seldon deployment config (what the deployment step builds), for KServe."""
        if isinstance(config, KServeServiceConfig):
            return config
        data = config.model_dump()
        protocol = (data.get("extra_args") or {}).get("protocol", "v2")
        if protocol != "v2":
            logger.warning(
                "KServe serves the V2 protocol; '%s' was asked for. Clients call "
                "/v2/models/<name>/infer (README, 'Calling the model').",
                protocol,
            )
        c = self.config
        return KServeServiceConfig(
            name=data.get("name") or "",
            model_name=data["model_name"],
            model_version=str(data.get("model_version") or ""),
            model_uri=data["model_uri"],
            namespace=c.kubernetes_namespace,
            kubernetes_context=c.kubernetes_context,
            base_url=c.base_url,
            service_account=c.service_account,
            runtime=c.runtime,
            cpu=c.cpu,
            memory=c.memory,
            logger_url=c.request_logger_url,
        )

    def services_for(self, model_name: str | None = None) -> list[KServeService]:
        """This deployer's service records (for one model), newest first."""
        return service_records.records(KServeService, model_name)

    def deploy_model(
        self,
        config: ServiceConfig,
        service_type=None,
        replace: bool = False,
        continuous_deployment_mode: bool = False,
        timeout: int = 300,
    ) -> BaseService:
        wanted = self.service_config(config)
        old = self.services_for(wanted.model_name)
        for service in old:
            if (service.config.model_uri, service.config.model_version) == (
                wanted.model_uri,
                wanted.model_version,
            ):
                service.provision()  # the same version again: make sure it is there
                return service
        client = Client()
        response = client.create_service(
            config=wanted, service_type=KServeService.SERVICE_TYPE, model_version_id=None
        )
        new = KServeService(uuid=response.id, config=wanted)
        try:
            new.provision()
            if timeout:
                self._wait_ready(new, min(timeout, self.config.ready_timeout))
        except BaseException:
            if old:  # fail closed: the spec goes back to what was served
                old[0].provision()
            client.delete_service(response.id)
            raise
        service_records.save(new)
        for service in old:  # same InferenceService, new spec: only the records go
            client.delete_service(service.uuid)
        return new

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

    def perform_deploy_model(self, id, config: ServiceConfig, timeout: int = 300) -> BaseService:
        return self.deploy_model(config, timeout=timeout)

    def perform_stop_model(self, service: BaseService, timeout: int = 60, force: bool = False):
        service.stop(timeout=timeout, force=force)
        return service

    def perform_start_model(self, service: BaseService, timeout: int = 300) -> BaseService:
        service.start(timeout=timeout)
        return service

    def perform_delete_model(self, service: BaseService, timeout: int = 60, force: bool = False):
        service.stop(timeout=timeout, force=True)

    @staticmethod
    def get_model_server_info(service: BaseService) -> dict[str, str | None]:
        service = cast(KServeService, service)
        return {
            "PREDICTION_URL": service.prediction_url,
            "HEALTH_CHECK_URL": service.healthcheck_url,
            "PROTOCOL": "v2",
            "HOST_HEADER": service.host,
            "INFERENCE_SERVICE": f"{service.config.namespace}/{service.name}",
            "MODEL_URI": service.config.model_uri,
        }
