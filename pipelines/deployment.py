"""Deployment: the champion → the active stack's model deployer (health + smoke checked)."""

from zenml import pipeline

from core.protocol import DEFAULT_PROTOCOL
from core.specs import ReleaseSpec
from steps.deployment import deploy_champion


@pipeline(enable_cache=False)
def deployment_pipeline(
    model_name: str,
    protocol: str | None = None,
    default_protocol: str = DEFAULT_PROTOCOL,
    timeout: int = 300,
    release: ReleaseSpec | None = None,
) -> None:
    """Serve the current champion; the previous server keeps serving if the new one fails.

    `protocol` switches the endpoint to it; None keeps the protocol being served. With a
    canary or shadow `release` mode, a gate-passed version newer than the champion is
    released beside it instead (`release status`)."""
    deploy_champion(model_name, protocol, default_protocol, timeout, release)
