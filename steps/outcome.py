"""The continuous-training run's last step: what the run amounted to (see steps/skip.py)."""

from __future__ import annotations

import logging
from typing import Annotated

from zenml import add_tags, log_metadata, step

from steps.deployment.deploy import DeploymentInfo
from steps.monitoring.decide import MonitoringDecision
from steps.registry.gate import PromotionDecision
from steps.skip import RunOutcome, run_outcome

logger = logging.getLogger(__name__)


@step(enable_cache=False)
def record_outcome(
    decision: MonitoringDecision, promotion: PromotionDecision, deployment: DeploymentInfo
) -> Annotated[RunOutcome, "run_outcome"]:
    """Tag the run with what it amounted to (`zenkube:<outcome>`) and keep why in its metadata."""
    outcome = run_outcome(decision, promotion, deployment)
    add_tags(tags=[outcome.tag])
    log_metadata({"outcome": outcome.outcome, "outcome_reasons": outcome.reasons})
    logger.info("zenkube outcome: %s (%s)", outcome.outcome, "; ".join(outcome.reasons))
    return outcome
