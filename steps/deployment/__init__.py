"""Deployment steps: deploy the champion with the stack's model deployer."""

from steps.deployment.deploy import deploy_champion, deploy_if_promoted

__all__ = ["deploy_champion", "deploy_if_promoted"]
