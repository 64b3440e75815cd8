"""Continuous training: monitor a batch → decide → retrain on reference + batch → gate → deploy.

One pipeline, so the loop runs as one KFP run (and one recurring run) on Kubeflow. When
monitoring decides there is nothing to retrain, the retraining steps run and say
"skipped: …" (KFP has no conditional tasks through ZenML). The last step tags the run
with what it amounted to: `zenkube:nothing-to-do`, `zenkube:alert`, `zenkube:retrained`
or `zenkube:promoted` (steps/skip.py), so the runs list tells them apart.
"""

from zenml import pipeline

from core.protocol import DEFAULT_PROTOCOL
from core.specs import GateSpec, MonitoringThresholds, SplitSpec, TrainerSpec
from pipelines.monitoring import monitor_batch
from steps.data import split_data
from steps.deployment import deploy_if_promoted
from steps.monitoring import retraining_data
from steps.outcome import record_outcome
from steps.registry import promote_if_better, register_model
from steps.training import evaluate_model, train_model


@pipeline(enable_cache=False)
def continuous_training_pipeline(
    model_name: str,
    batch: str,
    thresholds: MonitoringThresholds,
    retrain: bool,
    split: SplitSpec,
    trainer: TrainerSpec,
    gate: GateSpec,
    protocol: str | None = None,
    default_protocol: str = DEFAULT_PROTOCOL,
    timeout: int = 300,
    deploy: bool = True,
) -> None:
    """Watch the champion on a batch; on a labelled alert retrain, gate and redeploy."""
    reference, current, decision = monitor_batch(model_name, batch, thresholds)
    data = retraining_data(decision, reference, current, retrain)
    train, valid, test = split_data(data, split)
    model, search = train_model(train, valid, trainer)
    report = evaluate_model(model, test, search)
    registered = register_model(model, train, report, trainer, model_name)
    promotion = promote_if_better(registered, report, test, gate)
    deployment = deploy_if_promoted(
        promotion, model_name, protocol, default_protocol, timeout, deploy
    )
    record_outcome(decision, promotion, deployment)
