"""What a deployer is asked to serve (`DeploymentRequest`): typed, so the protocol and the
resources ride in it rather than in ZenML's `extra_args`; it converts to and from ZenML's
`SeldonDeploymentConfig` for the deployers and records that speak ZenML's API. A release
to start (`ReleaseRequest`) carries its candidate's request, its mode, share and gate
thresholds in one typed object, from the step down to each backend."""

from __future__ import annotations

from pydantic import BaseModel
from zenml.services.service import ServiceConfig

from core.protocol import DEFAULT_PROTOCOL


class DeploymentRequest(BaseModel):
    """What to serve and how: one registered model version, its protocol and resources."""

    model_name: str
    model_version: str
    model_uri: str  # the model's files (MLflow artifact location)
    protocol: str = DEFAULT_PROTOCOL
    cpu: str | None = None
    memory: str | None = None
    start_timeout: float | None = None  # seconds to become healthy; None: the deployer's
    pipeline_name: str = ""
    pipeline_step_name: str = ""
    task: str = ""  # classification or regression, as recorded with the model ("": unknown)

    def seldon_config(self):
        """The same request as ZenML's `SeldonDeploymentConfig` (what ZenML's own
        deployers and their records take)."""
        from zenml.integrations.seldon.seldon_client import SeldonResourceRequirements
        from zenml.integrations.seldon.services.seldon_deployment import SeldonDeploymentConfig

        limits = {k: v for k, v in (("cpu", self.cpu), ("memory", self.memory)) if v}
        return SeldonDeploymentConfig(
            model_uri=self.model_uri,
            model_name=self.model_name,
            model_version=self.model_version,
            implementation="MLFLOW_SERVER",
            replicas=1,
            parameters=None,
            resources=SeldonResourceRequirements(limits=limits, requests=limits)
            if limits
            else None,
            secret_name=None,  # the cluster deployer references its own Kubernetes secret
            extra_args={"protocol": self.protocol}
            | ({"start_timeout": self.start_timeout} if self.start_timeout else {}),
            pipeline_name=self.pipeline_name,
            pipeline_step_name=self.pipeline_step_name,
        )

    @classmethod
    def for_model(cls, model, protocol: str, pipeline: str, step_name: str) -> DeploymentRequest:
        """What to serve: a registered version's files in the artifact store (`model`: an
        integrations/mlflow/registry.RegisteredModel), on `protocol`."""
        return cls(
            model_uri=model.artifact_location,
            model_name=model.name,
            model_version=model.version,
            protocol=protocol,
            pipeline_name=pipeline,
            pipeline_step_name=step_name,
        )

    @classmethod
    def from_config(cls, config: ServiceConfig) -> DeploymentRequest:
        """A request from a ZenML deployment config (a caller that speaks ZenML's API)."""
        data = config.model_dump()
        extra = data.get("extra_args") or {}
        limits = ((data.get("resources") or {}).get("limits")) or {}
        return cls(
            model_name=data["model_name"],
            model_version=str(data.get("model_version") or ""),
            model_uri=data["model_uri"],
            protocol=data.get("protocol") or extra.get("protocol") or DEFAULT_PROTOCOL,
            cpu=limits.get("cpu"),
            memory=limits.get("memory"),
            start_timeout=extra.get("start_timeout"),
            pipeline_name=data.get("pipeline_name") or "",
            pipeline_step_name=data.get("pipeline_step_name") or "",
        )


class ReleaseRequest(BaseModel):
    """A release to start beside the served champion: the `candidate` to serve, the
    `mode` (canary: `percent` % of live requests; shadow: a copy of each) and the
    live-evidence gate's `thresholds` (on top of core/release/gate.DEFAULTS)."""

    candidate: DeploymentRequest
    mode: str
    percent: float = 0.0
    thresholds: dict = {}

    def with_protocol(self, protocol: str) -> ReleaseRequest:
        """The same release, its candidate speaking `protocol` (the champion's: the same
        requests reach both)."""
        candidate = self.candidate.model_copy(update={"protocol": protocol})
        return self.model_copy(update={"candidate": candidate})
