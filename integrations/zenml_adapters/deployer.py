"""One deployer contract for zenkube's model deployers (local Seldon, KServe, cluster Seldon).

ZenML's `BaseModelDeployer.deploy_model` looks for an identical service without filtering
on the config (ZenML 0.98), and its replace mode stops the old server before the new one
is proven; so the deploy dance lives here, once:

    identical deployment?  → revive it and return it
    leftover records?      → repair them (an interrupted or killed deploy's)
    record the new one     → ZenML service record, unfinished (no source yet)
    prove the new one      → backend: start it, health + smoke; traffic still goes to old
      any interruption     → backend: discard it; the record goes; the old one serves on
    switch                 → backend: traffic to the new one; record it; old records go
                             (uninterrupted: a Ctrl-C meanwhile waits for the end)
    retire                 → backend: stop the old servers

A backend says only what differs: its service class and config, what "identical" means,
how to prove, discard, switch and retire.

A release (issue #27) serves a candidate version beside the served one (canary: a share
of live requests; shadow: a copy of each) until it is promoted or aborted: a backend
lists the modes it runs in RELEASE_MODES and fills `release_start`, `release_state` and
`release_end`; the base refuses any other mode with a clear error. The requests are typed
(`DeploymentRequest`, `ReleaseRequest`: request.py): the protocol and resources ride in
them, not in ZenML's `extra_args`.
"""

from __future__ import annotations

from typing import ClassVar

from zenml.logger import get_logger
from zenml.model_deployers import BaseModelDeployer
from zenml.services.service import BaseDeploymentService, BaseService, ServiceConfig

from core.champion import locks
from core.errors import ConfigError, ZenkubeError
from core.protocol import DEFAULT_PROTOCOL, PROTOCOLS
from core.release.running import refuse_while_running
from integrations.zenml_adapters import service_records
from integrations.zenml_adapters.request import DeploymentRequest, ReleaseRequest

logger = get_logger(__name__)


class DeployFailed(ZenkubeError, RuntimeError):
    """A new server failed its checks (the message says why); the served version serves on."""


def active_deployer():
    """The active stack's model deployer; a ConfigError that says how to get one."""
    from zenml.client import Client

    deployer = Client().active_stack.model_deployer
    if deployer is None:
        raise ConfigError(
            "The active stack has no model deployer. Run `python run.py stack up local` "
            "(local Seldon runtime) or add a model deployer to your stack."
        )
    return deployer


def services_for(deployer, model_name: str | None = None) -> list:
    """The deployer's services (for one registered model, or all), newest first."""
    if isinstance(deployer, DeployerContract):
        return deployer.services_for(model_name)
    kwargs = {"model_name": model_name} if model_name else {}
    return deployer.find_model_server(**kwargs)  # a ZenML deployer of another flavor


def served(deployer, model_name: str):
    """The service that serves `model_name` now (the newest running one), or None."""
    return next((s for s in services_for(deployer, model_name) if s.is_running), None)


def protocol_of(deployer, service) -> str:
    """The protocol a service speaks."""
    if isinstance(deployer, DeployerContract):
        return deployer.protocol_of(service)
    extra = getattr(service.config, "extra_args", None) or {}
    return getattr(service.config, "protocol", None) or extra.get("protocol") or DEFAULT_PROTOCOL


def protocols(deployer) -> tuple[str, ...]:
    """The protocols a deployer serves (ZenML's own Seldon deployer: Seldon's v1)."""
    return deployer.PROTOCOLS if isinstance(deployer, DeployerContract) else (DEFAULT_PROTOCOL,)


def served_protocol(deployer, model_name: str) -> str | None:
    """The protocol `model_name` is served with (None: nothing of it was served). A
    backend with a served-state record answers from it, also while its processes are
    down; otherwise the newest running service's."""
    if isinstance(deployer, DeployerContract):
        return deployer.served_protocol(model_name)
    service = served(deployer, model_name)
    return protocol_of(deployer, service) if service is not None else None


def deploy(deployer, request: DeploymentRequest, timeout: int = 300):
    """Serve `request` with any model deployer (ours take the typed request)."""
    if isinstance(deployer, DeployerContract):
        return deployer.deploy(request, timeout)
    from zenml.integrations.seldon.services.seldon_deployment import SeldonDeploymentService

    return deployer.deploy_model(
        request.seldon_config(),
        service_type=SeldonDeploymentService.SERVICE_TYPE,
        timeout=timeout,
    )


