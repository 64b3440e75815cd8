"""Deployment: the champion → the active stack's model deployer (health + smoke checked)."""

from zenml import pipeline

from core.protocol import DEFAULT_PROTOCOL
from steps.deployment import deploy_champion


@pipeline(enable_cache=False)
def deployment_pipeline(
    model_name: str,
    protocol: str | None = None,
    default_protocol: str = DEFAULT_PROTOCOL,
    timeout: int = 300,
) -> None:
    """Serve the current champion; the previous server keeps serving if the new one fails.

    `protocol` switches the endpoint to it; None keeps the protocol being served."""
    deploy_champion(model_name, protocol, default_protocol, timeout)
