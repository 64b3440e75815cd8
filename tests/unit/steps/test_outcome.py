"""What a continuous-training run amounted to, from the decisions its steps took."""

from __future__ import annotations

import pytest

from steps.deployment.deploy import DeploymentInfo
from steps.monitoring.decide import MonitoringDecision
from steps.registry.gate import PromotionDecision
from steps.skip import run_outcome


def decision(alert: bool) -> MonitoringDecision:
    reasons = ["2 of 6 columns drifted (33% ≥ 30% drift share)"] if alert else []
    return MonitoringDecision(
        alert=alert, retrain=alert, reasons=reasons, drift_share=0.33, drifted_columns=[]
    )


SKIPPED = PromotionDecision(
    promoted=False,
    reason="skipped: no retraining (the alert's batch has no labels)",
    metric="",
    candidate_score=0.0,
)
REFUSED = PromotionDecision(
    promoted=False,
    reason="f1 0.81 < champion's 0.85",
    metric="f1",
    candidate_score=0.81,
    candidate_version="3",
)
PROMOTED = REFUSED.model_copy(update={"promoted": True, "reason": "f1 0.9 > champion's 0.85"})
NOT_DEPLOYED = DeploymentInfo(
    model_name="m", model_version="", protocol="seldon", skipped="skipped: not promoted"
)
DEPLOYED = DeploymentInfo(model_name="m", model_version="3", protocol="seldon")


@pytest.mark.parametrize(
    "alert,promotion,deployment,outcome,tag",
    [
        (False, SKIPPED, NOT_DEPLOYED, "nothing to do", "zenkube:nothing-to-do"),
        (True, SKIPPED, NOT_DEPLOYED, "alert", "zenkube:alert"),
        (True, REFUSED, NOT_DEPLOYED, "retrained", "zenkube:retrained"),
        (True, PROMOTED, DEPLOYED, "promoted", "zenkube:promoted"),
    ],
)  # fmt: skip
def test_the_run_says_what_it_amounted_to_and_why(alert, promotion, deployment, outcome, tag):
    result = run_outcome(decision(alert), promotion, deployment)
    assert (result.outcome, result.tag) == (outcome, tag)
    if alert:
        assert result.reasons[0].startswith("2 of 6 columns drifted")
        assert promotion.reason in result.reasons
    else:
        assert result.reasons == ["no threshold breached"]
    if outcome == "promoted":
        assert result.reasons[-1] == "serving v3"
