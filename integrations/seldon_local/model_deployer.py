"""zenkube's local Seldon model deployer: takes ZenML's `SeldonDeploymentConfig` unchanged."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, cast
from uuid import UUID

from zenml.client import Client
from zenml.integrations.seldon.services.seldon_deployment import SeldonDeploymentConfig
from zenml.logger import get_logger
from zenml.model_deployers import BaseModelDeployer
from zenml.services.service import BaseService, ServiceConfig

from integrations.seldon_local import process
from integrations.seldon_local.flavor import (
    SeldonLocalModelDeployerConfig,
    SeldonLocalModelDeployerFlavor,
)
from integrations.seldon_local.service import SeldonLocalService, SeldonLocalServiceConfig

logger = get_logger(__name__)


class SeldonLocalModelDeployer(BaseModelDeployer):
    """Serves models with the Seldon serving runtime on 127.0.0.1.

    A new server must pass its health check and a smoke prediction before it replaces
    the old one; if it fails, the old one keeps serving and the error carries the new
    server's log tail. The endpoint keeps its port across redeployments.
    """

    NAME: ClassVar[str] = "Seldon (local)"
    FLAVOR: ClassVar[type] = SeldonLocalModelDeployerFlavor

    @property
    def config(self) -> SeldonLocalModelDeployerConfig:
        return cast(SeldonLocalModelDeployerConfig, self._config)

    def state_dir(self) -> str:
        if self.config.state_dir:
            return self.config.state_dir
        home = os.environ.get("ZENKUBE_HOME", str(Path.cwd() / ".zenkube"))
        return str(Path(home) / "serving")

    def local_config(self, config: ServiceConfig) -> SeldonLocalServiceConfig:
        """The same deployment, described for a local process (protocol from extra_args)."""
        if isinstance(config, SeldonLocalServiceConfig):
            return config
        data = config.model_dump(exclude={"type"})
        extra = dict(data.get("extra_args") or {})
        settings = self.config
        return SeldonLocalServiceConfig(
            **data,
            protocol=extra.get("protocol", settings.protocol),
            port=extra.get("port", settings.port),
            workers=int(extra.get("workers", settings.workers)),
            start_timeout=float(extra.get("start_timeout", settings.start_timeout)),
            state_dir=self.state_dir(),
        )

    def deploy_model(self, config: ServiceConfig, service_type=None, replace: bool = False,
                     continuous_deployment_mode: bool = False, timeout: int = 300) -> BaseService:
        """Deploy; the same config again is a no-op (and revives a dead server)."""
        local = self.local_config(config)
        service = cast(SeldonLocalService, super().deploy_model(
            config=local, service_type=SeldonLocalService.SERVICE_TYPE, replace=replace,
            continuous_deployment_mode=False, timeout=timeout,
        ))
        if not service.is_running:
            logger.info("Restarting the stopped server of %s", local.model_name)
            self.start_model_server(service.uuid, timeout=timeout)
            service = cast(SeldonLocalService, self.find_model_server(service_uuid=service.uuid)[0])
        return service

    def perform_deploy_model(self, id: UUID, config: ServiceConfig, timeout: int = 300) -> BaseService:
        local = self.local_config(config)
        if not isinstance(config, SeldonDeploymentConfig):
            raise TypeError("the seldon_local deployer takes a SeldonDeploymentConfig")
        old = [
            cast(SeldonLocalService, s)
            for s in self.find_model_server(model_name=local.model_name,
                                            service_type=SeldonLocalService.SERVICE_TYPE)
            if s.uuid != id
        ]
        new = SeldonLocalService(uuid=id, config=local)
        live = [s for s in old if s.is_running]
        stable_port = local.port or next((s.port for s in old if s.port), None)
        if live:
            # Prove the new model on a spare port while the old one keeps serving.
            new.start_on(process.free_port())
            new.deprovision()
            for service in live:
                service.deprovision()
            try:
                new.start_on(stable_port or process.free_port())
            except Exception:
                logger.error("The new server failed on the stable port; restoring the old one.")
                live[0].start_on(live[0].port)
                raise
        else:
            for service in old:
                service.deprovision()
            port = stable_port if stable_port and process.port_is_free(stable_port) else process.free_port()
            new.start_on(port)
        client = Client()
        for service in old:
            service.remove_files()
            try:
                client.delete_service(service.uuid)
            except KeyError:
                pass
        return new

    def perform_stop_model(self, service: BaseService, timeout: int = 60, force: bool = False) -> BaseService:
        service.stop(timeout=timeout, force=force)
        return service

    def perform_start_model(self, service: BaseService, timeout: int = 300) -> BaseService:
        service.start(timeout=timeout)
        return service

    def perform_delete_model(self, service: BaseService, timeout: int = 60, force: bool = False) -> None:
        service = cast(SeldonLocalService, service)
        service.stop(timeout=timeout, force=True)
        service.remove_files()

    @staticmethod
    def get_model_server_info(service: BaseService) -> dict[str, str | None]:
        service = cast(SeldonLocalService, service)
        return {
            "PREDICTION_URL": service.prediction_url,
            "HEALTH_CHECK_URL": service.healthcheck_url,
            "PROTOCOL": service.config.protocol,
            "LOG_FILE": str(service.log_file),
            "MODEL_URI": service.config.model_uri,
        }
