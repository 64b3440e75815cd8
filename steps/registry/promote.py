"""Promote the candidate only if it passes the gate and beats the champion on the same rows."""

from __future__ import annotations

import logging
from typing import Annotated

from zenml import get_step_context, step
from zenml.enums import ModelStages

from integrations import mlflow_registry
from integrations.mlflow_registry import RegisteredModel
from materializers.dataset import Dataset
from materializers.evaluation_report import EvaluationReport
from steps.registry.gate import PromotionDecision, decide_promotion
from steps.specs import GateSpec
from steps.training.metrics import compute_metrics, primary_metric

logger = logging.getLogger(__name__)


def champion_score_on(test: Dataset, metric: str, champion: RegisteredModel | None) -> float | None:
    """Score the current champion on the candidate's test rows (None without a champion)."""
    if champion is None:
        return None
    try:
        model = mlflow_registry.load_model(champion.model_uri)
        return compute_metrics(test.task, model, test.features, test.labels).get(metric)
    except Exception as exc:  # a champion that cannot score these rows cannot defend its title
        logger.warning(
            "Champion v%s could not be scored on this test set: %s", champion.version, exc
        )
        return None


@step(experiment_tracker=True)
def promote_if_better(
    registered: RegisteredModel, report: EvaluationReport, test: Dataset, gate: GateSpec
) -> Annotated[PromotionDecision, "promotion_decision"]:
    """Set MLflow alias `champion` and ZenML stage `production` together, or say why not."""
    mlflow_registry.configure_from_stack()
    champion = mlflow_registry.get_champion(registered.name)
    metric = gate.metric or primary_metric(report.task)
    champion_score = champion_score_on(test, metric, champion)
    decision = decide_promotion(report.task, report.metrics, champion_score, gate)
    decision.candidate_version = registered.version
    decision.champion_version = champion.version if champion else None
    decision.model_name = registered.name
    if decision.promoted:
        mlflow_registry.set_champion(registered.name, registered.version)
        get_step_context().model.set_stage(ModelStages.PRODUCTION, force=True)
        logger.info("Promoted %s v%s: %s", registered.name, registered.version, decision.reason)
    else:
        logger.info("Not promoted %s v%s: %s", registered.name, registered.version, decision.reason)
    return decision
