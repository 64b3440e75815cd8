"""Deployment steps: deploy the champion with the stack's model deployer."""

from steps.deployment.deploy import deploy_champion

__all__ = ["deploy_champion"]