def release_modes(deployer) -> tuple[str, ...]:
    """The release modes a deployer runs (none for a ZenML deployer of another flavor)."""
    return deployer.RELEASE_MODES if isinstance(deployer, DeployerContract) else ()


def check_release(deployer, mode: str, percent: float) -> None:
    """A ConfigError unless `deployer` can run a `mode` release at `percent` %."""
    modes = release_modes(deployer)
    name = getattr(deployer, "NAME", None) or getattr(deployer, "flavor", None) or "this deployer"
    if mode not in modes:
        runs = (
            f"runs only {' and '.join(modes)} releases"
            if modes
            else "runs no releases (only swaps: `deploy` replaces the served version at once)"
        )
        why = getattr(deployer, "RELEASE_REFUSALS", {}).get(mode)
        if why:  # the backend's own reason and way out
            raise ConfigError(f"The model deployer {name} {runs}: {why}")
        raise ConfigError(
            f"The model deployer {name} {runs}; a {mode} release was asked for. Use "
            + (
                f"--{modes[0]}" + (" PCT" if modes[0] == "canary" else "")
                if modes
                else "`deploy` (mode swap in configs/deployment.yaml's release block)"
            )
            + ", or a stack whose model deployer runs "
            f"{mode} releases (the local Seldon runtime runs canary and shadow)."
        )
    if mode == "canary" and not 0 < percent < 100:
        raise ConfigError(
            f"A canary's share must be above 0 and below 100 percent; {percent:g} was given. "
            "Use e.g. --canary 10 (a tenth of live requests go to the candidate)."
        )


def release_start(deployer, release: ReleaseRequest, timeout: int = 300) -> dict:
    """Start `release` (its candidate beside the served version); its state."""
    check_release(deployer, release.mode, release.percent)
    return deployer.release_start(release, timeout)


def candidates(deployer, model_name: str | None = None) -> list:
    """Releases' candidates now recorded (for one registered model), newest first."""
    if isinstance(deployer, DeployerContract):
        return deployer.candidates_for(model_name)
    return []


def release_end(deployer, model_name: str, outcome: str, by: str, reason: str) -> dict:
    """End the model's active release (promote or abort); its state."""
    if not isinstance(deployer, DeployerContract):
        check_release(deployer, "canary", 10)  # the ConfigError: no releases here
    return deployer.release_end(model_name, outcome, by, reason)


def release_state(deployer, model_name: str) -> dict | None:
    """The model's current or last release (None: it never had one, or no releases here)."""
    if isinstance(deployer, DeployerContract):
        return deployer.release_state(model_name)
    return None


def repair(deployer, model_name: str) -> list[str]:
    """Put right what interrupted deploys of `model_name` left; say what was fixed."""
    if isinstance(deployer, DeployerContract):
        return deployer.repair(model_name)
    return []


