"""Deploy the champion with whatever model deployer the active stack has."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel
from zenml import get_step_context, step
from zenml.logger import get_logger

from core.champion import locks
from core.errors import ConfigError, is_interrupt
from core.protocol import DEFAULT_PROTOCOL
from core.protocol import choose as choose_protocol
from core.specs import ServingSpec
from integrations.k8s.storage_uri import check_stack_model_uri
from integrations.mlflow import champion as champions
from integrations.mlflow import registry as mlflow_registry
from integrations.zenml_adapters import deployer as deployers
from integrations.zenml_adapters.request import DeploymentRequest
from steps.registry.gate import PromotionDecision
from steps.skip import note_skipped

logger = get_logger(__name__)


class DeploymentInfo(BaseModel):
    """Where the champion is served.

    Attributes:
        model_name / model_version: the MLflow registry version being served.
        protocol: `seldon` (v1 REST) or `v2`.
        prediction_url / health_url: endpoints (None until the deployer reports them).
        service_id: the ZenML service id (`zenml model-deployer models list`).
        details: deployer-specific facts such as the log file.
        skipped: why nothing was deployed (continuous training without a promotion).
    """

    model_name: str
    model_version: str
    protocol: str
    prediction_url: str | None = None
    health_url: str | None = None
    service_id: str = ""
    details: dict[str, str | None] = {}
    skipped: str = ""


def build_deployment_config(
    champion: mlflow_registry.RegisteredModel, protocol: str, pipeline: str, step_name: str
):
    """The same request as ZenML's `SeldonDeploymentConfig` (what ZenML's deployers take)."""
    return DeploymentRequest.for_model(champion, protocol, pipeline, step_name).seldon_config()


def champion_to_serve(model_name: str) -> mlflow_registry.RegisteredModel:
    return champions.require(model_name, "deploy")


def schema_change_from_served(deployer, champion: mlflow_registry.RegisteredModel) -> str:
    """How the champion's inputs differ from the version now served ("" when they do not).

    Raises ConfigError when they differ and the champion was not promoted with
    `gate.allow_schema_change` (e.g. the alias was moved by hand): clients would break.
    """
    from core.schema import diff_schemas

    services = deployers.services_for(deployer, champion.name)
    served = next((s for s in services if s.config.model_version != champion.version), None)
    if served is None or any(s.config.model_version == champion.version for s in services):
        return ""
    try:
        old = mlflow_registry.get_version(champion.name, str(served.config.model_version))
        old_schema = mlflow_registry.read_input_schema(old.model_uri)
        new_schema = mlflow_registry.read_input_schema(champion.model_uri)
    except Exception as exc:  # the served version is not in the registry: nothing to compare
        if is_interrupt(exc):
            raise
        return ""
    if old_schema is None or new_schema is None:
        return ""
    change = diff_schemas(old_schema, new_schema)
    if not change:
        return ""
    tags = mlflow_registry.version_tags(champion.name, champion.version)
    described = f"v{old.version} → v{champion.version}: {change.describe()}"
    if tags.get(mlflow_registry.SCHEMA_CHANGE_TAG) != "true":
        raise ConfigError(
            f"The champion v{champion.version} of '{champion.name}' takes other inputs than the "
            f"served v{old.version} ({change.describe()}), and it was not promoted with "
            "gate.allow_schema_change: deploying it would break every client, so the served "
            "model stays. Move the champion back (`python run.py champion set --model-name "
            f"{champion.name} --version {old.version}`), or "
            "promote the new model on purpose with gate.allow_schema_change: true."
        )
    return f"{described}; clients must send the new columns"


def serve_champion(
    champion: mlflow_registry.RegisteredModel,
    protocol: str | None,
    pipeline_name: str,
    step_name: str,
    timeout: int = 300,
    default_protocol: str = DEFAULT_PROTOCOL,
) -> DeploymentInfo:
    """Hand the champion to the active stack's model deployer, whichever flavor it is.

    The protocol is `protocol` when asked for, else the one the model is served with now,
    else `default_protocol` (core/protocol/); the model's lock is held throughout."""
    deployer = deployers.active_deployer()
    check_stack_model_uri(champion.artifact_location)  # before anything reaches a cluster
    with locks.model_lock(champion.name, "deploy", logger.info):
        served = deployers.served_protocol(deployer, champion.name)
        supported = deployers.protocols(deployer)  # KServe: V2 only
        default = default_protocol if default_protocol in supported else supported[0]
        chosen = choose_protocol(protocol, served, default)
        schema_change = schema_change_from_served(deployer, champion)
        request = DeploymentRequest.for_model(champion, chosen, pipeline_name, step_name)
        service = deployers.deploy(deployer, request, timeout)
    info = deployer.get_model_server_info(service)
    return DeploymentInfo(
        model_name=champion.name,
        model_version=champion.version,
        protocol=deployers.protocol_of(deployer, service),
        prediction_url=info.get("PREDICTION_URL"),
        health_url=info.get("HEALTH_CHECK_URL"),
        service_id=str(service.uuid),
        details={
            **{k: str(v) for k, v in info.items() if v is not None},
            **({"SCHEMA_CHANGE": schema_change} if schema_change else {}),
        },
    )


