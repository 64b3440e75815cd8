"""The continuous-training run's last step: what the run amounted to (see steps/skip.py)."""

from __future__ import annotations

import logging
from typing import Annotated

from zenml import add_tags, get_step_context, log_metadata, step

from steps.deployment.deploy import DeploymentInfo
from steps.monitoring.decide import MonitoringDecision
from steps.registry.gate import PromotionDecision
from steps.skip import RunOutcome, run_outcome

logger = logging.getLogger(__name__)


@step(enable_cache=False)
def record_outcome(
    decision: MonitoringDecision, promotion: PromotionDecision, deployment: DeploymentInfo
) -> Annotated[RunOutcome, "run_outcome"]:
    """Tag the run with what it amounted to (`zenkube:<outcome>`) and keep why in the run's
    metadata (and the step's: its card in the KFP UI)."""
    outcome = run_outcome(decision, promotion, deployment)
    add_tags(tags=[outcome.tag])
    figures = {"outcome": outcome.outcome, "outcome_reasons": outcome.reasons}
    if promotion.outcome:  # the gate's: promote, keep, inconclusive or reject
        figures["gate_outcome"] = promotion.outcome
    log_metadata(figures)  # the step's
    log_metadata(figures, run_id_name_or_prefix=get_step_context().pipeline_run.id)  # the run's
    logger.info("zenkube outcome: %s (%s)", outcome.outcome, "; ".join(outcome.reasons))
    return outcome