class DeployerContract(BaseModelDeployer):
    """The deploy dance of zenkube's model deployers; backends fill in the hooks below."""

    SERVICE_CLASS: ClassVar[type[BaseDeploymentService]]
    PROTOCOLS: ClassVar[tuple[str, ...]] = PROTOCOLS  # the protocols this backend serves
    RELEASE_MODES: ClassVar[tuple[str, ...]] = ()  # the releases it runs: canary, shadow
    RELEASE_REFUSALS: ClassVar[dict[str, str]] = {}  # mode -> why it is not run (the error says)
    # Its candidates are service records of their own (the base's `start_release`), which
    # `repair` keeps in step with the release; False: the backend keeps releases elsewhere.
    CANDIDATE_RECORDS: ClassVar[bool] = False
    # Its Seldon servers run zenkube's runtime, which takes a large batch as `binData` (an
    # Arrow stream, core/protocol/seldon.py); a cluster's MLFLOW_SERVER takes JSON only.
    BINARY_BODIES: ClassVar[bool] = False

    # -- what each backend says ---------------------------------------------------------
    def service_config(self, request: DeploymentRequest) -> ServiceConfig:
        raise NotImplementedError

    def same(self, service: BaseDeploymentService, config: ServiceConfig) -> bool:
        """Whether `service` already serves exactly `config` (a redeploy is then a no-op)."""
        raise NotImplementedError

    def revive(self, service: BaseDeploymentService, timeout: int) -> BaseDeploymentService:
        """Make sure an identical deployment runs (after a crash or `serve stop`)."""
        return service

    def prove(self, new, old: list, timeout: int) -> None:
        """Start `new` without sending it traffic; raise unless it is healthy."""
        raise NotImplementedError

    def discard(self, new, old: list, error: BaseException) -> BaseException | None:
        """Undo `prove` after any interruption: the served version serves again. May
        return a clearer error to raise instead of `error`."""
        raise NotImplementedError

    def switch(self, new, old: list) -> None:
        """Send traffic to `new` (quick; it runs uninterrupted)."""

    def retire(self, old: list) -> None:
        """Stop what served before (after the switch)."""

    def is_serving(self, service) -> bool:
        """Whether traffic goes to `service` now (for repairs of a killed deploy)."""
        return False

    def protocol_of(self, service) -> str:
        return getattr(service.config, "protocol", None) or self.PROTOCOLS[0]

    def check_status(self, services: list) -> None:
        """Refresh the services' status before they are listed (default: as recorded)."""

    def server_facts(self, service) -> dict[str, str | None]:
        """What else a backend tells about a service (log file, Host header, ...)."""
        return {}

    def get_model_server_info(self, service) -> dict[str, str | None]:
        """The facts `deploy`, `serve status` and `predict` print and use."""
        return {
            "PREDICTION_URL": service.prediction_url,
            "HEALTH_CHECK_URL": service.healthcheck_url,
            "PROTOCOL": self.protocol_of(service),
            "MODEL_URI": service.config.model_uri,
            **self.server_facts(service),
        }

    # -- the contract ------------------------------------------------------------------
    def services_for(self, model_name: str | None = None) -> list:
        """This deployer's finished deployments (for one registered model), newest first."""
        services = service_records.records(self.SERVICE_CLASS, model_name)
        self.check_status(services)
        return services

    def candidates_for(self, model_name: str | None = None) -> list:
        """Releases' candidates (finished records labelled as such), newest first."""
        services = service_records.records(self.SERVICE_CLASS, model_name, candidates=True)
        self.check_status(services)
        return services

    def served_protocol(self, model_name: str) -> str | None:
        """The protocol of the newest running service (a backend with a served-state
        record that outlives its processes answers from that)."""
        service = served(self, model_name)
        return self.protocol_of(service) if service is not None else None

    def deploy(self, request: DeploymentRequest, timeout: int = 300) -> BaseDeploymentService:
        """Serve `request`; any interruption before the switch leaves the served version
        serving and no record behind. Holds the model's lock throughout."""
        from zenml.client import Client

        if request.protocol not in self.PROTOCOLS:
            logger.warning(
                "%s serves the %s protocol; '%s' was asked for (README, 'Calling the model').",
                self.NAME,
                "/".join(self.PROTOCOLS),
                request.protocol,
            )
            request = request.model_copy(update={"protocol": self.PROTOCOLS[0]})
        config = self.service_config(request)
        with locks.model_lock(request.model_name, "deploy", logger.info):
            self.repair(request.model_name)
            old = self.services_for(request.model_name)
            for service in old:
                if self.same(service, config):
                    return self.revive(service, timeout)
            self.refuse_during_release(request.model_name, "deploy")
            client = Client()
            response = client.create_service(
                config=config, service_type=self.SERVICE_CLASS.SERVICE_TYPE, model_version_id=None
            )
            new = self.SERVICE_CLASS(uuid=response.id, config=config)
            try:
                self.prove(new, old, timeout)
            except BaseException as exc:
                with locks.uninterrupted():
                    try:
                        clearer = self.discard(new, old, exc)
                    finally:
                        service_records.delete(response.id)
                if clearer is not None:
                    raise clearer from None
                raise
            with locks.uninterrupted():
                self.switch(new, old)
                service_records.save(new)
                for service in old:
                    service_records.delete(service.uuid)
                self.retire(old)
        return new

    def repair(self, model_name: str) -> list[str]:
        """Records an interrupted or killed deploy of `model_name` left: a deploy whose new
        server already took the traffic is completed; any other is discarded (its server
        stopped, its files and record removed). Finished records beyond the served one go
        too. Returns one sentence per fix. Callers hold the model's lock."""
        fixed = self.repair_release(model_name)
        finished = self.services_for(model_name)
        for service in service_records.unfinished(self.SERVICE_CLASS, model_name, False):
            version = service.config.model_version
            if self.is_serving(service):
                service_records.save(service)
                fixed.append(
                    f"completed the interrupted deploy of {model_name} v{version}: it was "
                    "already serving, so its service record was finished"
                )
            else:
                self.discard(service, finished, KeyboardInterrupt())
                service_records.delete(service.uuid)
                fixed.append(
                    f"removed the unfinished service record {service.uuid} of {model_name} "
                    f"v{version} (an interrupted deploy) and stopped what it had started"
                )
        finished = self.services_for(model_name)  # with any deploy completed above
        serving = [s for s in finished if self.is_serving(s)] or finished[:1]
        for service in finished:
            if service not in serving:
                self.retire([service])
                service_records.delete(service.uuid)
                fixed.append(
                    f"removed the stale service record {service.uuid} of {model_name} "
                    f"v{service.config.model_version} (replaced by a deploy that was cut off "
                    "before it removed it)"
                )
        return fixed

    # -- releases (issue #27): a candidate beside the served version -------------------
    # The release state is a dict (RELEASE-DESIGN.md): active, state (running | decided |
    # aborted | promoted), mode, percent, champion / candidate {version, ...}, started_at,
    # ended_at, thresholds, evidence, decision {outcome, by, reasons, at} | None, next.
    def release_start(self, release: ReleaseRequest, timeout: int = 300) -> dict:
        """Serve `release.candidate` beside the served version (canary: `percent` % of
        live requests; shadow: a copy of each), which stays the champion; returns the
        release state. A backend that runs releases lists their
        modes in RELEASE_MODES and either fills `hand_over` (+ `in_release`) for the
        base's `start_release` (record, prove, discard like `deploy`), or overrides this,
        calling `check_release` first."""
        check_release(self, release.mode, release.percent)
        return self.start_release(release, timeout)

    def release_state(self, model_name: str) -> dict | None:
        """The model's current or last release state; None when it never had one."""
        return None

    # A backend that runs releases with the base's `start_release` fills these:
    def hand_over(self, candidate, champion, release: ReleaseRequest) -> dict:
        """Send the proven `candidate` its share (or copy) of `champion`'s traffic, as
        `release` says; the release state."""
        raise NotImplementedError

    def in_release(self, candidate, state: dict, ended: bool = False) -> bool:
        """Whether `candidate` is the active (with `ended`: also the last) release's
        candidate in `state`."""
        wanted = (state.get("candidate") or {}).get("version")
        active = bool(state.get("active")) or ended
        return active and str(wanted) == str(candidate.config.model_version)

    def took_over(self, candidate) -> None:
        """A promoted `candidate` is the served version now (before its record says so)."""

    def end_orphan_release(self, model_name: str, state: dict, why: str) -> None:
        """End an active release whose candidate has no record (abort, `by` zenkube)."""
        self.release_end(model_name, "abort", "zenkube repair", why)

    def refuse_during_release(self, model_name: str, command: str) -> None:
        """A ConfigError while a release of `model_name` runs: a swap now would pull the
        champion from under it. (Backends without candidate records run their own
        promote as a deploy: theirs to guard.)"""
        if not self.CANDIDATE_RECORDS:
            return
        refuse_while_running(self.release_state(model_name), model_name, command)

    def start_release(self, release: ReleaseRequest, timeout: int = 300) -> dict:
        """The release dance, like `deploy`'s: record the candidate (labelled as one),
        prove it (health + smoke) without traffic, then hand it over (uninterrupted, with
        its record finished). Any failure or interruption before that discards it: its
        server stops, its record goes, the champion serves on alone. Holds the model's
        lock; the candidate speaks the champion's protocol (the same requests reach both)."""
        from zenml.client import Client

        request = release.candidate
        name = request.model_name
        with locks.model_lock(name, "release start", logger.info):
            self.repair(name)
            champion = served(self, name)
            if champion is None:
                raise ConfigError(
                    f"Nothing of {name} is served, so there is no champion for a release to "
                    f"run beside. Serve the champion first: `python run.py deploy --model-name "
                    f"{name}`."
                )
            if str(champion.config.model_version) == str(request.model_version):
                raise ConfigError(
                    f"{name} v{request.model_version} is already the served version; a "
                    "release needs another version as its candidate (--version N)."
                )
            self.refuse_during_release(name, "release start")
            release = release.with_protocol(self.protocol_of(champion))
            config = self.service_config(release.candidate)
            response = Client().create_service(
                config=config, service_type=self.SERVICE_CLASS.SERVICE_TYPE, model_version_id=None
            )
            new = self.SERVICE_CLASS(uuid=response.id, config=config)
            try:
                service_records.mark_candidate(response.id)
                self.prove(new, [champion], timeout)
                with locks.uninterrupted():
                    state = self.hand_over(new, champion, release)
                    service_records.save(new, candidate=True)
            except BaseException as exc:
                with locks.uninterrupted():
                    try:
                        clearer = self.discard(new, [champion], exc)
                    finally:
                        service_records.delete(response.id)
                if clearer is not None:
                    raise clearer from None
                raise
        return state

    def repair_release(self, model_name: str) -> list[str]:
        """Candidates' records put right with the release they belong to: an unfinished
        one whose release is active is finished; one whose release ended is discarded
        (aborted) or becomes the served record (promoted: it already takes all traffic);
        an active release whose candidate has no record is aborted. Callers hold the lock."""
        fixed: list[str] = []
        if not self.CANDIDATE_RECORDS:
            return fixed
        state = self.release_state(model_name) or {}
        for service in service_records.unfinished(self.SERVICE_CLASS, model_name, True):
            version = service.config.model_version
            if self.in_release(service, state):
                service_records.save(service, candidate=True)
                fixed.append(
                    f"finished the record of {model_name} v{version}, the candidate of the "
                    "running release (its start was cut off after the hand-over)"
                )
            else:
                self.discard(service, [], KeyboardInterrupt())
                service_records.delete(service.uuid)
                fixed.append(
                    f"removed the unfinished candidate record {service.uuid} of {model_name} "
                    f"v{version} (an interrupted release start) and stopped its server"
                )
        kept = False
        promoted = state.get("state") == "promoted"
        for service in self.candidates_for(model_name):
            version = service.config.model_version
            # a promoted candidate takes the traffic even while its server is down (killed
            # at the promote): the front restarts it; retiring it would leave nothing served
            if self.is_serving(service) or (promoted and self.in_release(service, state, True)):
                self.took_over(service)
                service_records.save(service)  # the served record now: the old ones go below
                fixed.append(
                    f"{model_name} v{version} takes all traffic (its release was promoted): "
                    "its record is now the served one"
                )
            elif self.in_release(service, state) and not kept:
                kept = True
            else:
                self.retire([service])
                service_records.delete(service.uuid)
                fixed.append(
                    f"stopped the candidate {model_name} v{version} and removed its record "
                    f"(its release is {state.get('state') or 'gone'}: it gets no traffic)"
                )
        if state.get("active") and not kept:
            self.end_orphan_release(
                model_name, state, "its candidate has no service record (a cut-off command)"
            )
            fixed.append(
                f"aborted the release of {model_name} "
                f"v{(state.get('candidate') or {}).get('version')}: its candidate had no "
                "service record; the champion takes all traffic"
            )
        return fixed

    def release_end(self, model_name: str, outcome: str, by: str, reason: str) -> dict:
        """End the model's active release: `promote` (all traffic to the candidate, which
        becomes the served version) or `abort` (no more candidate traffic). Moving the
        champion records is the caller's (champion.promote), before a promote."""
        raise ConfigError(
            f"The model deployer {self.NAME} runs no releases, so {model_name} has none to "
            f"{outcome}. Nothing was changed."
        )

    # -- ZenML's model deployer API, on the contract ------------------------------------
    def deploy_model(
        self,
        config: ServiceConfig,
        service_type=None,
        replace: bool = False,
        continuous_deployment_mode: bool = False,
        timeout: int = 300,
    ) -> BaseService:
        return self.deploy(DeploymentRequest.from_config(config), timeout)

    def perform_deploy_model(self, id, config: ServiceConfig, timeout: int = 300) -> BaseService:
        return self.deploy(DeploymentRequest.from_config(config), timeout)

    def perform_stop_model(self, service: BaseService, timeout: int = 60, force: bool = False):
        service.stop(timeout=timeout, force=force)
        return service

    def perform_start_model(self, service: BaseService, timeout: int = 300) -> BaseService:
        service.start(timeout=timeout)
        return service

    def perform_delete_model(self, service: BaseService, timeout: int = 60, force: bool = False):
        service.stop(timeout=timeout, force=True)
