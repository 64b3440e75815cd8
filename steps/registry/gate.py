"""The promotion gate: a plain decision, unit-tested without any store."""

from __future__ import annotations

from pydantic import BaseModel

from materializers.evaluation_report import LOWER_IS_BETTER
from steps.specs import GateSpec
from steps.training.metrics import primary_metric, score_is_better


class PromotionDecision(BaseModel):
    """Whether a candidate became the champion, and why.

    Attributes:
        promoted: True when the candidate is now the champion.
        reason: one sentence a user can read.
        metric: the metric compared.
        candidate_score: the candidate's score on the test split.
        champion_score: the previous champion's score on the same rows (None if none).
        candidate_version / champion_version: MLflow registry versions.
    """

    promoted: bool
    reason: str
    metric: str
    candidate_score: float
    champion_score: float | None = None
    candidate_version: str = ""
    champion_version: str | None = None
    model_name: str = ""


def decide_promotion(
    task: str, candidate_metrics: dict[str, float], champion_score: float | None, gate: GateSpec
) -> PromotionDecision:
    """Promote only if the candidate passes the threshold and beats the champion."""
    metric = gate.metric or primary_metric(task)
    if metric not in candidate_metrics:
        return PromotionDecision(
            promoted=False,
            metric=metric,
            candidate_score=float("nan"),
            champion_score=champion_score,
            reason=f"gate metric '{metric}' was not computed (have: {', '.join(candidate_metrics)})",
        )
    score = candidate_metrics[metric]
    lower = metric in LOWER_IS_BETTER
    if gate.threshold is not None and (score > gate.threshold if lower else score < gate.threshold):
        word = "above" if lower else "below"
        reason = f"{metric}={score:.4f} is {word} the threshold {gate.threshold}"
        return PromotionDecision(
            promoted=False,
            reason=reason,
            metric=metric,
            candidate_score=score,
            champion_score=champion_score,
        )
    if champion_score is not None and not score_is_better(
        metric, score, champion_score, gate.min_improvement
    ):
        reason = (
            f"{metric}={score:.4f} does not beat the champion's {champion_score:.4f} on the same "
            f"test rows (needs an improvement over {gate.min_improvement})"
        )
        return PromotionDecision(
            promoted=False,
            reason=reason,
            metric=metric,
            candidate_score=score,
            champion_score=champion_score,
        )
    if champion_score is None:
        reason = f"{metric}={score:.4f} passes the gate and there is no champion yet"
    else:
        reason = f"{metric}={score:.4f} beats the champion's {champion_score:.4f}"
    return PromotionDecision(
        promoted=True,
        reason=reason,
        metric=metric,
        candidate_score=score,
        champion_score=champion_score,
    )