@step(enable_cache=False)
def deploy_if_promoted(
    decision: PromotionDecision, model_name: str, serving: ServingSpec, deploy: bool = True
) -> Annotated[DeploymentInfo, "deployment"]:
    """Deploy the champion when the gate just promoted a model; start a release of the
    retrained version when it passed under a canary/shadow release mode; otherwise say
    why not."""
    protocol = serving.protocol
    if decision.release and deploy:
        return _release_from_step(model_name, decision.candidate_version, serving)
    if decision.release and not deploy:
        reason = (
            f"skipped: v{decision.candidate_version} passed the gate, but deploy is off "
            f"(start its release: `python run.py release start --model-name {model_name}`)"
        )
        note_skipped("deploy_if_promoted", reason)
        return DeploymentInfo(
            model_name=model_name, model_version="", protocol=protocol or "", skipped=reason
        )
    if decision.promoted and not deploy:
        reason = (
            "skipped: promoted, but deploy is off (run `python run.py deploy --model-name "
            f"{model_name}`)"
        )
        note_skipped("deploy_if_promoted", reason)
        return DeploymentInfo(
            model_name=model_name, model_version="", protocol=protocol or "", skipped=reason
        )
    if not decision.promoted:
        reason = (
            decision.reason
            if decision.reason.startswith("skipped")
            else (f"skipped: the retrained model was not promoted ({decision.reason})")
        )
        note_skipped("deploy_if_promoted", reason)
        return DeploymentInfo(
            model_name=model_name, model_version="", protocol=protocol or "", skipped=reason
        )
    return _serve_from_step(model_name, serving)


@step(enable_cache=False)
def deploy_champion(
    model_name: str, serving: ServingSpec
) -> Annotated[DeploymentInfo, "deployment"]:
    """Deploy the champion; a new server that fails its checks leaves the old one serving.

    `serving.protocol`: switch to it; None keeps the one served (`default_protocol` when
    none is). With a canary/shadow `serving.release` mode, a gate-passed version newer
    than the champion that had no release yet is released beside the served champion
    instead."""
    if serving.release.mode != "swap":
        from steps.deployment.release import pending_release

        with locks.model_lock(model_name, "deploy", logger.info):
            champions.repair(model_name)
            version = pending_release(model_name)
            if version is not None:
                return _release_from_step(model_name, version, serving)
    return _serve_from_step(model_name, serving)


def _release_from_step(model_name: str, version: str, serving: ServingSpec) -> DeploymentInfo:
    """Start the release of `version` (what is served stays the champion): its info."""
    from steps.deployment.release import start_release

    context = get_step_context()
    state = start_release(
        model_name,
        version,
        serving.release,
        context.pipeline.name,
        context.step_run.name,
        serving.timeout,
    )
    return released_info(model_name, state)


def released_info(model_name: str, state: dict) -> DeploymentInfo:
    """What is served during a release: the champion's endpoint, the release in details."""
    deployer = deployers.active_deployer()
    service = deployers.served(deployer, model_name)
    info = deployer.get_model_server_info(service)
    mode = state.get("mode")
    share = f"canary {state.get('percent'):g}%" if mode == "canary" else str(mode)
    candidate = (state.get("candidate") or {}).get("version")
    return DeploymentInfo(
        model_name=model_name,
        model_version=str(service.config.model_version),
        protocol=deployers.protocol_of(deployer, service),
        prediction_url=info.get("PREDICTION_URL"),
        health_url=info.get("HEALTH_CHECK_URL"),
        service_id=str(service.uuid),
        details={
            **{k: str(v) for k, v in info.items() if v is not None},
            "RELEASE": f"v{candidate} ({share}) beside the champion v"
            f"{service.config.model_version}: {state.get('state')}; "
            f"`python run.py release status --model-name {model_name}` shows its evidence",
        },
    )


def _serve_from_step(model_name: str, serving: ServingSpec) -> DeploymentInfo:
    context = get_step_context()
    with locks.model_lock(model_name, "deploy", logger.info):
        champions.repair(model_name)  # what a killed command left, before it is read
        return serve_champion(
            champion_to_serve(model_name),
            serving.protocol,
            context.pipeline.name,
            context.step_run.name,
            serving.timeout,
            serving.default_protocol,
        )
