"""Continuous training: monitor a batch → decide → retrain on reference + batch → gate → deploy.

One pipeline, so the loop runs as one KFP run (and one recurring run) on Kubeflow. KFP
has no conditional tasks through ZenML, so the retraining is one step that trains only on
a labelled alert: when there is nothing to retrain it says "skipped: …" and writes no
model, no data set and no ZenML Model version (steps/monitoring/retrain.py). The pipeline
has no pipeline-level ZenML Model for the same reason: the retraining step makes the
version when it registers a model. The last step tags the run with what it amounted to:
`zenkube:nothing-to-do`, `zenkube:alert`, `zenkube:retrained` or `zenkube:promoted`
(steps/skip.py), so `zenml pipeline runs list --columns name,status,tags` tells them apart.
"""

from zenml import pipeline

from core.specs import (
    GateSpec,
    MonitoringThresholds,
    RetrainSpec,
    ServingSpec,
    SplitSpec,
    TrainerSpec,
)
from pipelines.monitoring import monitor_batch
from steps.deployment import deploy_if_promoted
from steps.monitoring import retrain_if_needed
from steps.outcome import record_outcome


@pipeline(enable_cache=False)
def continuous_training_pipeline(
    model_name: str,
    batch: str,
    thresholds: MonitoringThresholds,
    retrain: RetrainSpec,
    split: SplitSpec,
    trainer: TrainerSpec,
    gate: GateSpec,
    serving: ServingSpec,
    deploy: bool = True,
) -> None:
    """Watch the champion on a batch; on a labelled alert retrain, gate and redeploy."""
    reference, current, decision = monitor_batch(model_name, batch, thresholds, retrain.enabled)
    mode = serving.release.mode  # canary/shadow: a pass awaits its release
    promotion = retrain_if_needed(
        decision, reference, current, retrain, split, trainer, gate, model_name, mode
    )
    deployment = deploy_if_promoted(promotion, model_name, serving, deploy)
    record_outcome(decision, promotion, deployment)
