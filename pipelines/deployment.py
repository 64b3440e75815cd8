"""Deployment: the champion → the active stack's model deployer (health + smoke checked)."""

from zenml import pipeline

from steps.deployment import deploy_champion


@pipeline(enable_cache=False)
def deployment_pipeline(model_name: str, protocol: str = "seldon", timeout: int = 300) -> None:
    """Serve the current champion; the previous server keeps serving if the new one fails."""
    deploy_champion(model_name, protocol, timeout)
