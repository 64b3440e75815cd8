"""Steps of the continuous-training pipeline that have nothing to do say so and pass on,
and the run says what it amounted to.

KFP and ZenML's static pipelines run every task; when monitoring decides no retraining
is needed, the retraining step (`retrain_if_needed`, steps/monitoring/retrain.py) and
the deploy step log one line (`zenkube skipped <step>: <reason>`, which the console and
the step's log show) and return only a decision that says why (the retraining writes no
model, data set or ZenML Model version then).

The last step, `record_outcome` (steps/outcome.py), names what the run amounted to (`nothing to do`,
`alert`, `retrained`, `promoted`) as a tag on the ZenML run (`zenkube:<outcome>`: `zenml
pipeline runs list --columns name,status,tags` lists it; the dashboard's runs list shows
no tags), in the run's metadata (the dashboard's run page, Metadata), and as its output
(the task's card in the KFP UI), the same on the local stack and in a pod.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel

logger = logging.getLogger(__name__)
PREFIX = "zenkube skipped"

NOTHING_TO_DO, ALERT, RETRAINED, PROMOTED = "nothing to do", "alert", "retrained", "promoted"
TAG_PREFIX = "zenkube:"


def note_skipped(step_name: str, reason: str) -> None:
    logger.info("%s %s: %s", PREFIX, step_name, reason)


class RunOutcome(BaseModel):
    """What a continuous-training run amounted to.

    Attributes:
        outcome: `nothing to do` (no threshold breached), `alert` (breached, nothing
            retrained: no labels or retraining off), `retrained` (a candidate was trained
            and registered but not promoted) or `promoted` (the candidate is the champion).
        reasons: why, one line each (monitoring's reasons, the gate's, the deployment's).
    """

    outcome: str
    reasons: list[str]

    @property
    def tag(self) -> str:
        return TAG_PREFIX + self.outcome.replace(" ", "-")


def run_outcome(decision, promotion, deployment) -> RunOutcome:
    """The outcome from monitoring's decision, the gate's and the deployment's."""
    reasons = list(decision.reasons) or ["no threshold breached"]
    if not decision.alert:
        return RunOutcome(outcome=NOTHING_TO_DO, reasons=reasons)
    retrained = bool(getattr(promotion, "candidate_version", ""))
    if not retrained:
        return RunOutcome(outcome=ALERT, reasons=[*reasons, promotion.reason])
    if not promotion.promoted:
        return RunOutcome(outcome=RETRAINED, reasons=[*reasons, promotion.reason])
    served = deployment.skipped or f"serving v{deployment.model_version}"
    return RunOutcome(outcome=PROMOTED, reasons=[*reasons, promotion.reason, served])
