"""The release-check pipeline's step: one look of the cluster's release watcher."""

from __future__ import annotations

from typing import Annotated

from zenml import step
from zenml.logger import get_logger

from steps.deployment.release import check_cluster_release

logger = get_logger(__name__)


@step(enable_cache=False)
def check_release(model_name: str) -> Annotated[str, "release_check"]:
    """Judge the model's running release and end it when the gate decides (promote or
    abort, in MLflow and the release history); what it found, in one line."""
    result = check_cluster_release(model_name)
    said = "; ".join(result["reasons"]) or result["next"]
    line = f"{model_name}: {result['outcome']}" + (f": {said}" if said else "")
    logger.info(line)
    return line
