"""zenkube's KServe model deployer: the deployer contract (integrations/zenml_adapters/deployer.py) for one
InferenceService per registered model."""

from __future__ import annotations

import time
from typing import ClassVar, cast
from uuid import uuid4

from zenml.logger import get_logger

from core.champion import locks
from core.errors import ConfigError, ZenkubeError
from integrations.k8s import patch as k8s_patch
from integrations.k8s import release as cluster_release
from integrations.kserve import manifest
from integrations.kserve.flavor import KServeModelDeployerConfig, KServeModelDeployerFlavor
from integrations.kserve.service import KServeService, KServeServiceConfig
from integrations.zenml_adapters.deployer import DeployerContract, check_release, served
from integrations.zenml_adapters.request import DeploymentRequest, ReleaseRequest

logger = get_logger(__name__)


class KServeDeployError(ZenkubeError):
    """A new revision did not become Ready; the previous model serves on."""


class KServeModelDeployer(cluster_release.ClusterDeployer):
    """One InferenceService per registered model, on the V2 protocol.

    A new version replaces the InferenceService's spec; KServe keeps the old revision
    serving until the new one is Ready. If it is not Ready in time (or the deploy is
    interrupted), the spec goes back to the version that was served (fail closed).
    """

    NAME: ClassVar[str] = "KServe"
    BACKEND: ClassVar[str] = "KServe"
    FLAVOR: ClassVar[type] = KServeModelDeployerFlavor
    SERVICE_CLASS: ClassVar[type] = KServeService
    PROTOCOLS: ClassVar[tuple[str, ...]] = ("v2",)
    RELEASE_MODES: ClassVar[tuple[str, ...]] = ("canary",)  # no shadow in KServe (#2978)
    # why a mode is not run, for the contract's refusal to say (see release_start)
    RELEASE_REFUSALS: ClassVar[dict[str, str]] = {"shadow": manifest.SHADOW_REFUSED}

    @property
    def config(self) -> KServeModelDeployerConfig:
        return cast(KServeModelDeployerConfig, self._config)

    def service_config(self, request: DeploymentRequest) -> KServeServiceConfig:
        return KServeServiceConfig.for_request(self.config, request)

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

    # -- releases (issue #27): a canary on the InferenceService (manifest.py) ------------
    def _isvc(self, model_name: str) -> KServeService:
        """A handle on the model's InferenceService (its name comes from the model)."""
        c = self.config
        config = KServeServiceConfig(
            name="", model_name=model_name, model_uri="", namespace=c.kubernetes_namespace,
            kubernetes_context=c.kubernetes_context,
        )  # fmt: skip
        return KServeService(uuid=uuid4(), config=config)

    def release_start(self, release: ReleaseRequest, timeout: int = 300) -> dict:
        """The candidate answers `percent` % beside the served version: `spec.canary`
        (Standard) or `canaryTrafficPercent` (Serverless). If it is not Ready within
        `timeout`, the InferenceService goes back to the champion alone (fail closed)."""
        from integrations.k8s.storage_uri import check_stack_model_uri

        request, mode = release.candidate, release.mode
        if mode == "shadow":
            raise ConfigError(manifest.SHADOW_REFUSED)
        check_release(self, mode, release.percent)
        share = k8s_patch.whole_percent(release.percent, self.BACKEND)
        check_stack_model_uri(request.model_uri)
        dmode = self.config.deployment_mode
        if dmode == manifest.STANDARD and self.config.canary_routing == "ingress":
            raise ConfigError(manifest.STANDARD_CANARY_REFUSED)  # before anything changes
        with locks.model_lock(request.model_name, "release", logger.info):
            champion = served(self, request.model_name)
            body = champion.read() if champion is not None else None
            last = manifest.read_release(body) if body is not None else None
            cluster_release.refuse_start(request, self.BACKEND, body, last, champion)
            # the champion's protocol: the same requests reach both (and its promote's deploy)
            request = release.with_protocol(self.protocol_of(champion)).candidate
            candidate = KServeService(uuid=uuid4(), config=self.service_config(request))
            record = cluster_release.started(
                request, mode, share, release.thresholds,
                {"version": champion.config.model_version, "model_uri": champion.config.model_uri},
                {"predictor": manifest.canary_name(request.model_version)},
            )  # fmt: skip
            record["deployment_mode"] = dmode
            record["canary_routing"] = self.config.canary_routing
            new = manifest.canary(champion.body(), candidate.body(), share, dmode, record)
            try:
                champion.apply(new)
                kept = (champion.read() or {}).get("spec") or {}
                if dmode == manifest.STANDARD and not kept.get("canary"):
                    raise ConfigError(
                        "The cluster's KServe dropped the InferenceService's spec.canary (its "
                        "CRD has no such field: KServe before v0.20), so a Standard-mode canary "
                        "cannot run there. Set deployment_mode: Serverless in the KServe "
                        "deployer's config if KServe runs on Knative (canaryTrafficPercent), "
                        "upgrade KServe to v0.20 or later, or `deploy` the version (a swap)."
                    )
                if timeout:
                    self._wait_canary(
                        champion, request.model_version, min(timeout, self.config.ready_timeout)
                    )
            except BaseException as exc:
                with locks.uninterrupted():
                    self._abort(champion, record, "release start", cluster_release.why(exc))
                raise
        return self.release_state(request.model_name) or {}

    def _wait_canary(self, service: KServeService, version: str, timeout: float) -> None:
        deadline, why = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            ok, why = manifest.canary_ready(
                service.read() or {}, self.config.deployment_mode, version
            )
            if ok:
                return
            time.sleep(5)
        raise KServeDeployError(
            f"The canary of version {version} on {service.name} did not get Ready within "
            f"{timeout:.0f}s ({why}); the release was aborted and the champion serves all "
            f"traffic. `kubectl -n {service.config.namespace} describe inferenceservice "
            f"{service.name}` says why."
        )

    def _abort(self, isvc: KServeService, release: dict, by: str, reason: str) -> dict:
        """The champion alone again (its served record's spec), the release recorded."""
        ended = cluster_release.finished(release, "abort", by, reason)
        uri = release["champion"]["model_uri"]
        records = self.services_for(release["request"]["model_name"])
        champion = next((s for s in records if s.config.model_uri == uri), None)
        if champion is None:
            request = DeploymentRequest(**release["request"])
            update = {"model_version": release["champion"]["version"], "model_uri": uri}
            champion = KServeService(
                uuid=uuid4(), config=self.service_config(request.model_copy(update=update))
            )
        mode = release.get("deployment_mode", manifest.STANDARD)
        isvc.apply(manifest.aborted(champion.body(), mode, ended))
        return ended

    def release_state(self, model_name: str) -> dict | None:
        """The model's release, read back from its InferenceService: the record zenkube
        wrote, the shares and readiness KServe reports; None when it never had one."""
        isvc = self._isvc(model_name)
        body = isvc.read()
        release = manifest.read_release(body)
        if release is None:
            return None
        status = (body or {}).get("status") or {}
        ready, why = manifest.ready(body or {})
        backend = {
            "kind": "InferenceService",
            "name": f"{isvc.config.namespace}/{isvc.name}",
            "deployment_mode": release.get("deployment_mode"),
            "ready": ready,
            "why_not_ready": why,
            "canary": status.get("canaryStatuses") or [],
            "traffic": ((status.get("components") or {}).get("predictor") or {}).get("traffic")
            or [],
        }
        if release.get("deployment_mode") == manifest.STANDARD:
            backend["routing"] = (
                manifest.GATEWAY_ROUTING
                if release.get("canary_routing") == "gateway-api"
                else manifest.STANDARD_ROUTING
            )
        if release.get("active"):
            ok, why = manifest.canary_ready(
                body or {}, release.get("deployment_mode"), release["candidate"]["version"]
            )
            backend["candidate_ready"], backend["candidate_why_not"] = ok, why
        return cluster_release.state(release, backend)

    def release_end(self, model_name: str, outcome: str, by: str, reason: str) -> dict:
        """promote: the candidate is deployed (the stable predictor takes its model, the
        canary goes; records as after `deploy`); abort: the champion alone again. An
        abort of an aborted release answers its state (idempotent)."""
        with locks.model_lock(model_name, f"release {outcome}", logger.info):
            isvc = self._isvc(model_name)
            release = manifest.read_release(isvc.read())
            if not cluster_release.to_end(release, model_name, outcome, self.BACKEND):
                return self.release_state(model_name) or {}
            if outcome == "promote":
                request = DeploymentRequest(**release["request"])
                try:
                    DeployerContract.deploy(self, request, int(self.config.ready_timeout))
                except BaseException:
                    with locks.uninterrupted():
                        self._abort(isvc, release, by, f"promote failed: {reason}")
                    raise
                ended = cluster_release.finished(release, "promote", by, reason)
                isvc.apply({"metadata": {"annotations": manifest.release_annotation(ended)}})
            else:
                self._abort(isvc, release, by, reason)
        return self.release_state(model_name) or {}
