"""zenkube's local Seldon model deployer: the deployer contract (integrations/zenml_adapters/deployer.py)
for real Seldon / MLServer processes on 127.0.0.1 behind the model's front."""

from __future__ import annotations

from typing import ClassVar, cast

from zenml.logger import get_logger
from zenml.services.service import BaseService

from core.champion import locks
from core.errors import is_interrupt
from core.paths import zenkube_home
from core.traffic.rows import stack_folder
from integrations.seldon_local import process, replicas
from integrations.seldon_local.flavor import (
    SeldonLocalModelDeployerConfig,
    SeldonLocalModelDeployerFlavor,
)
from integrations.seldon_local.service import (
    SeldonLocalService,
    SeldonLocalServiceConfig,
    input_task,
)
from integrations.zenml_adapters.deployer import DeployerContract, DeployFailed
from integrations.zenml_adapters.request import DeploymentRequest, ReleaseRequest

logger = get_logger(__name__)


class SeldonLocalModelDeployer(DeployerContract):
    """Serves models with the Seldon serving runtime on 127.0.0.1.

    A new server must pass its health check and a smoke prediction before it replaces
    the old one; if it fails, the old one keeps serving and the error carries the new
    server's log tail. The endpoint keeps its port across redeployments: the model's
    front holds it and switches from the old server to the new one.

    Releases: the candidate is a second server, proven like a deploy, that the front
    sends a share of requests (canary) or a copy of each (shadow) beside the champion;
    the front gathers the evidence and runs the gate (core/release/gate.py).
    """

    NAME: ClassVar[str] = "Seldon (local)"
    FLAVOR: ClassVar[type] = SeldonLocalModelDeployerFlavor
    SERVICE_CLASS: ClassVar[type] = SeldonLocalService
    RELEASE_MODES: ClassVar[tuple[str, ...]] = ("canary", "shadow")
    CANDIDATE_RECORDS: ClassVar[bool] = True
    BINARY_BODIES: ClassVar[bool] = True  # zenkube's Seldon runtime reads binData

    @property
    def config(self) -> SeldonLocalModelDeployerConfig:
        return cast(SeldonLocalModelDeployerConfig, self._config)

    def state_dir(self) -> str:
        if self.config.state_dir:
            return self.config.state_dir
        return str(zenkube_home() / "serving")

    def service_config(self, request: DeploymentRequest) -> SeldonLocalServiceConfig:
        """The request, described for a local process."""
        settings = self.config
        base = request.seldon_config().model_dump(exclude={"type"})
        base.pop("resources", None)  # one process on this machine: no limits to set
        base["replicas"] = replicas.wanted(settings.replicas)  # a primary + warm standbys
        return SeldonLocalServiceConfig(
            **base,
            protocol=request.protocol,
            port=settings.port,
            workers=settings.workers,
            start_timeout=request.start_timeout or settings.start_timeout,
            state_dir=self.state_dir(),
            traffic_dir=stack_folder(request.model_name) if settings.log_traffic else "",
            traffic_max_mb=settings.traffic_max_mb,
        )

    def same(self, service: SeldonLocalService, config: SeldonLocalServiceConfig) -> bool:
        keys = (
            "model_uri", "model_version", "protocol", "workers", "replicas", "port", "traffic_dir",
        )  # fmt: skip
        return all(getattr(service.config, k) == getattr(config, k) for k in keys)

    def revive(self, service: SeldonLocalService, timeout: int) -> SeldonLocalService:
        if service.is_running:
            return service
        logger.info("Restarting the stopped server of %s", service.config.model_name)
        self.start_model_server(service.uuid, timeout=timeout)
        return next(
            s for s in self.services_for(service.config.model_name) if s.uuid == service.uuid
        )

    def check_status(self, services: list[SeldonLocalService]) -> None:
        for service in services:
            service.update_status()

    def prove(self, new: SeldonLocalService, old: list, timeout: int) -> None:
        """Start `new` on a port of its own: health + smoke prediction, no traffic yet."""
        new.start_on(process.free_port())

    def discard(self, new: SeldonLocalService, old: list, error: BaseException):
        """Stop the new server and remove its files (its log goes to failed-deploys/);
        a candidate the front already sends requests to gets none first (abort)."""
        state = self.release_state(new.config.model_name) or {}
        if self.in_release(new, state):
            new.front.release_end("abort", "zenkube", f"the release start failed: {error!r}"[:300])
        new.deprovision()
        kept = new.keep_log()
        new.remove_files()
        if is_interrupt(error):
            return None  # an interrupt stays an interrupt (ZenML's in a step is an Exception)
        message = str(error)
        if kept:  # the error names the log it quotes: keep that log where it points
            message = message.replace(str(new.log_file), str(kept))
        return DeployFailed(f"Failed to deploy model server for {new.config.model_name}: {message}")

    def is_serving(self, service: SeldonLocalService) -> bool:
        status = service.front.status()
        return (
            status is not None
            and service.backend_port is not None
            and status.get("backend") == service.backend_port
            and any(process.is_alive(pid) for pid in [service.pid, *dict(service.standbys)])
        )

    def switch(self, new: SeldonLocalService, old: list[SeldonLocalService]) -> None:
        """The model's front forwards to `new` from now on (it starts, if it is not up)."""
        local, front = new.config, new.front
        if front.status() is not None and (local.port in (None, front.port)):
            front.switch(
                new.backend_port,
                drain=[s.backend_port for s in old if s.backend_port],
                served=new.served_labels,
                traffic=new.traffic_args,  # log_traffic as this deployment says
            )
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
        front.start(public, new.backend_port, served=new.served_labels, traffic=new.traffic_args)
        new.set_public_port(public, note)

    def retire(self, old: list[SeldonLocalService]) -> None:
        for service in old:
            service.stop_server()
            service.remove_files()

    # -- releases ----------------------------------------------------------------------
    def front_of(self, model_name: str):
        from integrations.seldon_local.front import ModelFront

        return ModelFront(self.state_dir(), model_name)

    def served_protocol(self, model_name: str) -> str | None:
        """The protocol the model's served-state record says (router.json: it outlives
        the front, its keeper and the servers), else the newest running service's."""
        protocol = self.front_of(model_name).record().get("protocol")
        return protocol or super().served_protocol(model_name)

    def release_state(self, model_name: str) -> dict | None:
        """What the model's front says of its current or last release (None: it never
        had one, or the front is not running)."""
        front = self.front_of(model_name)
        if front.status() is None:
            return None
        return front.release_status() or None

    def hand_over(
        self, candidate: SeldonLocalService, champion: SeldonLocalService, release: ReleaseRequest
    ) -> dict:
        from integrations.seldon_local.front import FrontError

        try:
            return candidate.front.release_start(
                candidate.backend_port,
                release.mode,
                release.percent,
                {**candidate.served_labels, "task": input_task(candidate.model_dir)},
                str(candidate.workdir),
                release.thresholds,
            )
        except FrontError as exc:
            raise DeployFailed(f"{exc}. The champion serves on alone.") from None

    def in_release(self, candidate: SeldonLocalService, state: dict, ended: bool = False) -> bool:
        port = (state.get("candidate") or {}).get("port")
        active = bool(state.get("active")) or ended
        return active and port is not None and port == candidate.backend_port

    def release_end(self, model_name: str, outcome: str, by: str, reason: str) -> dict:
        """The front ends the release (promote: the candidate becomes its backend; abort:
        no more candidate traffic; both return once the leaving port has nothing in
        flight); then the records follow: `repair_release` makes a promoted candidate's
        record the served one and retires the old server, or stops an aborted candidate."""
        from integrations.seldon_local.front import FrontError

        with locks.model_lock(model_name, f"release {outcome}", logger.info):
            try:
                state = self.front_of(model_name).release_end(outcome, by, reason)
            except FrontError as exc:
                raise DeployFailed(
                    f"{exc}. `python run.py serve repair --model-name {model_name}` puts the "
                    "release's records right."
                ) from None
            with locks.uninterrupted():
                self.repair(model_name)
        return state

    def took_over(self, candidate: SeldonLocalService) -> None:
        candidate.set_public_port(candidate.front.port)  # its URL: the front's, as a deploy's

    def end_orphan_release(self, model_name: str, state: dict, why: str) -> None:
        self.front_of(model_name).release_end("abort", "zenkube repair", why)

    def perform_delete_model(
        self, service: BaseService, timeout: int = 60, force: bool = False
    ) -> None:
        service = cast(SeldonLocalService, service)
        service.stop(timeout=timeout, force=True)
        service.remove_files()

    def server_facts(self, service: SeldonLocalService) -> dict[str, str | None]:
        return {
            "LOG_FILE": str(service.log_file),
            "FRONT_LOG": str(service.front.log_file),
            "METRICS_URL": service.front.metrics_url,
            "RESTARTS": service.front.restarts_note(),
            "REPLICAS": service.front.replicas_note(),
            "PORT_NOTE": service.port_note or None,
        }
