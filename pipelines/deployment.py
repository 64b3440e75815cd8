"""Deployment: the champion → the active stack's model deployer (health + smoke checked)."""

from zenml import pipeline

from core.specs import ServingSpec
from steps.deployment import deploy_champion


@pipeline(enable_cache=False)
def deployment_pipeline(model_name: str, serving: ServingSpec) -> None:
    """Serve the current champion; the previous server keeps serving if the new one fails.

    `serving.protocol` switches the endpoint to it; None keeps the protocol being served.
    With a canary or shadow `serving.release` mode, a gate-passed version newer than the
    champion is released beside it instead (`release status`)."""
    deploy_champion(model_name, serving)
