"""zenkube's local Seldon model deployer: takes ZenML's `SeldonDeploymentConfig` unchanged."""

from __future__ import annotations

from typing import ClassVar, cast
from uuid import UUID

from zenml.client import Client
from zenml.integrations.seldon.services.seldon_deployment import SeldonDeploymentConfig
from zenml.logger import get_logger
from zenml.model_deployers import BaseModelDeployer
from zenml.services.service import BaseService, ServiceConfig

from core.paths import zenkube_home
from integrations import service_records
from integrations.seldon_local import process
from integrations.seldon_local.flavor import (
    SeldonLocalModelDeployerConfig,
    SeldonLocalModelDeployerFlavor,
)
from integrations.seldon_local.service import SeldonLocalService, SeldonLocalServiceConfig
from integrations.traffic import stack_folder

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
        return str(zenkube_home() / "serving")

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
            traffic_dir=stack_folder(data["model_name"]) if settings.log_traffic else "",
            traffic_max_mb=settings.traffic_max_mb,
        )

    def deploy_model(
        self,
        config: ServiceConfig,
        service_type=None,
        replace: bool = False,
        continuous_deployment_mode: bool = False,
        timeout: int = 300,
    ) -> BaseService:
        """Deploy; the same model and settings again is a no-op (and revives a dead server).

        ZenML 0.98's `BaseModelDeployer.deploy_model` ignores the config when it looks for
        an identical service (the store does not filter on it), so any second version would
        be a "no-op"; and its replace mode stops the old server before the new one is
        proven. We keep its store records but decide ourselves.
        """
        local = self.local_config(config)
        for service in self.services_for(local.model_name):
            if _same_deployment(service.config, local):
                if not service.is_running:
                    logger.info("Restarting the stopped server of %s", local.model_name)
                    self.start_model_server(service.uuid, timeout=timeout)
                    service = next(
                        s for s in self.services_for(local.model_name) if s.uuid == service.uuid
                    )
                return service
        client = Client()
        response = client.create_service(
            config=local, service_type=SeldonLocalService.SERVICE_TYPE, model_version_id=None
        )
        try:
            service = self.perform_deploy_model(id=response.id, config=local, timeout=timeout)
        except Exception as exc:
            client.delete_service(response.id)
            raise RuntimeError(
                f"Failed to deploy model server for {local.model_name}: {exc}"
            ) from exc
        service_records.save(service)
        return service

    def services_for(self, model_name: str | None = None) -> list[SeldonLocalService]:
        """This deployer's services (for one registered model), newest first, each with
        its status checked (integrations/service_records.py)."""
        services = service_records.records(SeldonLocalService, model_name)
        for service in services:
            service.update_status()
        return services

    def perform_deploy_model(
        self, id: UUID, config: ServiceConfig, timeout: int = 300
    ) -> BaseService:
        local = self.local_config(config)
        if not isinstance(config, SeldonDeploymentConfig):
            raise TypeError("the seldon_local deployer takes a SeldonDeploymentConfig")
        old = [s for s in self.services_for(local.model_name) if s.uuid != id]
        new = SeldonLocalService(uuid=id, config=local)
        try:
            self._replace(new, old)
        except BaseException as exc:
            # An error or Ctrl-C before the front switched: the new server goes and the old
            # one serves on. After the switch the new server is the one serving: it stays.
            status = new.front.status()
            if status is None or status.get("backend") != new.backend_port:
                new.deprovision()
                kept = new.keep_log()
                new.remove_files()
                if kept and isinstance(exc, Exception) and str(new.log_file) in str(exc):
                    # The error names the log it quotes: keep that log where it points.
                    raise process.ServerStartError(
                        str(exc).replace(str(new.log_file), str(kept))
                    ) from None
            raise
        client = Client()
        for service in old:
            service.remove_files()
            try:
                client.delete_service(service.uuid)
            except KeyError:
                pass
        return new

    def _replace(self, new: SeldonLocalService, old: list[SeldonLocalService]) -> None:
        """Start `new` on its own port and prove it; then switch the front; then drain `old`.

        The front keeps the client-facing port open throughout, so a swap refuses no
        request; a new server that fails its checks never receives traffic.
        """
        local = new.config
        backend = process.free_port()
        new.start_on(backend)  # health + smoke prediction; raises and the old one serves on
        front = new.front
        if front.status() is not None and (local.port in (None, front.port)):
            front.switch(
                backend,
                drain=[s.backend_port for s in old if s.backend_port],
                served=new.served_labels,
            )
            for service in old:
                service.stop_server()
            new.set_public_port(front.port)
            return
        for service in old:
            service.deprovision()
        wanted = local.port or next((s.port for s in old if s.port), None)
        public = wanted if wanted and process.port_is_free(wanted) else process.free_port()
        note = ""
        if wanted and public != wanted:
            note = f"port {wanted} was taken: the endpoint moved to {public}"
            logger.warning("The endpoint of %s: %s.", local.model_name, note)
        front.start(public, backend, served=new.served_labels, traffic=new.traffic_args)
        new.set_public_port(public, note)

    def perform_stop_model(
        self, service: BaseService, timeout: int = 60, force: bool = False
    ) -> BaseService:
        service.stop(timeout=timeout, force=force)
        return service

    def perform_start_model(self, service: BaseService, timeout: int = 300) -> BaseService:
        service.start(timeout=timeout)
        return service

    def perform_delete_model(
        self, service: BaseService, timeout: int = 60, force: bool = False
    ) -> None:
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
            "FRONT_LOG": str(service.front.log_file),
            "METRICS_URL": service.front.metrics_url,
            "PORT_NOTE": service.port_note or None,
        }


def _same_deployment(a: SeldonLocalServiceConfig, b: SeldonLocalServiceConfig) -> bool:
    keys = ("model_uri", "model_version", "protocol", "workers", "port")
    return all(getattr(a, k) == getattr(b, k) for k in keys)
