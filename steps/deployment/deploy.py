"""Deploy the champion with whatever model deployer the active stack has."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel
from zenml import get_step_context, step
from zenml.client import Client
from zenml.integrations.seldon.services.seldon_deployment import (
    SeldonDeploymentConfig,
    SeldonDeploymentService,
)

from integrations import mlflow_registry
from steps.errors import ConfigError


class DeploymentInfo(BaseModel):
    """Where the champion is served.

    Attributes:
        model_name / model_version: the MLflow registry version being served.
        protocol: `seldon` (v1 REST) or `v2`.
        prediction_url / health_url: endpoints (None until the deployer reports them).
        service_id: the ZenML service id (`zenml model-deployer models list`).
        details: deployer-specific facts such as the log file.
    """

    model_name: str
    model_version: str
    protocol: str
    prediction_url: str | None = None
    health_url: str | None = None
    service_id: str = ""
    details: dict[str, str | None] = {}


def build_deployment_config(
    champion: mlflow_registry.RegisteredModel, protocol: str, pipeline: str, step_name: str
) -> SeldonDeploymentConfig:
    """One config for any Seldon deployer: MLflow server, model files in the artifact store."""
    return SeldonDeploymentConfig(
        model_uri=champion.artifact_location,
        model_name=champion.name,
        model_version=champion.version,
        implementation="MLFLOW_SERVER",
        replicas=1,
        parameters=None,
        resources=None,
        secret_name=None,  # the cluster deployer references its own Kubernetes secret
        extra_args={"protocol": protocol},
        pipeline_name=pipeline,
        pipeline_step_name=step_name,
    )


def champion_to_serve(model_name: str) -> mlflow_registry.RegisteredModel:
    mlflow_registry.configure_from_stack()
    champion = mlflow_registry.get_champion(model_name)
    if champion is None:
        raise ConfigError(
            f"There is no champion of '{model_name}' to deploy. Train one first: "
            "`python run.py train`."
        )
    return champion


def serve_champion(
    champion: mlflow_registry.RegisteredModel,
    protocol: str,
    pipeline_name: str,
    step_name: str,
    timeout: int = 300,
) -> DeploymentInfo:
    """Hand the champion to the active stack's model deployer, whichever flavor it is."""
    deployer = Client().active_stack.model_deployer
    if deployer is None:
        raise ConfigError(
            "The active stack has no model deployer. Run `python run.py stack up local` "
            "(local Seldon runtime) or add a seldon model deployer to your stack."
        )
    if deployer.flavor == "seldon":
        from integrations.kubeflow import fixes

        fixes.apply()  # ZenML's seldon deployer mixes up S3 key order (see the module)
    config = build_deployment_config(champion, protocol, pipeline_name, step_name)
    service = deployer.deploy_model(
        config, service_type=SeldonDeploymentService.SERVICE_TYPE, timeout=timeout
    )
    info = deployer.get_model_server_info(service)
    return DeploymentInfo(
        model_name=champion.name,
        model_version=champion.version,
        protocol=protocol,
        prediction_url=info.get("PREDICTION_URL"),
        health_url=info.get("HEALTH_CHECK_URL"),
        service_id=str(service.uuid),
        details={k: str(v) for k, v in info.items() if v is not None},
    )


@step(enable_cache=False)
def deploy_champion(
    model_name: str, protocol: str = "seldon", timeout: int = 300
) -> Annotated[DeploymentInfo, "deployment"]:
    """Deploy the champion; a new server that fails its checks leaves the old one serving."""
    context = get_step_context()
    return serve_champion(
        champion_to_serve(model_name),
        protocol,
        context.pipeline.name,
        context.step_run.name,
        timeout,
    )
